import pytest

from beatsync.adapters.sqlite_jobs import SqliteJobStore
from tests.suites.job_store import *  # noqa: F401,F403  (the JobStore interface suite)


@pytest.fixture
def store(tmp_path):
    return SqliteJobStore(tmp_path / "jobs.db")
