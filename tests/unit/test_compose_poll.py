"""The workflow's compose poll on a parallel render: progress summed over the tasks, the next poll
scheduled for when the slowest task should be done, and the merge started as soon as every segment
is written (tasks' reports and markers written as the tasks write them, in a local blob store)."""

from __future__ import annotations

import json
import time

import pytest

from beatsync import keys
from beatsync.bootstrap import bootstrap
from beatsync.jobs import service, steps
from beatsync.settings import Settings
from tests.suites.service import RecordingOrchestrator, create_body


@pytest.fixture
def job(tmp_path, media):
    c = bootstrap(Settings.from_env({}, data_dir=tmp_path / "data", allowed_hosts=media.host),
                  orchestrator=RecordingOrchestrator())
    job, _ = service.submit_create(c, create_body(media), "alice")
    steps.begin(c, job.job_id)
    plan = {"tasks": 2, "edl": {"total_frames": 200}, "costs": [],
            "segments": [{"index": 0, "start": 0, "end": 100}, {"index": 1, "start": 100, "end": 200}]}
    c.blobs.put_bytes(keys.plan(job.job_id), json.dumps(plan).encode(), "application/json")
    return c, job.job_id


def report(c, job_id, index, frames, started, at):
    c.blobs.put_bytes(keys.task_progress(job_id, 2, index), json.dumps(
        {"frames": frames, "total": 100, "started": started, "at": at}).encode(), "application/json")


def test_without_every_task_reporting_the_workflow_keeps_its_interval(job):
    c, job_id = job
    out = steps.compose_poll(c, job_id, None, poll_seconds=10)
    assert out["next_poll_seconds"] == 10 and out["segments_ready"] is False
    report(c, job_id, 0, 50, time.time() - 10, time.time())  # one task of two: the other may not have started
    assert steps.compose_poll(c, job_id, None, poll_seconds=10)["next_poll_seconds"] == 10
    assert "next_poll_seconds" not in steps.compose_poll(c, job_id, None)  # an older workflow: no schedule


def test_the_next_poll_comes_when_the_slowest_task_should_be_done(job):
    c, job_id = job
    now = time.time()
    report(c, job_id, 0, 50, now - 10, now)  # 50 frames in 10 s: 10 s left
    report(c, job_id, 1, 90, now - 9, now)  # 1 s left
    assert steps.compose_poll(c, job_id, None, poll_seconds=30)["next_poll_seconds"] in (11, 12)
    assert steps.compose_poll(c, job_id, None, poll_seconds=5)["next_poll_seconds"] == 5  # never past the interval
    report(c, job_id, 1, 100, now - 10, now)  # done
    report(c, job_id, 0, 95, now - 19, now - 0.5)  # 1 s left when it reported, half a second ago
    out = steps.compose_poll(c, job_id, None, poll_seconds=30)
    assert out["next_poll_seconds"] == 1 and out["segments_ready"] is False


def test_every_segment_written_means_merge_now(job):
    c, job_id = job
    for i in range(2):
        c.blobs.put_bytes(keys.segment(job_id, 2, i, "json"), b"{}", "application/json")
    assert steps.compose_poll(c, job_id, None, poll_seconds=10)["segments_ready"] is True


def test_a_task_that_stopped_reporting_gives_no_estimate(job):
    from beatsync.jobs.parallel import STALE_REPORT

    c, job_id = job
    now = time.time()
    report(c, job_id, 0, 100, now - 20, now)  # done
    report(c, job_id, 1, 60, now - 30, now - STALE_REPORT - 5)  # died (or its retry is starting) long ago
    assert steps.compose_poll(c, job_id, None, poll_seconds=10)["next_poll_seconds"] == 10  # not every second


def test_a_job_is_stored_without_end_pending_unless_it_is_set():
    from beatsync.jobs.model import Job, new_job, stored, transitioned

    job = new_job("create", {}, owner="a")
    assert "end_pending" not in stored(job)  # what code from before the field can read
    ended = transitioned(transitioned(job, "processing"), "failed", error={"code": "x", "message": "m"})
    assert stored(ended)["end_pending"] is True
    assert Job.model_validate(stored(job)) == job and Job.model_validate(stored(ended)) == ended
