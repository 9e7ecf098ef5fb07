"""The README's first command and the CLI's promises, each run as a fresh process on real media."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys

import av
import pytest

from tests.conftest import ROOT

SONG = str(ROOT / "examples" / "lets_go_fishin_excerpt.opus")
CLIPS = sorted(str(p) for p in (ROOT / "examples").glob("*.mp4"))
SMALL = ["--resolution", "160x90", "--preview", "--preview-duration", "5", "--method", "librosa"]


def beatsync(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "beatsync.cli", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


def test_beatsync_make_on_the_examples(tmp_path):
    out = tmp_path / "out" / "video.mp4"
    proc = beatsync("make", SONG, *CLIPS, "-o", str(out), "--preset", "music_video", "--resolution", "640x360",
                    "--method", "librosa")
    assert proc.returncode == 0, proc.stderr
    # piped stderr: plain progress lines, one per step, ending at 100 %
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("progress")]
    assert lines[-1] == "progress 100.0% done" and len(lines) >= 4
    assert "\r" not in proc.stderr and "shots" in proc.stdout
    for name in ("video.thumbnail.jpg", "video.edl.json", "video.beat_map.json"):
        assert (out.parent / name).stat().st_size > 0
    edl = json.loads((out.parent / "video.edl.json").read_text())
    with av.open(str(out)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.codec_context.name == "h264" and a.codec_context.name == "aac"
        assert float(c.duration / 1e6) == pytest.approx(30.0, abs=0.1)
        assert sum(1 for _ in c.decode(v)) == edl["total_frames"] == 900


def test_otio_timeline_and_warnings_are_written_and_printed(tmp_path):
    out = tmp_path / "out" / "clip.mp4"
    proc = beatsync("make", SONG, *CLIPS, "-o", str(out), "--resolution", "160x90", "--method", "librosa",
                    "--otio", str(tmp_path / "mine.otio"), "--preview", "--preview-duration", "60")
    assert proc.returncode == 0, proc.stderr
    for name in ("clip.thumbnail.jpg", "clip.edl.json", "clip.beat_map.json", "clip.otio"):
        assert (out.parent / name).stat().st_size > 0
    edl = json.loads((out.parent / "clip.edl.json").read_text())
    # a 60 s preview of a 30 s song: the whole song, and the CLI says so
    assert "preview_longer_than_song" in [w["code"] for w in edl["warnings"]]
    assert "warning: preview of 60 s asked" in proc.stderr and "(preview_longer_than_song)" in proc.stderr
    import opentimelineio as otio

    timeline = otio.adapters.read_from_file(str(tmp_path / "mine.otio"))
    assert timeline.duration().value == edl["total_frames"] and len(list(timeline.find_clips())) == len(edl["shots"]) + 1


def test_extension_decides_the_format_and_side_files_belong_to_their_video(tmp_path):
    out = tmp_path / "out"
    # --otio naming the very file written beside the video is fine (no copy onto itself)
    a = beatsync("make", SONG, *CLIPS, "-o", str(out / "a.mp4"), "--otio", str(out / "a.otio"), *SMALL)
    b = beatsync("make", SONG, *CLIPS, "-o", str(out / "b.webm"), *SMALL)
    assert a.returncode == 0 and b.returncode == 0, (a.stderr, b.stderr)
    with av.open(str(out / "a.mp4")) as c:
        assert c.format.name.startswith("mov") and c.streams.video[0].codec_context.name == "h264"
    with av.open(str(out / "b.webm")) as c:
        assert "webm" in c.format.name and c.streams.video[0].codec_context.name in ("vp9", "libvpx-vp9")
    for stem in ("a", "b"):
        for side in ("thumbnail.jpg", "edl.json", "beat_map.json", "otio"):
            assert (out / f"{stem}.{side}").stat().st_size > 0


def test_an_extension_that_is_not_a_format_is_refused(tmp_path):
    proc = beatsync("make", SONG, *CLIPS, "-o", str(tmp_path / "e8.avi"), *SMALL)
    assert proc.returncode == 2 and "code: invalid_output" in proc.stderr and ".mp4, .webm" in proc.stderr
    mismatch = beatsync("make", SONG, *CLIPS, "-o", str(tmp_path / "x.webm"), "--format", "mp4", *SMALL)
    assert mismatch.returncode == 2 and "does not match" in mismatch.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("flag, value, expected", [
    ("--resolution", "1080p", "--resolution: 1080p: expected WIDTHxHEIGHT, e.g. 1920x1080"),
    ("--fps", "100", "--fps 100: Input should be less than or equal to 60"),
    ("--transition-duration", "9", "--transition-duration 9.0: Input should be less than or equal to 2"),
])
def test_validation_errors_read_like_the_cli(tmp_path, flag, value, expected):
    proc = beatsync("make", SONG, *CLIPS, "-o", str(tmp_path / "x.mp4"), flag, value)
    assert proc.returncode == 2
    assert expected in proc.stderr, proc.stderr
    assert "pydantic" not in proc.stderr and "http" not in proc.stderr and "Traceback" not in proc.stderr


def test_a_missing_file_is_file_not_found(tmp_path):
    proc = beatsync("make", SONG, str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "x.mp4"))
    assert proc.returncode == 2 and "nope.mp4: no such file (code: file_not_found)" in proc.stderr


def test_beatsync_make_reports_a_bad_clip(tmp_path):
    bad = tmp_path / "holiday.mp4"
    bad.write_text("this is not a video")
    proc = beatsync("make", SONG, str(ROOT / "examples" / "cars.mp4"), str(bad), "-o", str(tmp_path / "o.mp4"),
                    "--method", "librosa")
    assert proc.returncode == 2
    assert "holiday.mp4" in proc.stderr and "code: unsupported_media" in proc.stderr
    assert "Traceback" not in proc.stderr
    # the error is on its own line, not glued to a progress line
    assert any(line.startswith("error: ") for line in proc.stderr.splitlines())
    assert not (tmp_path / "o.mp4").exists()


def test_version_and_every_flag_says_its_default():
    version = beatsync("--version")
    from beatsync import __version__

    assert version.returncode == 0 and version.stdout.strip() == f"beatsync {__version__}"
    for command in ("analyze", "make", "serve"):
        text = beatsync(command, "--help").stdout
        options = re.split(r"\n(?=  -)", text.split("options:", 1)[1].strip("\n"))
        assert len(options) >= 3
        for option in options:
            flag = option.split()[0]
            if flag in ("-h,", "--help"):
                continue
            if command == "make" and flag in ("-o",):
                continue  # required: no default
            assert "default" in " ".join(option.split()), f"{command} {flag} does not say its default"
    make_help = beatsync("make", "--help").stdout
    assert "named edit (default: music_video)" in " ".join(make_help.split())


def test_progress_is_a_bar_on_a_terminal(tmp_path):
    """With a terminal attached the progress is drawn by tqdm (carriage returns, a bar), not lines."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "beatsync.cli", "make", SONG, *CLIPS, "-o",
                             str(tmp_path / "t.mp4"), *SMALL], stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=600) == 0
    os.close(master)
    text = b"".join(chunks).decode(errors="replace")
    assert "\r" in text and "100%" in text and "█" in text
    assert "progress " not in text
