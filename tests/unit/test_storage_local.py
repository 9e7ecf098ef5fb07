"""Local storage stays bounded: inputs of ended jobs and refused uploads removed, the retention
sweep, the free-disk guard (issue 17, finding 5)."""

from __future__ import annotations

import os
import time

import pytest

from beatsync.bootstrap import bootstrap
from beatsync.http import create_flask_app, set_container
from beatsync.jobs import service, steps
from beatsync.jobs.storage import InsufficientStorage, sweep, work_root
from beatsync.settings import Settings
from tests.suites.service import RecordingOrchestrator, create_body

API = "/api/v1/beat-sync"
DAY = 86400


@pytest.fixture
def make(tmp_path, media):
    def make(**overrides):
        settings = Settings.from_env({}, data_dir=tmp_path / "data", allowed_hosts=media.host, **overrides)
        return bootstrap(settings, orchestrator=RecordingOrchestrator())

    return make


def _files(c, prefix=""):
    return [k for k in c.blobs.list(prefix)]


def test_inputs_of_ended_jobs_are_removed(make, media):
    c = make()
    ok, _ = service.submit_create(c, create_body(media), "alice")
    bad, _ = service.submit_create(c, create_body(media, video_urls=[f"{media.url}/a.mp4", f"{media.url}/bad.mp4"]),
                                   "alice")
    steps.run_job(c, ok.job_id)
    steps.run_job(c, bad.job_id)
    assert c.jobs.get(ok.job_id).status == "completed" and c.jobs.get(bad.job_id).status == "failed"
    assert _files(c, "inputs/") == []
    assert not (work_root() / ok.job_id).exists() and not (work_root() / bad.job_id).exists()
    assert _files(c, f"outputs/{ok.job_id}/")  # outputs stay, under the retention rule
    # and no emptied folder stays behind (issue 21, finding 7)
    root = c.blobs.root
    assert [p for p in root.rglob("*") if p.is_dir() and not any(p.iterdir())] == []


def test_uploads_are_removed_when_refused_or_when_their_job_ends(make, media):
    c = make(max_active_jobs=1)
    song = (media.root / "song.wav").read_bytes()
    first, _ = service.submit_analyze(c, {"method": "librosa"}, "alice", upload=("song.wav", song))
    with pytest.raises(service.RateLimited):  # refused: its (different) upload does not stay
        service.submit_analyze(c, {}, "alice", upload=("other.wav", song + b"\0" * 100))
    assert _files(c, "inputs/uploads/") == [first.request["audio_key"]]
    text, _ = service.submit_analyze(c, {"method": "librosa"}, "bob", upload=("a.mp3", b"not audio " * 100))
    steps.run_job(c, text.job_id)
    steps.run_job(c, first.job_id)
    assert c.jobs.get(text.job_id).status == "failed" and c.jobs.get(first.job_id).status == "completed"
    assert _files(c, "inputs/") == []


def test_free_disk_guard_answers_503_with_retry_after_and_writes_nothing(make, media):
    c = make(min_free_bytes=10 ** 18)
    set_container(c)
    try:
        client = create_flask_app().test_client()
        r = client.post(f"{API}/create", json=create_body(media))
        assert r.status_code == 503 and r.json["error"]["code"] == "insufficient_storage"
        assert int(r.headers["Retry-After"]) > 0
        song = (media.root / "song.wav").read_bytes()
        r = client.post(f"{API}/analyze", data={"audio_file": (__import__("io").BytesIO(song), "s.wav")},
                        content_type="multipart/form-data")
        assert r.status_code == 503 and r.json["error"]["code"] == "insufficient_storage"
    finally:
        set_container(None)
    assert _files(c) == [] and c.jobs.active() == []
    with pytest.raises(InsufficientStorage):
        service.submit_create(c, create_body(media), "alice")


def test_the_retention_sweep_mirrors_the_bucket_lifecycle(make, media):
    c = make(retention_temp_days=7, retention_inputs_days=30, retention_outputs_days=30)
    running, _ = service.submit_create(c, create_body(media), "alice")
    ended, _ = service.submit_create(c, create_body(media), "alice")
    steps.end(c, ended.job_id, "failed", "x", "y")
    blobs = {
        "temp/a.bin": 8 * DAY, "temp/b.bin": 1 * DAY,
        f"inputs/video/{running.job_id}/clip_0.mp4": 40 * DAY,  # an unfinished job's input: kept
        f"inputs/video/{ended.job_id}/clip_0.mp4": 60,          # an ended job's input: removed at once
        "inputs/uploads/abc.wav": 2 * 3600, "inputs/other/x.bin": 31 * DAY, "inputs/other/y.bin": 29 * DAY,
        "outputs/old/output.mp4": 31 * DAY, "outputs/new/output.mp4": 1 * DAY,
        "outputs/new/.tmp-123.mp4": 2 * 3600, "cache/beat_maps/k.json": 400 * DAY,
    }
    t = time.time()
    for key, age in blobs.items():
        path = c.blobs.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        os.utime(path, (t - age, t - age))
    work = work_root() / ended.job_id
    work.mkdir(parents=True, exist_ok=True)
    counts = sweep(c, now=t)
    left = set(_files(c)) | {k for k in blobs if (c.blobs.root / k).exists() and "/.tmp-" in k}
    assert left == {"temp/b.bin", f"inputs/video/{running.job_id}/clip_0.mp4", "inputs/other/y.bin",
                    "outputs/new/output.mp4", "cache/beat_maps/k.json"}, counts
    assert not work.exists()
    assert not (c.blobs.root / "outputs" / "old").exists()  # emptied folders go too
