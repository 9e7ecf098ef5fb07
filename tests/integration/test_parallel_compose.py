"""A create job rendered as parallel compose tasks on one machine (SQLite + a local folder, the
process runner: what `beatsync serve` does), on real footage: a task killed mid-segment is
retried and the merged video cuts on the same frames as a one-process render of the same plan (its
audio, encoded once by the analyze step and copied by the merge, the same samples); a cancel during the
parallel render stops every task, and a task that fails ends the job; either leaves nothing behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading

import av
import numpy as np
import pytest

from beatsync import keys
from beatsync.bootstrap import bootstrap
from beatsync.contracts import EditDecisionList
from beatsync.jobs import parallel, service, steps
from beatsync.render.encode import render
from beatsync.render.probe import probe_clip
from beatsync.settings import Settings
from tests.conftest import ROOT
from tests.servers import media_server, wait_for
from tests.suites.service import RecordingOrchestrator

CLIPS = ("bottles.mp4", "cars.mp4", "people.mp4")


@pytest.fixture
def setup(tmp_path, monkeypatch):
    media_dir = tmp_path / "media"
    media_dir.mkdir()
    for name in ("lets_go_fishin_excerpt.opus",) + CLIPS:
        shutil.copy(ROOT / "examples" / name, media_dir / name)
    media = media_server(media_dir)
    # the task processes read their settings from the environment, as on Cloud Run
    for key, value in {"BEATSYNC_DATA_DIR": str(tmp_path / "data"), "BEATSYNC_ALLOWED_HOSTS": media.host,
                       "BEATSYNC_RENDER_TASK_SECONDS": "8", "BEATSYNC_ANALYSIS_METHOD": "librosa",
                       # no deadline to size for: one task per 8 s (the floor), as this test is about
                       "BEATSYNC_RENDER_TARGET_SECONDS": "0.001"}.items():
        monkeypatch.setenv(key, value)
    c = bootstrap(Settings.from_env(), orchestrator=RecordingOrchestrator())
    yield c, media
    media.close()


def submit(c, media, size=(320, 180)) -> str:
    """A 30 s render (4 tasks of 8 s); ``size`` large enough that a task is still rendering when killed."""
    body = {"audio_url": f"{media.url}/lets_go_fishin_excerpt.opus",
            "video_urls": [f"{media.url}/{n}" for n in CLIPS], "preset": "fast_cuts", "method": "librosa",
            "config": {"output_resolution": list(size)}}
    job, _ = service.submit_create(c, body, "alice")
    out = steps.run_analyze(c, job.job_id)
    assert out["status"] == "processing"
    return job.job_id


def task_pids(c, job_id, task: str = "") -> list[int]:
    """Pids of the task processes started (``task``: "2/4" for one task, "" for all)."""
    return [int(e["message"].rsplit("pid ", 1)[1].rstrip(")")) for e in c.jobs.logs(job_id)
            if e["message"].startswith(f"compose task {task}") and " started: " in e["message"]]


def in_background(fn, *args):
    out = {}

    def run():
        try:
            out["result"] = fn(*args)
        except Exception as exc:  # noqa: BLE001 - the test reads it
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def audio_of(path) -> tuple[list, np.ndarray]:
    """The audio packets as stored (pts, duration, bytes) and the decoded samples."""
    with av.open(str(path)) as c:
        packets = [(p.pts, p.duration, bytes(p)) for p in c.demux(c.streams.audio[0]) if p.size]
    with av.open(str(path)) as c:
        return packets, np.concatenate([f.to_ndarray() for f in c.decode(c.streams.audio[0])], axis=1)


def frames(path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.array([f.to_ndarray(format="rgb24")[::4, ::4].astype(np.float32) for f in c.decode(c.streams.video[0])])


def test_a_task_killed_mid_segment_is_retried_and_the_merge_matches_one_render(setup, tmp_path):
    c, media = setup
    job_id = submit(c, media, (480, 270))
    plan = json.loads(c.blobs.get_bytes(f"temp/{job_id}/plan.json"))
    assert plan["tasks"] == 4  # 30 s of output, 8 s per task
    t, out = in_background(steps.run_compose, c, job_id)
    # kill task 2 once it has rendered part of its segment
    pid = wait_for(lambda: (task_pids(c, job_id, "2/4") or [None])[0], timeout=120, interval=0.05)
    wait_for(lambda: c.blobs.exists(f"temp/{job_id}/progress-004-001.json"), timeout=120, interval=0.05)
    os.killpg(pid, signal.SIGKILL)
    # one progress number for the job: the sum of the tasks' rendered frames, 25-97 %
    wait_for(lambda: c.jobs.get(job_id).progress > 26.0 or not t.is_alive(), timeout=120, interval=0.05)
    t.join(300)
    assert out["result"]["status"] == "completed", c.jobs.logs(job_id)
    assert len(task_pids(c, job_id, "2/4")) == 2  # retried once, by the runner
    logs = [e["message"] for e in c.jobs.logs(job_id)]
    assert sum(m.startswith("rendered") for m in logs) == 1
    assert c.blobs.list(f"temp/{job_id}/") == []
    again = steps.compose_merge(c, job_id)  # a retried merge: nothing is rendered or written again
    assert again["merged"] and again["status"] == "completed"
    assert [e["message"] for e in c.jobs.logs(job_id)] == logs
    assert {k.rsplit("/", 1)[1] for k in c.blobs.list(f"outputs/{job_id}/")} == {
        "output.mp4", "thumbnail.jpg", "edl.json", "edit.otio", "beat_map.json", "result.json"}
    # the same plan rendered by one process: same frame count, every cut on the same frame
    c.blobs.get_file(f"outputs/{job_id}/output.mp4", str(tmp_path / "merged.mp4"))
    edl = EditDecisionList.model_validate_json(c.blobs.get_bytes(f"outputs/{job_id}/edl.json"))
    probes = [probe_clip(str(tmp_path / "media" / n)) for n in CLIPS]
    render(edl, probes, str(tmp_path / "media" / "lets_go_fishin_excerpt.opus"), str(tmp_path / "one.mp4"))
    one, merged = frames(tmp_path / "one.mp4"), frames(tmp_path / "merged.mp4")
    assert len(one) == len(merged) == edl.total_frames
    assert np.abs(one - merged).mean() < 4  # the same pictures, up to encoding noise
    for k in edl.cut_frames:  # each side of each cut matches its own frame, not its neighbour
        if np.abs(one[k] - one[k - 1]).mean() > 8:
            assert np.abs(merged[k] - one[k]).mean() < np.abs(merged[k] - one[k - 1]).mean()
            assert np.abs(merged[k - 1] - one[k - 1]).mean() < np.abs(merged[k - 1] - one[k]).mean()
    with av.open(str(tmp_path / "merged.mp4")) as m:
        assert m.duration / 1e6 == pytest.approx(edl.total_frames / edl.fps, abs=0.05)
    # the audio, encoded once by the analyze step and copied by the merge: what the render encoded in place
    (packets, pcm), (want_packets, want_pcm) = audio_of(tmp_path / "merged.mp4"), audio_of(tmp_path / "one.mp4")
    assert packets == want_packets and pcm.shape == want_pcm.shape and np.array_equal(pcm, want_pcm)
    assert not any("no encoded audio" in m for m in logs)


def test_cancel_during_a_parallel_render_stops_every_task_and_leaves_nothing(setup):
    c, media = setup
    job_id = submit(c, media)
    assert c.blobs.exists(keys.song_audio(job_id, "m4a"))  # the song's window, encoded by the analyze step
    t, out = in_background(steps.run_compose, c, job_id)
    wait_for(lambda: len(c.blobs.list(f"temp/{job_id}/progress-")) >= 1, timeout=120, interval=0.05)
    service.cancel(c, job_id, "alice")
    t.join(60)
    assert not t.is_alive() and c.jobs.get(job_id).status == "cancelled"
    assert c.blobs.list(f"outputs/{job_id}/") == [] and c.blobs.list(f"temp/{job_id}/") == []
    for pid in task_pids(c, job_id):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_parallel_job_failed_by_a_task_leaves_nothing(setup):
    c, media = setup
    job_id = submit(c, media)
    plan = json.loads(c.blobs.get_bytes(keys.plan(job_id)))
    assert plan["tasks"] == 4 and c.blobs.exists(keys.song_audio(job_id, "m4a"))
    _, clip_keys = keys.inputs(job_id, c.jobs.get(job_id).request)
    for key in clip_keys:  # the stored clips damaged after the analysis: a task cannot open its clip
        c.blobs.put_bytes(key, b"not a video" * 100)
    out = parallel.run_task(c, job_id, 0, plan["tasks"])
    assert out["status"] == "failed" and out["error"]["code"] == "unsupported_media", out
    assert c.blobs.list(keys.temp(job_id)) == [] and c.blobs.list(f"outputs/{job_id}/") == []


def test_a_segment_still_missing_after_its_retries_is_the_only_one_rendered_again(setup, monkeypatch):
    c, media = setup
    monkeypatch.setenv("BEATSYNC_COMPOSE_TASK_RETRIES", "0")
    c = bootstrap(Settings.from_env(), orchestrator=RecordingOrchestrator())
    job_id = submit(c, media, (640, 360))
    t, out = in_background(steps.run_compose, c, job_id)
    pid = wait_for(lambda: (task_pids(c, job_id, "3/4") or [None])[0], timeout=120, interval=0.05)
    os.killpg(pid, signal.SIGKILL)  # no retries left: the attempt ends with segment 3 missing
    t.join(300)
    assert type(out.get("error")).__name__ == "SegmentsMissing"  # transient: the orchestrator retries the step
    assert c.jobs.get(job_id).status == "processing" and not c.blobs.list(f"outputs/{job_id}/result")
    markers = [k for k in c.blobs.list(f"temp/{job_id}/seg-") if k.endswith(".json")]
    assert [k.rsplit("-", 1)[1] for k in markers] == ["000.json", "001.json", "003.json"]
    assert any("merge: segments [2] of 4 missing" in e["message"] for e in c.jobs.logs(job_id))
    c.blobs.delete(keys.song_audio(job_id, "m4a"))  # as for a plan made before the audio was encoded with it
    assert steps.run_compose(c, job_id)["status"] == "completed"  # the retry
    logs = [e["message"] for e in c.jobs.logs(job_id)]
    assert sum("segment already rendered" in m for m in logs) == 3
    assert len(task_pids(c, job_id, "3/4")) == 2 and len(task_pids(c, job_id)) == 5
    assert sum(m.startswith("rendered") for m in logs) == 1 and c.blobs.list(f"temp/{job_id}/") == []
    assert sum("merge: no encoded audio" in m for m in logs) == 1  # encoded in the merge instead, and said so
