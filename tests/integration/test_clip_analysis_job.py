"""The clips' analysis in a job and in ``beatsync make``: issue 21's hostile clip stays within the
clip-analysis budget in the analyze step (fetch, probe, the clips' analysis alongside the song's,
plan), and make_video reads and writes the clip-analysis cache."""

from __future__ import annotations

import pytest

from beatsync.render.motion import frame_limit
from beatsync.render.probe import probe_clip
from tests.media import hostile_clip

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return probe_clip(hostile_clip(tmp_path_factory.mktemp("hostile") / "hostile.mp4"))


def test_a_preview_job_with_the_hostile_clip_plans_within_the_clip_budget(hostile, tmp_path):
    """Issue 21's job: a 5 s preview over the hostile clip. The analyze step decodes at most the
    budget's frames (here BEATSYNC_CLIP_ANALYSIS_BUDGET=300: 1,998 frames), records it, and plans."""
    import shutil

    from beatsync import keys
    from beatsync.bootstrap import bootstrap
    from beatsync.jobs import service, steps
    from beatsync.settings import Settings
    from tests.media import make_media
    from tests.servers import media_server
    from tests.suites.service import RecordingOrchestrator

    (tmp_path / "media").mkdir()
    root = make_media(tmp_path / "media")
    shutil.copyfile(hostile.path, root / "hostile.mp4")
    server = media_server(root)
    try:
        settings = Settings.from_env({}, data_dir=tmp_path / "data", allowed_hosts=server.host, clip_analysis_budget=300)
        c = bootstrap(settings, orchestrator=RecordingOrchestrator())
        body = {"audio_url": f"{server.url}/song.wav", "video_urls": [f"{server.url}/hostile.mp4"], "method": "librosa",
                "config": {"output_resolution": [160, 96]}, "preview_only": True, "preview_duration": 5}
        job, _ = service.submit_create(c, body, "mallory")
        assert steps.run_analyze(c, job.job_id)["status"] == "processing"
        m = c.jobs.get(job.job_id).metrics
        assert 0 < m.clip_analysis_frames <= frame_limit(hostile, 300) == 1998
        assert m.clip_analysis_time_ms is not None and c.blobs.exists(keys.plan(job.job_id))
    finally:
        server.close()


def test_make_video_reads_and_writes_the_clip_analysis_cache(tmp_path):
    """``beatsync make``'s path (make_video with the cache store): the second make of the same clips
    analyses none of them again (nothing new is written to cache/clip_analysis/)."""
    from beatsync.adapters.local_fs import LocalBlobStore
    from beatsync.editing import resolve_config
    from beatsync.render.pipeline import make_video
    from tests.media import make_media

    class Recording(LocalBlobStore):
        def __init__(self, root):
            super().__init__(root)
            self.written = []

        def put_bytes(self, key, data, content_type="application/octet-stream"):
            self.written.append(key)
            return super().put_bytes(key, data, content_type)

    (tmp_path / "media").mkdir()
    media = make_media(tmp_path / "media")
    store = Recording(tmp_path / "cache")
    clips = [str(media / "a.mp4"), str(media / "b.mp4")]
    config = resolve_config(None, {"output_resolution": "160x96", "preview_only": True, "preview_duration": 5})
    for n in range(2):
        make_video(str(media / "song.wav"), clips, str(tmp_path / f"out{n}.mp4"), config, method="librosa", cache=store)
        if n == 0:
            assert sum(k.startswith("cache/clip_analysis/") for k in store.written) == 2
            store.written.clear()
    assert store.written == []  # the beat map and both clips' analyses read from the cache
