"""The beat map's confidence (agreement with an independent tracker), the metrical level of slow
clicks, the edit's fallback on unsure beats, and the licence of every model the default loads."""

from __future__ import annotations

import io

import numpy as np
import pytest

from beatsync.analysis import analyze, trackers
from beatsync.analysis.synth import click_track, encode_wav
from beatsync.contracts import Beat, BeatMap, Section
from beatsync.contracts.beat_map import LOW_CONFIDENCE
from beatsync.editing import ClipInfo, plan, resolve_config

pytestmark = pytest.mark.unit

SR = 22050


def wav(y: np.ndarray) -> io.BytesIO:
    return io.BytesIO(encode_wav(y, SR))


def clicks_at(times: np.ndarray, duration: float) -> np.ndarray:
    """Equal clicks at the given times (no accents)."""
    y = np.zeros(int(duration * SR), np.float32)
    t = np.arange(int(0.06 * SR)) / SR
    click = (np.sin(2 * np.pi * 1600 * t) * np.exp(-t * 60)).astype(np.float32)
    for bt in times:
        i = int(bt * SR)
        seg = y[i : i + len(click)]
        seg += click[: len(seg)]
    return 0.9 * y


def test_beat_agreement_is_the_beat_f_measure():
    a = np.arange(0.5, 20.0, 0.5)
    assert trackers.beat_agreement(a, a + 0.05) == 1.0  # inside the 70 ms window
    assert trackers.beat_agreement(a, a + 0.1) == 0.0  # outside it
    assert trackers.beat_agreement(a, a[::2]) == pytest.approx(2 * len(a[::2]) / (len(a) + len(a[::2])))
    assert trackers.beat_agreement(a, np.zeros(0)) == 0.0
    half = np.concatenate([a[a < 10], a[a >= 10] + 0.25])
    song, spans = trackers.confidence(a, [half], [(0, 10), (10, 20)])
    assert spans == [1.0, 0.0] and song == pytest.approx(len(a[a < 10]) / len(a))
    # the best of several references counts, span by span
    other = np.concatenate([a[a < 10] + 0.25, a[a >= 10]])
    assert trackers.confidence(a, [half, other], [(0, 10), (10, 20)])[1] == [1.0, 1.0]
    assert trackers.confidence(a, [], [(0, 10)]) == (0.0, [0.0])


@pytest.mark.parametrize("bpm", [60.0, 72.0])
def test_slow_click_track_at_its_own_metrical_level(bpm):
    # the DBN alone decodes these at double tempo (120 and 144 BPM) though every second beat has no
    # activation under it; the network's periodicity and librosa's tempo both say ``bpm``
    y, truth = click_track(bpm, 20.0, SR, offset=0.5)
    bm = analyze(wav(y))
    assert bm.detection_method == "beatnet"
    assert bm.tempo == pytest.approx(bpm, rel=0.03)
    assert bm.total_beats == pytest.approx(len(truth), abs=2)
    assert bm.confidence >= 0.9


def test_confidence_steady_clicks_against_rubato_noise_and_silence():
    steady = analyze(wav(click_track(120.0, 20.0, SR)[0]))
    assert steady.confidence >= 0.9 and all(s.confidence >= 0.9 for s in steady.sections)
    # the same clicks with the tempo swinging between 70 and 170 BPM every 5 s
    t, times = 0.5, []
    while t < 19.5:
        times.append(t)
        t += 60.0 / (120.0 + 50.0 * np.sin(2 * np.pi * t / 5.0))
    rubato = analyze(wav(clicks_at(np.array(times), 20.0)))
    assert rubato.confidence <= steady.confidence - 0.1
    noise = analyze(wav(np.random.default_rng(0).standard_normal(20 * SR).astype(np.float32) * 0.3))
    assert noise.confidence < LOW_CONFIDENCE
    scattered = analyze(wav(clicks_at(np.sort(np.random.default_rng(1).uniform(0.5, 19.5, 40)), 20.0)))
    assert scattered.confidence < LOW_CONFIDENCE
    silence = analyze(wav(np.zeros(10 * SR, np.float32)))
    assert silence.confidence == 0.0 and silence.total_beats == 0


def test_every_model_the_default_loads_is_commercially_licensed():
    from beatsync.analysis import DEFAULT_METHOD, MODEL_LICENCES, beatnet
    from beatsync.analysis._libs import madmom_downbeat_rnn
    from beatsync.analysis.methods import BEATNET_MODELS, MODEL_FILE_LICENCES, MODELS_OF_METHOD

    loaded = MODELS_OF_METHOD[DEFAULT_METHOD]
    assert loaded and all(MODEL_FILE_LICENCES[m] == "CC-BY-4.0" for m in loaded)
    assert MODEL_LICENCES[DEFAULT_METHOD] == "CC-BY-4.0" and beatnet.LICENCE == "CC-BY-4.0"
    assert set(BEATNET_MODELS) <= set(beatnet.MODEL_IDS)
    # what a run of the default really loads: the listed BeatNet networks, and no madmom model
    beatnet.weights.cache_clear()
    madmom_downbeat_rnn.cache_clear()
    analyze(wav(click_track(120.0, 4.0, SR)[0]))
    assert beatnet.weights.cache_info().currsize == len(BEATNET_MODELS)
    assert madmom_downbeat_rnn.cache_info().currsize == 0
    licence_text = (beatnet.resources.files("beatsync.analysis") / "models" / "BEATNET-LICENSE.md").read_text()
    assert "CC BY 4.0" in licence_text and "commercial use, is allowed" in licence_text


def _map(confidence: float, section_confidences: tuple[float, float]) -> BeatMap:
    beats = []
    for i in range(78):
        t = round(0.25 + i * 0.5, 4)
        beats.append(Beat(index=i, time=t, frame=round(t * 30), strength=0.8, is_downbeat=i % 4 == 0, bar=i // 4,
                          beat_in_bar=i % 4 + 1))
    sections = [Section(name="verse", start_time=0, end_time=20.0, energy=1.0, label="A",
                        confidence=section_confidences[0]),
                Section(name="chorus", start_time=20.0, end_time=40.0, energy=1.0, label="B",
                        confidence=section_confidences[1])]
    return BeatMap(tempo=120, duration=40.0, fps=30, total_beats=len(beats), beats_per_bar=4, time_signature="4/4",
                   confidence=confidence, beats=beats, bars=[], sections=sections, detection_method="beatnet",
                   model_licence="CC-BY-4.0", processing_time_ms=1, audio_hash="0" * 64, analyzer="test")


CLIPS = [ClipInfo(0, "a.mp4", 30.0, tuple([0.5] * 60)), ClipInfo(1, "b.mp4", 30.0, tuple([0.5] * 60))]


def _cut_times(edl) -> list[float]:
    return [f / 30 for f in edl.cut_frames]


def test_edit_cuts_only_downbeats_where_the_beats_are_unsure():
    config = resolve_config(None, {"sync_mode": "every_beat", "section_aware": False, "min_shot_duration": 0.2})
    sure = plan(_map(0.95, (0.95, 0.95)), CLIPS, config)
    assert "low_beat_confidence" not in {w.code for w in sure.warnings}
    assert len(sure.cut_frames) >= 70
    # the second section unsure: every beat cut in the first, downbeats only in the second
    bm = _map(0.7, (0.95, 0.3))
    edl = plan(bm, CLIPS, config)
    warning = [w for w in edl.warnings if w.code == "low_beat_confidence"]
    assert len(warning) == 1 and "20.2 s" in warning[0].message and "0.30" in warning[0].message
    downbeats = {round(b.time * 30) for b in bm.beats if b.is_downbeat}
    late = [f for f in edl.cut_frames if f >= 600]
    assert late and set(late) <= downbeats
    assert len([f for f in edl.cut_frames if f < 600]) >= 35
    # the whole song unsure: downbeats only everywhere
    low = plan(_map(0.3, (0.95, 0.95)), CLIPS, config)
    assert set(low.cut_frames) <= downbeats and len(low.cut_frames) >= 15
    assert "low_beat_confidence" in {w.code for w in low.warnings}
