"""Meter and bar phase from a beat grid, for trackers that only give beats (librosa).

Downbeats tend to carry the strongest accents, bass notes and chord changes. For each
candidate meter (3 or 4) and phase we compare the mean accent of the candidate downbeats
with the mean of all beats, and pick the best; 4/4 wins ties (it is far more common).
"""

from __future__ import annotations

import numpy as np

from .features import Features, beat_sync, peak_at

METERS = (3, 4)
#: 3/4 must explain the accents this much better than 4/4 to be chosen
TRIPLE_MARGIN = 1.25


def _z(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / sd if sd > 1e-9 else np.zeros_like(x)


def beat_accents(features: Features, beat_times: np.ndarray) -> np.ndarray:
    frames = features.frames(beat_times)
    onset = peak_at(features.onset, frames)
    bass = peak_at(features.bass_onset, frames)
    chroma = beat_sync(features.chroma, frames, features.n_frames)
    # beat_sync yields one column per interval starting at 0: column k+1 follows beat k
    if chroma.shape[1] >= len(frames) + 1:
        chroma = chroma[:, 1 : len(frames) + 1]
    chroma = chroma[:, : len(frames)]
    norm = np.linalg.norm(chroma, axis=0) + 1e-9
    c = chroma / norm
    change = np.zeros(len(frames))
    if c.shape[1] > 1:
        change[1 : c.shape[1]] = 1.0 - np.sum(c[:, 1:] * c[:, :-1], axis=0)
    return _z(onset) + 1.5 * _z(bass) + 1.5 * _z(change)


def infer_bar_positions(features: Features, beat_times: np.ndarray) -> tuple[np.ndarray, int]:
    """Position of each beat in its bar (1 = downbeat) and the number of beats per bar."""
    n = len(beat_times)
    if n == 0:
        return np.zeros(0, int), 0
    if n < 6:
        return (np.arange(n) % 4) + 1, 4
    accents = beat_accents(features, beat_times)
    best: dict[int, tuple[float, int]] = {}
    for m in METERS:
        scores = [accents[p::m].mean() - accents.mean() for p in range(m)]
        p = int(np.argmax(scores))
        best[m] = (float(scores[p]), p)
    meter = 3 if best[3][0] > TRIPLE_MARGIN * max(best[4][0], 1e-6) else 4
    phase = best[meter][1]
    positions = ((np.arange(n) - phase) % meter) + 1
    return positions.astype(int), meter
