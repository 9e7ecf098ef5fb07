"""JobStore on Firestore: one document per job, every change in a transaction; logs in a
subcollection. The client is built on first use, never at import."""

from __future__ import annotations

import functools
import threading
import time
import weakref
from datetime import timedelta

from ..jobs.model import (Job, Quota, caller_of, check_quota, now, stored, transitioned, user_of,
                          with_cancel_requested, with_end_done, with_execution, with_metrics, with_progress)
from ..errors import StoreUnavailable
from ..joblog import job_line
from ..ports import JobNotFound, JobStore

#: Firestore retries a contended transaction this many times before giving up
MAX_ATTEMPTS = 10
#: then the store tries again after a random pause (growing, at most 0.5 s), so that a burst of
#: transactions on one document (a caller's quota) spreads out instead of aborting one another in
#: lockstep; within this many seconds in all, then StoreUnavailable ("busy": the caller retries)
CONTENTION_SECONDS = 5.0




class _Gate:
    """A lock that a weak dictionary can hold (``threading.Lock`` takes no weak reference)."""

    __slots__ = ("lock", "__weakref__")

    def __init__(self):
        self.lock = threading.Lock()


class _CallerGates:
    """One lock per caller with creates in flight in this process (gone with its last holder).

    A caller's creates all write its quota documents; Firestore settles concurrent transactions on
    one document by aborting them, and a burst of 50 from one process could abort one another until
    every one gave up (CI saw 50 of 50 refused busy on the emulator). Queued here instead, they run
    one after another; bursts from several instances still meet in Firestore and are retried. Other
    callers never wait on this lock."""

    def __init__(self):
        self._gates: weakref.WeakValueDictionary[str, _Gate] = weakref.WeakValueDictionary()
        self._guard = threading.Lock()

    def get(self, caller: str) -> _Gate:
        with self._guard:
            gate = self._gates.get(caller)
            if gate is None:
                gate = self._gates[caller] = _Gate()
            return gate


#: a quota document outlives its scope's last create by this much (longer than any job's time budget)
QUOTA_TTL = timedelta(days=2)

#: fields a job document carries beside the job's own (for queries and the TTL policy)
_EXTRA = ("created_at_ts", "expire_at", "caller")


class FirestoreJobStore(JobStore):
    """Quotas: a create with a :class:`~beatsync.jobs.model.Quota` reads and writes, in its
    transaction, one quota document per scope (``{collection}_quotas/owner:OWNER`` and
    ``.../caller:CALLER``): the ids of the scope's jobs created under a quota and not known to have
    ended, and its submission times of the last minute. Every create of a scope writes the same
    documents, so concurrent creates conflict and Firestore serializes them (retried, then
    ``StoreUnavailable``): none sees a stale count. The ids are re-read (ended jobs dropped) only when a
    scope is at its limit, so a document holds at most a limit's worth of ids and times; Firestore
    deletes a document ``QUOTA_TTL`` after its scope's last create (its ``expire_at``)."""

    #: IAM permissions of each operation (``project``: Firestore has no per-collection IAM).
    #: Transactions read then write; logs are a subcollection; counts are aggregation queries.
    PERMISSIONS = {
        "create": (("datastore.entities.create", "project"), ("datastore.entities.get", "project"),
                   ("datastore.entities.update", "project")),
        "get": (("datastore.entities.get", "project"),),
        "find_idempotent": (("datastore.entities.get", "project"),),
        "transition": (("datastore.entities.get", "project"), ("datastore.entities.update", "project")),
        "report": (("datastore.entities.get", "project"), ("datastore.entities.update", "project")),
        "request_cancel": (("datastore.entities.get", "project"), ("datastore.entities.update", "project")),
        "set_execution": (("datastore.entities.get", "project"), ("datastore.entities.update", "project")),
        "record_metrics": (("datastore.entities.get", "project"), ("datastore.entities.update", "project")),
        "list": (("datastore.entities.list", "project"),),
        "active": (("datastore.entities.list", "project"),),
        "pending_ends": (("datastore.entities.list", "project"),),
        "end_done": (("datastore.entities.get", "project"), ("datastore.entities.update", "project")),
        "add_log": (("datastore.entities.create", "project"),),
        "logs": (("datastore.entities.list", "project"),),
    }

    def __init__(self, *, project: str | None = None, collection: str = "beatsync_jobs", database: str | None = None,
                 ttl_days: int = 90):
        """``ttl_days``: each document carries ``expire_at`` = creation + ttl_days, the field of the
        collection's TTL policy (terraform/firestore.tf), so old jobs are deleted by Firestore."""
        self.project, self.collection_name, self.database, self.ttl_days = project, collection, database, ttl_days
        self._gates = _CallerGates()

    @functools.cached_property
    def client(self):
        from google.cloud import firestore

        kwargs = {"project": self.project}
        if self.database:
            kwargs["database"] = self.database
        return firestore.Client(**kwargs)

    @property
    def jobs(self):
        return self.client.collection(self.collection_name)

    def _to_doc(self, job: Job) -> dict:
        doc = stored(job)
        doc["created_at_ts"] = job.created_at  # a native timestamp for ordering
        doc["expire_at"] = job.created_at + timedelta(days=self.ttl_days)  # the TTL policy's field
        doc["caller"] = caller_of(job.owner)  # a caller's list of its own and its end users' jobs
        return doc

    @staticmethod
    def _from_doc(data: dict) -> Job:
        data = {k: v for k, v in data.items() if k not in _EXTRA}
        return Job.model_validate(data)

    def _update(self, job_id: str, change) -> Job:
        """Read, change and write one job in a transaction (retried by Firestore on contention)."""
        from google.cloud import firestore

        ref = self.jobs.document(job_id)

        @firestore.transactional
        def run(tx):
            snap = ref.get(transaction=tx)
            if not snap.exists:
                raise JobNotFound(f"no job {job_id}")
            job = self._from_doc(snap.to_dict())
            new = change(job)
            if new is not job:
                tx.set(ref, self._to_doc(new))
            return new

        return self._run(run)

    def _run(self, fn):
        import random

        from google.api_core.exceptions import Aborted, ServiceUnavailable

        deadline = time.monotonic() + CONTENTION_SECONDS
        for round_ in range(1000):
            try:
                return fn(self.client.transaction(max_attempts=MAX_ATTEMPTS))
            except (Aborted, ServiceUnavailable) as exc:
                busy = f"job store busy, try again ({exc.message})"
            except ValueError as exc:
                # the client reports "Failed to commit transaction in N attempts" as a ValueError
                # caused by the last Aborted; other ValueErrors (bad job data) propagate
                if not isinstance(exc.__cause__, (Aborted, ServiceUnavailable)):
                    raise
                busy = f"job store busy, try again ({exc})"
            pause = random.uniform(0.0, min(0.5, 0.02 * 2 ** round_))
            if time.monotonic() + pause > deadline:
                raise StoreUnavailable(busy) from None
            time.sleep(pause)
        raise StoreUnavailable("job store busy, try again")

    def find_idempotent(self, owner: str, idempotency_key: str) -> Job | None:
        key_ref = self.client.collection(self.collection_name + "_idempotency").document(
            f"{owner}:{idempotency_key}".replace("/", "%2F"))

        def run(_tx):  # two reads; no transaction needed (a key document is never changed)
            snap = key_ref.get()
            if not snap.exists:
                return None
            doc = self.jobs.document(snap.to_dict()["job_id"]).get()
            return self._from_doc(doc.to_dict()) if doc.exists else None

        return self._run(run)

    def _quota_ref(self, scope: str, who: str):
        return self.client.collection(self.collection_name + "_quotas").document(
            f"{scope}:{who}".replace("/", "%2F"))

    def _still_active(self, tx, ids: list[str]) -> list[str]:
        """Those of ``ids`` whose jobs are queued or processing (read in the transaction)."""
        snaps = self.client.get_all([self.jobs.document(i) for i in ids], transaction=tx)
        return [s.id for s in snaps if s.exists and s.to_dict().get("status") in ("queued", "processing")]

    def _charge(self, tx, job: Job, quota: Quota) -> list[tuple]:
        """Check the quota scopes of ``job`` (reads only) and return the writes that count it."""
        at = job.created_at
        writes = []
        for scope, who, limit in (("owner", job.owner, quota.active),
                                  ("caller", caller_of(job.owner), quota.caller_active)):
            ref = self._quota_ref(scope, who)
            snap = ref.get(transaction=tx)
            data = snap.to_dict() if snap.exists else {}
            active = list(data.get("active") or [])
            recent = [t for t in data.get("recent") or [] if (at - t).total_seconds() < 60]
            if len(active) >= limit:
                active = self._still_active(tx, active)
            check_quota(quota, scope, len(active), recent, at)
            writes.append((ref, {"active": active + [job.job_id], "recent": recent + [at],
                                 "expire_at": at + QUOTA_TTL}))  # the TTL policy's field (firestore.tf)
        return writes

    def create(self, job: Job, quota: Quota | None = None) -> tuple[Job, bool]:
        from google.cloud import firestore

        if job.idempotency_key is None and quota is None:
            self.jobs.document(job.job_id).create(self._to_doc(job))
            return job, True
        # the key document makes "same owner, same key" unique, atomically with the job
        key_ref = None if job.idempotency_key is None else self.client.collection(
            self.collection_name + "_idempotency").document(f"{job.owner}:{job.idempotency_key}".replace("/", "%2F"))

        @firestore.transactional
        def run(tx):
            if key_ref is not None:
                snap = key_ref.get(transaction=tx)
                if snap.exists:
                    existing = self.jobs.document(snap.to_dict()["job_id"]).get(transaction=tx)
                    return self._from_doc(existing.to_dict()), False
            writes = self._charge(tx, job, quota) if quota is not None else []
            if key_ref is not None:
                tx.create(key_ref, {"job_id": job.job_id})
            tx.create(self.jobs.document(job.job_id), self._to_doc(job))
            for ref, data in writes:
                tx.set(ref, data)
            return job, True

        if quota is None:
            return self._run(run)
        gate = self._gates.get(caller_of(job.owner))  # held by this reference until the create returns
        if not gate.lock.acquire(timeout=CONTENTION_SECONDS):
            raise StoreUnavailable("job store busy, try again (this caller's creates are queued)")
        try:
            return self._run(run)
        finally:
            gate.lock.release()

    def get(self, job_id: str) -> Job:
        snap = self.jobs.document(job_id).get()
        if not snap.exists:
            raise JobNotFound(f"no job {job_id}")
        return self._from_doc(snap.to_dict())

    def transition(self, job_id, to, *, result=None, error=None, step=None) -> Job:
        return self._update(job_id, lambda job: transitioned(job, to, result=result, error=error, step=step))

    def report(self, job_id, progress, step) -> Job:
        return self._update(job_id, lambda job: with_progress(job, progress, step))

    def request_cancel(self, job_id) -> Job:
        return self._update(job_id, with_cancel_requested)

    def list(self, owner, *, status=None, type=None, limit=20, offset=0, with_users=False) -> tuple[list[Job], int]:
        from google.cloud.firestore_v1.base_query import FieldFilter, Or

        if with_users and user_of(owner) is None:
            # the owner's end users' jobs carry caller == owner, as do its own (but for documents stored
            # before the field: those are found by their owner)
            q = self.jobs.where(filter=Or([FieldFilter("owner", "==", owner), FieldFilter("caller", "==", owner)]))
        else:
            q = self.jobs.where(filter=FieldFilter("owner", "==", owner))
        if status is not None:
            q = q.where(filter=FieldFilter("status", "==", status))
        if type is not None:
            q = q.where(filter=FieldFilter("type", "==", type))
        total = int(q.count().get()[0][0].value)
        page = q.order_by("created_at_ts", direction="DESCENDING").order_by("job_id").offset(int(offset)).limit(int(limit))
        return [self._from_doc(s.to_dict()) for s in page.stream()], total

    def active(self, limit=500) -> list[Job]:
        from google.cloud.firestore_v1.base_query import FieldFilter

        q = (self.jobs.where(filter=FieldFilter("status", "in", ["queued", "processing"]))
             .order_by("created_at_ts").order_by("job_id").limit(int(limit)))
        return [self._from_doc(s.to_dict()) for s in q.stream()]

    def pending_ends(self, limit=500) -> list[Job]:
        from google.cloud.firestore_v1.base_query import FieldFilter

        q = self.jobs.where(filter=FieldFilter("end_pending", "==", True)).limit(int(limit))
        return [self._from_doc(s.to_dict()) for s in q.stream()]

    def end_done(self, job_id) -> Job:
        return self._update(job_id, with_end_done)

    def set_execution(self, job_id, execution) -> Job:
        return self._update(job_id, lambda job: with_execution(job, execution))

    def record_metrics(self, job_id, metrics) -> Job:
        return self._update(job_id, lambda job: with_metrics(job, metrics))

    def add_log(self, job_id, message, level="info") -> None:
        job_line(job_id, message, level)
        t = now()
        self.jobs.document(job_id).collection("logs").add({"time": t.isoformat(), "seq": time.time_ns(),
                                                           "level": level, "message": message})

    def logs(self, job_id) -> list[dict]:
        snaps = self.jobs.document(job_id).collection("logs").order_by("seq").stream()
        return [{k: s.to_dict()[k] for k in ("time", "level", "message")} for s in snaps]
