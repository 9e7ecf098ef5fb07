"""The Orchestrator interface suite: adapter test modules import it and provide ``engine``, with
``jobs`` (a container on the job store and blobs the orchestrated steps use, whose own orchestrator
only records, so the tests can store jobs without starting them), ``orchestrator`` (the adapter under
test) and ``finished(job_id)`` (the orchestration of that job has stopped running). tests/unit:
LocalOrchestrator (worker threads in this process); tests/integration: WorkflowsOrchestrator on
workflows-emulator running workflows/beat_sync.yaml against the analyze service (functions-framework).
The module also provides ``media`` (tests/conftest.py)."""

from __future__ import annotations

import time

from beatsync.jobs import service
from tests.servers import wait_for
from tests.suites.service import create_body

DEADLINE = 180  # seconds for a small job's analysis and render on a busy machine


def stored(engine, media, **extra):
    """A queued create job in the store, not yet handed to any orchestrator."""
    job, _ = service.submit_create(engine.jobs, create_body(media, **extra), "alice")
    assert job.status == "queued" and engine.jobs.orchestrator.started[-1] == job.job_id
    return job


def ended(engine, job_id, timeout=DEADLINE):
    return wait_for(lambda: (lambda j: j if j.terminal else None)(engine.jobs.jobs.get(job_id)), timeout=timeout,
                    interval=0.2)


def test_start_carries_a_stored_job_through_its_steps_to_completed(engine, media):
    job = stored(engine, media)
    handle = engine.orchestrator.start(job)
    assert handle is None or isinstance(handle, str)
    done = ended(engine, job.job_id)
    assert done.status == "completed", (done.error, [e["message"] for e in engine.jobs.jobs.logs(job.job_id)])
    assert engine.jobs.blobs.exists(done.result["output_key"])
    # the "job completed" line is the end's follow-up, written just after the terminal status: wait for it
    needles = ("analysed:", "rendered", "job completed")  # both steps ran, and the end followed
    deadline = time.monotonic() + 60
    while True:
        logs = [e["message"] for e in engine.jobs.jobs.logs(job.job_id)]
        if all(any(n in m for m in logs) for n in needles) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for needle in needles:
        assert any(needle in m for m in logs), (needle, logs)
    assert [i for i, m in enumerate(logs) if "analysed:" in m][0] < [i for i, m in enumerate(logs) if "rendered" in m][0]
    wait_for(lambda: engine.finished(job.job_id), timeout=30, interval=0.2)


def test_a_step_that_fails_ends_the_job_failed_with_its_code(engine, media):
    job = stored(engine, media, video_urls=[f"{media.url}/bad.mp4"])
    engine.orchestrator.start(job)
    done = ended(engine, job.job_id)
    assert done.status == "failed" and done.error.code == "unsupported_media"
    wait_for(lambda: engine.finished(job.job_id), timeout=30, interval=0.2)
    assert engine.jobs.blobs.list(f"outputs/{job.job_id}/") == []


def test_cancel_stops_a_running_job(engine, media):
    # a clip that dribbles its headers for minutes: the job is held in its analyze step
    job = stored(engine, media, video_urls=[f"{media.url}/slow-headers"])
    engine.orchestrator.start(job)
    wait_for(lambda: engine.jobs.jobs.get(job.job_id).status == "processing", timeout=60, interval=0.1)
    time.sleep(1.0)
    assert not engine.finished(job.job_id)
    running = engine.jobs.jobs.request_cancel(job.job_id)  # what the service does before cancel()
    engine.orchestrator.cancel(running)
    t = time.monotonic()
    assert ended(engine, job.job_id, timeout=30).status == "cancelled"
    wait_for(lambda: engine.finished(job.job_id), timeout=30, interval=0.2)
    assert time.monotonic() - t < 20  # not the fetch's own timeout
    assert engine.jobs.blobs.list(f"outputs/{job.job_id}/") == []
