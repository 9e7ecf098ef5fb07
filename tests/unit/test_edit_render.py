"""Issue 13's promises checked on RENDERED output (decoded with PyAV), not only on the EDL: the sync
mode holds on every cut, transitions are there when asked, clips share the screen fairly, the
clips' own cuts never show off the beat, punches land on strong downbeats, edit.otio reads back."""

from __future__ import annotations

import numpy as np
import pytest
import av

from beatsync.analysis.synth import click_track, encode_wav
from beatsync.contracts import Beat, BeatMap, Section
from beatsync.editing import ClipInfo, plan, resolve_config
from beatsync.editing.plan import screen_time
from beatsync.render.encode import render
from beatsync.render.motion import analyse_clip, normalise
from beatsync.render.probe import probe_clip
from beatsync.render.synth import moving_frames, solid_frames, write_clip

SR = 22050
COLOURS = [(220, 30, 30), (30, 200, 40), (30, 40, 220), (230, 220, 40), (200, 40, 200)]


def beat_map(duration: float, bpm: float = 120.0, offset: float = 0.5, sections=None) -> BeatMap:
    period = 60.0 / bpm
    beats = []
    for i in range(int((duration - offset) / period) + 1):
        t = round(offset + i * period, 4)
        if t >= duration:
            break
        beats.append(Beat(index=i, time=t, frame=round(t * 30), strength=1.0 if i % 4 == 0 else (0.6 if i % 4 == 2 else 0.3),
                          is_downbeat=i % 4 == 0, bar=i // 4, beat_in_bar=i % 4 + 1))
    sections = sections or [Section(name="verse", start_time=0, end_time=duration, energy=0.8, label="A")]
    return BeatMap(tempo=bpm, duration=duration, fps=30, total_beats=len(beats), beats_per_bar=4, time_signature="4/4",
                   confidence=0.9, beats=beats, bars=[], sections=sections, detection_method="librosa",
                   processing_time_ms=1, audio_hash="0" * 64, analyzer="test")


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    y, _ = click_track(120.0, 20.0, SR, offset=0.5)
    p = tmp_path_factory.mktemp("song") / "clicks.wav"
    p.write_bytes(encode_wav(y, SR))
    return str(p)


def grey(path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.reformat(width=64, height=36, format="gray").to_ndarray().astype(np.int16)
                for f in c.decode(c.streams.video[0])]


def rgb_means(path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.array([f.to_ndarray(format="rgb24").reshape(-1, 3).mean(0) for f in c.decode(c.streams.video[0])])


def visual_cuts(frames: list[np.ndarray]) -> list[int]:
    """Output frames where the picture jumps: a difference to the previous frame above 8 grey levels
    and 3x the median of the (non-zero) differences around it (written apart from render/motion.py's)."""
    d = np.array([0.0] + [float(np.abs(b - a).mean()) for a, b in zip(frames, frames[1:])])
    out = []
    for n in range(1, len(d)):
        around = np.concatenate([d[max(1, n - 6):n], d[n + 1:n + 7]])
        around = around[around > 0.5]  # a held frame (a clip slower than the output) is no motion
        if d[n] > 8 and d[n] > 3 * max(1.0, float(np.median(around)) if around.size else 1.0):
            out.append(n)
    return out


def colour_of(mean: np.ndarray) -> int:
    return int(np.argmin([np.abs(np.array(c) - mean).sum() for c in COLOURS]))


def clip_infos(paths):
    probes = [probe_clip(p) for p in paths]
    analyses = [analyse_clip(p) for p in probes]
    infos = [ClipInfo(i, f"{i}.mp4", p.duration, m, p.keyframes, a.cuts)
             for i, (p, a, m) in enumerate(zip(probes, analyses, normalise([a.motion for a in analyses])))]
    return probes, infos


@pytest.fixture(scope="module")
def colour_clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("colours")
    return [write_clip(str(d / f"c{i}.mp4"), solid_frames(rgb, 8.0, 30, size=(96, 64))) for i, rgb in enumerate(COLOURS[:4])]


@pytest.mark.parametrize("mode,bpm", [("every_beat", 170), ("strong_beats", 120), ("downbeats", 120)])
def test_the_sync_mode_holds_on_every_rendered_cut(song, colour_clips, tmp_path, mode, bpm):
    sections = [Section(name="intro", start_time=0, end_time=3, energy=0.2, label="A"),
                Section(name="chorus", start_time=3, end_time=6, energy=1.0, label="B")]
    bm = beat_map(6.0, bpm, sections=sections)
    probes, infos = clip_infos(colour_clips)
    edl = plan(bm, infos, resolve_config(None, {"sync_mode": mode, "output_resolution": "96x64"}))
    render(edl, probes, song, str(tmp_path / "o.mp4"))
    colours = [colour_of(m) for m in rgb_means(tmp_path / "o.mp4")]
    changes = [n for n in range(1, len(colours)) if colours[n] != colours[n - 1]]
    keep = {"every_beat": lambda i, b: True, "strong_beats": lambda i, b: b.strength >= 0.5,
            "downbeats": lambda i, b: b.is_downbeat}[mode]
    allowed = {round(b.time * 30) for i, b in enumerate(bm.beats) if keep(i, b)}
    assert changes and set(changes) <= allowed, (sorted(set(changes) - allowed), mode)
    assert set(changes) == set(edl.cut_frames) - {s.start_frame for p, s in zip(edl.shots, edl.shots[1:]) if s.clip == p.clip}
    # every beat of the mode is cut (but one closer to the end than the minimum shot, which is a warning)
    end = edl.total_frames - round(0.25 * 30)
    assert len(edl.cut_frames) == len([f for f in allowed if 0 < f <= end])


@pytest.mark.parametrize("preset,style", [(None, "fade"), ("fast_cuts", "glitch"), ("cinematic", None)])
def test_transitions_asked_are_rendered(song, cut_clips, tmp_path, preset, style):
    # a style without a duration (and the cinematic preset's zoom) against the same edit with hard cuts
    probes, infos = clip_infos([cut_clips["plain"], cut_clips["cuts"], cut_clips["dissolve"]])
    cfg = resolve_config(preset, {"transition_style": style, "output_resolution": "96x64", "sync_mode": "downbeats",
                                  "output_fps": 30, "min_shot_duration": 1.0})
    edl = plan(beat_map(6.0), infos, cfg)
    cut = edl.model_copy(update={"shots": [s.model_copy(update={"transition": s.transition.model_copy(
        update={"style": "cut", "duration": 0.0})}) for s in edl.shots]})
    render(edl, probes, song, str(tmp_path / "t.mp4"))
    render(cut, probes, song, str(tmp_path / "c.mp4"))
    with_t, hard = grey(tmp_path / "t.mp4"), grey(tmp_path / "c.mp4")
    cuts = [s for s in edl.shots[1:] if not s.continues]  # a shot continuing its take has no transition
    assert len(cuts) >= 2 and all(s.transition.style == "cut" for s in edl.shots if s.continues)
    for s in cuts:
        n = int(round(s.transition.duration * 30))
        assert s.transition.style == (style or "zoom") and n == (3 if style else 12)
        # the transition's frames differ from the hard cut's (most on the cut frame) ...
        diffs = [np.abs(with_t[s.start_frame + k] - hard[s.start_frame + k]).mean() for k in range(n)]
        assert diffs[0] > 3 and np.mean(diffs) > 2.5, (s.index, diffs)  # a cut against a cut: < 1
        # ... and after it the incoming shot is shown untouched
        assert np.abs(with_t[s.start_frame + n + 1] - hard[s.start_frame + n + 1]).mean() < 3


def test_screen_time_is_fair_on_the_rendered_output(song, tmp_path):
    lengths = [1.0, 2.0, 6.0, 20.0]
    paths = [write_clip(str(tmp_path / f"c{i}.mp4"), solid_frames(COLOURS[i], d, 15, size=(32, 32)), fps=15)
             for i, d in enumerate(lengths)]
    probes, infos = clip_infos(paths)
    edl = plan(beat_map(20.0), infos, resolve_config(None, {"output_resolution": "32x32", "output_fps": 15}))
    render(edl, probes, song, str(tmp_path / "o.mp4"))
    colours = [colour_of(m) for m in rgb_means(tmp_path / "o.mp4")]
    shown = {i: colours.count(i) / 15 for i in range(4)}
    targets = [1.0, 2.0, 6.0, 11.0]  # equal shares of 20 s, capped at each clip's footage
    longest = max(s.frames for s in edl.shots) / 15
    for i, target in enumerate(targets):
        assert abs(shown[i] - target) <= 2 * longest + 0.5, shown
    assert shown == pytest.approx(screen_time(edl), abs=1 / 15)
    assert [w.code for w in edl.warnings].count("clip_under_share") == 3


# -- the clips' own cuts -----------------------------------------------------------------------------

def _segment(seconds: float, fps: float, seed: int, level: int) -> list[np.ndarray]:
    frames = moving_frames(seconds, fps, size=(96, 64), speed=1.0, seed=seed)
    return [np.clip(f.astype(np.int16) // 2 + level, 0, 255).astype(np.uint8) for f in frames]


def _dissolve(a: np.ndarray, b: np.ndarray, n: int) -> list[np.ndarray]:
    return [((a.astype(np.float32) * (1 - k / (n + 1)) + b.astype(np.float32) * (k / (n + 1)))).astype(np.uint8)
            for k in range(1, n + 1)]


@pytest.fixture(scope="module")
def cut_clips(tmp_path_factory):
    """Clips assembled from several shots: hard cuts, a dissolve, a stutter file, and one plain shot."""
    d = tmp_path_factory.mktemp("cuts")
    a = _segment(1.3, 30, 1, 20) + _segment(0.9, 30, 2, 120) + _segment(1.7, 30, 3, 60) + _segment(1.1, 30, 4, 150)
    b1, b2 = _segment(1.4, 30, 5, 140), _segment(2.0, 30, 6, 10)
    b = b1 + _dissolve(b1[-1], b2[0], 12) + b2
    # few real frames: a new picture every 0.5 s, held (a 30 fps file from a 2 fps source)
    c = [f for k in range(7) for f in [_segment(1 / 30, 30, 10 + k, 40 + 25 * k)[0]] * 15]
    plain = _segment(4.0, 30, 20, 80)
    return {"cuts": write_clip(str(d / "cuts.mp4"), a), "dissolve": write_clip(str(d / "dissolve.mp4"), b),
            "stutter": write_clip(str(d / "stutter.mp4"), c), "plain": write_clip(str(d / "plain.mp4"), plain)}


def test_shot_boundaries_inside_clips_are_found(cut_clips):
    found = {k: analyse_clip(probe_clip(p)).cuts for k, p in cut_clips.items()}
    near = lambda xs, t: any(abs(x - t) <= 1.5 / 30 for x in xs)  # noqa: E731
    assert all(near(found["cuts"], t) for t in (1.3, 2.2, 3.9)) and len(found["cuts"]) <= 4, found["cuts"]
    assert found["plain"] == ()
    assert sum(near(found["stutter"], 0.5 * k) for k in range(1, 7)) == 6, found["stutter"]
    # every frame of the dissolve (1.4 s to 1.8 s) is a boundary, and only around it
    within = [t for t in found["dissolve"] if 0.8 <= t <= 2.4]
    assert within == list(found["dissolve"]) and all(any(abs(t - x) <= 1.5 / 30 for x in within)
                                                     for t in np.arange(1.4, 1.8, 1 / 30)), found["dissolve"]


def test_sparse_footage_is_found_and_motion_is_not(cut_clips, tmp_path):
    """Few real pictures (a new one every 0.5 s, held) give held pictures; moving footage, one with
    cuts, and a 10 fps picture in a 30 fps file (each frame shown 3 times: motion) give none."""
    holds = analyse_clip(probe_clip(cut_clips["stutter"])).holds
    assert [round(h0 * 2) / 2 for h0, _ in holds] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    assert all(abs(h0 - round(h0 * 2) / 2) <= 1.5 / 30 and h1 > h0 + 0.4 for h0, h1 in holds[1:])
    assert analyse_clip(probe_clip(cut_clips["plain"])).holds == ()
    assert analyse_clip(probe_clip(cut_clips["cuts"])).holds == ()
    tripled = [f for f in _segment(1.5, 10, 30, 90) for _ in range(3)]
    assert analyse_clip(probe_clip(write_clip(str(tmp_path / "ten.mp4"), tripled))).holds == ()


def _unplanned_off_beat(path, edl, bm) -> list[int]:
    planned = set(edl.cut_frames) | {0}
    beats = {round((b.time - edl.song.start) * edl.fps) for b in bm.beats}
    ok = {f + k for f in planned | beats for k in (-1, 0, 1)}
    return [n for n in visual_cuts(grey(path)) if n not in ok]


@pytest.mark.parametrize("mode", ["every_other", "downbeats"])
def test_no_cut_off_the_beat_from_the_clips_own_cuts(song, cut_clips, tmp_path, mode):
    probes, infos = clip_infos(list(cut_clips.values()))
    bm = beat_map(10.0)
    cfg = resolve_config(None, {"sync_mode": mode, "output_resolution": "96x64"})
    edl = plan(bm, infos, cfg)
    render(edl, probes, song, str(tmp_path / "o.mp4"))
    assert _unplanned_off_beat(tmp_path / "o.mp4", edl, bm) == []
    # the control: the same edit planned blind to the clips' own cuts shows them off the beat
    blind = plan(bm, [ClipInfo(c.index, c.name, c.duration, c.motion, c.keyframes) for c in infos], cfg)
    render(blind, probes, song, str(tmp_path / "blind.mp4"))
    assert len(_unplanned_off_beat(tmp_path / "blind.mp4", blind, bm)) >= 1


def test_punch_zooms_on_strong_downbeats_inside_long_shots(song, tmp_path):
    clip = write_clip(str(tmp_path / "p.mp4"), moving_frames(10.0, 30, size=(96, 64), speed=0, seed=3))
    probes, infos = clip_infos([clip])
    bm = beat_map(8.0)
    edl = plan(bm, infos, resolve_config(None, {"sync_mode": "downbeats", "min_shot_duration": 4,
                                                "output_resolution": "96x64", "punch": True}))
    accents = [f for s in edl.shots for f in s.accents]
    downbeats = {round(b.time * 30) for b in bm.beats if b.is_downbeat}
    assert accents and set(accents) <= downbeats
    render(edl, probes, song, str(tmp_path / "o.mp4"))
    frames = grey(tmp_path / "o.mp4")
    d = [0.0] + [float(np.abs(b - a).mean()) for a, b in zip(frames, frames[1:])]
    punched = {f + k for f in accents for k in range(7)} | set(edl.cut_frames)
    assert all(d[f] > 3 for f in accents)  # a still picture jumps on each punch ...
    assert max(x for n, x in enumerate(d) if n not in punched) < 1  # ... and nowhere else
    off = plan(bm, infos, resolve_config(None, {"sync_mode": "downbeats", "min_shot_duration": 4,
                                                "output_resolution": "96x64"}))
    assert all(not s.accents for s in off.shots)  # off by default


def test_otio_export_reads_back_as_the_edl(tmp_path):
    import opentimelineio as otio

    from beatsync.render.timelines import Media, write_timeline
    from tests.timelines import source_in

    sections = [Section(name="verse", start_time=0, end_time=12, energy=0.4, label="A"),
                Section(name="chorus", start_time=12, end_time=20, energy=1.0, label="B")]
    bm = beat_map(20.0, sections=sections)
    clips = [ClipInfo(i, f"c{i}.mp4", d, (0.5,) * int(d * 2 + 1), cuts=(1.7,)) for i, d in enumerate((6.0, 9.0, 30.0))]
    edl = plan(bm, clips, resolve_config("music_video", {"sync_mode": "every_other", "output_fps": 25}))
    path = str(tmp_path / "edit.otio")
    write_timeline(edl, bm, Media("https://example.com/song.mp3", [str(tmp_path / f"c{i}.mp4") for i in range(3)]), path)
    tl = otio.adapters.read_from_file(path)
    (video,), (audio,) = tl.video_tracks(), tl.audio_tracks()
    clips_back = list(video.find_clips())
    assert len(clips_back) == len(edl.shots)
    for shot, clip in zip(edl.shots, clips_back):
        r = clip.source_range
        assert r.start_time.rate == 25 and r.duration.value == shot.frames
        assert r.start_time.value == source_in(edl, shot, None)  # in frames of the sequence
        assert clip.metadata["beatsync"]["source_in"] == shot.source_in  # the exact in-point kept
        assert clip.media_reference.target_url == (tmp_path / f"c{shot.clip}.mp4").as_uri()
        start = video.range_of_child(clip).start_time
        assert start.to_frames() == shot.start_frame  # the cut lands where the EDL puts it
    transitions = [t for t in video if isinstance(t, otio.schema.Transition)]
    faded = [s for s in edl.shots if s.transition.style != "cut"]
    assert len(transitions) == len(faded) > 0
    for t, s in zip(transitions, faded):
        assert t.transition_type == "SMPTE_Dissolve" and t.in_offset.value == 0
        assert t.out_offset.value == round(s.transition.duration * 25)
    assert video.duration().value == audio.duration().value == tl.duration().value == edl.total_frames
    (song,) = audio.find_clips()
    assert song.media_reference.target_url == "https://example.com/song.mp3"
    markers = tl.tracks.markers
    assert len([m for m in markers if m.name in ("beat", "downbeat")]) == len(bm.beats)
    assert [(m.name, m.marked_range.start_time.to_seconds()) for m in markers if m.color == "BLUE"] == [
        ("verse", 0.0), ("chorus", 12.0)]
    assert [w["code"] for w in tl.metadata["beatsync"]["warnings"]] == [w.code for w in edl.warnings]
    assert [c.metadata["beatsync"]["continues"] for c in clips_back] == [s.continues for s in edl.shots]
    # one clip alone with fades asked: its take continues from shot to shot, each clip says so, no transition
    alone = plan(bm, clips[2:], resolve_config("music_video", {"sync_mode": "every_other", "output_fps": 25}))
    write_timeline(alone, bm, Media("song.mp3", [str(tmp_path / "c2.mp4")]), str(tmp_path / "alone.otio"))
    tl = otio.adapters.read_from_file(str(tmp_path / "alone.otio"))
    (video,) = tl.video_tracks()
    flags = [c.metadata["beatsync"]["continues"] for c in video.find_clips()]
    assert flags == [s.continues for s in alone.shots] and sum(flags) >= 5
    assert len([t for t in video if isinstance(t, otio.schema.Transition)]) == len(alone.cut_frames)
