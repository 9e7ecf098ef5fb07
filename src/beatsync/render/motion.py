"""One decoding pass per clip, within a budget: a motion score per segment and the clip's own shot boundaries.

Budget: at most :func:`frame_limit` frames are decoded (``budget`` units, one unit a 1920x1080
frame; a frame costs :func:`frame_cost`), whatever the clip holds. A clip whose header promises
no more frames is decoded whole; a longer one is sampled: windows of consecutive frames (at least
``MIN_RUN``) starting at keyframes of the container's index (evenly spaced times without one),
spread over the clip. Motion and cuts are found inside each window as in a whole pass; nothing is
compared across windows, and bins no window scored take their neighbours' motion.

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
from ..media import DECODE_ERRORS, is_cover_art
from ..settings import Settings
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


#: the analysis's version: part of its cache key (:mod:`beatsync.render.clipcache`); raise it with
#: any change here that changes a result
ANALYSIS_VERSION = 3
#: a clip's analysis decodes at most this many budget units' worth of frames (``BEATSYNC_CLIP_ANALYSIS_BUDGET``;
#: one unit: a 1920x1080 frame, see :func:`frame_cost`)
DEFAULT_BUDGET = Settings.clip_analysis_budget
#: a frame's fixed cost in units, whatever its size (demuxing, the decoder call, scaling, scoring)
FRAME_OVERHEAD = 0.15
#: consecutive frames per window of a sampled analysis, at least (the cut rule looks CUT_CONTEXT
#: frames either side)
MIN_RUN = 2 * CUT_CONTEXT + 4


@dataclass(frozen=True)
class ClipAnalysis:
    motion: np.ndarray  # raw motion per MOTION_STEP seconds (mean abs grey difference, 0..255)
    cuts: tuple[float, ...]  # source shot boundaries (s)
    frames: int = 0  # frames decoded to make it (0: read from the cache)
    coverage: float = 1.0  # share of the clip's MOTION_STEP bins scored (1: every frame was decoded)
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


class _Scorer:
    """Frames in, motion per bin and shot boundaries out; frames come in runs of consecutive decoded
    frames (the whole clip, or the windows of a sampled analysis): nothing is compared across runs."""

    def __init__(self, probe: ClipProbe, step: float):
        self.probe, self.step = probe, step
        self.bins = max(1, int(np.ceil(probe.duration / step)))
        self.total = np.zeros(self.bins)
        self.count = np.zeros(self.bins)
        self.times: list[float] = []
        self.diffs: list[float] = []
        self.moved: list[int] = []  # pixels at least PICTURE_STEP from the previous frame's
        self.looks: list[bytes] = [b""] * max(1, int(np.ceil(probe.duration / LOOK_STEP)))
        self.dissolves: list[float] = []
        self.period = 1.0 / probe.fps if probe.fps else 1 / 30
        self.recent: deque = deque(maxlen=max(2, int(round(DISSOLVE_SPAN / self.period))) + 1)
        self.in_dissolve = False
        self.prev = None

    def new_run(self) -> None:
        # a dissolve still running where the run ends keeps its start only, as at the clip's end
        self.in_dissolve = False
        self.prev = None
        self.recent.clear()

    def _end_dissolve(self) -> None:
        if self.in_dissolve:  # every frame of the dissolve is a boundary: no range shows part of it
            t0 = self.dissolves[-1]
            self.dissolves.extend(float(x) for x in np.arange(t0 + self.period, self.times[-1], self.period))
            self.dissolves.append(self.times[-1])
            self.in_dissolve = False

    def add(self, t: float, g: np.ndarray) -> None:
        d, moved = 0.0, 0  # the first frame of a run: no difference (and no cut) known
        k = min(len(self.looks) - 1, max(0, int(t / LOOK_STEP)))
        if not self.looks[k]:
            self.looks[k] = g.reshape(9, 4, 16, 4).mean(axis=(1, 3)).round().astype(np.uint8).tobytes()
        if self.prev is not None:
            delta = np.abs(g - self.prev)
            d = float(delta.mean())
            moved = int(np.count_nonzero(delta >= PICTURE_STEP))
            b = min(self.bins - 1, max(0, int(t / self.step)))
            self.total[b] += d
            self.count[b] += 1
        self.diffs.append(d)
        self.moved.append(moved)
        self.times.append(t)
        recent = self.recent
        recent.append((g, d))
        if len(recent) == recent.maxlen:
            net = float(np.abs(g - recent[0][0]).mean())
            steps = [x[1] for x in list(recent)[1:]]
            gradual = max(steps) < 0.5 * net  # no one step carries the change (a hard cut)
            if net >= DISSOLVE_MIN and gradual and net >= DISSOLVE_COHERENCE * sum(steps):
                if not self.in_dissolve:
                    self.dissolves.append(self.times[-len(recent)])
                self.in_dissolve = True
            elif self.in_dissolve:
                self._end_dissolve()
        self.prev = g

    def result(self, frames: int, complete: bool) -> ClipAnalysis:
        bins, count = self.bins, self.count
        out = np.divide(self.total, count, out=np.zeros(bins), where=count > 0)
        # empty bins (sparse frames, unsampled stretches) take their neighbours' value
        if count.any() and not count.all():
            idx = np.flatnonzero(count)
            out = np.interp(np.arange(bins), idx, out[idx])
        cuts = sorted({round(x, 4) for x in _hard_cuts(self.times, self.diffs, self.period) + self.dissolves
                       if 0 < x < self.probe.duration})
        coverage = 1.0 if complete else float(np.count_nonzero(count)) / bins
        # held pictures need every frame: a sampled analysis cannot see a change between its windows
        holds = _holds(self.times, self.moved, self.period, self.probe.duration) if complete else ()
        return ClipAnalysis(motion=out, cuts=tuple(cuts), frames=frames, coverage=round(coverage, 4),
                            holds=holds, looks=tuple(self.looks))


def frame_cost(width: int, height: int) -> float:
    """What decoding and scoring one frame costs, in budget units (one unit: a 1920x1080 frame)."""
    return FRAME_OVERHEAD + (1.0 - FRAME_OVERHEAD) * width * height / (1920 * 1080)


def frame_limit(probe: ClipProbe, budget: float = DEFAULT_BUDGET) -> int:
    """The most frames the analysis of ``probe``'s clip decodes within ``budget`` units."""
    return max(MIN_RUN, int(budget / frame_cost(probe.width, probe.height)))


def expected_frames(probe: ClipProbe) -> int:
    """Frames the header promises (duration x average rate; 30 fps where it states none)."""
    return int(np.ceil(probe.duration * (probe.fps or 30.0)))


def _window_starts(probe: ClipProbe, limit: int) -> list[float]:
    """Where the windows of a sampled analysis start: keyframes from the container's index (a window
    from a keyframe decodes no frame it does not score), spread evenly over the clip; without an
    index, evenly spaced times."""
    most = max(1, limit // MIN_RUN)
    keys = [k for k in probe.keyframes if 0 <= k < probe.duration]
    if len(keys) >= 2:
        if len(keys) <= most:
            return keys
        return sorted({keys[round(i * (len(keys) - 1) / (most - 1))] for i in range(most)}) if most > 1 else keys[:1]
    return [probe.duration * i / most for i in range(most)]


def analyse_clip(probe: ClipProbe, step: float = MOTION_STEP, should_stop=None,
                 budget: float = DEFAULT_BUDGET) -> ClipAnalysis:
    """Motion per ``step`` seconds and the clip's own shot boundaries, decoding at most
    :func:`frame_limit` frames (``budget`` units): one pass over every frame when the header
    promises no more, else windows of consecutive frames spread over the clip (see the module's
    doc); ``should_stop()`` true (checked every 30 frames) abandons it with RenderCancelled."""
    limit = frame_limit(probe, budget)
    expected = expected_frames(probe)
    scorer = _Scorer(probe, step)
    decoded, complete = 0, False
    with av.open(probe.path, metadata_errors="ignore") as c:
        s = next(s for s in c.streams.video if not is_cover_art(s))
        s.thread_type = "AUTO"
        s.codec_context.skip_frame = "NONREF"
        tb = s.time_base

        def frames(end: float, most: int):
            """Decoded frames ``(t, grey)`` from where the demuxer stands, until ``end`` (s), ``most``
            frames, or the clip's limit; every decoded frame counts against the limit."""
            nonlocal decoded
            taken = packets = 0
            for packet in c.demux(s):
                packets += 1
                if packets > 4 * most + 16:  # a run of packets that yield no frames: stop demuxing
                    return
                try:
                    got = packet.decode()
                except DECODE_ERRORS:
                    continue
                for f in got:
                    if f.pts is None:
                        continue
                    if should_stop is not None and decoded % 30 == 0 and should_stop():
                        raise RenderCancelled("clip analysis abandoned")
                    decoded += 1
                    t = float(f.pts * tb) - probe.start_time
                    if t >= end:
                        return
                    yield t, f.reformat(width=64, height=36, format="gray").to_ndarray().astype(np.int16)
                    taken += 1
                    if taken >= most or decoded >= limit:
                        return

        try:
            if expected <= limit:  # every frame (a header that lies still stops at the limit)
                for t, g in frames(float("inf"), limit):
                    scorer.add(t, g)
                complete = decoded < limit
            else:
                starts = _window_starts(probe, limit)
                run = max(1, limit // len(starts))
                # the index's times are decoding times; a seek goes by presentation time, later by the
                # first keyframe's delay (B-frames): aim just past the keyframe, not at the one before
                shift = max(0.0, -probe.keyframes[0]) if probe.keyframes else 0.0
                for i, start in enumerate(starts):
                    if decoded >= limit:
                        break
                    end = starts[i + 1] + shift if i + 1 < len(starts) else float("inf")
                    c.seek(int((start + shift + 5e-4 + probe.start_time) / tb), stream=s, backward=True)
                    scorer.new_run()
                    for t, g in frames(end, run):
                        if not scorer.times or t > scorer.times[-1]:  # a seek that landed early: no frame twice
                            scorer.add(t, g)
        except av.error.FFmpegError:
            pass  # a truncated clip: score what was read
    return scorer.result(decoded, complete)


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
