"""The README's first command, end to end, in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys

import av

from tests.conftest import ROOT


def test_beatsync_make_on_the_examples(tmp_path):
    clips = sorted(str(p) for p in (ROOT / "examples").glob("*.mp4"))
    out = tmp_path / "out" / "video.mp4"
    proc = subprocess.run(
        [sys.executable, "-m", "beatsync.cli", "make", str(ROOT / "examples" / "lets_go_fishin_excerpt.opus"), *clips,
         "-o", str(out), "--preset", "music_video", "--resolution", "640x360", "--method", "librosa",
         "--otio", str(tmp_path / "mine.otio"), "--preview", "--preview-duration", "60"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "100.0% done" in proc.stderr and "shots" in proc.stdout
    for name in ("thumbnail.jpg", "edl.json", "beat_map.json", "edit.otio"):
        assert (out.parent / name).stat().st_size > 0
    edl = json.loads((out.parent / "edl.json").read_text())
    # a 60 s preview of a 30 s song: the whole song, and the CLI says so
    assert "preview_longer_than_song" in [w["code"] for w in edl["warnings"]]
    assert "warning: preview of 60 s asked" in proc.stderr and "(preview_longer_than_song)" in proc.stderr
    import opentimelineio as otio

    timeline = otio.adapters.read_from_file(str(tmp_path / "mine.otio"))
    assert timeline.duration().value == edl["total_frames"] and len(list(timeline.find_clips())) == len(edl["shots"]) + 1
    with av.open(str(out)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.codec_context.name == "h264" and a.codec_context.name == "aac"
        assert float(c.duration / 1e6) == __import__("pytest").approx(30.0, abs=0.1)
        assert sum(1 for _ in c.decode(v)) == edl["total_frames"] == 900


def test_beatsync_make_reports_a_bad_clip(tmp_path):
    bad = tmp_path / "holiday.mp4"
    bad.write_text("this is not a video")
    proc = subprocess.run(
        [sys.executable, "-m", "beatsync.cli", "make", str(ROOT / "examples" / "lets_go_fishin_excerpt.opus"),
         str(ROOT / "examples" / "cars.mp4"), str(bad), "-o", str(tmp_path / "o.mp4"), "--method", "librosa"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 2
    assert "holiday.mp4" in proc.stderr and "code: unsupported_media" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o.mp4").exists()
