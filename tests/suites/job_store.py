"""The JobStore interface suite: every adapter's test module imports these tests and
provides a ``store`` fixture (tests/unit: SQLite; tests/integration: the Firestore emulator)."""

from __future__ import annotations

import threading

import pytest

from beatsync.errors import StoreUnavailable
from beatsync.jobs import IllegalTransition, new_job
from beatsync.jobs.model import Quota
from beatsync.ports import JobNotFound


def test_create_get_and_idempotency(store):
    job, created = store.create(new_job("create", {"a": 1}, owner="alice", idempotency_key="k1"))
    assert created and store.get(job.job_id) == job
    again, created = store.create(new_job("create", {"a": 2}, owner="alice", idempotency_key="k1"))
    assert not created and again.job_id == job.job_id and again.request == {"a": 1}
    other, created = store.create(new_job("create", {"a": 1}, owner="bob", idempotency_key="k1"))
    assert created and other.job_id != job.job_id  # keys are per caller
    assert store.find_idempotent("alice", "k1").job_id == job.job_id
    assert store.find_idempotent("bob", "k1").job_id == other.job_id
    assert store.find_idempotent("carol", "k1") is None and store.find_idempotent("alice", "k2") is None
    with pytest.raises(JobNotFound):
        store.get("0" * 32)


def test_legal_transitions_only(store):
    job, _ = store.create(new_job("create", {}, owner="a"))
    with pytest.raises(IllegalTransition):
        store.transition(job.job_id, "completed")
    job = store.transition(job.job_id, "processing", step="analyze")
    assert job.status == "processing" and job.started_at is not None and job.attempts == 1
    job = store.transition(job.job_id, "completed", result={"output_url": "x"})
    assert job.progress == 100 and job.completed_at is not None and job.result == {"output_url": "x"}
    for to in ("processing", "failed", "cancelled", "queued"):
        with pytest.raises(IllegalTransition):
            store.transition(job.job_id, to)
    assert store.get(job.job_id).status == "completed"


def test_late_writes_never_resurrect_a_cancelled_job(store):
    job, _ = store.create(new_job("create", {}, owner="a"))
    store.transition(job.job_id, "processing")
    assert store.request_cancel(job.job_id).cancel_requested
    store.transition(job.job_id, "cancelled")
    after = store.report(job.job_id, 80, "render")
    assert after.status == "cancelled" and after.current_step == "cancelled"
    with pytest.raises(IllegalTransition):
        store.transition(job.job_id, "completed")


def test_failure_records_error(store):
    job, _ = store.create(new_job("analyze", {}, owner="a"))
    job = store.transition(job.job_id, "failed", error={"code": "unsupported_media", "message": "not audio"})
    assert job.error.code == "unsupported_media"
    with pytest.raises(ValueError):
        j2, _ = store.create(new_job("analyze", {}, owner="a"))
        store.transition(j2.job_id, "failed", error={"code": "Bad Code", "message": "x"})


def test_list_filters_and_pages(store):
    ids = []
    for i in range(7):
        job, _ = store.create(new_job("create" if i % 2 else "analyze", {"i": i}, owner="a"))
        ids.append(job.job_id)
    store.create(new_job("create", {}, owner="b"))
    store.transition(ids[0], "processing")
    page, total = store.list("a", limit=3, offset=0)
    assert total == 7 and len(page) == 3
    rest, _ = store.list("a", limit=10, offset=3)
    assert {j.job_id for j in page} | {j.job_id for j in rest} == set(ids)
    assert store.list("a", type="create")[1] == 3
    assert [j.job_id for j in store.list("a", status="processing")[0]] == [ids[0]]
    assert store.list("nobody")[1] == 0


def test_logs_in_order(store):
    job, _ = store.create(new_job("create", {}, owner="a"))
    for i in range(5):
        store.add_log(job.job_id, f"step {i}", level="warning" if i == 3 else "info")
    logs = store.logs(job.job_id)
    assert [l["message"] for l in logs] == [f"step {i}" for i in range(5)] and logs[3]["level"] == "warning"


def test_concurrent_transitions_have_one_winner(store):
    job, _ = store.create(new_job("create", {}, owner="a"))
    store.transition(job.job_id, "processing")
    outcomes = []

    def finish(to):
        try:
            store.transition(job.job_id, to)
            outcomes.append(to)
        except IllegalTransition:
            outcomes.append("refused")
        except StoreUnavailable:  # contention beyond the store's retries: the caller retries later
            outcomes.append("busy")

    threads = [threading.Thread(target=finish, args=(to,)) for to in ("completed", "cancelled", "failed") * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == len(threads), "every attempt ends in a known outcome"
    winners = [o for o in outcomes if o not in ("refused", "busy")]
    assert len(winners) == 1 and store.get(job.job_id).status == winners[0]


def test_active_lists_unfinished_work_of_every_owner_oldest_first(store):
    before = {j.job_id for j in store.active()}
    a, _ = store.create(new_job("create", {"n": 1}, owner="active-a"))
    b, _ = store.create(new_job("analyze", {"n": 2}, owner="active-b"))
    c, _ = store.create(new_job("create", {"n": 3}, owner="active-a"))
    store.transition(b.job_id, "processing")
    store.transition(c.job_id, "cancelled")
    ids = [j.job_id for j in store.active() if j.job_id not in before]
    assert ids == [a.job_id, b.job_id]


def test_execution_handle_is_stored(store):
    job, _ = store.create(new_job("create", {}, owner="x"))
    assert store.set_execution(job.job_id, "projects/p/locations/l/workflows/w/executions/e1").execution.endswith("e1")
    assert store.get(job.job_id).execution.endswith("/e1")


def test_metrics_merge_and_survive_the_end(store):
    job, _ = store.create(new_job("create", {}, owner="a"))
    assert job.metrics.download_time_ms is None
    store.record_metrics(job.job_id, {"download_time_ms": 120, "bytes_in": 5000})
    store.transition(job.job_id, "processing")
    store.record_metrics(job.job_id, {"analysis_time_ms": 30, "beat_map_cached": True, "bytes_in": None})
    store.transition(job.job_id, "completed", result={"x": 1})
    done = store.record_metrics(job.job_id, {"processing_time_ms": 900})
    m = store.get(job.job_id).metrics
    assert done.metrics == m
    assert (m.download_time_ms, m.bytes_in, m.analysis_time_ms, m.beat_map_cached, m.processing_time_ms) == (
        120, 5000, 30, True, 900)
    with pytest.raises(ValueError):
        store.record_metrics(job.job_id, {"bytes_out": -1})


def test_an_end_is_pending_until_its_follow_up_is_done(store):
    before = {j.job_id for j in store.pending_ends()}
    a, _ = store.create(new_job("create", {}, owner="ends"))
    b, _ = store.create(new_job("create", {}, owner="ends"))
    assert not a.end_pending and not store.transition(a.job_id, "processing").end_pending
    assert store.transition(a.job_id, "failed", error={"code": "x", "message": "m"}).end_pending  # in the same write
    store.transition(b.job_id, "processing")
    assert [j.job_id for j in store.pending_ends() if j.job_id not in before] == [a.job_id]  # not b: still running
    assert store.end_done(a.job_id).end_pending is False and store.get(a.job_id).end_pending is False
    assert a.job_id not in {j.job_id for j in store.pending_ends()}
    assert store.end_done(a.job_id).status == "failed"  # again: a no-op


# -- quotas: checked in the transaction that stores the job ---------------------------------------

def _try_create(store, owner, quota, outcomes):
    from beatsync.errors import RateLimited

    try:
        store.create(new_job("create", {}, owner=owner), quota)
        outcomes.append("created")
    except RateLimited as exc:
        outcomes.append(exc.details["scope"])
    except StoreUnavailable:  # contention beyond the store's retries: the caller retries later
        outcomes.append("busy")


def test_concurrent_creates_never_exceed_the_quota(store):
    """Finding 7 of issue 21 (50 concurrent creates by one key: 15 accepted against a limit of 10):
    the count and the insert are one transaction, so no interleaving lets an eleventh job in."""
    quota = Quota(active=10, per_minute=1000, caller_active=1000, caller_per_minute=1000)
    outcomes: list[str] = []
    threads = [threading.Thread(target=_try_create, args=(store, "key-burst", quota, outcomes)) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == 50 and set(outcomes) <= {"created", "owner", "busy"}, outcomes
    assert 1 <= outcomes.count("created") <= 10, outcomes
    assert store.list("key-burst")[1] == outcomes.count("created")
    for _ in range(12):  # one at a time now: the store fills the quota exactly, and no further
        _try_create(store, "key-burst", quota, outcomes)
    assert store.list("key-burst")[1] == 10 and outcomes[-1] == "owner"


def test_end_users_share_their_callers_quota(store):
    """Finding 5 of issue 21: 14 end users of one trusted caller, each under its own limit, together
    reach the caller's; a job that ends frees a place."""
    quota = Quota(active=10, per_minute=1000, caller_active=12, caller_per_minute=1000)
    outcomes: list[str] = []
    for i in range(14):
        _try_create(store, f"key-app/user:u{i}", quota, outcomes)
    assert outcomes == ["created"] * 12 + ["caller"] * 2
    _try_create(store, "key-app", quota, outcomes)  # the caller's own jobs count in its total too
    _try_create(store, "key-other/user:u0", quota, outcomes)  # another caller's users do not
    assert outcomes[-2:] == ["caller", "created"]
    first = store.list("key-app/user:u0")[0][0]
    store.transition(first.job_id, "cancelled")
    _try_create(store, "key-app/user:u13", quota, outcomes)
    assert outcomes[-1] == "created"


def test_submissions_per_minute_per_owner_and_per_caller(store):
    quota = Quota(active=1000, per_minute=3, caller_active=1000, caller_per_minute=5)
    outcomes: list[str] = []
    for _ in range(4):
        _try_create(store, "key-rate/user:a", quota, outcomes)
    for _ in range(3):
        _try_create(store, "key-rate/user:b", quota, outcomes)
    assert outcomes == ["created"] * 3 + ["owner"] + ["created"] * 2 + ["caller"]


def test_a_callers_list_holds_its_end_users_jobs(store):
    own, _ = store.create(new_job("create", {}, owner="key-lister"))
    u1, _ = store.create(new_job("create", {}, owner="key-lister/user:u1"))
    u2, _ = store.create(new_job("analyze", {}, owner="key-lister/user:u2"))
    for stranger in ("key-lister2", "key-lister2/user:u1", "key-liste", "key-listerX/user:u1"):
        store.create(new_job("create", {}, owner=stranger))
    page, total = store.list("key-lister", with_users=True)
    assert total == 3 and {j.job_id for j in page} == {own.job_id, u1.job_id, u2.job_id}
    assert [j.job_id for j in store.list("key-lister")[0]] == [own.job_id]
    assert [j.job_id for j in store.list("key-lister", with_users=True, type="analyze")[0]] == [u2.job_id]
    assert [j.job_id for j in store.list("key-lister/user:u1", with_users=True)[0]] == [u1.job_id]
