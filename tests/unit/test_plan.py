"""Edit planning on hand-built beat maps: pure, no media."""

from __future__ import annotations

import json

import pytest

from beatsync.contracts import Beat, BeatMap, Section
from beatsync.contracts.schemas import validator
from beatsync.editing import ClipInfo, plan, resolve_config
from beatsync.errors import InvalidRequest


def beat_map(duration=40.0, bpm=120.0, sections=None, strengths=None) -> BeatMap:
    period = 60.0 / bpm
    beats = []
    n = int((duration - 0.25) / period)
    for i in range(n):
        t = round(0.25 + i * period, 4)
        s = strengths(i) if strengths else (1.0 if i % 4 == 0 else 0.4)
        beats.append(Beat(index=i, time=t, frame=round(t * 30), strength=s, is_downbeat=i % 4 == 0, bar=i // 4,
                          beat_in_bar=i % 4 + 1))
    sections = sections or [Section(name="verse", start_time=0, end_time=duration, energy=1.0, label="A")]
    return BeatMap(tempo=bpm, duration=duration, fps=30, total_beats=n, beats_per_bar=4, time_signature="4/4",
                   confidence=0.9, beats=beats, bars=[], sections=sections, detection_method="librosa",
                   processing_time_ms=1, audio_hash="0" * 64, analyzer="test")


CLIPS = [ClipInfo(0, "a.mp4", 20.0, tuple([0.1] * 40)), ClipInfo(1, "b.mp4", 20.0, tuple([0.9] * 40)),
         ClipInfo(2, "c.mp4", 20.0, tuple([0.5] * 40))]


def cfg(**kw):
    kw.setdefault("section_aware", False)
    return resolve_config(None, kw)


def test_every_beat_cuts_on_beat_frames():
    bm = beat_map()
    edl = plan(bm, CLIPS, cfg(sync_mode="every_beat", min_shot_duration=0.2))
    expected = [round(b.time * 30) for b in bm.beats if 0 < b.time][: len(edl.cut_frames) + 1]
    expected = [f for f in expected if f > 0]
    assert edl.cut_frames == expected[: len(edl.cut_frames)]
    assert len(edl.cut_frames) >= len(bm.beats) - 3
    # shots tile the timeline exactly
    assert edl.shots[0].start_frame == 0 and edl.shots[-1].end_frame == edl.total_frames == 1200
    for a, b in zip(edl.shots, edl.shots[1:]):
        assert a.end_frame == b.start_frame


def test_downbeats_and_strong_beats():
    bm = beat_map()
    down = plan(bm, CLIPS, cfg(sync_mode="downbeats"))
    assert set(down.cut_frames) <= {b.frame for b in bm.beats if b.is_downbeat}
    strong = plan(bm, CLIPS, cfg(sync_mode="strong_beats", strength_threshold=0.9))
    assert set(strong.cut_frames) <= {b.frame for b in bm.beats if b.strength >= 0.9}
    other = plan(bm, CLIPS, cfg(sync_mode="every_other", min_shot_duration=0.2))
    assert set(other.cut_frames) <= {b.frame for b in bm.beats if b.index % 2 == 0}


def test_minimum_shot_length():
    edl = plan(beat_map(bpm=180), CLIPS, cfg(sync_mode="every_beat", min_shot_duration=0.9))
    assert min(s.frames for s in edl.shots) >= 27


def test_clips_spread_fairly_and_never_stretched():
    short = ClipInfo(3, "short.mp4", 1.2, tuple([0.5] * 3))
    clips = CLIPS + [short]
    edl = plan(beat_map(), clips, cfg(sync_mode="every_beat", min_shot_duration=0.2))
    first = [s.clip for s in edl.shots[:4]]
    assert sorted(first) == [0, 1, 2, 3]
    counts = [sum(s.clip == c.index for s in edl.shots) for c in clips]
    # least-used first; a clip whose free ranges are too fragmented for a shot yields its turn
    assert max(counts[:3]) - min(counts[:3]) <= 2
    used: dict[int, list[tuple[float, float]]] = {}
    for s in edl.shots:
        clip = clips[s.clip]
        end = s.source_in + s.frames / edl.fps
        assert end <= clip.duration + 1e-6, "a shot must fit inside its clip"
        for a, b in used.get(s.clip, []):
            assert not (s.source_in < b - 1e-6 and a < end - 1e-6), "a range is reused before others are used"
        used.setdefault(s.clip, []).append((s.source_in, end))


def test_long_shot_is_split_not_stretched():
    clips = [ClipInfo(0, "tiny.mp4", 2.0, (0.5,) * 4)]
    edl = plan(beat_map(duration=12), clips, cfg(sync_mode="downbeats", min_shot_duration=5))
    assert all(s.frames / edl.fps <= 2.0 + 1e-6 for s in edl.shots)
    assert edl.shots[-1].end_frame == edl.total_frames


def test_section_aware_density_and_motion_matching():
    sections = [Section(name="verse", start_time=0, end_time=20, energy=0.3, label="A"),
                Section(name="chorus", start_time=20, end_time=40, energy=1.0, label="B")]
    bm = beat_map(sections=sections)
    edl = plan(bm, CLIPS, cfg(sync_mode="strong_beats", strength_threshold=0.9, section_aware=True,
                             min_shot_duration=0.2))
    verse_cuts = [f for f in edl.cut_frames if f < 600]
    chorus_cuts = [f for f in edl.cut_frames if f >= 600]
    assert len(chorus_cuts) > 2 * len(verse_cuts)
    chorus_motion = [s.motion for s in edl.shots if s.section == "chorus"]
    verse_motion = [s.motion for s in edl.shots if s.section == "verse"]
    assert sum(chorus_motion) / len(chorus_motion) > sum(verse_motion) / len(verse_motion)


def test_preview_picks_the_most_energetic_window():
    sections = [Section(name="intro", start_time=0, end_time=10, energy=0.2, label="A"),
                Section(name="verse", start_time=10, end_time=25, energy=0.5, label="B"),
                Section(name="drop", start_time=25, end_time=35, energy=1.0, label="C"),
                Section(name="outro", start_time=35, end_time=40, energy=0.3, label="D")]
    edl = plan(beat_map(sections=sections), CLIPS, cfg(preview_only=True, preview_duration=10))
    assert 24.0 <= edl.song.start <= 25.5
    assert edl.song.end - edl.song.start == pytest.approx(10)
    assert edl.total_frames == 300


def test_transitions_bounded():
    edl = plan(beat_map(), CLIPS, cfg(sync_mode="every_beat", transition_style="fade", transition_duration=2.0,
                                     min_shot_duration=0.5))
    assert edl.shots[0].transition.style == "cut"
    for prev, s in zip(edl.shots, edl.shots[1:]):
        assert s.transition.style == "fade"
        assert s.transition.duration <= min(prev.frames, s.frames) / edl.fps / 2 + 1e-6


def test_presets_and_overrides():
    c = resolve_config("cinematic", {"output_format": "webm"})
    assert c.sync_mode == "downbeats" and c.output_fps == 24 and c.output_format == "webm"
    with pytest.raises(InvalidRequest) as e:
        resolve_config("vaporwave")
    assert e.value.code == "unknown_preset"
    with pytest.raises(InvalidRequest) as e:
        resolve_config(None, {"output_fps": 240})
    assert e.value.code == "invalid_config"
    with pytest.raises(InvalidRequest):
        plan(beat_map(), [], cfg())


def test_edl_validates_against_schema():
    edl = plan(beat_map(), CLIPS, resolve_config("music_video"))
    validator("edl").validate(json.loads(edl.to_json()))


def test_silent_song_gives_one_shot():
    bm = beat_map()
    silent = bm.model_copy(update={"beats": [], "total_beats": 0, "sections": []})
    edl = plan(silent, CLIPS, cfg())
    assert len(edl.shots) >= 1 and edl.shots[-1].end_frame == edl.total_frames


def test_in_points_prefer_keyframes():
    keys = tuple(float(k) for k in range(0, 20, 2))  # a keyframe every 2 s
    clips = [ClipInfo(i, f"{i}.mp4", 20.0, tuple([0.5] * 40), keys) for i in range(3)]
    edl = plan(beat_map(duration=20), clips, cfg(sync_mode="downbeats"))
    on_key = [s for s in edl.shots if s.source_in in keys]
    assert len(on_key) >= 0.8 * len(edl.shots)


# -- the request means what it says ----------------------------------------------------------------

SECTIONED = [Section(name="intro", start_time=0, end_time=10, energy=0.2, label="A"),
             Section(name="chorus", start_time=10, end_time=30, energy=1.0, label="B"),
             Section(name="outro", start_time=30, end_time=40, energy=0.3, label="C")]


@pytest.mark.parametrize("mode", ["every_beat", "every_other", "strong_beats", "downbeats"])
def test_the_sync_mode_holds_on_every_cut_with_the_defaults(mode):
    # calm and lively sections, the default config otherwise (the old default section_aware broke this)
    for bpm in (120, 170):
        bm = beat_map(bpm=bpm, sections=SECTIONED)
        edl = plan(bm, CLIPS, resolve_config(None, {"sync_mode": mode}))
        allowed = {round(b.time * 30) for i, b in enumerate(bm.beats) if
                   {"every_beat": True, "every_other": i % 2 == 0, "strong_beats": b.strength >= 0.5,
                    "downbeats": b.is_downbeat}[mode]}
        assert edl.cut_frames and set(edl.cut_frames) <= allowed
        # and every beat of the mode is cut (170 BPM: 0.35 s apart, over the 0.25 s default minimum)
        assert len(edl.cut_frames) == len([f for f in allowed if 0 < f < edl.total_frames])
        assert not [w for w in edl.warnings if w.code == "beats_skipped"]


def test_section_aware_is_a_named_option_that_says_what_it_does():
    bm = beat_map(sections=SECTIONED)
    edl = plan(bm, CLIPS, resolve_config(None, {"sync_mode": "strong_beats", "section_aware": True}))
    downbeats = {b.frame for b in bm.beats if b.is_downbeat}
    assert {f for f in edl.cut_frames if f < 300} <= downbeats  # calm intro: downbeats only
    assert len([f for f in edl.cut_frames if 300 <= f < 900]) > 30  # chorus: every beat
    from beatsync.editing import PRESETS

    for name, p in PRESETS.items():  # the /presets descriptions say how each preset cuts
        assert "section_aware off" in p["description"] and not p["config"].get("section_aware")


def test_skipped_beats_are_a_warning():
    edl = plan(beat_map(bpm=170), CLIPS, resolve_config(None, {"sync_mode": "every_beat", "min_shot_duration": 0.4}))
    (w,) = [w for w in edl.warnings if w.code == "beats_skipped"]
    assert "every_beat" in w.message and "0.4" in w.message


def test_a_transition_style_without_a_duration_gets_the_seeds_0_1_s():
    assert resolve_config(None, {"transition_style": "fade"}).transition_duration == 0.1
    assert resolve_config("fast_cuts", {"transition_style": "glitch"}).transition_duration == 0.1
    assert resolve_config("music_video", {"transition_style": "glitch"}).transition_duration == 0.1
    assert resolve_config("cinematic", {"transition_style": "fade"}).transition_duration == 0.4  # the preset's
    assert resolve_config(None, {}).transition_style == "cut"
    edl = plan(beat_map(), CLIPS, resolve_config("fast_cuts", {"transition_style": "glitch"}))
    assert all(s.transition.style == "glitch" and s.transition.duration == 0.1 for s in edl.shots[1:])
    # an explicit 0 is a hard cut, and says so
    edl = plan(beat_map(), CLIPS, resolve_config(None, {"transition_style": "fade", "transition_duration": 0}))
    assert all(s.transition.style == "cut" for s in edl.shots)
    assert [w.code for w in edl.warnings] == ["transition_is_cut"]


def test_presets_follow_the_seed():
    mv, fc, ci = (resolve_config(n) for n in ("music_video", "fast_cuts", "cinematic"))
    assert (mv.sync_mode, mv.transition_style, mv.transition_duration, mv.punch) == ("strong_beats", "fade", 0.1, True)
    assert (fc.sync_mode, fc.transition_style, fc.punch) == ("every_beat", "cut", False) and fc.min_shot_duration <= 0.25
    assert (ci.sync_mode, ci.transition_style, ci.output_fps) == ("downbeats", "zoom", 24)
    assert ci.min_shot_duration > mv.min_shot_duration > fc.min_shot_duration


def test_warnings_for_what_cannot_be_honoured():
    bm = beat_map(duration=20)
    edl = plan(bm, CLIPS, cfg(preview_only=True, preview_duration=60))
    assert [w.code for w in edl.warnings] == ["preview_longer_than_song"] and edl.total_frames == 600
    tiny = CLIPS + [ClipInfo(3, "blink.mp4", 0.1, (0.5,))]
    edl = plan(bm, tiny, cfg(sync_mode="downbeats"))
    assert "clip_unused" in [w.code for w in edl.warnings] and "blink.mp4" in str(edl.warnings)
    assert all(s.clip != 3 for s in edl.shots)
    edl = plan(beat_map(bpm=240), CLIPS, cfg(sync_mode="every_beat", transition_style="fade",
                                             transition_duration=0.5, min_shot_duration=0.2))
    assert "transition_shortened" in [w.code for w in edl.warnings]


# -- fairness by screen time -----------------------------------------------------------------------

def test_screen_time_is_fair_on_a_long_song_with_clips_of_very_different_lengths():
    from beatsync.editing.plan import fair_shares, screen_time

    lengths = [2.6, 4.0, 30.2, 39.9, 139.4]  # the shared footage's lengths
    clips = [ClipInfo(i, f"c{i}.mp4", d, tuple([0.2 * i] * int(d * 2 + 1))) for i, d in enumerate(lengths)]
    for song, n_capped in ((133, 4), (60, 2), (600, 0)):
        # fair shares: equal, but no clip gets more than its footage (no repeats while footage is left)
        share = song / 5
        while song < sum(lengths):
            capped = [d for d in lengths if d < share]
            share_next = (song - sum(capped)) / (5 - len(capped))
            if abs(share_next - share) < 1e-9:
                break
            share = share_next
        # with less footage than song, each clip's footage is shown as often as the others'
        targets = [min(d, share) for d in lengths] if song < sum(lengths) else [d * song / sum(lengths) for d in lengths]
        for mode, bpm in (("every_beat", 150), ("downbeats", 100), ("strong_beats", 120)):
            edl = plan(beat_map(duration=song, bpm=bpm), clips, cfg(sync_mode=mode))
            times = screen_time(edl)
            longest = max(s.frames for s in edl.shots) / edl.fps
            shares = fair_shares(clips, edl)  # the planner's: capped at what a clip fills in whole shots
            # the stated bound: twice the longest shot + 0.5 s
            bound = 2 * longest + 0.5
            for i, target in enumerate(targets):
                if song < sum(lengths):  # (with repeats, shares follow what each clip fills in whole shots)
                    assert abs(shares[i] - target) <= 2 * longest, (song, mode, i, target, shares)
                assert abs(times[i] - shares[i]) <= bound, (song, mode, i, shares[i], times)
            under = [w.message for w in edl.warnings if w.code == "clip_under_share"]
            assert len(under) == n_capped and all("c4.mp4" not in m for m in under), (song, under)
            assert ("footage_reused" in [w.code for w in edl.warnings]) == (song > sum(lengths))


def test_a_rounded_output_size_is_a_warning():
    """160x90 renders as 160x88 (whole 4:2:0 chroma planes): the request is not silently changed."""
    bm = beat_map()
    edl = plan(bm, CLIPS, resolve_config("fast_cuts", {"output_resolution": "160x90"}))
    assert (edl.width, edl.height) == (160, 88)
    assert "resolution_rounded" in [w.code for w in edl.warnings]
    exact = plan(bm, CLIPS, resolve_config("fast_cuts", {"output_resolution": "160x96"}))
    assert "resolution_rounded" not in [w.code for w in exact.warnings]


# -- issue 26: no jump cuts, sparse footage, a song without beats, what a short clip means ------------

def test_one_clip_twice_in_a_row_only_where_the_take_continues():
    """A long clip that must fill most of the screen, two short ones, fades asked: where the long
    clip follows itself its take continues (in-point = previous out-point, ``continues``, no
    transition, not a cut), as the EDL's schema says."""
    import json

    from beatsync.contracts.schemas import validator

    clips = [ClipInfo(0, "long.mp4", 60.0, (0.5,) * 120), ClipInfo(1, "a.mp4", 2.0, (0.5,) * 4),
             ClipInfo(2, "b.mp4", 2.0, (0.5,) * 4)]
    edl = plan(beat_map(duration=20.0), clips, cfg(sync_mode="every_beat", transition_style="fade",
                                                    transition_duration=0.1))
    pairs = [(p, s) for p, s in zip(edl.shots, edl.shots[1:]) if p.clip == s.clip]
    assert len(pairs) >= 10 and all(s.continues for _, s in pairs)
    for p, s in pairs:
        assert s.source_in == pytest.approx(p.source_in + p.frames / edl.fps, abs=2e-4)
        assert s.transition.style == "cut" and s.transition.duration == 0
    assert all(not s.continues and s.transition.style == "fade" for s in edl.shots[1:] if s.clip != edl.shots[s.index - 1].clip)
    assert edl.cut_frames == [s.start_frame for s in edl.shots[1:] if not s.continues]
    assert "take_continued" in [w.code for w in edl.warnings]
    doc = json.loads(edl.to_json())
    validator("edl").validate(doc)
    assert [s["continues"] for s in doc["shots"]] == [s.continues for s in edl.shots]


def test_another_moment_of_a_clip_only_where_it_looks_different():
    """Looks (16x9 grey per 0.1 s): a clip whose first half is dark and second half bright may cut
    from one half to the other (it reads as a cut), never within a half (a jump)."""
    dark, bright = bytes([40] * 144), bytes([200] * 144)
    clip = ClipInfo(0, "two.mp4", 20.0, (0.5,) * 40, looks=(dark,) * 100 + (bright,) * 100)
    assert clip.alike(1.0, 8.0) and not clip.alike(3.0, 15.0)
    edl = plan(beat_map(duration=8.0), [clip], cfg(sync_mode="every_beat"))
    for p, s in zip(edl.shots, edl.shots[1:]):
        out = p.source_in + p.frames / edl.fps
        assert s.continues or (out < 9.5) != (s.source_in < 10.0), (p, s)
    assert sum(not s.continues for s in edl.shots[1:]) >= 2  # it does cut, across the halves


def test_sparse_footage_starts_on_a_new_picture_and_changes_only_on_a_beat():
    # a new picture every 0.4 s (holds); the beat every 0.4 s from 0.25 s: every_other shots of 0.8 s
    holds = tuple((round(0.4 * k, 4), round(0.4 * (k + 1), 4)) for k in range(50))
    sparse = ClipInfo(0, "sparse.mp4", 20.0, (0.5,) * 40, holds=holds)
    other = ClipInfo(1, "other.mp4", 20.0, (0.5,) * 40)
    edl = plan(beat_map(duration=12.0, bpm=150), [sparse, other], cfg(sync_mode="every_other"))
    mine = [s for s in edl.shots if s.clip == 0]
    assert len(mine) >= 4
    beat_offsets = lambda s: [b.time - s.start_frame / 30 for b in beat_map(duration=12.0, bpm=150).beats]  # noqa: E731
    for s in mine:
        assert s.continues or min(abs(s.source_in - h0) for h0, _ in holds) < 1e-6
        inside = [h1 for _, h1 in holds if s.source_in + 1e-4 < h1 < s.source_in + s.frames / 30 - 1e-4]
        assert all(min(abs((h - s.source_in) - o) for o in beat_offsets(s)) <= 1.5 / 30 for h in inside), s
    # a song whose cuts are longer than any picture, no beat inside to change it on: not used, and said
    slow = plan(beat_map(duration=12.0, bpm=60), [sparse, other], cfg(sync_mode="every_beat", min_shot_duration=0.5))
    assert all(s.clip == 1 for s in slow.shots)
    (unused,) = [w.message for w in slow.warnings if w.code == "clip_unused"]
    assert "new picture only every 0.40 s" in unused


@pytest.mark.parametrize("mode,every", [("every_beat", 15), ("every_other", 30), ("strong_beats", 30), ("downbeats", 60)])
def test_a_song_without_beats_is_cut_on_a_steady_grid_with_a_warning(mode, every):
    silent = beat_map(duration=10.0).model_copy(update={"beats": [], "tempo": 0.0, "total_beats": 0, "sections": []})
    edl = plan(silent, CLIPS, cfg(sync_mode=mode))
    assert edl.cut_frames == list(range(every, 300 - 7, every))
    (w,) = [w for w in edl.warnings if w.code == "no_beats"]
    assert f"steady 120 BPM grid instead, {mode} every {every / 30:g} s" in w.message


def test_a_clip_under_its_share_is_told_what_it_can_fill_and_what_to_do():
    clips = [ClipInfo(0, "one.mp4", 1.5, (0.5,) * 3), ClipInfo(1, "three.mp4", 3.5, (0.5,) * 7)] + [
        ClipInfo(2 + i, f"long{i}.mp4", 40.0, (0.5,) * 80) for i in range(2)]
    edl = plan(beat_map(duration=40.0), clips, cfg(sync_mode="every_beat"))
    under = {w.message.split()[1]: w.message for w in edl.warnings if w.code == "clip_under_share"}
    assert set(under) == {"one.mp4", "three.mp4"}
    fills = {name: float(m.split("can fill only ")[1].split(" s")[0]) for name, m in under.items()}
    assert fills["one.mp4"] < fills["three.mp4"] <= 3.5  # each its own figure, not one share for both
    for m in under.values():
        assert "give more footage of it, use fewer clips, or make a shorter edit" in m and "fair share" not in m
