from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import Field

from ..contracts._base import Model
from ..contracts.api import JobMetrics
from ..errors import IllegalTransition, RateLimited  # noqa: F401 - re-export

JobStatus = Literal["queued", "processing", "completed", "failed", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
#: the only status changes a store accepts
LEGAL: dict[str, frozenset[str]] = {
    "queued": frozenset({"processing", "failed", "cancelled"}),
    "processing": frozenset({"completed", "failed", "cancelled"}),
    "completed": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
}


class JobError(Model):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    message: str
    field: str | None = Field(None, pattern=r"^(audio_url|video_urls\.[0-9]+)$",
                              description="The request field of the input the error concerns (answers show it as "
                                          "details.field); null: none.")


class Job(Model):
    job_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    type: Literal["create", "analyze"]
    status: JobStatus = "queued"
    progress: float = Field(0.0, ge=0, le=100)
    current_step: str = "queued"
    owner: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    request: dict[str, Any]
    request_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    idempotency_key: str | None = Field(None, max_length=255)
    result: dict[str, Any] | None = None
    error: JobError | None = None
    cancel_requested: bool = False
    attempts: int = Field(0, ge=0)
    execution: str | None = None
    metrics: JobMetrics = Field(default_factory=JobMetrics)
    #: ended, but what follows an end (audit line, analytics, webhook, event, clean-up) is not known
    #: to be done: set with the terminal status in one write, cleared after (lifecycle.finish_end)
    end_pending: bool = False

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


#: the project's step names (Job.current_step, written by jobs/steps.py and render/) under the seed's
#: four (``downloading``, ``analyzing``, ``composing``, ``uploading``). Compose re-fetches its inputs
#: and reads the cached beat map: those are part of composing.
SEED_STEPS: dict[str, str] = {
    "starting": "downloading", "downloading": "downloading", "checking": "downloading",
    "analyzing": "analyzing",
    "analyzed": "composing", "composing": "composing", "preparing": "composing", "analyze": "composing",
    "probe": "composing", "motion": "composing", "render": "composing", "rendering": "composing",
    "merge": "composing", "merging": "composing", "done": "composing",
    "uploading": "uploading",
}


def seed_step(job: "Job") -> str:
    """``current_step`` as the seed names it: one of its four steps while processing (a step this
    table does not know is placed by progress), the status otherwise."""
    if job.status != "processing":
        return job.status
    step = SEED_STEPS.get(job.current_step)
    if step is None:
        p = job.progress
        step = "downloading" if p < 10 else "analyzing" if p < 25 else "composing" if p < 97 else "uploading"
    return step


def now() -> datetime:
    return datetime.now(timezone.utc)


# -- owners: a caller, or one of a trusted caller's end users ----------------------------------------

#: a trusted caller's end user owns jobs as ``CALLER/user:USER`` (:mod:`beatsync.http.auth`)
USER_SEPARATOR = "/user:"


def caller_of(owner: str) -> str:
    """The caller an owner belongs to: ``CALLER`` of ``CALLER/user:USER``, else the owner itself."""
    return owner.split(USER_SEPARATOR, 1)[0]


def user_of(owner: str) -> str | None:
    """The end user of ``CALLER/user:USER``; None for a caller speaking for itself."""
    _, sep, user = owner.partition(USER_SEPARATOR)
    return user if sep else None


def users_range(caller: str) -> tuple[str, str]:
    """``(low, high)``: the owners ``CALLER/user:*`` are exactly the strings ``low <= s < high``
    (a prefix range: the separator's last character, ``:``, incremented)."""
    prefix = caller + USER_SEPARATOR
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


@dataclass(frozen=True)
class Quota:
    """The limits a new job must fit, checked by :meth:`JobStore.create` in the transaction that
    stores it (concurrent creates never exceed them): unfinished jobs and submissions in the last
    minute of its owner, and of its owner's caller with all the caller's end users together."""

    active: int
    per_minute: int
    caller_active: int
    caller_per_minute: int



def check_quota(quota: Quota, scope: str, active: int, recent: list[datetime], at: datetime) -> None:
    """Raise :class:`RateLimited` if one more job would exceed a limit of ``scope`` (``owner`` or
    ``caller``) that has ``active`` unfinished jobs and submitted at ``recent`` (any order)."""
    limit_active, limit_minute = ((quota.active, quota.per_minute) if scope == "owner"
                                  else (quota.caller_active, quota.caller_per_minute))
    whose = "your" if scope == "owner" else "your service's (with all its end users)"
    if active >= limit_active:
        raise RateLimited(f"{active} of {whose} jobs are still running; the limit is {limit_active}",
                          code="too_many_active_jobs", details={"retry_after": 30, "limit": limit_active, "scope": scope})
    window = sorted(t for t in recent if (at - t).total_seconds() < 60)
    if len(window) >= limit_minute:
        age = (at - window[-limit_minute]).total_seconds()
        raise RateLimited(f"more than {limit_minute} submissions in a minute" +
                          ("" if scope == "owner" else " by your service and its end users together"),
                          details={"retry_after": max(1, int(60 - age) + 1), "limit": limit_minute, "scope": scope})


def request_hash(request: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def new_job(type: str, request: dict[str, Any], owner: str, idempotency_key: str | None = None) -> Job:
    t = now()
    return Job(job_id=uuid.uuid4().hex, type=type, owner=owner, created_at=t, updated_at=t, request=request,
               request_hash=request_hash(request), idempotency_key=idempotency_key)


def check_transition(job: Job, to: str) -> None:
    if to not in LEGAL[job.status]:
        raise IllegalTransition(f"job {job.job_id} is {job.status}; it cannot become {to}",
                                details={"from": job.status, "to": to})


# Pure state changes: every JobStore applies these inside its own transaction.

def transitioned(job: Job, to: str, *, result: dict | None = None, error: dict | None = None,
                 step: str | None = None) -> Job:
    """``job`` moved to status ``to`` (raises :class:`IllegalTransition`), timestamps set."""
    check_transition(job, to)
    t = now()
    update: dict[str, Any] = {"status": to, "updated_at": t, "current_step": step or to}
    if to == "processing":
        update.update(started_at=t, attempts=job.attempts + 1)
    if to in TERMINAL:
        update.update(completed_at=t, end_pending=True)
    if to == "completed":
        update["progress"] = 100.0
    if result is not None:
        update["result"] = result
    if error is not None:
        update["error"] = JobError(**error)
    return Job.model_validate(job.model_copy(update=update).model_dump())  # a bad result/error is refused


def with_progress(job: Job, progress: float, step: str) -> Job:
    """Progress recorded; an ended job is returned unchanged (a late write never resurrects it)."""
    if job.terminal:
        return job
    return job.model_copy(update={"progress": max(0.0, min(100.0, float(progress))), "current_step": step,
                                  "updated_at": now()})


def with_cancel_requested(job: Job) -> Job:
    if job.terminal or job.cancel_requested:
        return job
    return job.model_copy(update={"cancel_requested": True, "updated_at": now()})


def stored(job: Job) -> dict:
    """The job as a JobStore writes it (JSON types). ``end_pending`` is written only while true: a
    document without it reads as false, and code from before the field (a rollback, instances of
    the previous revision during a deploy) still reads every job that is not mid-end."""
    return job.model_dump(mode="json", exclude=None if job.end_pending else {"end_pending"})


def with_end_done(job: Job) -> Job:
    """What follows the job's end is done (no longer pending)."""
    return job.model_copy(update={"end_pending": False}) if job.end_pending else job


def with_execution(job: Job, execution: str) -> Job:
    return job.model_copy(update={"execution": execution, "updated_at": now()})


def with_metrics(job: Job, metrics: dict[str, Any]) -> Job:
    """``metrics`` (fields of :class:`JobMetrics`; None values ignored) merged into the job's; allowed
    on an ended job too (the processing time is known only at the end)."""
    merged = {**job.metrics.model_dump(), **{k: v for k, v in metrics.items() if v is not None}}
    return job.model_copy(update={"metrics": JobMetrics(**merged)})
