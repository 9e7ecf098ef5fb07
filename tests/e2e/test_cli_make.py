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
         "-o", str(out), "--preset", "music_video", "--resolution", "640x360", "--method", "librosa"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "100.0% done" in proc.stderr and "shots" in proc.stdout
    for name in ("thumbnail.jpg", "edl.json", "beat_map.json"):
        assert (out.parent / name).stat().st_size > 0
    edl = json.loads((out.parent / "edl.json").read_text())
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
