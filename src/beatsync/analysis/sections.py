"""Song sections by structural segmentation: repetition (self-similarity) and energy.

1. Beat-synchronous chroma, MFCC and loudness; a self-similarity matrix over beats.
2. Foote novelty (a checkerboard kernel along the diagonal) plus an energy-change novelty;
   peaks at least ``MIN_SECTION`` seconds apart are boundaries, snapped to downbeats.
3. Sections that sound alike share a repetition label (A, B, C...).
4. Names from repetition and energy: the loudest repeated group is the chorus; a sharp
   energy rise after a rising section is a drop (after a build); a quieter first section is
   the intro, a quieter last one the outro; a one-off section late in the song is a bridge;
   the rest are verses.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import numpy as np

from .features import FRAME_RATE, Features, beat_sync

MIN_SECTION = 6.0  # seconds
KERNEL_SECONDS = 6.0  # half-width of the novelty kernel
SAME_GROUP = 0.60  # cosine similarity of section profiles to share a label
DROP_RISE = 0.30  # energy jump into a drop (energies are 0..1)


@dataclass
class SectionSpec:
    name: str
    start_time: float
    end_time: float
    energy: float
    label: str


def _checkerboard(half: int) -> np.ndarray:
    sign = np.ones(2 * half)
    sign[:half] = -1
    kernel = np.outer(sign, sign)  # +1 within each side, -1 across
    g = np.exp(-0.5 * (np.linspace(-2, 2, 2 * half)) ** 2)
    return kernel * np.outer(g, g)


def _novelty(ssm: np.ndarray, half: int) -> np.ndarray:
    n = ssm.shape[0]
    kernel = _checkerboard(half)
    padded = np.pad(ssm, half, mode="edge")
    out = np.zeros(n)
    for i in range(n):
        out[i] = np.sum(padded[i : i + 2 * half, i : i + 2 * half] * kernel)
    out = np.maximum(out, 0)
    return out / out.max() if out.max() > 0 else out


def _standardize(x: np.ndarray) -> np.ndarray:
    mu = x.mean(axis=1, keepdims=True)
    sd = x.std(axis=1, keepdims=True) + 1e-9
    return (x - mu) / sd


def _grid(beat_times: np.ndarray, duration: float) -> np.ndarray:
    if len(beat_times) >= 16:
        return beat_times
    return np.arange(0.0, max(duration, 0.5), 0.5)


def detect_sections(features: Features, beat_times: np.ndarray, downbeat_times: np.ndarray, duration: float) -> list[SectionSpec]:
    if duration <= 0 or features.n_frames == 0 or not np.any(features.rms > 1e-5):
        return []
    from scipy.signal import find_peaks

    grid = _grid(beat_times, duration)
    frames = features.frames(grid)
    loud_db = 20 * np.log10(features.rms[None, :] + 1e-5)
    stacked = np.vstack([features.chroma, features.mfcc[1:], loud_db])
    sync = beat_sync(stacked, frames, features.n_frames)  # column k: interval after boundary k-1
    n = sync.shape[1]
    edges = np.concatenate([[0.0], grid[grid > 0], [duration]])[: n + 1]
    if n < 4 or duration < 2 * MIN_SECTION:
        return [_single(duration)]

    x = _standardize(sync)
    unit = x / (np.linalg.norm(x, axis=0, keepdims=True) + 1e-9)
    ssm = unit.T @ unit
    step = max(duration / n, 1e-3)
    half = max(2, int(round(KERNEL_SECONDS / step)))
    novelty = _novelty(ssm, half)
    loud = sync[-1]
    energy_change = np.zeros(n)
    for i in range(n):
        a, b = loud[max(0, i - half) : i], loud[i : i + half]
        if len(a) and len(b):
            energy_change[i] = abs(b.mean() - a.mean())
    if energy_change.max() > 0:
        energy_change /= energy_change.max()
    curve = novelty + 0.5 * energy_change
    peaks, _ = find_peaks(curve, distance=max(1, int(MIN_SECTION / step)), prominence=0.15 * curve.max())
    bounds = sorted({float(edges[p]) for p in peaks if MIN_SECTION <= edges[p] <= duration - MIN_SECTION})
    bounds = _snap(bounds, downbeat_times, tolerance=2.5 * step)
    cuts = _merge_short([0.0, *bounds, duration])
    return _name(features, cuts, sync, edges)


def _snap(bounds: list[float], downbeats: np.ndarray, tolerance: float) -> list[float]:
    if len(downbeats) == 0:
        return bounds
    out = []
    for b in bounds:
        j = int(np.argmin(np.abs(downbeats - b)))
        out.append(float(downbeats[j]) if abs(downbeats[j] - b) <= tolerance else b)
    return sorted(set(out))


def _merge_short(cuts: list[float]) -> list[float]:
    cuts = sorted(set(cuts))
    changed = True
    while changed and len(cuts) > 2:
        changed = False
        lengths = np.diff(cuts)
        i = int(np.argmin(lengths))
        if lengths[i] < MIN_SECTION:
            # drop the inner boundary of the short segment that leaves the longer neighbour
            if i == 0:
                del cuts[1]
            elif i == len(lengths) - 1:
                del cuts[-2]
            else:
                del cuts[i if lengths[i - 1] < lengths[i + 1] else i + 1]
            changed = True
    return cuts


def _segment_energy(features: Features, start: float, end: float) -> tuple[float, float, float]:
    a = int(start * FRAME_RATE)
    b = max(a + 1, int(end * FRAME_RATE))
    rms = features.rms[a:b]
    onset = features.onset[a:b]
    half = max(1, len(rms) // 2)
    slope = float(rms[half:].mean() - rms[:half].mean()) if len(rms) > 1 else 0.0
    return float(rms.mean()) if len(rms) else 0.0, float(onset.mean()) if len(onset) else 0.0, slope


def _single(duration: float) -> SectionSpec:
    return SectionSpec("verse", 0.0, round(duration, 3), 1.0, "A")


def _name(features: Features, cuts: list[float], sync: np.ndarray, edges: np.ndarray) -> list[SectionSpec]:
    segs = list(zip(cuts[:-1], cuts[1:]))
    m = len(segs)
    raw = [_segment_energy(features, s, e) for s, e in segs]
    rms = np.array([r[0] for r in raw])
    ons = np.array([r[1] for r in raw])
    slopes = np.array([r[2] for r in raw])
    energy = 0.6 * rms / max(rms.max(), 1e-9) + 0.4 * ons / max(ons.max(), 1e-9)
    energy = np.clip(energy / max(energy.max(), 1e-9), 0.0, 1.0)

    # repetition labels from each section's mean (standardised) profile, loudness excluded
    profile_src = _standardize(sync[:-1])
    centers = (edges[:-1] + edges[1:]) / 2
    profiles = []
    for s, e in segs:
        cols = (centers >= s) & (centers < e)
        v = profile_src[:, cols].mean(axis=1) if cols.any() else np.zeros(profile_src.shape[0])
        profiles.append(v / (np.linalg.norm(v) + 1e-9))
    labels: list[str] = []
    reps: list[np.ndarray] = []
    for v in profiles:
        sims = [float(v @ r) for r in reps]
        if sims and max(sims) >= SAME_GROUP:
            labels.append(string.ascii_uppercase[int(np.argmax(sims))])
        else:
            reps.append(v)
            labels.append(string.ascii_uppercase[min(len(reps) - 1, 25)])

    names = ["verse"] * m
    if m == 1:
        return [SectionSpec("verse", round(cuts[0], 3), round(cuts[1], 3), 1.0, "A")]
    # drop: sharp rise to (near) the song's peak right after a rising section
    for i in range(1, m):
        if energy[i] >= 0.85 and energy[i] - energy[i - 1] >= DROP_RISE and slopes[i - 1] > 0:
            names[i] = "drop"
            if i - 1 > 0 or m > 2:
                names[i - 1] = "build"
    # chorus: the loudest group that repeats, else the loudest non-drop sections
    groups: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        groups.setdefault(lab, []).append(i)
    repeated = [g for g in groups.values() if len(g) >= 2]
    if repeated:
        best = max(repeated, key=lambda g: float(np.mean(energy[g])))
        if float(np.mean(energy[best])) >= 0.7:
            for i in best:
                if names[i] == "verse":
                    names[i] = "chorus"
    if "chorus" not in names and energy.max() - energy.min() >= 0.15:
        loudest = int(np.argmax(np.where(np.array(names) == "verse", energy, -1.0)))
        if loudest > 0 and names[loudest] == "verse":
            for i in groups[labels[loudest]]:
                if names[i] == "verse":
                    names[i] = "chorus"
    if names[0] in ("verse", "build") and energy[0] < 0.75:
        names[0] = "intro"
    if m >= 3 and names[-1] in ("verse", "build") and energy[-1] < 0.8 * energy.max():
        names[-1] = "outro"
    half_time = cuts[-1] / 2
    for i in range(1, m - 1):
        if names[i] == "verse" and len(groups[labels[i]]) == 1 and segs[i][0] >= half_time and m >= 4:
            names[i] = "bridge"
            break  # one bridge: a song has at most one departure before its last chorus
    return [
        SectionSpec(names[i], round(s, 3), round(e, 3), round(float(energy[i]), 4), labels[i])
        for i, (s, e) in enumerate(segs)
    ]
