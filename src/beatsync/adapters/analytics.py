"""Daily analytics of ended jobs: SQLite (local) and Firestore, behind :class:`beatsync.ports.Analytics`.

A job adds to the totals of the UTC day it ended: one to ``total_jobs`` and to its status's
counter, its processing seconds, its output bytes and, when its beat map came from the cache, one
cache hit. The "counted" marker of the job and the day's increments are written in one
transaction, so a job is counted once however often it is ended or its end retried.
"""

from __future__ import annotations

import functools
import os
from datetime import date, timedelta
from typing import TYPE_CHECKING

from ..errors import StoreUnavailable
from . import _sqlite
from ..ports import Analytics

if TYPE_CHECKING:
    from ..jobs.model import Job

COUNTERS = ("total_jobs", "completed_jobs", "failed_jobs", "cancelled_jobs", "total_processing_seconds",
            "total_output_bytes", "cache_hits")


def increments(job: "Job") -> tuple[str, dict]:
    """``(day, {counter: amount})`` that an ended ``job`` adds."""
    if job.status not in ("completed", "failed", "cancelled"):
        raise ValueError(f"job {job.job_id} has not ended ({job.status})")
    ended = job.completed_at or job.updated_at
    m = job.metrics
    seconds = (m.processing_time_ms or 0) / 1000.0
    if m.processing_time_ms is None and job.started_at is not None:
        seconds = max(0.0, (ended - job.started_at).total_seconds())
    return ended.date().isoformat(), {
        "total_jobs": 1, f"{job.status}_jobs": 1, "total_processing_seconds": round(seconds, 3),
        "total_output_bytes": int(m.bytes_out or 0), "cache_hits": 1 if m.beat_map_cached else 0}


def stats_doc(day: str, values: dict) -> dict:
    doc = {"date": day, **{k: values.get(k) or 0 for k in COUNTERS}}
    doc["total_processing_seconds"] = round(float(doc["total_processing_seconds"]), 3)
    for k in COUNTERS:
        if k != "total_processing_seconds":
            doc[k] = int(doc[k])
    return doc


SCHEMA = """
CREATE TABLE IF NOT EXISTS analytics_counted (job_id TEXT PRIMARY KEY, day TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS analytics_counted_day ON analytics_counted(day);
CREATE TABLE IF NOT EXISTS daily_stats (
    day TEXT PRIMARY KEY,
    total_jobs INTEGER NOT NULL DEFAULT 0,
    completed_jobs INTEGER NOT NULL DEFAULT 0,
    failed_jobs INTEGER NOT NULL DEFAULT 0,
    cancelled_jobs INTEGER NOT NULL DEFAULT 0,
    total_processing_seconds REAL NOT NULL DEFAULT 0,
    total_output_bytes INTEGER NOT NULL DEFAULT 0,
    cache_hits INTEGER NOT NULL DEFAULT 0
);
"""


class SqliteAnalytics(Analytics):
    """``ttl_days``: "counted" markers older than this are dropped (a job is not ended again that late:
    its document is gone by then); the day totals stay."""

    def __init__(self, path: str | os.PathLike, ttl_days: int = 90):
        self.path, self.ttl_days = _sqlite.create(path, SCHEMA), ttl_days

    def _tx(self):
        return _sqlite.transaction(self.path, busy="analytics store busy, try again")

    def record(self, job: "Job") -> bool:
        day, inc = increments(job)
        with self._tx() as db:
            if db.execute("INSERT OR IGNORE INTO analytics_counted (job_id, day) VALUES (?, ?)",
                          (job.job_id, day)).rowcount == 0:
                return False
            db.execute("INSERT OR IGNORE INTO daily_stats (day) VALUES (?)", (day,))
            cutoff = (date.fromisoformat(day) - timedelta(days=self.ttl_days)).isoformat()
            db.execute("DELETE FROM analytics_counted WHERE day < ?", (cutoff,))
            sets = ", ".join(f"{k} = {k} + ?" for k in inc)
            db.execute(f"UPDATE daily_stats SET {sets} WHERE day = ?", (*inc.values(), day))
        return True

    def days(self, first: str, last: str) -> list[dict]:
        with self._tx() as db:
            rows = db.execute(f"SELECT day, {', '.join(COUNTERS)} FROM daily_stats WHERE day BETWEEN ? AND ? "
                              "ORDER BY day", (first, last)).fetchall()
        return [stats_doc(r[0], dict(zip(COUNTERS, r[1:]))) for r in rows]


class FirestoreAnalytics(Analytics):
    """Days at ``{collection}/daily_stats/days/{date}`` (the seed's ``beat_sync_analytics/daily_stats/{date}``
    with the ``days`` collection Firestore needs between a document and its children), counted
    jobs at ``{collection}/daily_stats/counted/{job_id}`` with ``expire_at`` = end + ``ttl_days`` (the
    TTL policy of terraform/metrics.tf deletes them; the day totals stay)."""

    #: IAM permissions of each operation, on the resource named (tests/unit/test_permissions.py)
    PERMISSIONS = {
        # one transaction: read the job's marker, create it, create or increment the day's document
        "record": (("datastore.entities.get", "project"), ("datastore.entities.create", "project"),
                   ("datastore.entities.update", "project")),
        # a query over the days' documents
        "days": (("datastore.entities.list", "project"), ("datastore.entities.get", "project")),
    }

    def __init__(self, *, project: str | None = None, collection: str = "beat_sync_analytics",
                 database: str | None = None, ttl_days: int = 90):
        self.project, self.collection, self.database, self.ttl_days = project, collection, database, ttl_days

    @functools.cached_property
    def client(self):
        from google.cloud import firestore

        kwargs = {"project": self.project}
        if self.database:
            kwargs["database"] = self.database
        return firestore.Client(**kwargs)

    @property
    def _root(self):
        return self.client.collection(self.collection).document("daily_stats")

    def record(self, job: "Job") -> bool:
        from google.api_core.exceptions import Aborted, ServiceUnavailable
        from google.cloud import firestore

        day, inc = increments(job)
        marker = self._root.collection("counted").document(job.job_id)
        day_ref = self._root.collection("days").document(day)

        @firestore.transactional
        def run(tx):
            if marker.get(transaction=tx).exists:
                return False
            expire = (job.completed_at or job.updated_at) + timedelta(days=self.ttl_days)
            tx.create(marker, {"day": day, "counted_at": firestore.SERVER_TIMESTAMP, "expire_at": expire})
            tx.set(day_ref, {"date": day, **{k: firestore.Increment(v) for k, v in inc.items()}}, merge=True)
            return True

        try:
            return run(self.client.transaction(max_attempts=10))
        except (Aborted, ServiceUnavailable) as exc:
            raise StoreUnavailable(f"analytics store busy, try again ({exc.message})") from None
        except ValueError as exc:
            if isinstance(exc.__cause__, (Aborted, ServiceUnavailable)):
                raise StoreUnavailable(f"analytics store busy, try again ({exc})") from None
            raise

    def days(self, first: str, last: str) -> list[dict]:
        from google.cloud.firestore_v1.base_query import FieldFilter

        q = (self._root.collection("days").where(filter=FieldFilter("date", ">=", first))
             .where(filter=FieldFilter("date", "<=", last)).order_by("date"))
        return [stats_doc(s.id, s.to_dict()) for s in q.stream()]
