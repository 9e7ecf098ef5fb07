import pytest

from beatsync.adapters.process_runner import ProcessComposeRunner
from tests.suites.compose_runner import *  # noqa: F401,F403  (the ComposeRunner interface suite)


@pytest.fixture
def runner(tmp_path):
    r = ProcessComposeRunner(tmp_path / "logs", max_retries=1, parallelism=4)
    yield r
    for handle in list(r._procs) + list(r._executions):
        r.stop(handle)
