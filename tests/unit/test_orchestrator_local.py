import pytest

from beatsync.bootstrap import bootstrap
from beatsync.settings import Settings
from tests.suites.orchestrator import *  # noqa: F401,F403  (the Orchestrator interface suite)
from tests.suites.service import RecordingOrchestrator


@pytest.fixture
def engine(tmp_path, media):
    settings = Settings.from_env({}, data_dir=tmp_path / "data", allowed_hosts=media.host)

    class Engine:
        jobs = bootstrap(settings, orchestrator=RecordingOrchestrator())
        # the server's wiring: worker threads running the steps on a container over the same store
        orchestrator = bootstrap(settings).orchestrator

        def finished(self, job_id):
            return self.orchestrator.idle()

    return Engine()
