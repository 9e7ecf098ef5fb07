"""The ComposeRunner interface suite: adapter test modules import it and provide ``runner`` (tests/unit:
ProcessComposeRunner; CloudRunJobRunner against tests/cloud_run.py, a stand-in of the Cloud Run Admin
API that runs the execution's tasks as local processes: there is no Cloud Run emulator).

The tasks are real ``beatsync compose-job`` processes reading the environment the test sets: a job
store in a temporary data folder, or (to keep tasks running until stopped) a Firestore host that
accepts connections and never answers."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import threading
import time
import uuid

import pytest

from beatsync.bootstrap import bootstrap
from beatsync.jobs import new_job
from beatsync.jobs.parallel import _seg_key, plan_key
from beatsync.settings import Settings
from tests.servers import wait_for

DEADLINE = 60  # seconds for task processes to start and end on a busy machine


def task_pids(job_id: str) -> list[int]:
    """Processes of this machine running ``compose-job JOB_ID`` (the tasks of either adapter)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    args = f.read().split(b"\0")
            except OSError:
                continue
            if b"compose-job" in args and job_id.encode() in args:
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                            continue  # ended, not yet reaped
                except OSError:
                    continue
                pids.append(int(entry))
    return pids


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    data = tmp_path / "data"
    for key in ("BEATSYNC_JOB_STORE", "BEATSYNC_BLOB_STORE", "FIRESTORE_EMULATOR_HOST"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("BEATSYNC_DATA_DIR", str(data))  # the task processes' configuration
    return data


@pytest.fixture
def silent_firestore(monkeypatch):
    """A job store that never answers: a task reading its job waits (for minutes) until stopped."""
    sock, held = socket.socket(), []
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)

    def accept():
        try:
            while True:
                held.append(sock.accept()[0])
        except OSError:
            pass

    threading.Thread(target=accept, daemon=True).start()
    monkeypatch.setenv("BEATSYNC_JOB_STORE", "firestore")
    monkeypatch.setenv("BEATSYNC_PROJECT", "demo-beatsync")
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:%d" % sock.getsockname()[1])
    yield
    sock.close()
    for conn in held:
        conn.close()


def test_a_started_compose_runs_then_exits_and_unknown_handles_read_unknown(runner, data_dir):
    handle = runner.start(uuid.uuid4().hex)  # no such job: the task fails at once and is not retried forever
    assert isinstance(handle, str) and handle
    assert runner.state(handle) == "running"
    wait_for(lambda: runner.state(handle) == "exited", timeout=DEADLINE, interval=0.2)
    runner.stop(handle)  # a no-op once exited
    assert runner.state(handle) == "exited"
    assert runner.state(handle + "-unknown") == "unknown"
    runner.stop(handle + "-unknown")  # nothing to stop


def test_every_task_sees_its_index_and_the_task_count(runner, data_dir):
    c = bootstrap(Settings.from_env({}, data_dir=data_dir))
    job, _ = c.jobs.create(new_job("create", {"n": 1}, owner="t"))
    # a render plan of 3 segments, each already rendered: a task logs which one it is and exits 0
    c.blobs.put_bytes(plan_key(job.job_id), json.dumps({
        "tasks": 3, "segments": [{"index": i, "start": 10 * i, "end": 10 * i + 10} for i in range(3)],
        "edl": {}, "costs": []}).encode())
    for i in range(3):
        c.blobs.put_bytes(_seg_key(job.job_id, 3, i, "json"), b"{}")
    handle = runner.start(job.job_id, tasks=3)
    assert runner.state(handle) == "running"
    wait_for(lambda: runner.state(handle) == "exited", timeout=DEADLINE, interval=0.2)
    seen = [m.groups() for e in c.jobs.logs(job.job_id) if (m := re.match(r"compose task (\d+)/(\d+)", e["message"]))]
    assert sorted(seen) == [("1", "3"), ("2", "3"), ("3", "3")]


def test_stop_ends_every_task_and_none_starts_again(runner, data_dir, silent_firestore):
    job_id = uuid.uuid4().hex
    handle = runner.start(job_id, tasks=2)
    try:
        wait_for(lambda: len(task_pids(job_id)) == 2, timeout=DEADLINE, interval=0.2)
        time.sleep(1.0)
        assert runner.state(handle) == "running" and len(task_pids(job_id)) == 2  # waiting on the store
        runner.stop(handle)
        wait_for(lambda: runner.state(handle) == "exited", timeout=20, interval=0.2)
        wait_for(lambda: not task_pids(job_id), timeout=20, interval=0.2)
        time.sleep(1.5)
        assert not task_pids(job_id) and runner.state(handle) == "exited"  # no retry of a stopped task
        runner.stop(handle)  # again: a no-op
    finally:
        for pid in task_pids(job_id):  # a runner that failed to stop them leaves nothing behind
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
