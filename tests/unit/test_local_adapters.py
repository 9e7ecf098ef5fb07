"""The local Orchestrator and Notifier: retries, give-up, durability across restarts."""

from __future__ import annotations

import time
import uuid

from beatsync.adapters.local_orchestrator import LocalOrchestrator
from beatsync.adapters.webhooks import LocalWebhookNotifier
from beatsync.errors import StoreUnavailable
from beatsync.fetch import Policy
from tests.servers import hostile_receiver, wait_for, webhook_receiver


class _Job:
    def __init__(self, job_id):
        self.job_id = job_id


def test_orchestrator_retries_transient_errors_then_gives_up():
    calls, gave_up = [], []

    def run(job_id):
        calls.append(job_id)
        if job_id == "flaky" and calls.count("flaky") < 3:
            raise StoreUnavailable("busy")
        if job_id == "down":
            raise StoreUnavailable("down")

    o = LocalOrchestrator(run, retries=3, backoff=0.01, on_give_up=lambda j, e: gave_up.append((j, e.code)),
                          transient=(StoreUnavailable,))
    o.start(_Job("flaky"))
    o.start(_Job("down"))
    wait_for(o.idle, timeout=10)
    assert calls.count("flaky") == 3 and calls.count("down") == 4
    assert gave_up == [("down", "store_unavailable")]


def test_resume_does_not_run_a_job_twice_at_once():
    started = []
    o = LocalOrchestrator(lambda j: (started.append(j), time.sleep(0.3)), workers=2)
    jobs = [_Job("a"), _Job("a"), _Job("b")]
    assert o.resume(jobs) == 2
    wait_for(o.idle, timeout=5)
    assert sorted(started) == ["a", "b"]


def _event():
    return {"id": uuid.uuid4().hex, "event": "beat_sync.job.completed", "job_id": "j", "status": "completed"}


def test_undeliverable_webhooks_end_dead_and_refused_hosts_are_never_contacted(tmp_path):
    n = LocalWebhookNotifier(tmp_path / "w.db", b"k", Policy(), max_attempts=2, base_delay=0.01, poll=0.01)
    n.notify("http://127.0.0.1:9/hook", _event())  # loopback, not allowlisted
    wait_for(lambda: n.deliveries()[0]["state"] == "dead", timeout=10)
    assert "non-public" in n.deliveries()[0]["last_error"]


def test_pending_webhooks_survive_a_restart(tmp_path):
    receiver = webhook_receiver()
    try:
        policy = Policy(allowed_hosts=(receiver.host,))
        first = LocalWebhookNotifier(tmp_path / "w.db", b"k", policy)
        first.start = lambda: None  # this process "dies" before delivering
        first.notify(f"{receiver.url}/h", _event())
        assert first.pending() == 1 and receiver.received == []
        second = LocalWebhookNotifier(tmp_path / "w.db", b"k", policy, poll=0.02)
        second.start()
        wait_for(lambda: receiver.received, timeout=10)
        assert second.pending() == 0
    finally:
        receiver.close()


def test_a_slow_or_hanging_receiver_delays_only_its_own_deliveries(tmp_path):
    hang, dribble, good = hostile_receiver("hang"), hostile_receiver("dribble"), webhook_receiver()
    try:
        policy = Policy(allowed_hosts=(hang.host, dribble.host, good.host))
        n = LocalWebhookNotifier(tmp_path / "w.db", b"k", policy, poll=0.02, timeout=30.0, concurrency=4)
        for _ in range(5):  # a backlog for each hostile receiver, due before the good one's
            n.notify(f"{hang.url}/h", _event())
            n.notify(f"{dribble.url}/h", _event())
        time.sleep(0.3)
        t = time.monotonic()
        n.notify(f"{good.url}/h", _event())
        wait_for(lambda: good.received, timeout=15)
        assert time.monotonic() - t < 15  # not behind the hanging receiver's 30 s timeout
        # one attempt at a time per destination: the backlogs wait behind their own receiver only
        assert len(hang.hits) == 1 and len(dribble.hits) == 1
    finally:
        for s in (hang, dribble, good):
            s.close()


def test_one_attempt_is_bounded_by_the_webhook_timeout(tmp_path):
    hang = hostile_receiver("hang")
    try:
        n = LocalWebhookNotifier(tmp_path / "h.db", b"k", Policy(allowed_hosts=(hang.host,)), timeout=1.0,
                                 max_attempts=1)
        n.start = lambda: None
        n.notify(f"{hang.url}/h", _event())
        t = time.monotonic()
        assert n.run_due() == 1
        assert time.monotonic() - t < 15  # the 1 s timeout, not the receiver's hang
        (d,) = n.deliveries()
        assert d["state"] == "dead" and "timed out" in d["last_error"]
    finally:
        hang.close()
    dribble = hostile_receiver("dribble")
    try:
        n = LocalWebhookNotifier(tmp_path / "w.db", b"k", Policy(allowed_hosts=(dribble.host,)), timeout=1.0,
                                 max_attempts=1)
        n.start = lambda: None
        n.notify(f"{dribble.url}/h", _event())
        t = time.monotonic()
        assert n.run_due() == 1
        assert time.monotonic() - t < 15  # the 1 s timeout, not the dribble
        (d,) = n.deliveries()
        assert d["state"] == "delivered" and d["attempts"] == 1  # its status came; the dribble is cut off
    finally:
        dribble.close()


def test_an_undeliverable_webhook_ends_dead_with_its_reason_in_the_job_log(tmp_path):
    from beatsync.bootstrap import bootstrap
    from beatsync.jobs import service
    from beatsync.jobs.steps import end_job
    from beatsync.settings import Settings
    from tests.suites.service import RecordingOrchestrator

    closed = webhook_receiver()
    closed.close()  # a port nobody listens on: every attempt is refused
    c = bootstrap(Settings.from_env({}, data_dir=tmp_path / "data", allowed_hosts=f"{closed.host},93.184.215.14"),
                  orchestrator=RecordingOrchestrator())
    c.notifier.max_attempts, c.notifier.base_delay, c.notifier.poll = 2, 0.01, 0.02
    job, _ = service.submit_create(c, {"audio_url": "https://93.184.215.14/s.mp3",
                                       "video_urls": ["https://93.184.215.14/v.mp4"],
                                       "webhook_url": f"{closed.url}/hook"}, "alice")
    end_job(c, job.job_id, "failed", error={"code": "x", "message": "y"})
    wait_for(lambda: c.notifier.deliveries()[0]["state"] == "dead", timeout=10)
    logs = service.job_logs(c, job.job_id, "alice")["logs"]
    assert any(e["message"].startswith("webhook dead after 2 attempt(s)") and "Connection refused" in e["message"]
               and e["level"] == "error" for e in logs), logs


class _OwnedJob:
    def __init__(self, job_id, owner):
        self.job_id, self.owner = job_id, owner


def test_workers_take_callers_in_turn():
    import threading

    order, gate = [], threading.Event()

    def run(job_id):
        order.append(job_id)
        if job_id == "a0":
            gate.wait(10)  # the first job holds the only worker while the queues fill

    o = LocalOrchestrator(run, workers=1)
    o.start(_OwnedJob("a0", "alice"))
    wait_for(lambda: order == ["a0"], timeout=5)
    for i in range(1, 6):
        o.start(_OwnedJob(f"a{i}", "alice"))  # alice's backlog, queued first
    o.start(_OwnedJob("b1", "bob"))
    o.start(_OwnedJob("b2", "bob"))
    o.start(_OwnedJob("c1", "carol"))
    gate.set()
    wait_for(o.idle, timeout=10)
    assert order == ["a0", "a1", "b1", "c1", "a2", "b2", "a3", "a4", "a5"]


def test_workers_take_callers_in_turn_then_their_end_users_in_turn():
    """Finding 5 of issue 21: a trusted caller naming many end users gets one turn among callers,
    not one per user id; within its turn, its users (and its own jobs) take turns."""
    import threading

    order, gate = [], threading.Event()

    def run(job_id):
        order.append(job_id)
        if job_id == "hold":
            gate.wait(10)  # the first job holds the only worker while the queues fill

    o = LocalOrchestrator(run, workers=1)
    o.start(_OwnedJob("hold", "key-app"))
    wait_for(lambda: order == ["hold"], timeout=5)
    for i in range(15):  # the trusted caller's backlog, one job for each of 15 end users, queued first
        o.start(_OwnedJob(f"u{i}", f"key-app/user:u{i}"))
    o.start(_OwnedJob("u0b", "key-app/user:u0"))  # a second job of user u0
    o.start(_OwnedJob("app", "key-app"))  # the caller's own job, behind its users'
    o.start(_OwnedJob("other", "key-other"))  # another caller's one job, queued last
    gate.set()
    wait_for(o.idle, timeout=10)
    assert order[:3] == ["hold", "u0", "other"]  # the other caller waits one turn, not 15
    app = [j for j in order if j not in ("hold", "other")]
    assert app == ["u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9", "u10", "u11", "u12", "u13", "u14",
                   "app", "u0b"]  # users (and the caller itself) in turn: u0's second job after everyone's first


def test_a_job_over_its_time_budget_is_ended_and_frees_the_worker():
    import threading

    ended, order = threading.Event(), []

    def run(job_id):
        order.append(job_id)
        if job_id == "stuck":
            ended.wait(30)  # a step that stops once the job has been ended (as the real steps do)

    over = []
    o = LocalOrchestrator(run, workers=1, budget=lambda j: 0.5 if j == "stuck" else 60.0,
                          on_over_budget=lambda j, b: (over.append(j), ended.set()), check_every=0.1)
    t = time.monotonic()
    o.start(_OwnedJob("stuck", "mallory"))
    o.start(_OwnedJob("next", "alice"))
    wait_for(o.idle, timeout=20)
    assert over == ["stuck"] and order == ["stuck", "next"] and time.monotonic() - t < 20  # budget 0.5 s, not 30 s
