"""The Analytics interface suite: every adapter's test module imports these tests and provides an
``analytics`` fixture (tests/unit: SQLite; tests/integration: the Firestore emulator)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from beatsync.contracts.api import JobMetrics
from beatsync.jobs import new_job

DAY = datetime(2026, 3, 14, 23, 59, 30, tzinfo=timezone.utc)


def ended(status="completed", *, at=DAY, seconds=12.5, bytes_out=1000, cached=False, type="create"):
    job = new_job(type, {"n": 1}, owner="a")
    return job.model_copy(update={
        "status": status, "started_at": at - timedelta(seconds=seconds), "completed_at": at, "updated_at": at,
        "metrics": JobMetrics(processing_time_ms=int(seconds * 1000), bytes_out=bytes_out, beat_map_cached=cached)})


def test_a_job_is_counted_once_on_the_day_it_ended(analytics):
    job = ended(seconds=12.5, bytes_out=1000, cached=True)
    assert analytics.record(job) is True
    assert analytics.record(job) is False  # a job ended twice, or an end retried
    assert analytics.record(job.model_copy(update={"status": "failed"})) is False  # same job id
    assert analytics.days("2026-03-14", "2026-03-14") == [{
        "date": "2026-03-14", "total_jobs": 1, "completed_jobs": 1, "failed_jobs": 0, "cancelled_jobs": 0,
        "total_processing_seconds": 12.5, "total_output_bytes": 1000, "cache_hits": 1}]


def test_statuses_days_and_ranges(analytics):
    analytics.record(ended("completed", seconds=2, bytes_out=10))
    analytics.record(ended("failed", seconds=1.25, bytes_out=0))
    analytics.record(ended("cancelled", seconds=0.5, bytes_out=0, cached=True))
    analytics.record(ended("completed", at=DAY + timedelta(seconds=31), seconds=4, bytes_out=5))  # next UTC day
    analytics.record(ended("completed", at=DAY - timedelta(days=40)))
    days = analytics.days("2026-03-14", "2026-03-15")
    assert [d["date"] for d in days] == ["2026-03-14", "2026-03-15"]
    first, second = days
    assert (first["total_jobs"], first["completed_jobs"], first["failed_jobs"], first["cancelled_jobs"]) == (3, 1, 1, 1)
    assert first["total_processing_seconds"] == pytest.approx(3.75) and first["total_output_bytes"] == 10
    assert first["cache_hits"] == 1
    assert (second["total_jobs"], second["completed_jobs"], second["total_output_bytes"]) == (1, 1, 5)
    assert analytics.days("2026-03-16", "2026-12-31") == []
    assert len(analytics.days("2026-01-01", "2026-03-13")) == 1


def test_concurrent_ends_of_one_job_count_once(analytics):
    job = ended()
    results = []
    threads = [threading.Thread(target=lambda: results.append(analytics.record(job))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 5 + [True]
    (day,) = analytics.days("2026-03-14", "2026-03-14")
    assert day["total_jobs"] == 1


def test_a_job_that_has_not_ended_is_refused(analytics):
    with pytest.raises(ValueError):
        analytics.record(new_job("create", {}, owner="a"))
    assert analytics.days("2000-01-01", "2100-01-01") == []
