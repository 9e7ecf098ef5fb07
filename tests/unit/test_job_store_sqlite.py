import pytest

from beatsync.adapters.sqlite_jobs import SqliteJobStore
from tests.suites.job_store import *  # noqa: F401,F403  (the JobStore interface suite)


@pytest.fixture
def store(tmp_path):
    return SqliteJobStore(tmp_path / "jobs.db")


def test_the_database_is_in_wal_mode_from_creation_and_a_lock_timeout_is_a_503(tmp_path, monkeypatch):
    """WAL is stored in the file when the store is made (no connection asks for it again: that
    PRAGMA does not wait for a lock, and CI saw it answer 500 under 50 concurrent creates); a lock
    held past the timeout is StoreUnavailable (503), never an unhandled sqlite3 error."""
    import sqlite3

    from beatsync.adapters import _sqlite
    from beatsync.errors import StoreUnavailable

    store = SqliteJobStore(tmp_path / "jobs.db")
    assert sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    holder = sqlite3.connect(store.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    monkeypatch.setattr(_sqlite, "LOCK_TIMEOUT", 0.2)
    try:
        with pytest.raises(StoreUnavailable):
            store.list("someone")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
