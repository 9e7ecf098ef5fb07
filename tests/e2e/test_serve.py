"""`beatsync serve` end to end over real HTTP: the seed's client code unchanged, a cancel
mid-render, and a kill -9 mid-render followed by a restart."""

from __future__ import annotations

import asyncio

import av
import httpx
import pytest

from tests import seed_client
from tests.conftest import ROOT
from tests.servers import Serve, media_server, wait_for


API = "/api/v1/beat-sync"


@pytest.fixture(scope="module")
def examples():
    server = media_server(ROOT / "examples")
    yield server
    server.close()


@pytest.fixture
def serve(tmp_path, examples, receiver):
    s = Serve(tmp_path / "data", {"BEATSYNC_ALLOWED_HOSTS": f"{examples.host},{receiver.host}",
                                  "BEATSYNC_ANALYSIS_METHOD": "librosa"})
    yield s
    s.stop()


def _sources(examples):
    return (f"{examples.url}/lets_go_fishin_excerpt.opus",
            [f"{examples.url}/{n}" for n in ("bottles.mp4", "cars.mp4", "people.mp4")])


def test_the_seed_client_gets_a_playable_video(serve, examples, tmp_path, monkeypatch):
    monkeypatch.setattr(seed_client, "BEAT_SYNC_SERVICE_URL", serve.url)
    audio, clips = _sources(examples)
    config = {"sync_mode": "every_beat", "transition_style": "fade", "transition_duration": 0.1,
              "output_resolution": [640, 360], "output_fps": 30, "output_format": "mp4"}
    job = asyncio.run(seed_client.create_beat_synced_video(audio, clips, config))
    assert job["status"] == "queued" and job["estimated_duration"] > 0

    def done():
        status = asyncio.run(seed_client.check_video_status(job["job_id"]))
        assert status["status"] in ("queued", "processing", "completed"), status
        return status if status["status"] == "completed" else None

    status = wait_for(done, timeout=240, interval=0.5)
    assert status["total_cuts"] > 10 and status["beat_map"]["total_beats"] > 40
    video = httpx.get(status["output_url"], timeout=30)
    assert video.status_code == 200 and len(video.content) == status["file_size"]
    path = tmp_path / "got.mp4"
    path.write_bytes(video.content)
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        assert (v.codec_context.width, v.codec_context.height) == (640, 360) and c.streams.audio
        assert sum(1 for _ in c.decode(v)) == pytest.approx(30 * status["duration"], abs=1)
    assert httpx.get(status["thumbnail_url"], timeout=10).content[:2] == b"\xff\xd8"
    tampered = status["output_url"].replace("signature=", "signature=0")
    assert httpx.get(tampered, timeout=10).status_code == 403
    assert httpx.get(f"{serve.url}/openapi.json", timeout=10).json()["openapi"] == "3.1.0"


def _submit_long(serve, examples, receiver=None):
    audio, clips = _sources(examples)
    body = {"audio_url": audio, "video_urls": clips, "preset": "cinematic",
            "config": {"output_resolution": [1920, 1080]}}
    if receiver is not None:
        body["webhook_url"] = f"{receiver.url}/hook"
    r = httpx.post(f"{serve.url}{API}/create", json=body, timeout=30)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    wait_for(lambda: serve.job(job_id)["progress"] > 40, timeout=180, interval=0.1)
    return job_id


def _outputs(serve, job_id):
    folder = serve.data / "blobs" / "outputs" / job_id
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_cancel_mid_render_ends_cancelled_quickly_with_no_output(serve, examples, receiver):
    job_id = _submit_long(serve, examples, receiver)
    r = httpx.delete(f"{serve.url}{API}/create/{job_id}", timeout=10)
    assert r.status_code == 200 and r.json()["success"]
    # ends cancelled, not completed (how fast: benchmarks/cancel_latency.py); a wide bound on a busy machine
    wait_for(lambda: serve.job(job_id)["status"] == "cancelled", timeout=120, interval=0.1)
    assert _outputs(serve, job_id) == []
    (event,) = wait_for(lambda: receiver.received, timeout=20)
    assert event["json"]["event"] == "beat_sync.job.cancelled"


def test_a_job_survives_kill_9_mid_render(serve, examples):
    job_id = _submit_long(serve, examples)
    serve.kill9()
    serve.start()
    status = wait_for(lambda: (lambda s: s if s["status"] in ("completed", "failed") else None)(serve.job(job_id)),
                      timeout=300, interval=0.5)
    assert status["status"] == "completed", status
    assert _outputs(serve, job_id) == ["beat_map.json", "edit.otio", "edl.json", "output.mp4", "result.json",
                                       "thumbnail.jpg"]
    logs = httpx.get(f"{serve.url}{API}/jobs/{job_id}/logs", timeout=10).json()["logs"]
    assert sum(e["message"].startswith("rendered") for e in logs) == 1
    assert any("attempt" in e["message"] for e in logs)
