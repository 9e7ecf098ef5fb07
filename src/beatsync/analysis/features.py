"""Frame-level features shared by the trackers, the meter estimate and the sections.

Pure functions over numpy arrays, computed once per analysis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._libs import librosa

FEATURE_SR = 22050
HOP = 512
FRAME_RATE = FEATURE_SR / HOP  # ~43.07 feature frames per second


@dataclass(frozen=True)
class Features:
    y: np.ndarray  # mono float32 at FEATURE_SR
    onset: np.ndarray  # spectral-flux onset strength, one value per feature frame
    bass_onset: np.ndarray  # onset strength of the lowest mel bands (kick, bass notes)
    rms: np.ndarray  # RMS loudness per frame
    chroma: np.ndarray  # (12, frames)
    mfcc: np.ndarray  # (13, frames)

    @property
    def n_frames(self) -> int:
        return self.onset.shape[0]

    def frames(self, times: np.ndarray) -> np.ndarray:
        idx = np.round(np.asarray(times) * FRAME_RATE).astype(int)
        return np.clip(idx, 0, max(self.n_frames - 1, 0))


def resample(y: np.ndarray, sr_in: int, sr_out: int = FEATURE_SR) -> np.ndarray:
    if sr_in == sr_out:
        return y
    import soxr

    return soxr.resample(y, sr_in, sr_out, quality="HQ").astype(np.float32, copy=False)


def compute_features(y: np.ndarray) -> Features:
    lr = librosa()
    stft = np.abs(lr.stft(y, n_fft=2048, hop_length=HOP))  # one STFT feeds every feature
    power = stft**2
    mel = lr.feature.melspectrogram(S=power, sr=FEATURE_SR, n_mels=128, fmax=11025)
    log_mel = lr.power_to_db(mel, ref=np.max if np.any(mel > 0) else 1.0)
    onset = lr.onset.onset_strength(S=log_mel, sr=FEATURE_SR, hop_length=HOP)
    bass_onset = lr.onset.onset_strength(S=log_mel[:12], sr=FEATURE_SR, hop_length=HOP)
    rms = lr.feature.rms(S=stft, frame_length=2048, hop_length=HOP)[0]
    chroma = lr.feature.chroma_stft(S=power, sr=FEATURE_SR, hop_length=HOP)
    mfcc = lr.feature.mfcc(S=log_mel, n_mfcc=13)
    n = min(onset.shape[0], rms.shape[0], chroma.shape[1], mfcc.shape[1])
    return Features(
        y=y,
        onset=onset[:n].astype(np.float32),
        bass_onset=bass_onset[:n].astype(np.float32),
        rms=rms[:n].astype(np.float32),
        chroma=chroma[:, :n].astype(np.float32),
        mfcc=mfcc[:, :n].astype(np.float32),
    )


def peak_at(env: np.ndarray, frames: np.ndarray, radius: int = 2) -> np.ndarray:
    """Maximum of ``env`` within ``radius`` frames of each frame index."""
    if len(frames) == 0:
        return np.zeros(0, np.float32)
    n = env.shape[0]
    offsets = np.arange(-radius, radius + 1)
    idx = np.clip(frames[:, None] + offsets[None, :], 0, n - 1)
    return env[idx].max(axis=1)


def beat_strengths(features: Features, beat_times: np.ndarray) -> np.ndarray:
    """Strength 0..1 of each beat: onset peak and loudness, relative to the song's strong beats."""
    if len(beat_times) == 0:
        return np.zeros(0, np.float32)
    frames = features.frames(beat_times)
    onset = peak_at(features.onset, frames)
    loud = peak_at(features.rms, frames)

    def rel(x: np.ndarray) -> np.ndarray:
        ref = np.percentile(x, 95)
        return np.clip(x / ref, 0.0, 1.0) if ref > 0 else np.zeros_like(x)

    return np.round(0.6 * rel(onset) + 0.4 * rel(loud), 4).astype(np.float32)


def beat_sync(feature: np.ndarray, beat_frames: np.ndarray, n_frames: int) -> np.ndarray:
    """Median of ``feature`` (d, frames) over each inter-beat interval -> (d, beats)."""
    bounds = np.concatenate([[0], beat_frames, [n_frames]])
    bounds = np.unique(np.clip(bounds, 0, n_frames))
    out = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        if b > a:
            out.append(np.median(feature[:, a:b], axis=1))
    return np.stack(out, axis=1) if out else np.zeros((feature.shape[0], 0), np.float32)
