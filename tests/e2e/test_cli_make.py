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
    for name in ("video.mp4.thumbnail.jpg", "video.mp4.edl.json", "video.mp4.beat_map.json", "video.mp4.otio"):
        assert (out.parent / name).stat().st_size > 0
    edl = json.loads((out.parent / "video.mp4.edl.json").read_text())
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
    for name in ("clip.mp4.thumbnail.jpg", "clip.mp4.edl.json", "clip.mp4.beat_map.json", "clip.mp4.otio"):
        assert (out.parent / name).stat().st_size > 0
    edl = json.loads((out.parent / "clip.mp4.edl.json").read_text())
    # a 60 s preview of a 30 s song: the whole song, and the CLI says so
    assert "preview_longer_than_song" in [w["code"] for w in edl["warnings"]]
    assert "warning: preview of 60 s asked" in proc.stderr and "(preview_longer_than_song)" in proc.stderr
    import opentimelineio as otio

    timeline = otio.adapters.read_from_file(str(tmp_path / "mine.otio"))
    assert timeline.duration().value == edl["total_frames"] and len(list(timeline.find_clips())) == len(edl["shots"]) + 1


def test_extension_decides_the_format_and_side_files_belong_to_their_video(tmp_path):
    """``-o out/video.webm`` beside an earlier ``out/video.mp4``: each output keeps its own side files."""
    out = tmp_path / "out"
    # --otio naming the very file written beside the video is fine (no copy onto itself)
    a = beatsync("make", SONG, *CLIPS, "-o", str(out / "video.mp4"), "--otio", str(out / "video.mp4.otio"), *SMALL)
    assert a.returncode == 0, a.stderr
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    b = beatsync("make", SONG, *CLIPS, "-o", str(out / "video.webm"), *SMALL, "--fps", "24")
    assert b.returncode == 0, b.stderr
    with av.open(str(out / "video.mp4")) as c:
        assert c.format.name.startswith("mov") and c.streams.video[0].codec_context.name == "h264"
    with av.open(str(out / "video.webm")) as c:
        assert "webm" in c.format.name and c.streams.video[0].codec_context.name in ("vp9", "libvpx-vp9")
    sides = ("thumbnail.jpg", "edl.json", "beat_map.json", "otio")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"video.{ext}.{side}" for ext in ("mp4", "webm") for side in sides] + ["video.mp4", "video.webm"])
    # the MP4's side files are untouched by the WebM's render, and each EDL describes its own video
    assert {n: (out / n).read_bytes() for n in before} == before
    for ext, fps in (("mp4", 30), ("webm", 24)):
        edl = json.loads((out / f"video.{ext}.edl.json").read_text())
        assert (edl["output_format"], edl["fps"]) == (ext, fps)
    assert f"beside it: video.webm.thumbnail.jpg, video.webm.edl.json" in b.stdout


def test_one_render_per_output_at_a_time(tmp_path):
    """A render holds ``OUT.lock`` (flock) from start to summary; a second render of the same output
    is refused at once with output_busy and writes nothing; the lock is gone when the first ends."""
    import fcntl
    import time

    out = tmp_path / "out" / "v.mp4"
    lock = tmp_path / "out" / "v.mp4.lock"
    # another render holds the output (the lock as beatsync takes it): refused, nothing written
    lock.parent.mkdir()
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, b"4242\n")
        busy = beatsync("make", SONG, *CLIPS, "-o", str(out), *SMALL)
        assert busy.returncode == 2, busy.stderr
        assert (f"error: -o {out}: another beatsync make is writing it now (process 4242); wait for it to end "
                "or choose another output (code: output_busy)") in busy.stderr
        assert sorted(p.name for p in lock.parent.iterdir()) == ["v.mp4.lock"]  # its lock left alone
    finally:
        os.close(fd)
    # a render holds the lock while it runs (seen in /proc/locks: a FLOCK on the file's inode, its pid)
    proc = subprocess.Popen([sys.executable, "-m", "beatsync.cli", "make", SONG, *CLIPS, "-o", str(out), *SMALL],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    held = False
    while proc.poll() is None and not held:
        try:
            inode = lock.stat().st_ino
            held = any(f" FLOCK " in ln and f" {proc.pid} " in ln and f":{inode} " in ln
                       for ln in open("/proc/locks"))
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0 and held, stderr
    assert not lock.exists() and out.stat().st_size > 0 and "v.mp4:" in stdout


def test_ctrl_c_during_start_up_is_one_line_and_130(tmp_path):
    """SIGINT while the CLI is still importing (seen through -X importtime) or just after: exit 130, one
    line, no traceback, nothing written."""
    import signal

    for marker in ("beatsync.errors", "pydantic", "beatsync.editing.presets", "numpy"):
        out = tmp_path / marker / "v.mp4"
        proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "beatsync.cli", "make", SONG, *CLIPS,
                                 "-o", str(out), *SMALL], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []
        for line in proc.stderr:  # -X importtime: one line per import as it completes
            lines.append(line)
            if line.startswith("import time:") and line.rsplit("|", 1)[-1].strip() == marker:
                proc.send_signal(signal.SIGINT)
                break
        else:
            raise AssertionError(f"{marker} never imported: {''.join(lines[-5:])}")
        rest = proc.stderr.read()
        proc.wait(timeout=60)
        # numpy may be imported by the clips' analysis thread after the first progress line
        said = [ln for ln in rest.splitlines() if not ln.startswith(("import time:", "progress "))]
        assert proc.returncode == 130 and said == ["interrupted"], (marker, proc.returncode, rest[-2000:])
        assert not (tmp_path / marker).exists()


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


def test_the_same_mistake_is_the_same_error_in_every_command(tmp_path):
    missing = str(tmp_path / "missing.mp3")
    expected = f"error: {missing}: no such file (code: file_not_found)"
    analyze = beatsync("analyze", missing)
    make = beatsync("make", missing, CLIPS[0], "-o", str(tmp_path / "x.mp4"))
    assert analyze.returncode == make.returncode == 2
    assert analyze.stderr.strip() == make.stderr.strip() == expected
    folder = beatsync("analyze", str(tmp_path))
    assert folder.returncode == 2 and f"{tmp_path}: not a file (code: file_not_found)" in folder.stderr


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


def test_make_help_states_each_presets_defaults_and_the_limits():
    """`cinematic` renders at 24 fps: --fps says so (read from the presets), and numeric flags state the
    limits the edit-config schema sets (--preview-duration's minimum among them)."""
    from beatsync.contracts.schemas import load
    from beatsync.editing.presets import PRESETS

    text = " ".join(beatsync("make", "--help").stdout.split())
    options = dict(re.findall(r"(--[a-z-]+) (?:[A-Za-z]+|\{[^}]*\}) (.*?)(?= --[a-z-]+ |$)", text))
    schema = load("edit_config")["properties"]
    for flag, field in (("--fps", "output_fps"), ("--preview-duration", "preview_duration"),
                        ("--min-shot-duration", "min_shot_duration"), ("--transition-duration", "transition_duration")):
        lo, hi = schema[field]["minimum"], schema[field]["maximum"]
        assert f"{lo:g} to {hi:g}" in options[flag].replace(".0 ", " ").replace(".0;", ";"), (flag, options[flag])
        for name, preset in PRESETS.items():
            if field in preset["config"]:
                assert f"{name}: {preset['config'][field]}" in options[flag], (flag, options[flag])
    assert "cinematic: 24" in options["--fps"] and "default: 30)" not in options["--fps"]


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
