"""Ports: the small interfaces the core talks to. Adapters live in :mod:`beatsync.adapters`."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

from .errors import BlobNotFound, JobNotFound  # noqa: F401 - re-export

if TYPE_CHECKING:
    from .jobs.model import Job, Quota


class BlobStore(abc.ABC):
    """Bytes by key (``outputs/{job_id}/output.mp4``, ``cache/beat_maps/...``).

    Keys are relative, ``/``-separated, without ``..``. Writes are atomic: a reader sees
    either the old object or the new one, never a partial one.
    """

    @abc.abstractmethod
    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None: ...

    @abc.abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """Return the object's bytes or raise :class:`BlobNotFound`."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Delete the object; deleting a missing object is not an error."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Keys starting with ``prefix``, sorted."""

    @abc.abstractmethod
    def put_file(self, key: str, path: str, content_type: str = "application/octet-stream") -> None:
        """Upload a local file (streamed, atomic like :meth:`put_bytes`)."""

    @abc.abstractmethod
    def get_file(self, key: str, path: str) -> None:
        """Download the object into a local file (streamed) or raise :class:`BlobNotFound`."""

    @abc.abstractmethod
    def size(self, key: str) -> int:
        """The object's size in bytes, or raise :class:`BlobNotFound`."""

    @abc.abstractmethod
    def signed_url(self, key: str, expires_in: int) -> str:
        """A URL anyone holding it can GET the object with, for ``expires_in`` seconds."""

    @staticmethod
    def check_key(key: str) -> str:
        if not key or key.startswith("/") or "\\" in key or any(p in ("", ".", "..") for p in key.split("/")):
            raise ValueError(f"invalid blob key {key!r}")
        return key


class JobStore(abc.ABC):
    """Jobs by id. Every status change is a transaction that checks the legal transitions
    (:data:`beatsync.jobs.model.LEGAL`); progress written after a job ended is ignored, so a late
    write never resurrects a cancelled job."""

    @abc.abstractmethod
    def create(self, job: "Job", quota: "Quota | None" = None) -> tuple["Job", bool]:
        """Store a new job. With an idempotency key already used by the same owner, store
        nothing and return ``(existing job, False)``; else ``(job, True)``. With a ``quota``, the
        owner's and its caller's limits (:class:`~beatsync.jobs.model.Quota`) are checked in the
        same transaction as the insert: concurrent creates never exceed them (``RateLimited``)."""

    @abc.abstractmethod
    def find_idempotent(self, owner: str, idempotency_key: str) -> "Job | None":
        """The owner's job created with this idempotency key, if any (answered before quotas)."""

    @abc.abstractmethod
    def get(self, job_id: str) -> "Job":
        """The job, or raise :class:`JobNotFound`."""

    @abc.abstractmethod
    def transition(self, job_id: str, to: str, *, result: dict | None = None, error: dict | None = None,
                   step: str | None = None) -> "Job":
        """Change the status (raise ``IllegalTransition`` if not allowed) and return the job."""

    @abc.abstractmethod
    def report(self, job_id: str, progress: float, step: str) -> "Job":
        """Record progress of a queued or processing job; a no-op on an ended job."""

    @abc.abstractmethod
    def request_cancel(self, job_id: str) -> "Job":
        """Set the cancel flag that running steps poll."""

    @abc.abstractmethod
    def list(self, owner: str, *, status: str | None = None, type: str | None = None, limit: int = 20,
             offset: int = 0, with_users: bool = False) -> tuple[list["Job"], int]:
        """A page of the owner's jobs, newest first, and the total that match; ``with_users``: the
        jobs of the owner's end users (``OWNER/user:*``) too."""

    @abc.abstractmethod
    def active(self, limit: int = 500) -> list["Job"]:
        """Queued and processing jobs of every owner, oldest first (the work still to do)."""

    @abc.abstractmethod
    def pending_ends(self, limit: int = 500) -> list["Job"]:
        """Ended jobs whose end's follow-up is not known to be done (``end_pending``), any owner."""

    @abc.abstractmethod
    def end_done(self, job_id: str) -> "Job":
        """Clear the job's ``end_pending`` flag."""

    @abc.abstractmethod
    def set_execution(self, job_id: str, execution: str) -> "Job":
        """Remember the orchestrator's handle (a Workflows execution name) on the job."""

    @abc.abstractmethod
    def record_metrics(self, job_id: str, metrics: dict) -> "Job":
        """Merge ``metrics`` (fields of ``JobMetrics``; None ignored) into the job's, in any status."""

    @abc.abstractmethod
    def add_log(self, job_id: str, message: str, level: str = "info") -> None:
        """Append to the job's log (and mirror the line to the process's structured log, labelled
        with the job id: :func:`beatsync.joblog.emit`)."""

    @abc.abstractmethod
    def logs(self, job_id: str) -> list[dict]:
        """``[{"time", "level", "message"}]`` in order."""


class Orchestrator(abc.ABC):
    """Carries a stored job through its steps (analyze, then compose for create jobs)."""

    @abc.abstractmethod
    def start(self, job: "Job") -> str | None:
        """Start running ``job``; return a handle to store on the job (or None)."""

    @abc.abstractmethod
    def cancel(self, job: "Job") -> None:
        """Stop running ``job`` (the steps also watch the job's cancel flag)."""


class Notifier(abc.ABC):
    """Delivers webhook events, signed, with retries, at least once."""

    @abc.abstractmethod
    def notify(self, url: str, event: dict) -> None:
        """Queue ``event`` for delivery to ``url`` (returns before delivery)."""


class ComposeRunner(abc.ABC):
    """Starts the compose step of one job as its own unit of compute (a Cloud Run job execution,
    or a local process), so that a render can outlive any one HTTP request and be stopped."""

    @abc.abstractmethod
    def start(self, job_id: str, tasks: int = 1) -> str:
        """Start composing ``job_id`` as ``tasks`` parallel tasks (each sees ``CLOUD_RUN_TASK_INDEX`` and
        ``CLOUD_RUN_TASK_COUNT``; a failed task is retried); return a handle for :meth:`state` and :meth:`stop`."""

    @abc.abstractmethod
    def state(self, handle: str) -> str:
        """``running``, ``exited`` (every task finished, crashed or stopped) or ``unknown``."""

    @abc.abstractmethod
    def stop(self, handle: str) -> None:
        """Stop the compute, every task of it (a no-op once it has exited)."""


class Analytics(abc.ABC):
    """Daily totals of ended jobs (the seed's ``beat_sync_analytics/daily_stats/{date}``). Each job
    is counted once: :meth:`record` is a transaction keyed on the job id, so a job ended twice, or a
    retried end, changes nothing the second time."""

    @abc.abstractmethod
    def record(self, job: "Job") -> bool:
        """Count an ended job on the UTC day it ended; False (and nothing changed) if counted before."""

    @abc.abstractmethod
    def days(self, first: str, last: str) -> list[dict]:
        """``DailyStats`` documents for the days ``first``..``last`` (``YYYY-MM-DD``, both included)
        that have counted jobs, in date order."""


class EventPublisher(abc.ABC):
    """Publishes messages to a topic (Pub/Sub): job events to a create request's ``callback_topic``,
    unprocessable intake messages to the dead-letter topic."""

    @abc.abstractmethod
    def publish(self, topic: str, data: bytes, attributes: dict[str, str], ordering_key: str = "") -> str:
        """Publish and wait (bounded) for the server's acknowledgement; return the message id.
        Raises on failure (the caller decides whether that is transient)."""
