"""Analysis on synthesized audio: tempo, beat times, meter, silence, edge cases."""

from __future__ import annotations

import io

import numpy as np
import pytest

from beatsync.analysis import analyze
from beatsync.analysis.synth import click_track, encode_wav
from beatsync.analysis.trackers import agreed_tempo

SR = 44100


def wav(y: np.ndarray) -> io.BytesIO:
    buf = io.BytesIO(encode_wav(y, SR))
    buf.name = "test.wav"
    return buf


def matched(truth: np.ndarray, est: np.ndarray, tol: float) -> float:
    """Fraction of true beats (after the first second) with an estimate within ``tol`` s."""
    truth = truth[truth > 1.0]
    if len(est) == 0:
        return 0.0
    return float(np.mean([np.min(np.abs(est - t)) <= tol for t in truth]))


@pytest.mark.parametrize("method", ["librosa", "madmom", "hybrid"])
@pytest.mark.parametrize("bpm", [92.0, 120.0, 143.0])
def test_click_track_tempo_and_beats(method, bpm):
    y, truth = click_track(bpm, 16.0, SR)
    bm = analyze(wav(y), method)
    assert bm.tempo == pytest.approx(bpm, rel=0.02)
    est = np.array([b.time for b in bm.beats])
    assert matched(truth, est, 0.020) >= 0.9
    assert all(b.frame == round(b.time * 30) for b in bm.beats)
    assert all(0 <= b.strength <= 1 for b in bm.beats)
    assert bm.downbeats, "every method reports downbeats"


@pytest.mark.parametrize("method", ["librosa", "madmom"])
@pytest.mark.parametrize("meter", [3, 4])
def test_meter_and_downbeats_from_accents(method, meter):
    y, truth = click_track(120.0, 20.0, SR, beats_per_bar=meter, offset=0.5)
    bm = analyze(wav(y), method)
    assert bm.beats_per_bar == meter
    assert bm.time_signature == f"{meter}/4"
    true_down = truth[::meter]
    est_down = np.array([b.time for b in bm.downbeats])
    assert matched(true_down, est_down, 0.05) >= 0.8
    # bar bookkeeping is consistent
    for bar in bm.bars:
        assert bm.beats[bar.beat_index].is_downbeat
        assert bm.beats[bar.beat_index].beat_in_bar == 1


def test_silence_gives_empty_map():
    bm = analyze(wav(np.zeros(SR * 5, np.float32)), "librosa")
    assert bm.beats == [] and bm.tempo == 0 and bm.total_beats == 0
    assert bm.sections == [] and bm.time_signature == "none"
    assert bm.duration == pytest.approx(5.0, abs=0.01)


def test_half_second_file_does_not_raise():
    y, _ = click_track(120.0, 0.5, SR, offset=0.1)
    for method in ("librosa", "madmom", "hybrid"):
        bm = analyze(wav(y), method)
        assert bm.duration == pytest.approx(0.5, abs=0.01)
        assert bm.total_beats == len(bm.beats)


def test_deterministic():
    y, _ = click_track(128.0, 10.0, SR)
    a = analyze(wav(y), "hybrid")
    b = analyze(wav(y), "hybrid")
    assert a.model_dump(exclude={"processing_time_ms"}) == b.model_dump(exclude={"processing_time_ms"})


def test_sections_cover_song_and_find_energy_rise():
    # quiet 16 s at 120 BPM, a rising 8 s, then 16 s of loud dense clicks: a build and a drop
    quiet, _ = click_track(120.0, 16.0, SR, offset=0.5)
    rise, _ = click_track(120.0, 8.0, SR, offset=0.0)
    rise *= np.linspace(0.2, 0.6, len(rise)).astype(np.float32)
    loud, _ = click_track(240.0, 16.0, SR, offset=0.0, accent=0)
    noise = np.random.default_rng(0).normal(0, 0.15, len(loud)).astype(np.float32)
    y = np.concatenate([0.15 * quiet, rise, np.clip(loud + noise, -1, 1)])
    bm = analyze(wav(y), "librosa")
    assert bm.sections[0].start_time == 0
    assert bm.sections[-1].end_time == pytest.approx(bm.duration, abs=0.01)
    for a, b in zip(bm.sections, bm.sections[1:]):
        assert a.end_time == b.start_time
    assert all(0 <= s.energy <= 1 for s in bm.sections)
    last = bm.section_at(35.0)
    first = bm.section_at(5.0)
    assert last.energy == 1.0 and first.energy < 0.6
    assert last.name in ("drop", "chorus")


def test_agreed_tempo_octaves():
    assert agreed_tempo(120, 121) == pytest.approx(120.5)
    assert agreed_tempo(170, 85) == 170  # the network's octave wins when both agree up to 2x
    assert agreed_tempo(120, 97) is None
    assert agreed_tempo(0, 120) is None


def test_invalid_method_and_fps():
    from beatsync.errors import InvalidRequest

    with pytest.raises(InvalidRequest) as e:
        analyze(b"x", "aubio")
    assert e.value.code == "invalid_method"
    with pytest.raises(InvalidRequest):
        analyze(b"x", "librosa", fps=0)
