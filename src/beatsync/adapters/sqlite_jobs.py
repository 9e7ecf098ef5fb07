"""JobStore on SQLite (the embedded default): one file, WAL, a transaction per change."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta

from ..jobs.model import (Job, Quota, caller_of, check_quota, now, stored, transitioned, users_range,
                          with_cancel_requested, with_end_done, with_execution, with_metrics, with_progress)
from ..joblog import job_line
from . import _sqlite
from ..ports import JobNotFound, JobStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    idempotency_key TEXT,
    doc TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idem ON jobs(owner, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs(owner, created_at);
CREATE INDEX IF NOT EXISTS jobs_owner_status ON jobs(owner, status);
CREATE TABLE IF NOT EXISTS job_logs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    time TEXT NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_logs_job ON job_logs(job_id, seq);
"""


class SqliteJobStore(JobStore):
    def __init__(self, path: str | os.PathLike):
        self.path = _sqlite.create(path, SCHEMA)

    def _tx(self):
        return _sqlite.transaction(self.path, busy="job store busy, try again")

    @staticmethod
    def _load(row) -> Job:
        return Job.model_validate_json(row[0])

    def _get(self, db, job_id: str) -> Job:
        row = db.execute("SELECT doc FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(f"no job {job_id}")
        return self._load(row)

    def _put(self, db, job: Job) -> None:
        db.execute("UPDATE jobs SET status = ?, doc = ? WHERE job_id = ?",
                   (job.status, json.dumps(stored(job)), job.job_id))

    @staticmethod
    def _scope(owner: str, with_users: bool) -> tuple[str, list]:
        """The SQL condition (and its arguments) of an owner's jobs, with its end users' if asked."""
        if not with_users:
            return "owner = ?", [owner]
        low, high = users_range(owner)
        return "(owner = ? OR (owner >= ? AND owner < ?))", [owner, low, high]

    def _check_quota(self, db, owner: str, quota: Quota, at: datetime) -> None:
        """Count in the write transaction (BEGIN IMMEDIATE: writers are serialized): no create
        between the counts and the insert."""
        since = (at - timedelta(seconds=60)).isoformat()
        for scope, who, users, per_minute in (("owner", owner, False, quota.per_minute),
                                              ("caller", caller_of(owner), True, quota.caller_per_minute)):
            where, args = self._scope(who, users)
            active = db.execute(f"SELECT COUNT(*) FROM jobs WHERE {where} AND status IN ('queued', 'processing')",
                                args).fetchone()[0]
            recent = [datetime.fromisoformat(r[0]) for r in db.execute(
                f"SELECT created_at FROM jobs WHERE {where} AND created_at > ? ORDER BY created_at DESC LIMIT ?",
                [*args, since, int(per_minute)])]
            check_quota(quota, scope, active, recent, at)

    def create(self, job: Job, quota: Quota | None = None) -> tuple[Job, bool]:
        with self._tx() as db:
            if job.idempotency_key is not None:
                row = db.execute("SELECT doc FROM jobs WHERE owner = ? AND idempotency_key = ?",
                                 (job.owner, job.idempotency_key)).fetchone()
                if row is not None:
                    return self._load(row), False
            if quota is not None:
                self._check_quota(db, job.owner, quota, job.created_at)
            db.execute(
                "INSERT INTO jobs (job_id, owner, type, status, created_at, idempotency_key, doc) VALUES (?,?,?,?,?,?,?)",
                (job.job_id, job.owner, job.type, job.status, job.created_at.isoformat(), job.idempotency_key,
                 json.dumps(stored(job))),
            )
        return job, True

    def find_idempotent(self, owner: str, idempotency_key: str) -> Job | None:
        with self._tx() as db:
            row = db.execute("SELECT doc FROM jobs WHERE owner = ? AND idempotency_key = ?",
                             (owner, idempotency_key)).fetchone()
        return self._load(row) if row is not None else None

    def get(self, job_id: str) -> Job:
        with self._tx() as db:
            return self._get(db, job_id)

    def _change(self, job_id: str, change) -> Job:
        with self._tx() as db:
            job = self._get(db, job_id)
            new = change(job)
            if new is not job:
                self._put(db, new)
            return new

    def transition(self, job_id, to, *, result=None, error=None, step=None) -> Job:
        return self._change(job_id, lambda job: transitioned(job, to, result=result, error=error, step=step))

    def report(self, job_id, progress, step) -> Job:
        return self._change(job_id, lambda job: with_progress(job, progress, step))

    def request_cancel(self, job_id) -> Job:
        return self._change(job_id, with_cancel_requested)

    def list(self, owner, *, status=None, type=None, limit=20, offset=0, with_users=False) -> tuple[list[Job], int]:
        scope, scope_args = self._scope(owner, with_users)
        where, args = [scope], list(scope_args)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if type is not None:
            where.append("type = ?")
            args.append(type)
        clause = " AND ".join(where)
        with self._tx() as db:
            total = db.execute(f"SELECT COUNT(*) FROM jobs WHERE {clause}", args).fetchone()[0]
            rows = db.execute(f"SELECT doc FROM jobs WHERE {clause} ORDER BY created_at DESC, job_id LIMIT ? OFFSET ?",
                              [*args, int(limit), int(offset)]).fetchall()
        return [self._load(r) for r in rows], total

    def active(self, limit=500) -> list[Job]:
        with self._tx() as db:
            rows = db.execute("SELECT doc FROM jobs WHERE status IN ('queued', 'processing') "
                              "ORDER BY created_at, job_id LIMIT ?", (int(limit),)).fetchall()
        return [self._load(r) for r in rows]

    def pending_ends(self, limit=500) -> list[Job]:
        with self._tx() as db:
            rows = db.execute("SELECT doc FROM jobs WHERE status IN ('completed', 'failed', 'cancelled') "
                              "AND json_extract(doc, '$.end_pending') = 1 ORDER BY created_at, job_id LIMIT ?",
                              (int(limit),)).fetchall()
        return [self._load(r) for r in rows]

    def end_done(self, job_id) -> Job:
        return self._change(job_id, with_end_done)

    def set_execution(self, job_id, execution) -> Job:
        return self._change(job_id, lambda job: with_execution(job, execution))

    def record_metrics(self, job_id, metrics) -> Job:
        return self._change(job_id, lambda job: with_metrics(job, metrics))

    def add_log(self, job_id, message, level="info") -> None:
        job_line(job_id, message, level)
        with self._tx() as db:
            db.execute("INSERT INTO job_logs (job_id, time, level, message) VALUES (?,?,?,?)",
                       (job_id, now().isoformat(), level, message))

    def logs(self, job_id) -> list[dict]:
        with self._tx() as db:
            rows = db.execute("SELECT time, level, message FROM job_logs WHERE job_id = ? ORDER BY seq",
                              (job_id,)).fetchall()
        return [{"time": t, "level": lv, "message": m} for t, lv, m in rows]
