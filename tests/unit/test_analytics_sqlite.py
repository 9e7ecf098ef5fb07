import pytest

from beatsync.adapters.analytics import SqliteAnalytics
from tests.suites.analytics import *  # noqa: F401,F403  (the Analytics interface suite)


@pytest.fixture
def analytics(tmp_path):
    return SqliteAnalytics(tmp_path / "analytics.db")


def test_counted_markers_older_than_the_job_ttl_are_dropped_and_the_totals_stay(tmp_path):
    import sqlite3
    from datetime import timedelta

    from tests.suites.analytics import DAY, ended

    store = SqliteAnalytics(tmp_path / "a.db", ttl_days=30)
    old = ended(at=DAY - timedelta(days=31))
    store.record(old)
    store.record(ended(at=DAY))
    with sqlite3.connect(tmp_path / "a.db") as db:
        assert (old.job_id,) not in db.execute("SELECT job_id FROM analytics_counted").fetchall()
    assert sum(d["total_jobs"] for d in store.days("2026-01-01", "2026-12-31")) == 2
