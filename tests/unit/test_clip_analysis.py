"""The clips' planning analysis (render/motion.py): bounded by its budget whatever the clip holds,
the same as a full pass within it, and cached by clip content hash (render/clipcache.py)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from beatsync.render import motion
from beatsync.render.motion import analyse_clip, frame_limit
from beatsync.render.probe import probe_clip
from beatsync.render.synth import moving_frames, write_clip
from tests.media import hostile_clip

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return probe_clip(hostile_clip(tmp_path_factory.mktemp("hostile") / "hostile.mp4"))


def test_a_hostile_clip_is_analysed_within_its_budget(hostile):
    """200,000 frames of 16x16 (2,000 s, about 6 MB): the whole pass took 190-296 s. Within the
    budget: at most frame_limit frames decoded (3,997 at the default), spread over the whole clip."""
    assert hostile.duration == pytest.approx(2000.0) and len(hostile.keyframes) == 800
    stop = threading.Event()
    out = {}
    worker = threading.Thread(target=lambda: out.update(a=analyse_clip(hostile, should_stop=stop.is_set)), daemon=True)
    worker.start()
    worker.join(120)  # about 5 s on a busy 2-core machine; the whole pass never finishes in this time
    if worker.is_alive():
        stop.set()
        worker.join(10)
        pytest.fail("the analysis of the hostile clip was still decoding after 120 s")
    a = out["a"]
    limit = frame_limit(hostile)
    assert limit == 3997  # 600 / (0.15 + 0.85 x 256 / 1920x1080)
    assert 0 < a.frames <= limit
    assert len(a.motion) == 4000 and 0.05 < a.coverage < 0.2  # 0.5 s bins with frames scored


def test_the_budget_scales_with_frame_size():
    class P:
        def __init__(self, w, h):
            self.width, self.height = w, h

    assert frame_limit(P(1920, 1080), 1200) == 1200
    assert frame_limit(P(3840, 2160), 1200) == 338  # 1200 / 3.55
    assert frame_limit(P(16, 16), 1200) == 7994
    assert frame_limit(P(4096, 2304), 10) == motion.MIN_RUN  # never fewer than one window


@pytest.fixture(scope="module")
def steady(tmp_path_factory):
    """10 s of a still picture, then 10 s of it scrolling at a constant speed; a keyframe every 12
    frames: 600 frames."""
    path = tmp_path_factory.mktemp("steady") / "steady.mp4"
    frames = moving_frames(10.0, 30, size=(64, 36), seed=3, speed=0.0) + moving_frames(10.0, 30, size=(64, 36),
                                                                                        seed=3, speed=1.0)
    return probe_clip(write_clip(str(path), frames, 30))


def test_a_sampled_analysis_scores_like_the_full_pass_and_finds_no_cut_of_its_own(steady):
    full = analyse_clip(steady, budget=1e6)
    assert full.frames == 600 and full.coverage == 1.0
    budget = 200 * motion.frame_cost(steady.width, steady.height)  # 200 of the 600 frames
    sampled = analyse_clip(steady, budget=budget)
    assert sampled.frames <= frame_limit(steady, budget) == 200
    assert 0.2 < sampled.coverage < 0.6
    assert sampled.cuts and set(sampled.cuts) <= set(full.cuts)  # none at the joins between windows
    # windows spread over the whole clip: the still half and the moving half both seen
    assert full.motion[:19].max() < 0.5 and full.motion[21:].min() > 5
    np.testing.assert_allclose(sampled.motion[:18], full.motion[:18], atol=0.5)
    rel = np.abs(sampled.motion[22:] - full.motion[22:]) / full.motion[22:]
    assert np.median(rel) < 0.05 and rel.max() < 0.5  # unsampled bins take their neighbours' score


def test_within_the_budget_the_analysis_is_the_full_pass(steady, tmp_path):
    cut = write_clip(str(tmp_path / "cut.mp4"), moving_frames(2.0, 30, size=(64, 36), seed=1, speed=1.0)
                     + moving_frames(2.0, 30, size=(64, 36), seed=9, speed=1.0), 30)
    a = analyse_clip(probe_clip(cut))
    assert a.frames == 120 and a.coverage == 1.0 and a.cuts == (2.0,)
    assert analyse_clip(steady).frames == 600  # 600 frames of 64x36: within the default budget


def test_the_analysis_is_cached_by_clip_content_and_invalidated_by_a_new_version(steady, tmp_path, monkeypatch):
    from beatsync.adapters.local_fs import LocalBlobStore
    from beatsync.render.pipeline import analyse_clips

    store = LocalBlobStore(tmp_path / "blobs")
    _, first = analyse_clips([steady.path], cache=store)
    assert first[0].frames == 600
    assert [k.split("/")[:2] for k in store.list("cache/")] == [["cache", "clip_analysis"]]
    copy = tmp_path / "same-bytes-other-name.mp4"
    copy.write_bytes(open(steady.path, "rb").read())
    _, again = analyse_clips([str(copy)], cache=store)  # another job's copy of the same clip
    assert again[0].frames == 0
    np.testing.assert_array_equal(again[0].motion, first[0].motion)
    assert again[0].cuts == first[0].cuts and again[0].coverage == first[0].coverage
    _, other_budget = analyse_clips([steady.path], cache=store, budget=100.0)
    assert other_budget[0].frames > 0
    monkeypatch.setattr(motion, "ANALYSIS_VERSION", motion.ANALYSIS_VERSION + 1)
    _, changed = analyse_clips([steady.path], cache=store)
    assert changed[0].frames == 600
    _, cached = analyse_clips([steady.path], cache=store)
    assert cached[0].frames == 0


def test_a_jobs_time_budget_covers_each_clips_analysis(tmp_path):
    from beatsync.container import Container
    from beatsync.jobs import steps
    from beatsync.jobs.model import new_job
    from beatsync.settings import Settings

    settings = Settings.from_env({}, data_dir=tmp_path, clip_analysis_budget=600)
    c = Container(settings=settings)
    one, three = (new_job("create", {"audio_url": "https://x/s.mp3", "video_urls": ["https://x/c.mp4"] * n,
                                     "edit_config": {"preview_only": True, "preview_duration": 5}}, "alice")
                  for n in (1, 3))
    per_clip = steps.time_budget(c, three) - steps.time_budget(c, one) - 2 * settings.fetch_timeout
    assert per_clip == pytest.approx(2 * steps.clip_analysis_seconds(c)) and steps.clip_analysis_seconds(c) == 12.0


