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
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import av
import numpy as np

from ..editing.plan import MOTION_STEP
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


@dataclass(frozen=True)
class ClipAnalysis:
    motion: np.ndarray  # raw motion per MOTION_STEP seconds (mean abs grey difference, 0..255)
    cuts: tuple[float, ...]  # source shot boundaries (s)


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
    dissolves: list[float] = []
    period = 1.0 / probe.fps if probe.fps else 1 / 30
    span = max(2, int(round(DISSOLVE_SPAN / period)))
    recent: deque = deque(maxlen=span + 1)  # (grey frame, diff to the previous one)
    in_dissolve = False
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
                if prev is not None:
                    d = float(np.abs(g - prev).mean())
                    b = min(bins - 1, max(0, int(t / step)))
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
    return ClipAnalysis(motion=out, cuts=tuple(cuts))


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
