"""Analysis on synthesized audio: tempo, beat times, meter, silence, edge cases; the numpy
BeatNet network against torch's output; the licence gate of the methods."""

from __future__ import annotations

import io

import numpy as np
import pytest

from beatsync.analysis import analyze
from beatsync.analysis.synth import click_track, encode_wav
from beatsync.analysis.trackers import agreed_tempo
from beatsync.errors import InvalidRequest

SR = 44100
#: how close a beat must be to a synthetic click: 20 ms; beatnet's 50 fps network places clicks
#: one frame (20 ms) early at worst (measured 10-20 ms early, uncorrected: no offset is fitted)
TOLERANCE = {"librosa": 0.020, "madmom": 0.020, "hybrid": 0.020, "beatnet": 0.030}
NC = {"allow_noncommercial": True}  # these tests acknowledge madmom's non-commercial licence


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


@pytest.mark.parametrize("method", ["beatnet", "librosa", "madmom", "hybrid"])
@pytest.mark.parametrize("bpm", [92.0, 120.0, 143.0])
def test_click_track_tempo_and_beats(method, bpm):
    y, truth = click_track(bpm, 16.0, SR)
    bm = analyze(wav(y), method, **NC)
    assert bm.tempo == pytest.approx(bpm, rel=0.02)
    est = np.array([b.time for b in bm.beats])
    assert matched(truth, est, TOLERANCE[method]) >= 0.9
    assert all(b.frame == round(b.time * 30) for b in bm.beats)
    assert all(0 <= b.strength <= 1 for b in bm.beats)
    assert bm.downbeats, "every method reports downbeats"


@pytest.mark.parametrize("method", ["librosa", "madmom"])
@pytest.mark.parametrize("meter", [3, 4])
def test_meter_and_downbeats_from_accents(method, meter):
    y, truth = click_track(120.0, 20.0, SR, beats_per_bar=meter, offset=0.5)
    bm = analyze(wav(y), method, **NC)
    assert bm.beats_per_bar == meter
    assert bm.time_signature == f"{meter}/4"
    true_down = truth[::meter]
    est_down = np.array([b.time for b in bm.downbeats])
    assert matched(true_down, est_down, 0.05) >= 0.8
    # bar bookkeeping is consistent
    for bar in bm.bars:
        assert bm.beats[bar.beat_index].is_downbeat
        assert bm.beats[bar.beat_index].beat_in_bar == 1


@pytest.mark.parametrize("meter", [3, 4])
def test_beatnet_meter_from_accents(meter):
    # the network (trained on music) hears the meter of accented clicks; its bar phase on a
    # synthetic 3/4 is not reliable (measured: wrong), so only the meter and the bars are checked
    y, _ = click_track(120.0, 20.0, SR, beats_per_bar=meter, offset=0.5)
    bm = analyze(wav(y), "beatnet")
    assert bm.beats_per_bar == meter and bm.time_signature == f"{meter}/4"
    assert bm.detection_method == "beatnet" and bm.model_licence == "CC-BY-4.0"
    for bar in bm.bars:
        assert bm.beats[bar.beat_index].is_downbeat and bar.num_beats <= meter


def test_silence_gives_empty_map():
    bm = analyze(wav(np.zeros(SR * 5, np.float32)), "librosa")
    assert bm.beats == [] and bm.tempo == 0 and bm.total_beats == 0
    assert bm.sections == [] and bm.time_signature == "none"
    assert bm.duration == pytest.approx(5.0, abs=0.01)


def test_noise_without_a_pulse_gives_no_beats():
    """White noise: a tracker finds "beats" in it (beatnet: 177 BPM, confidence 0.71 before issue 26);
    the onset envelope has no period, so the map has none (and the planner cuts on a steady grid)."""
    rng = np.random.default_rng(0)
    noise = (0.1 * rng.standard_normal(SR * 20)).astype(np.float32)
    bm = analyze(wav(noise), "beatnet")
    assert bm.beats == [] and bm.tempo == 0 and bm.time_signature == "none"
    assert bm.sections  # it is not silence: its sections stay
    y, _ = click_track(100.0, 20.0, SR, offset=0.3)
    assert len(analyze(wav(y + noise), "beatnet").beats) >= 30  # a pulse under the same noise is kept


def test_half_second_file_does_not_raise():
    y, _ = click_track(120.0, 0.5, SR, offset=0.1)
    for method in ("beatnet", "librosa", "madmom", "hybrid"):
        bm = analyze(wav(y), method, **NC)
        assert bm.duration == pytest.approx(0.5, abs=0.01)
        assert bm.total_beats == len(bm.beats)


def test_deterministic():
    y, _ = click_track(128.0, 10.0, SR)
    a = analyze(wav(y))  # the default method
    b = analyze(wav(y))
    assert a.detection_method == "beatnet"
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
    with pytest.raises(InvalidRequest) as e:
        analyze(b"x", "aubio")
    assert e.value.code == "invalid_method"
    with pytest.raises(InvalidRequest):
        analyze(b"x", "librosa", fps=0)


# --- BeatNet's network in numpy -------------------------------------------------------------

#: torch's output for BeatNet model 1 on a fixed 6-frame input (BeatNet's own BDA class, state
#: zeroed; computed once in a scratch venv with torch 2.13, see benchmarks/convert_beatnet_weights.py)
TORCH_MODEL1 = np.array([
    [0.2560413, 0.7206495, 0.0233092],
    [0.3258341, 0.5124679, 0.1616979],
    [0.1962604, 0.5947661, 0.2089735],
    [0.1519508, 0.6080559, 0.2399933],
    [0.1201097, 0.6554617, 0.2244285],
    [0.1060005, 0.6364177, 0.2575818],
])


def test_numpy_forward_equals_torch_on_a_fixed_input():
    from beatsync.analysis import beatnet

    t, j = np.arange(6)[:, None], np.arange(272)[None, :]
    x = (((t * 7 + j * 3) % 11) / 10.0).astype(np.float32)
    np.testing.assert_allclose(beatnet.forward(x, 1), TORCH_MODEL1, atol=2e-6)
    # the LSTM state starts at zero for every call: the same input gives the same output
    np.testing.assert_array_equal(beatnet.forward(x, 1), beatnet.forward(x, 1))
    assert not np.allclose(beatnet.forward(x, 2), TORCH_MODEL1, atol=1e-2)  # the models differ


def test_beatnet_activations_on_a_click_track():
    from beatsync.analysis import beatnet
    from beatsync.analysis.features import resample

    y, truth = click_track(120.0, 12.0, SR, offset=0.5)
    y22 = resample(y, SR, beatnet.SAMPLE_RATE)
    feats = beatnet.features(y22)
    assert feats.shape == (int(np.ceil(len(y22) / beatnet.HOP)), 272) and np.all(feats >= 0)
    act = beatnet.activations(y22, (1, 2, 3))
    assert act.shape == (feats.shape[0], 2) and act.dtype == np.float32
    assert np.all(act >= 0) and np.all(act.sum(axis=1) <= 1 + 1e-6)
    beat = act.sum(axis=1)  # beat or downbeat
    on = np.round(truth[truth > 2.0] * beatnet.FPS).astype(int)
    on = on[on < len(beat) - 1]
    near = np.maximum.reduce([beat[on - 1], beat[on], beat[on + 1]])
    off = beat[on[:-1] + 12]  # half-way between clicks (25 frames apart)
    assert np.median(near) > 0.6 and np.median(off) < 0.25  # measured: 0.89 and 0.10
    # periodicity: the autocorrelation peaks at one beat (25 frames = 0.5 s), not elsewhere
    x = beat - beat.mean()
    ac = np.correlate(x, x, "full")[len(x) - 1 :]
    assert 24 <= 10 + int(np.argmax(ac[10:40])) <= 26


# --- licences ---------------------------------------------------------------------------------

def test_a_stored_map_without_licence_reads_with_its_methods_licence():
    from beatsync.contracts import BeatMap

    y, _ = click_track(120.0, 4.0, SR)
    doc = analyze(wav(y), "librosa").model_dump(mode="json")
    for method, licence in (("librosa", "none"), ("hybrid", "CC-BY-NC-SA-4.0")):
        old = {k: v for k, v in doc.items() if k != "model_licence"} | {"detection_method": method}
        assert BeatMap.model_validate(old).model_licence == licence


@pytest.mark.parametrize("method", ["madmom", "hybrid"])
def test_noncommercial_models_need_an_acknowledgement(method):
    y, _ = click_track(120.0, 4.0, SR)
    with pytest.raises(InvalidRequest) as e:
        analyze(wav(y), method)
    assert e.value.code == "noncommercial_model" and e.value.http_status == 400
    assert "BEATSYNC_ALLOW_NONCOMMERCIAL_MODELS" in e.value.message
    bm = analyze(wav(y), method, allow_noncommercial=True)
    assert bm.detection_method == method and bm.model_licence == "CC-BY-NC-SA-4.0"


def test_default_method_is_commercially_usable_everywhere():
    from beatsync.analysis import DEFAULT_METHOD, METHODS, MODEL_LICENCES, NONCOMMERCIAL_METHODS
    from beatsync.settings import Settings

    assert DEFAULT_METHOD == METHODS[0] == "beatnet" and DEFAULT_METHOD not in NONCOMMERCIAL_METHODS
    assert Settings.from_env({}).analysis_method == DEFAULT_METHOD
    assert NONCOMMERCIAL_METHODS == {"madmom", "hybrid"} and MODEL_LICENCES["librosa"] == "none"
    from beatsync.errors import Misconfigured

    with pytest.raises(Misconfigured) as e:  # the operator's setting: a 500 to callers, details in the log
        Settings.from_env({"BEATSYNC_ANALYSIS_METHOD": "hybrid"})
    assert e.value.code == "invalid_setting" and "noncommercial" not in e.value.public_message
    assert "BEATSYNC_ALLOW_NONCOMMERCIAL_MODELS" in e.value.message
    s = Settings.from_env({"BEATSYNC_ANALYSIS_METHOD": "hybrid", "BEATSYNC_ALLOW_NONCOMMERCIAL_MODELS": "1"})
    assert s.analysis_method == "hybrid" and s.allow_noncommercial_models is True
    assert Settings.from_env({"BEATSYNC_ALLOW_NONCOMMERCIAL_MODELS": "0"}).allow_noncommercial_models is False
    with pytest.raises(Misconfigured):
        Settings.from_env({"BEATSYNC_ALLOW_NONCOMMERCIAL_MODELS": "maybe"})


def test_one_list_of_methods():
    import json
    import typing

    from beatsync.analysis import METHODS, MODEL_LICENCES
    from beatsync.contracts.beat_map import LICENCE_OF_METHOD, Method, ModelLicence
    from tests.conftest import ROOT

    assert tuple(typing.get_args(Method)) == METHODS and MODEL_LICENCES == LICENCE_OF_METHOD
    assert set(MODEL_LICENCES.values()) == set(typing.get_args(ModelLicence))
    for name in ("analyze_request", "create_request"):
        schema = json.loads((ROOT / "schemas" / f"{name}.schema.json").read_text())
        assert tuple(schema["properties"]["method"]["anyOf"][0]["enum"]) == METHODS
    beat_map = json.loads((ROOT / "schemas" / "beat_map.schema.json").read_text())
    assert tuple(beat_map["properties"]["detection_method"]["enum"]) == METHODS
    tf = (ROOT / "terraform" / "variables.tf").read_text()
    assert 'default     = "beatnet"' in tf and all(f'"{m}"' in tf for m in METHODS)
