"""Beat trackers: each returns beat times, their bar positions and the meter.

* ``beatnet`` (default): BeatNet's CRNN (CC BY 4.0 weights, run with numpy: :mod:`.beatnet`)
  gives beat and downbeat activations at 50 fps, decoded by madmom's DBN (BSD code) over 3 and
  4 beats per bar. No madmom model is used: commercially usable.
* ``librosa``: dynamic-programming beat tracker over the onset envelope, with a log-normal
  tempo prior centred on 120 BPM; bar phase and meter from accents (:mod:`.meter`).
* ``madmom``: one pass of the RNN downbeat network (beats and downbeats together) decoded
  by a DBN that considers 3 and 4 beats per bar.
* ``hybrid``: the same network activations, fused with librosa's onset envelope, decoded by
  the DBN inside a tempo window both libraries agree on (this resolves octave errors).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._libs import librosa, madmom_downbeat_rnn
from .features import FEATURE_SR, FRAME_RATE, HOP, Features, peak_at
from .meter import infer_bar_positions
from .methods import BEATNET_MODELS  # the networks the beatnet method runs (one place, with their licences)

MADMOM_FPS = 100
MIN_BPM, MAX_BPM = 55.0, 215.0
PRIOR_BPM = 120.0


@dataclass(frozen=True)
class Tracking:
    times: np.ndarray  # beat times in seconds, increasing
    positions: np.ndarray  # 1 = downbeat
    beats_per_bar: int
    salience: float  # 0..1, how clearly the tracker heard a pulse (for the confidence)


def _empty() -> Tracking:
    return Tracking(np.zeros(0), np.zeros(0, int), 0, 0.0)


#: onset-envelope peaks trail the true onset by about one hop (measured 21-24 ms on clicks)
LIBROSA_LATENCY = 0.023
#: the network's 100 fps frames place beats 10-14 ms early (measured on clicks)
MADMOM_LATENCY = -0.010


def librosa_tempo(features: Features) -> float:
    """Tempo with a log-normal prior around 120 BPM (librosa), refined below the lag grid.

    librosa's estimate is quantised to whole autocorrelation lags (117.5 or 123 BPM, never
    120, at 43 frames/s); fed back to the beat tracker that error makes the beats drift. The
    peak is refined by parabolic interpolation of the onset autocorrelation.
    """
    lr = librosa()
    tempo = float(np.atleast_1d(lr.feature.tempo(
        onset_envelope=features.onset, sr=FEATURE_SR, hop_length=HOP, start_bpm=PRIOR_BPM, std_bpm=1.0,
        max_tempo=MAX_BPM,
    ))[0])
    if tempo <= 0:
        return 0.0
    lag = 60.0 * FRAME_RATE / tempo
    ac = lr.autocorrelate(features.onset - features.onset.mean(), max_size=int(lag * 1.2) + 3)
    lo, hi = max(1, int(lag * 0.9)), min(len(ac) - 2, int(np.ceil(lag * 1.1)))
    if hi <= lo:
        return tempo
    k = lo + int(np.argmax(ac[lo : hi + 1]))
    a, b, c = ac[k - 1], ac[k], ac[k + 1]
    denom = a - 2 * b + c
    shift = 0.5 * (a - c) / denom if denom < 0 else 0.0
    return float(60.0 * FRAME_RATE / (k + np.clip(shift, -0.5, 0.5)))


def onset_beats(features: Features, bpm: float = 0.0) -> np.ndarray:
    """Beat times of librosa's dynamic-programming tracker over the onset envelope (no trained
    model) at ``bpm`` (0: librosa's tempo estimate): the ``librosa`` method's beats, and the
    estimate the networks' beats are checked against for the confidence (:func:`confidence`)."""
    lr = librosa()
    if not np.any(features.onset > 0):
        return np.zeros(0)
    bpm = bpm or librosa_tempo(features)
    _, frames = lr.beat.beat_track(
        onset_envelope=features.onset, sr=FEATURE_SR, hop_length=HOP, bpm=bpm, tightness=100, trim=False,
        units="frames",
    )
    frames = _trim_weak_edges(features, np.asarray(frames, dtype=int))
    times = refine_to_onsets(features, frames) - LIBROSA_LATENCY
    return times[times >= 0]


def pulse_beats(features: Features) -> np.ndarray:
    """Peaks of librosa's predominant local pulse (Grosche and Müller's PLP: local Fourier tempogram
    peaks, a different algorithm from the dynamic-programming tracker) where the onset envelope is
    not silent: the reference the ``librosa`` method's own beats are checked against."""
    lr = librosa()
    if not np.any(features.onset > 0):
        return np.zeros(0)
    pulse = lr.beat.plp(onset_envelope=features.onset, sr=FEATURE_SR, hop_length=HOP,
                        tempo_min=MIN_BPM, tempo_max=MAX_BPM)
    peaks = np.flatnonzero(lr.util.localmax(pulse) & (features.onset[: len(pulse)] > 0))
    return refine_to_onsets(features, peaks) - LIBROSA_LATENCY if len(peaks) else np.zeros(0)


def track_librosa(features: Features) -> Tracking:
    times = onset_beats(features)
    if len(times) < 2:
        return _empty()
    positions, meter = infer_bar_positions(features, times)
    return Tracking(times, positions, meter, _pulse_clarity(features, times))


def _trim_weak_edges(features: Features, frames: np.ndarray, ratio: float = 0.1) -> np.ndarray:
    """Drop leading and trailing beats with (almost) no onset under them (librosa's own trim
    also drops real beats near the end, where its smoothing window is cut short)."""
    if len(frames) == 0:
        return frames
    strength = peak_at(features.onset, frames)
    keep = np.flatnonzero(strength >= ratio * np.median(strength))
    return frames[keep[0] : keep[-1] + 1] if len(keep) else frames[:0]


def madmom_activations(y44: np.ndarray, sample_rate: int) -> np.ndarray:
    """(frames, 2) beat and downbeat activations at 100 fps from the RNN ensemble."""
    from madmom.audio.signal import Signal

    signal = Signal(y44, sample_rate=sample_rate, num_channels=1)
    return np.asarray(madmom_downbeat_rnn()(signal), dtype=np.float32)


def _dbn(activations: np.ndarray, min_bpm: float = MIN_BPM, max_bpm: float = MAX_BPM, *,
         fps: float = MADMOM_FPS, latency: float = MADMOM_LATENCY) -> tuple[np.ndarray, np.ndarray]:
    from madmom.features.downbeats import DBNDownBeatTrackingProcessor

    if activations.shape[0] < fps or float(activations.max(initial=0.0)) < 0.05:
        return np.zeros(0), np.zeros(0, int)
    dbn = DBNDownBeatTrackingProcessor(
        beats_per_bar=[3, 4], min_bpm=min_bpm, max_bpm=max_bpm, fps=fps, num_tempi=60
    )
    result = np.asarray(dbn(np.ascontiguousarray(activations, dtype=np.float64)))
    if result.ndim != 2 or result.shape[0] == 0:
        return np.zeros(0), np.zeros(0, int)
    times = result[:, 0].astype(float) - latency
    return times, result[:, 1].astype(int)


def _from_dbn(times: np.ndarray, positions: np.ndarray, activations: np.ndarray, fps: float = MADMOM_FPS) -> Tracking:
    if len(times) < 2:
        return _empty()
    meter = int(positions.max())  # the DBN numbers beats 1..beats_per_bar
    idx = np.clip(np.round(times * fps).astype(int), 0, activations.shape[0] - 1)
    salience = float(np.clip(activations[idx].sum(axis=1).mean(), 0.0, 1.0))
    return Tracking(times, positions, meter, salience)


def track_madmom(act: np.ndarray) -> Tracking:
    """Beats and downbeats from the network's activations (:func:`madmom_activations`)."""
    times, positions = _dbn(act)
    return _from_dbn(times, positions, act)




def beatnet_activations(y22: np.ndarray, models: tuple[int, ...] = BEATNET_MODELS) -> np.ndarray:
    """(frames, 2) beat and downbeat activations at 50 fps from BeatNet's CRNN (numpy)."""
    from . import beatnet

    return beatnet.activations(y22, models)


#: two tempo estimates within this ratio are the same tempo (the usual tempo-accuracy tolerance, 8 %)
TEMPO_TOLERANCE = 0.08


def track_beatnet(act: np.ndarray, onset_tempo: float = 0.0) -> Tracking:
    """Beats and downbeats from BeatNet activations (:func:`beatnet_activations`), madmom's DBN.

    The metrical level is decided by three sources, not the DBN alone: when the network's own
    periodicity (:func:`activation_tempo`) and the onset envelope's tempo (:func:`onset_tempo`,
    0 if unknown) agree with each other and the DBN's tempo is a multiple or
    a fraction of theirs (2, 3, 1/2, 1/3), the DBN is run again with its tempo range cut to
    the two agreeing estimates (± the tolerance). On slow click tracks (60-72 BPM) the DBN
    alone picks double tempo although every second beat has no activation under it.
    """
    from .beatnet import FPS

    times, positions = _dbn(act, fps=FPS, latency=0.0)
    if len(times) >= 4 and onset_tempo > 0:
        tempo_dbn = tempo_from_beats(times)
        tempo_act = activation_tempo(act.sum(axis=1), FPS)
        if (tempo_act > 0 and abs(tempo_act / onset_tempo - 1.0) <= TEMPO_TOLERANCE
                and abs(tempo_dbn / tempo_act - 1.0) > TEMPO_TOLERANCE
                and agreed_tempo(tempo_dbn, tempo_act, TEMPO_TOLERANCE) is not None):
            lo = min(tempo_act, onset_tempo) / (1 + TEMPO_TOLERANCE)
            hi = max(tempo_act, onset_tempo) * (1 + TEMPO_TOLERANCE)
            retimes, repositions = _dbn(act, lo, hi, fps=FPS, latency=0.0)
            if len(retimes) >= 4:
                times, positions = retimes, repositions
    return _from_dbn(times, positions, act, fps=FPS)


def activation_tempo(activation: np.ndarray, fps: float, prior_bpm: float = 0.0) -> float:
    """The tempo (MIN_BPM..MAX_BPM) at which a beat activation repeats best: the highest peak of
    its autocorrelation (FFT) over those lags, refined between lags by a parabola. 0 if flat.

    ``prior_bpm``: weigh the autocorrelation by librosa's tempo prior first (log-normal, one octave
    wide, centred there), as ``librosa.feature.tempo`` does with its windowed autocorrelation."""
    x = np.asarray(activation, dtype=float) - float(np.mean(activation))
    if len(x) < 2 or not np.any(x):
        return 0.0
    n = 1 << int(np.ceil(np.log2(2 * len(x))))
    spec = np.fft.rfft(x, n)
    ac = np.fft.irfft(spec * np.conj(spec), n)[: len(x)]
    lo, hi = int(np.floor(fps * 60 / MAX_BPM)), int(np.ceil(fps * 60 / MIN_BPM))
    hi = min(hi, len(ac) - 2)
    if hi <= lo or lo < 1:
        return 0.0
    lags = np.arange(lo, hi + 1)
    weight = np.exp(-0.5 * np.log2(60.0 * fps / lags / prior_bpm) ** 2) if prior_bpm > 0 else 1.0
    k = lo + int(np.argmax(np.maximum(ac[lo : hi + 1], 0.0) * weight))
    a, b, c = ac[k - 1], ac[k], ac[k + 1]
    denom = a - 2 * b + c
    shift = float(np.clip(0.5 * (a - c) / denom, -0.5, 0.5)) if denom < 0 else 0.0
    return 60.0 * fps / (k + shift)


def onset_tempo(features: Features) -> float:
    """librosa's tempo estimate made cheap: the onset envelope's autocorrelation (one FFT, not
    librosa's windowed tempogram) under librosa's prior around 120 BPM. A vote on the metrical
    level (:func:`track_beatnet`) and the tempo of the confidence's reference tracker."""
    return activation_tempo(features.onset, FRAME_RATE, PRIOR_BPM) if np.any(features.onset > 0) else 0.0


def _onset_at_madmom_rate(features: Features, n: int) -> np.ndarray:
    src_t = np.arange(features.n_frames) / FRAME_RATE
    dst_t = np.arange(n) / MADMOM_FPS
    env = np.interp(dst_t, src_t, features.onset)
    ref = np.percentile(env, 99) if env.size else 0.0
    return np.clip(env / ref, 0.0, 1.0) if ref > 0 else np.zeros(n)


def _activation_tempo(beat_act: np.ndarray) -> float:
    """Dominant tempo of the beat activation by autocorrelation (55..215 BPM)."""
    x = beat_act - beat_act.mean()
    if not np.any(x):
        return 0.0
    ac = np.correlate(x, x, mode="full")[len(x) - 1 :]
    lags = np.arange(int(MADMOM_FPS * 60 / MAX_BPM), int(MADMOM_FPS * 60 / MIN_BPM) + 1)
    lags = lags[lags < len(ac)]
    if len(lags) == 0:
        return 0.0
    return 60.0 * MADMOM_FPS / lags[np.argmax(ac[lags])]


def agreed_tempo(tempo_a: float, tempo_b: float, tolerance: float = 0.08) -> float | None:
    """Tempo both estimates support, resolving double/half (and 2/3, 3/2) octave errors.

    Returns ``None`` when they do not agree in any octave. Where they agree only up to an
    octave, the first estimate (the network's, the more reliable one) sets the tempo.
    """
    if tempo_a <= 0 or tempo_b <= 0:
        return None
    if abs(tempo_a / tempo_b - 1.0) <= tolerance:
        return (tempo_a + tempo_b) / 2.0
    for ratio in (2.0, 0.5, 1.5, 2.0 / 3.0, 3.0, 1.0 / 3.0):
        if abs(tempo_a / (tempo_b * ratio) - 1.0) <= tolerance:
            return tempo_a
    return None


#: weight of librosa's onset envelope in the fused beat activation
HYBRID_ONSET_WEIGHT = 0.2
#: half-width of the DBN's tempo window around the agreed tempo
HYBRID_TEMPO_WINDOW = 1.2


def track_hybrid(features: Features, act: np.ndarray) -> Tracking:
    """Network activations fused with librosa's onset envelope, decoded by the DBN.

    The tempo octave is resolved by agreement: the DBN runs over the full tempo range; when
    librosa's tempo (with its 120 BPM prior) and the DBN's agree up to an octave but not at
    the same tempo, and the network's own activation periodicity sides with librosa, the
    DBN is re-run inside a window around the agreed tempo.
    """
    if act.shape[0] == 0:
        return _empty()
    onset = _onset_at_madmom_rate(features, act.shape[0])
    fused = act.copy()
    fused[:, 0] = (1.0 - HYBRID_ONSET_WEIGHT) * act[:, 0] + HYBRID_ONSET_WEIGHT * onset * (1.0 - act[:, 1])
    times, positions = _dbn(fused)
    if len(times) >= 4:
        tempo_dbn = 60.0 / float(np.median(np.diff(times)))
        tempo_lr = librosa_tempo(features) if np.any(features.onset > 0) else 0.0
        tempo_rnn = _activation_tempo(act[:, 0])
        if (
            agreed_tempo(tempo_dbn, tempo_lr) is not None
            and abs(tempo_dbn / tempo_lr - 1.0) > 0.08
            and abs(tempo_rnn / tempo_lr - 1.0) <= 0.08
        ):
            retimes, repositions = _dbn(fused, tempo_lr / HYBRID_TEMPO_WINDOW, tempo_lr * HYBRID_TEMPO_WINDOW)
            if len(retimes) >= 4:
                times, positions = retimes, repositions
    return _from_dbn(times, positions, act)


#: the window of the standard beat F-measure (mir_eval, ±70 ms): two beats closer than this are one beat
AGREEMENT_WINDOW = 0.07


def beat_agreement(a: np.ndarray, b: np.ndarray, window: float = AGREEMENT_WINDOW) -> float:
    """The beat F-measure of two beat sequences scored against each other (mir_eval's: beats
    matched one to one within ±``window``; symmetric). 0 when either is empty.

    Two-pointer matching: each beat of ``a`` takes the earliest unmatched beat of ``b`` within the
    window, which is a maximum matching when every beat's window has the same width.
    """
    a = np.sort(np.asarray(a, dtype=float))
    b = np.sort(np.asarray(b, dtype=float))
    if len(a) == 0 or len(b) == 0:
        return 0.0
    i = j = hits = 0
    while i < len(a) and j < len(b):
        d = b[j] - a[i]
        if abs(d) <= window:
            hits += 1
            i += 1
            j += 1
        elif d < 0:
            j += 1
        else:
            i += 1
    return 2.0 * hits / (len(a) + len(b))


def confidence(times: np.ndarray, references: list[np.ndarray],
               spans: list[tuple[float, float]] = ()) -> tuple[float, list[float]]:
    """How much to trust a beat grid: its agreement (:func:`beat_agreement`) with independent
    estimates of the same song's beats (the best of ``references``), over the song and over each
    ``(start, end)`` span.

    No constant is fitted: the window is the evaluation standard's. Two trackers that hear the
    same pulse agree near 1; at double or half the tempo of each other 2/3; with no common pulse
    (noise, free rhythm, a tracker lost) far less. A span where either has no beat scores 0.
    """
    times = np.asarray(times, dtype=float)
    references = [np.asarray(r, dtype=float) for r in references] or [np.zeros(0)]

    def within(x: np.ndarray, start: float, end: float) -> np.ndarray:
        return x[(x >= start) & (x < end)]

    per_span = [max(beat_agreement(within(times, s, e), within(r, s, e)) for r in references)
                for s, e in spans]
    return max(beat_agreement(times, r) for r in references), per_span


def reference_beats(features: Features, tempi: list[float]) -> list[np.ndarray]:
    """The confidence's independent estimates for a network's beats: librosa's tracker on the onset
    envelope (no trained model) at each distinct tempo of ``tempi`` (the onset envelope's own and the
    network's periodicity: the onsets may support the network's grid at either)."""
    distinct: list[float] = []
    for t in tempi:
        if t > 0 and all(abs(t / d - 1.0) > TEMPO_TOLERANCE for d in distinct):
            distinct.append(t)
    return [onset_beats(features, t) for t in distinct]


def _pulse_clarity(features: Features, times: np.ndarray) -> float:
    """Onset strength on the beats against half-way between them, 0..1."""
    if len(times) < 2:
        return 0.0
    mids = (times[:-1] + times[1:]) / 2.0
    on = features.onset[features.frames(times)].mean()
    off = features.onset[features.frames(mids)].mean()
    return float(np.clip((on - off) / (on + 1e-9), 0.0, 1.0))


#: below this, the onset envelope has no steady pulse (noise, a drone): measured 0.06-0.09 on 30 s of
#: white, pink and brown noise, 0.13-0.72 on the shared songs and annotated excerpts (development figures)
PULSE_MIN = 0.1


def onset_periodicity(features: Features) -> float:
    """The highest normalised autocorrelation of the onset envelope at a lag of 40-220 BPM: how
    strongly the song repeats at a beat period (0 for none, 1 for a click track)."""
    e = np.asarray(features.onset, float)
    e = e - e.mean()
    energy = float(e @ e)
    lo, hi = int(FRAME_RATE * 60 / 220), int(FRAME_RATE * 60 / 40)
    if energy <= 0 or len(e) <= hi:
        return 0.0
    return max(float(e[:-k] @ e[k:]) / energy for k in range(lo, hi + 1))


def tempo_from_beats(times: np.ndarray) -> float:
    """BPM from the beat grid: mean of the inter-beat intervals near the median (frame
    quantisation averages out; pauses and glitches are ignored)."""
    ibi = np.diff(times)
    if len(ibi) == 0:
        return 0.0
    med = float(np.median(ibi))
    steady = ibi[np.abs(ibi - med) <= 0.1 * med]
    return 60.0 / float(steady.mean() if len(steady) else med)


def refine_to_onsets(features: Features, frames: np.ndarray, radius: int = 2) -> np.ndarray:
    """Beat times moved to the onset envelope's local peak (sub-frame, parabolic) within
    ``radius`` frames: the beat tracker's grid is only one hop (23 ms) fine."""
    env = features.onset
    n = len(env)
    out = np.empty(len(frames))
    for j, f in enumerate(frames):
        lo, hi = max(1, f - radius), min(n - 2, f + radius)
        if hi < lo:
            out[j] = f
            continue
        k = lo + int(np.argmax(env[lo : hi + 1]))
        a, b, c = env[k - 1], env[k], env[k + 1]
        denom = a - 2 * b + c
        out[j] = k + (np.clip(0.5 * (a - c) / denom, -0.5, 0.5) if denom < 0 else 0.0)
    return out / FRAME_RATE


def regularity(times: np.ndarray) -> float:
    if len(times) < 3:
        return 0.0
    ibi = np.diff(times)
    cv = ibi.std() / max(ibi.mean(), 1e-9)
    return float(np.clip(1.0 - 4.0 * cv, 0.0, 1.0))
