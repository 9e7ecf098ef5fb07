"""Edit planning on hand-built beat maps: pure, no media."""

from __future__ import annotations

import json

import jsonschema
import pytest

from beatsync.contracts import Beat, BeatMap, Section
from beatsync.editing import ClipInfo, plan, resolve_config
from beatsync.errors import InvalidRequest
from tests.conftest import ROOT


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
    schema = json.loads((ROOT / "schemas" / "edl.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(json.loads(edl.to_json()))


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
