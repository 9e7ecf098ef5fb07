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
