"""One decoding pass per clip: a motion score per segment and the clip's own shot boundaries.

Motion: mean absolute difference between consecutive frames at 64x36 grey, in MOTION_STEP-second
bins. Non-reference frames are skipped by the decoder (half the decoding on typical H.264),
which is plenty for a coarse score.

Source shots (``ClipAnalysis.cuts``), on the same small grey frames:

- hard cut: a frame difference above ``CUT_MIN`` and ``CUT_RATIO`` times the median of the
  non-zero differences around it (so fast motion, where every difference is large, is not a cut);
- frame-rate stutter: a file that holds few real frames (repeats, then jumps) has only
  repeats around each jump, so a jump above ``CUT_MIN`` is a cut by the same rule;
- dissolve: over ``DISSOLVE_SPAN`` seconds the picture changes by more than ``DISSOLVE_MIN``, and
  coherently (the net change is at least ``DISSOLVE_COHERENCE`` of the summed frame-to-frame
  changes: a blend moves every pixel one way, motion moves them back and forth); every frame of
  the dissolve is a boundary, so no range shows part of one.

A boundary is the time of the first decoded frame after it; where skipped frames lie between
that frame and the previous decoded one, the previous frame's time (plus 1 ms) is a boundary too,
so a range that avoids both never shows an undecoded frame from the other side.

Sparse footage (``ClipAnalysis.holds``): a clip whose real pictures change far less often than its
frames (a 2 fps source in a 30 fps file, duplicated frames). A frame differing from the previous
decoded one somewhere by ``PICTURE_STEP`` grey levels or more (one pixel of 64x36 is enough: a
small car moving; codec noise on a repeated frame stays below) is a change; changes less than
``CHANGE_GAP`` frame periods apart are one picture change (a codec that builds a picture over 2-3
frames). The clip is sparse when it holds at least ``SPARSE_MIN_PICTURES`` pictures, at most
``SPARSE_CHANGING`` of its frames change, and nearly all its picture changes (``SPARSE_ISOLATED``)
last at most ``CHANGE_FRAMES`` frames (a still scene with bursts of motion is not sparse), and its
pictures are held ``SPARSE_MIN_HOLD`` or longer (median: 10 pictures a second read as motion); its holds
are the stretches between changes, each from the first frame of a settled picture to the first
frame of the next change.

Looks (``ClipAnalysis.looks``): the first frame of each LOOK_STEP (0.1 s) at 16x9 grey, so the
planner can tell whether two moments of one source shot look different enough to read as a cut.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import av
import numpy as np

from ..editing.plan import LOOK_STEP, MOTION_STEP
from ..errors import RenderCancelled
from ..media import decode_tolerant, is_cover_art
from .probe import ClipProbe

CUT_MIN = 8.0
CUT_RATIO = 3.0
#: frames either side whose differences give the local median
CUT_CONTEXT = 6
DISSOLVE_SPAN = 0.5
DISSOLVE_MIN = 25.0
DISSOLVE_COHERENCE = 0.75
#: a frame with a pixel (64x36 grey) this far from the previous frame's shows a new picture
PICTURE_STEP = 8
#: changes closer than this many frame periods are one picture change
CHANGE_GAP = 2.5
#: sparse: at least this many pictures, at most this share of the frames changing, and this share
#: of the picture changes no longer than CHANGE_FRAMES frames
SPARSE_MIN_PICTURES = 3
SPARSE_CHANGING = 0.35
SPARSE_ISOLATED = 0.9
CHANGE_FRAMES = 3
#: ... and pictures held this long (median, s): at most 5 pictures a second
SPARSE_MIN_HOLD = 0.2


@dataclass(frozen=True)
class ClipAnalysis:
    motion: np.ndarray  # raw motion per MOTION_STEP seconds (mean abs grey difference, 0..255)
    cuts: tuple[float, ...]  # source shot boundaries (s)
    #: sparse footage only: ``(start, end)`` of each held real picture (s); empty for a clip whose frames move
    holds: tuple[tuple[float, float], ...] = ()
    #: per LOOK_STEP seconds, the first frame at 16x9 grey (144 bytes), empty where no frame starts
    looks: tuple[bytes, ...] = ()


def _holds(times: list[float], moved: list[int], period: float, duration: float) -> tuple[tuple[float, float], ...]:
    """Held pictures of a sparse clip (see the module's docstring); ``()`` when the clip is not sparse.
    ``moved[i]``: pixels of frame ``i`` at least PICTURE_STEP from frame ``i - 1``."""
    changes: list[list[float]] = []  # [first, last] changing frame of each picture change
    changing = 0
    for t0, t, d in zip(times, times[1:], moved[1:]):
        if d > 0:
            changing += 1
            # undecoded frames before this one: the change may have come just after the previous frame
            first = t0 + 1e-3 if t - t0 > 1.5 * period else t
            if changes and first - changes[-1][1] <= CHANGE_GAP * period:
                changes[-1][1] = t
            else:
                changes.append([first, t])
    short = sum(1 for a, b in changes if b - a <= (CHANGE_FRAMES - 0.5) * period)
    if len(changes) + 1 < SPARSE_MIN_PICTURES or changing > SPARSE_CHANGING * len(times) \
            or short < SPARSE_ISOLATED * len(changes):
        return ()
    out = []
    start = times[0]
    for a, b in changes:
        if a > start:
            out.append((round(start, 4), round(a, 4)))
        start = b
    if duration > start:
        out.append((round(start, 4), round(duration, 4)))
    if not out or sorted(b - a for a, b in out)[len(out) // 2] < SPARSE_MIN_HOLD:
        return ()  # a picture every few frames (10 fps in a 30 fps file) reads as motion, not as pictures
    return tuple(out)


def _hard_cuts(times: list[float], diffs: list[float], period: float) -> list[float]:
    d = np.asarray(diffs)
    out: list[float] = []
    for i in range(1, len(d)):
        lo, hi = max(1, i - CUT_CONTEXT), min(len(d), i + CUT_CONTEXT + 1)
        around = np.concatenate([d[lo:i], d[i + 1 : hi]])
        around = around[around > 0.5]  # repeated frames are no motion
        ref = float(np.median(around)) if around.size else 0.0
        if d[i] >= CUT_MIN and d[i] >= CUT_RATIO * max(ref, 1.0):
            if times[i] - times[i - 1] > 1.5 * period:  # undecoded frames in between
                out.append(times[i - 1] + 1e-3)
            out.append(times[i])
    return out


def analyse_clip(probe: ClipProbe, step: float = MOTION_STEP, should_stop=None) -> ClipAnalysis:
    """Motion per ``step`` seconds and the clip's own shot boundaries, from one decoding pass;
    ``should_stop()`` true (checked every 30 frames) abandons it with RenderCancelled."""
    bins = max(1, int(np.ceil(probe.duration / step)))
    total = np.zeros(bins)
    count = np.zeros(bins)
    times: list[float] = []
    diffs: list[float] = [0.0]
    moved: list[int] = [0]  # pixels at least PICTURE_STEP from the previous frame's
    dissolves: list[float] = []
    period = 1.0 / probe.fps if probe.fps else 1 / 30
    span = max(2, int(round(DISSOLVE_SPAN / period)))
    recent: deque = deque(maxlen=span + 1)  # (grey frame, diff to the previous one)
    in_dissolve = False
    looks: list[bytes] = [b""] * max(1, int(np.ceil(probe.duration / LOOK_STEP)))
    with av.open(probe.path, metadata_errors="ignore") as c:
        s = next(s for s in c.streams.video if not is_cover_art(s))
        s.thread_type = "AUTO"
        s.codec_context.skip_frame = "NONREF"
        prev = None
        try:
            for f in decode_tolerant(c, s):
                if f.pts is None:
                    continue
                if should_stop is not None and len(times) % 30 == 0 and should_stop():
                    raise RenderCancelled("clip analysis abandoned")
                g = f.reformat(width=64, height=36, format="gray").to_ndarray().astype(np.int16)
                t = float(f.pts * s.time_base) - probe.start_time
                d = 0.0
                b = min(bins - 1, max(0, int(t / step)))
                k = min(len(looks) - 1, max(0, int(t / LOOK_STEP)))
                if not looks[k]:
                    looks[k] = g.reshape(9, 4, 16, 4).mean(axis=(1, 3)).round().astype(np.uint8).tobytes()
                if prev is not None:
                    delta = np.abs(g - prev)
                    d = float(delta.mean())
                    moved.append(int(np.count_nonzero(delta >= PICTURE_STEP)))
                    total[b] += d
                    count[b] += 1
                    diffs.append(d)
                times.append(t)
                recent.append((g, d))
                if len(recent) == recent.maxlen:
                    net = float(np.abs(g - recent[0][0]).mean())
                    steps = [x[1] for x in list(recent)[1:]]
                    gradual = max(steps) < 0.5 * net  # no one step carries the change (a hard cut)
                    if net >= DISSOLVE_MIN and gradual and net >= DISSOLVE_COHERENCE * sum(steps):
                        if not in_dissolve:
                            dissolves.append(times[-len(recent)])
                        in_dissolve = True
                    elif in_dissolve:
                        # every frame of the dissolve is a boundary: no range shows part of it
                        t0 = dissolves[-1]
                        dissolves.extend(float(x) for x in np.arange(t0 + period, times[-1], period))
                        dissolves.append(times[-1])
                        in_dissolve = False
                prev = g
        except av.error.FFmpegError:
            pass  # a truncated clip: score what was read
    out = np.divide(total, count, out=np.zeros(bins), where=count > 0)
    # empty bins (sparse frames) take their neighbours' value
    if count.any() and not count.all():
        idx = np.flatnonzero(count)
        out = np.interp(np.arange(bins), idx, out[idx])
    cuts = sorted({round(x, 4) for x in _hard_cuts(times, diffs[: len(times)], period) + dissolves
                   if 0 < x < probe.duration})
    holds = _holds(times, moved[: len(times)], period, probe.duration)
    return ClipAnalysis(motion=out, cuts=tuple(cuts), holds=holds, looks=tuple(looks))


def motion_profile(probe: ClipProbe, step: float = MOTION_STEP) -> np.ndarray:
    """Raw motion per ``step`` seconds (mean abs grey difference, 0..255)."""
    return analyse_clip(probe, step).motion


def normalise(profiles: list[np.ndarray]) -> list[tuple[float, ...]]:
    """Scale all clips' motion together to 0..1 (95th percentile = 1), so clips compare."""
    joined = np.concatenate([p for p in profiles if len(p)]) if profiles else np.zeros(0)
    ref = float(np.percentile(joined, 95)) if joined.size else 0.0
    if ref <= 0:
        return [tuple(0.5 for _ in p) for p in profiles]
    return [tuple(float(round(min(1.0, x / ref), 4)) for x in p) for p in profiles]
