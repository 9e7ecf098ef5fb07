"""The compose execution started before the plan (``compose_early_start``, the deployed workflow's
analyze step) on one machine: SQLite + a local folder, the process runner, real footage. Its tasks
start while the song and the clips are analysed, wait for the plan, and render it; the workflow's
first compose attempt adopts the execution. A cancel or a failure during the analysis stops the
waiting tasks and leaves nothing behind."""

from __future__ import annotations

import json
import shutil

import pytest

from beatsync import keys
from beatsync.bootstrap import bootstrap
from beatsync.contracts import BeatMap
from beatsync.errors import MediaError
from beatsync.jobs import service, steps
from beatsync.settings import Settings
from tests.conftest import ROOT
from tests.servers import media_server, wait_for

CLIPS = ("bottles.mp4", "cars.mp4", "people.mp4")


@pytest.fixture
def setup(tmp_path, monkeypatch):
    from tests.suites.service import RecordingOrchestrator

    media_dir = tmp_path / "media"
    media_dir.mkdir()
    for name in ("lets_go_fishin_excerpt.opus",) + CLIPS:
        shutil.copy(ROOT / "examples" / name, media_dir / name)
    media = media_server(media_dir)
    for key, value in {"BEATSYNC_DATA_DIR": str(tmp_path / "data"), "BEATSYNC_ALLOWED_HOSTS": media.host,
                       "BEATSYNC_RENDER_TASK_SECONDS": "12", "BEATSYNC_ANALYSIS_METHOD": "librosa",
                       "BEATSYNC_RENDER_TARGET_SECONDS": "0.001"}.items():  # one task per 12 s of output
        monkeypatch.setenv(key, value)
    c = bootstrap(Settings.from_env(), orchestrator=RecordingOrchestrator())
    yield c, media
    media.close()


def submit(c, media) -> str:
    body = {"audio_url": f"{media.url}/lets_go_fishin_excerpt.opus",
            "video_urls": [f"{media.url}/{n}" for n in CLIPS], "preset": "fast_cuts", "method": "librosa",
            "config": {"output_resolution": [320, 180]}}
    job, _ = service.submit_create(c, body, "alice")
    return job.job_id


def messages(c, job_id) -> list[str]:
    return [e["message"] for e in c.jobs.logs(job_id)]


def test_the_tasks_start_before_the_plan_render_it_and_the_first_attempt_adopts_them(setup):
    c, media = setup
    job_id = submit(c, media)
    assert steps.run_analyze(c, job_id, start_compose=True)["status"] == "processing"
    early = json.loads(c.blobs.get_bytes(keys.compose_execution(job_id)))
    plan = json.loads(c.blobs.get_bytes(keys.plan(job_id)))
    # 30 s of output at one task per 12 s: chosen from the song's declared length, kept by the plan
    assert early["tasks"] == plan["tasks"] == 3 and early["started"] < plan["created"]
    logs = messages(c, job_id)
    started = next(i for i, m in enumerate(logs) if m.startswith("compose started before the plan"))
    assert started < next(i for i, m in enumerate(logs) if m.startswith("analysed:"))
    run = steps.compose_start(c, job_id, 1, poll_seconds=10)  # the workflow's first attempt: no second execution
    assert run["handle"] == early["handle"] and run["tasks"] == 3
    assert 1 <= run["next_poll_seconds"] <= 10  # from the tasks' rates once each has reported, else the interval
    wait_for(lambda: steps.compose_poll(c, job_id, run["handle"])["segments_ready"], timeout=300, interval=0.2)
    assert steps.compose_merge(c, job_id)["status"] == "completed"
    logs = messages(c, job_id)
    assert sum(m.startswith("compose task ") and " started: " in m for m in logs) == 3
    assert not any(m.startswith("workflow: compose attempt 1 started") for m in logs)
    assert c.blobs.list(keys.temp(job_id)) == []
    assert c.blobs.exists(f"outputs/{job_id}/output.mp4")
    wait_for(lambda: c.runner.state(run["handle"]) != "running", timeout=60, interval=0.2)


def test_a_cancel_during_the_analysis_stops_the_waiting_tasks_and_leaves_nothing(setup):
    c, media = setup
    job_id = submit(c, media)
    seen = {}
    analyze = steps.analysis.analyze

    def cancel_first(*args, **kwargs):  # the caller cancels while the song is analysed
        seen["early"] = json.loads(c.blobs.get_bytes(keys.compose_execution(job_id)))
        service.cancel(c, job_id, "alice")
        return analyze(*args, **kwargs)

    steps.analysis.analyze = cancel_first
    try:
        assert steps.run_analyze(c, job_id, start_compose=True)["status"] == "cancelled"
    finally:
        steps.analysis.analyze = analyze
    handle = seen["early"]["handle"]
    assert c.runner.state(handle) != "running"  # stopped before the step answered
    assert any(m.startswith("compose stopped before the plan") for m in messages(c, job_id))
    assert c.blobs.list(keys.temp(job_id)) == [] and c.blobs.list(keys.outputs(job_id)) == []
    assert not any(m.startswith("compose task ") for m in messages(c, job_id))


def test_a_failed_analysis_stops_the_waiting_tasks_and_leaves_nothing(setup, monkeypatch):
    c, media = setup
    job_id = submit(c, media)
    seen = {}

    def unreadable(*args, **kwargs):  # the song turns out undecodable after the inputs were checked
        seen["early"] = json.loads(c.blobs.get_bytes(keys.compose_execution(job_id)))
        raise MediaError("lets_go_fishin_excerpt.opus: no audio could be decoded", code="corrupt_media")

    monkeypatch.setattr(steps.analysis, "analyze", unreadable)
    out = steps.run_analyze(c, job_id, start_compose=True)
    assert out["status"] == "failed" and out["error"]["code"] == "corrupt_media"
    assert c.runner.state(seen["early"]["handle"]) != "running"
    assert c.blobs.list(keys.temp(job_id)) == [] and c.blobs.list(keys.outputs(job_id)) == []


def test_an_execution_that_cannot_be_started_early_is_started_after_the_plan(setup, monkeypatch):
    """The runner refusing (the Cloud Run Admin API answering 429, say) is not the job's failure: the
    analysis goes on, and the workflow's first attempt starts the execution."""
    c, media = setup
    job_id = submit(c, media)

    def refused(job_id, tasks=1):
        raise ConnectionError("the Cloud Run Admin API is unreachable")

    monkeypatch.setattr(c.runner, "start", refused)
    assert steps.run_analyze(c, job_id, start_compose=True)["status"] == "processing"
    assert not c.blobs.exists(keys.compose_execution(job_id)) and c.blobs.exists(keys.plan(job_id))
    assert any(m.startswith("compose not started early (ConnectionError)") for m in messages(c, job_id))


def test_an_execution_started_but_not_recorded_is_stopped(setup, monkeypatch):
    """The store refusing the record of a started execution: the execution is stopped (nothing could
    adopt or stop it later), and the job goes on without it."""
    from beatsync.errors import StoreUnavailable

    c, media = setup
    job_id = submit(c, media)
    started, put = [], c.blobs.put_bytes
    start = c.runner.start

    def recorded_start(job_id, tasks=1):
        started.append(start(job_id, tasks=tasks))
        return started[-1]

    def put_bytes(key, data, content_type="application/octet-stream"):
        if key == keys.compose_execution(job_id):
            raise StoreUnavailable("blob store unavailable: 503")
        return put(key, data, content_type)

    monkeypatch.setattr(c.runner, "start", recorded_start)
    monkeypatch.setattr(c.blobs, "put_bytes", put_bytes)
    assert steps.run_analyze(c, job_id, start_compose=True)["status"] == "processing"
    assert len(started) == 1 and c.runner.state(started[0]) != "running"
    assert not c.blobs.exists(keys.compose_execution(job_id))


def test_the_first_attempt_starts_another_execution_when_the_early_one_ended_unfinished(setup):
    c, media = setup
    job_id = submit(c, media)
    assert steps.run_analyze(c, job_id, start_compose=True)["status"] == "processing"
    early = json.loads(c.blobs.get_bytes(keys.compose_execution(job_id)))
    c.runner.stop(early["handle"])  # its tasks died (or gave up waiting) before rendering anything
    run = steps.compose_start(c, job_id, 1)
    assert run["handle"] != early["handle"]
    assert any("ended unfinished: compose attempt 1 starts another" in m for m in messages(c, job_id))
    wait_for(lambda: steps.compose_poll(c, job_id, run["handle"])["segments_ready"], timeout=300, interval=0.2)
    assert steps.compose_merge(c, job_id)["status"] == "completed"


def test_an_execution_with_more_tasks_than_the_edit_has_shots_renders_and_merges(setup):
    """The count fixed before the plan can exceed the shots: the plan keeps the execution's count, the
    tasks past the last segment do nothing, and the segments present are the whole render."""
    from beatsync.jobs import parallel
    from beatsync.jobs.inputs import local_inputs

    c, media = setup
    job_id = submit(c, media)
    assert steps.run_analyze(c, job_id)["status"] == "processing"
    job = c.jobs.get(job_id)
    shots = len(json.loads(c.blobs.get_bytes(keys.plan(job_id)))["edl"]["shots"])
    _, clips = local_inputs(c, job, lambda pct, step: None, with_clips=True)
    beat_map = BeatMap.model_validate_json(c.blobs.get_bytes(keys.beat_map(job_id)))
    plan = parallel.make_plan(c, job, clips, beat_map, tasks=shots + 2)
    assert plan["tasks"] == shots + 2 and len(plan["segments"]) <= shots
    for index in range(plan["tasks"]):  # each task in turn, in this process
        parallel.run_task(c, job_id, index, plan["tasks"])
    assert parallel.segments_ready(c, job_id)
    assert parallel.run_merge(c, job_id)["status"] == "completed"
