"""Subject-aware reframing (``fit: smart``): where the output's crop window sits in each frame.

When the output's aspect ratio differs from the source's (9:16 or 1:1 from 16:9, or the
reverse), the biggest window of the output's shape is cut from the source picture, and it
slides along one axis only (the "free" axis: x for a landscape source into a narrower output,
y for a portrait source into a wider one). ``plan_crops`` decides, for every output frame of
every shot, where that window sits, in the spirit of Google's AutoFlip:

1. A cheap analysis pass over the source ranges the edit shows (each clip's used ranges, with
   ``PRE_ROLL`` s before each, merged and decoded once, analysed at low resolution): faces
   (OpenCV's Haar cascade, bundled in opencv-python-headless) every ``FACE_EVERY`` s at
   ``FACE_WIDTH`` px wide; salient motion every ``SAMPLE_EVERY`` s (the largest blob of a
   short frame-difference history at ``MOTION_WIDTH`` px wide; a difference over most of the
   frame is camera motion, not a subject); and hard cuts in the source (a jump in the frame
   difference).
2. A subject per sample (``_track``): a face seen by two detections in a row; else the moving
   subject, held while it stands still, widened by motion in place, replaced by a new mover,
   dropped once it has left by the frame's edge; else none. The window must hold the subject's
   box plus a margin: a corridor of allowed window centres per output frame (a subject wider
   than the window: centred on it, give or take a dead band).
3. A smooth path through the corridors, per stretch between cuts (a shot boundary in the
   output, or a source cut inside a shot: only there may the window jump): corridors averaged
   over a short window; a lazy path (it starts at the centre when the corridor allows, holds
   while the corridor allows, drifts back to the centre when there is no subject); repeated
   moving averages clamped to the corridors; then every step limited to ``MAX_SPEED``.

Positions are fractions of the source's displayed extent along the free axis (after rotation
and sample aspect ratio), so the renderer applies them at output resolution with sub-source-
pixel steps (see ``frames.FrameConverter``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import av
import cv2
import numpy as np

from ..contracts import EditDecisionList
from ..errors import RenderCancelled
from ..media import decode_tolerant, is_cover_art
from .probe import ClipProbe

#: the window's centre moves at most this fraction of the source's free-axis extent per second
MAX_SPEED = 0.4
#: analysis widths (px), subject sampling and face detection intervals (s)
FACE_WIDTH, MOTION_WIDTH, SAMPLE_EVERY, FACE_EVERY = 320, 160, 0.25, 0.5
#: margin around the subject inside the window, as a fraction of the window's extent
MARGIN = 0.1
#: the window ignores movements within +- this (fraction of the frame) of a subject wider than it
DEADBAND = 0.015
#: moving-average window (s) and passes of the path smoother
SMOOTH_WINDOW, SMOOTH_PASSES = 0.5, 12
#: motion history decay per second, grey-level threshold, and the share of the frame above
#: which a difference is camera motion (no subject)
DECAY_PER_S, MOTION_THRESHOLD, GLOBAL_MOTION = 0.003, 18, 0.35
#: a moving blob this share of the frame, apart from the held subject, is a new subject; a
#: subject that stops moving is held this long (s); analysis starts this long before a range
SUBJECT_SHARE, HOLD_S, PRE_ROLL = 0.01, 30.0, 3.0
#: a blob whose centre moved less than this (fraction of the frame) since the last sample is
#: motion in place: it widens the held subject instead of replacing it
SETTLED = 0.03
#: a held subject at the frame's edge with no motion for this long (s) has left the frame
LEFT_S = 0.6
#: with no subject, the window drifts back to the centre at this share of MAX_SPEED
RECENTRE = 0.5
#: hard cut: mean grey difference (0..255, 64x36) above this and above CUT_RATIO x the recent median
CUT_LEVEL, CUT_RATIO = 28.0, 4.0
#: aspect ratios closer than this (relative) need no reframing: the window is the whole frame
SAME_ASPECT = 0.01

_cascade = None


def _face_detector():
    global _cascade
    if _cascade is None:
        _cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_alt2.xml")
    return _cascade


def display_aspect(probe: ClipProbe) -> float:
    w, h = probe.display_size
    return w / h if h else 1.0


def window_extent(probe: ClipProbe, width: int, height: int) -> tuple[str, float]:
    """(free axis, window extent as a fraction of the source along it)."""
    src, out = display_aspect(probe), width / height
    if abs(src - out) / out <= SAME_ASPECT:
        return "x", 1.0
    return ("x", out / src) if src > out else ("y", src / out)


def _to_display(box: tuple[float, float, float, float], rotation: int) -> tuple[float, float, float, float]:
    """A normalised (x0, y0, x1, y1) box in coded orientation -> displayed orientation."""
    x0, y0, x1, y1 = box
    if rotation == 90:  # transpose=cclock
        return y0, 1 - x1, y1, 1 - x0
    if rotation == 270:  # transpose=clock
        return 1 - y1, x0, 1 - y0, x1
    if rotation == 180:
        return 1 - x1, 1 - y1, 1 - x0, 1 - y0
    return box


@dataclass
class ClipAnalysis:
    """Subject boxes along the free axis at sample times (clip seconds), and source cuts."""

    times: np.ndarray  # (n,)
    boxes: np.ndarray  # (n, 2): free-axis interval [lo, hi] in 0..1, nan: no subject
    kinds: list[str]  # "face", "motion" or ""
    cuts: list[float]  # clip times of hard cuts (the first frame of the new source shot)


def _merge(ranges: list[tuple[float, float]], gap: float = 1.0) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + gap:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def _motion_box(history: np.ndarray) -> tuple[tuple[float, float, float, float], float] | None:
    """The largest blob of recent motion: (normalised box, its share of the frame), or None."""
    mask = (history > 0.35).astype(np.uint8)
    if mask.mean() > GLOBAL_MOTION:
        return None  # the camera moves: everything differs
    mask = cv2.dilate(mask, np.ones((5, 5), np.uint8))
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return None
    areas = stats[1:, cv2.CC_STAT_AREA]
    i = int(np.argmax(areas)) + 1
    share = float(areas[i - 1]) / mask.size
    if share < 0.004:
        return None  # noise
    h, w = mask.shape
    x, y, bw, bh = (int(v) for v in stats[i, :4])
    return (x / w, y / h, (x + bw) / w, (y + bh) / h), share


@dataclass
class _Sample:
    t: float
    stretch: int  # samples of one stretch are continuous (no source cut, one decoded range)
    face: tuple[float, float] | None  # free-axis interval
    motion: tuple[float, float] | None
    motion_share: float = 0.0
    face_t: float = -1.0  # when ``face`` was detected (faces are looked for at every other sample)


def _track(samples: list[_Sample]) -> tuple[np.ndarray, list[str]]:
    """Subject per sample: a (confirmed) face; else the moving subject, held while it stands still.

    A face counts when a face is also seen near it by the detection before or after it in the
    same stretch (a lone hit is a false detection). Motion updates the held subject: a large blob apart from it is a
    new subject; a small blob inside or beside it (a hand, a head turning) slides the held box
    just enough to contain it; no motion keeps it for ``HOLD_S`` (someone standing still)."""
    n = len(samples)
    boxes = np.full((n, 2), np.nan)
    kinds = [""] * n
    held: tuple[float, float] | None = None
    held_t = -1e9
    last: tuple[float, float] | None = None  # the previous sample's motion blob
    for i, s in enumerate(samples):
        if i and s.stretch != samples[i - 1].stretch:
            held = None
        face = s.face
        if face is not None:
            mid = (face[0] + face[1]) / 2
            confirmed = any(0 <= j < n and samples[j].stretch == s.stretch and samples[j].face is not None
                            and samples[j].face_t != s.face_t and abs(samples[j].face_t - s.face_t) <= 2 * FACE_EVERY
                            and abs((samples[j].face[0] + samples[j].face[1]) / 2 - mid) < 0.1
                            for j in range(i - 3, i + 4))
            if confirmed:
                boxes[i], kinds[i] = face, "face"
                held, held_t, last = face, s.t, None
                continue
        m = s.motion
        if m is not None:
            overlaps = held is not None and m[0] < held[1] and held[0] < m[1]
            settling = (overlaps and last is not None and samples[i - 1].stretch == s.stretch
                        and abs((m[0] + m[1]) / 2 - (last[0] + last[1]) / 2) < SETTLED
                        and m[0] > 0.01 and m[1] < 0.99)  # cut by the frame's edge: leaving, not settling
            union = (min(held[0], m[0]), max(held[1], m[1])) if held is not None else m
            if settling and union[1] - union[0] <= 1.2 * max(m[1] - m[0], last[1] - last[0]):
                # moving in place (arms, head): the subject is all of what moved lately (not an
                # old trail: the union stays near the size of the blobs themselves)
                held = union
            elif held is None or (not overlaps and (s.motion_share >= SUBJECT_SHARE or s.t - held_t > 1.0)) or \
                    (overlaps and m[1] - m[0] >= 0.6 * (held[1] - held[0])):
                held = m
            elif overlaps:  # slide the held box to contain the small blob
                shift = max(0.0, m[1] - held[1]) - max(0.0, held[0] - m[0])
                held = (held[0] + shift, held[1] + shift)
            if overlaps or held == m:
                held_t = s.t
        last = m
        if held is not None and (held[0] <= 0.01 or held[1] >= 0.99) and s.t - held_t > LEFT_S:
            held = None  # it went out of the frame's edge and nothing moves there any more: gone
        if held is not None and s.t - held_t <= HOLD_S:
            boxes[i], kinds[i] = held, "motion"
    return boxes, kinds


def analyse_clip(probe: ClipProbe, ranges: list[tuple[float, float]], axis: str,
                 should_stop: Callable[[], bool] | None = None) -> ClipAnalysis:
    """Decode ``ranges`` (clip seconds, each with ``PRE_ROLL`` s before it) of the clip once, at
    low resolution: faces, motion, cuts; then the subject per sample (``_track``)."""
    samples: list[_Sample] = []
    cuts: list[float] = []
    cascade = _face_detector()
    aspect = probe.width * float(probe.sample_aspect_ratio or 1) / max(1, probe.height)  # coded orientation
    fw, fh = FACE_WIDTH, max(16, int(round(FACE_WIDTH / aspect)))
    mw, mh = MOTION_WIDTH, max(8, int(round(MOTION_WIDTH / aspect)))
    decay = DECAY_PER_S ** (1.0 / (probe.fps or 30.0))

    def free(box):
        d = _to_display(box, probe.rotation)
        return (d[0], d[2]) if axis == "x" else (d[1], d[3])

    stretch = decoded = 0
    try:
        container = av.open(probe.path, metadata_errors="ignore")
    except av.error.FFmpegError:
        return ClipAnalysis(np.zeros(0), np.zeros((0, 2)), [], [])  # the renderer reports the clip
    with container as c:
        s = next(s for s in c.streams.video if not is_cover_art(s))
        s.thread_type = "AUTO"
        tb = s.time_base
        for a, b in _merge([(max(0.0, x - PRE_ROLL), y) for x, y in ranges]):
            stretch += 1
            try:
                c.seek(max(0, int((a + probe.start_time) / tb)), stream=s, backward=True)
            except av.error.FFmpegError:
                c.seek(0, stream=s, backward=True)
            prev_small = prev_motion = None
            history = np.zeros((mh, mw), np.float32)
            diffs: list[float] = []
            next_sample = next_face = a
            face, face_t = None, -1.0
            try:
                for f in decode_tolerant(c, s):
                    if f.pts is None:
                        continue
                    t = float(f.pts * tb) - probe.start_time
                    if t > b:
                        break
                    decoded += 1
                    if should_stop is not None and decoded % 30 == 0 and should_stop():

                        raise RenderCancelled("render cancelled")
                    grey = f.reformat(width=fw, height=fh, format="gray", interpolation="AREA").to_ndarray()
                    small = cv2.resize(grey, (64, 36), interpolation=cv2.INTER_AREA).astype(np.float32)
                    motion = cv2.GaussianBlur(cv2.resize(grey, (mw, mh), interpolation=cv2.INTER_AREA), (3, 3), 0)
                    if prev_small is not None:
                        d = float(np.abs(small - prev_small).mean())
                        recent = float(np.median(diffs[-15:])) if diffs else 0.0
                        if t >= a and d > CUT_LEVEL and d > CUT_RATIO * max(recent, 1.0):
                            cuts.append(t)
                            stretch += 1
                            history[:] = 0  # the old shot's motion says nothing about the new one
                            prev_motion = None
                        diffs.append(d)
                    if prev_motion is not None:
                        moved = (cv2.absdiff(motion, prev_motion) > MOTION_THRESHOLD).astype(np.float32)
                        np.maximum(history * decay, moved, out=history)
                    prev_small, prev_motion = small, motion
                    if t < a - 1e-6 or t < next_sample - 1e-6:
                        continue
                    next_sample = t + SAMPLE_EVERY
                    if t >= next_face - 1e-6:  # faces at every other sample; the last result stands between
                        next_face = t + FACE_EVERY
                        faces = cascade.detectMultiScale(grey, scaleFactor=1.2, minNeighbors=5, minSize=(16, 16))
                        face, face_t = None, t
                        if len(faces):
                            face = free((min(x for x, _, _, _ in faces) / fw, min(y for _, y, _, _ in faces) / fh,
                                         max(x + w for x, _, w, _ in faces) / fw,
                                         max(y + h for _, y, _, h in faces) / fh))
                    mb = _motion_box(history)
                    samples.append(_Sample(t, stretch, face, free(mb[0]) if mb else None, mb[1] if mb else 0.0, face_t))
            except av.error.FFmpegError:
                pass  # a truncated clip: what was read
    samples.sort(key=lambda x: x.t)
    boxes, kinds = _track(samples)
    return ClipAnalysis(np.array([x.t for x in samples], float), boxes.reshape(-1, 2), kinds, sorted(set(cuts)))


def _corridors(boxes: np.ndarray, extent: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Allowed window centres per frame for subject boxes (nan: free), and which frames see a subject."""
    half = extent / 2
    lo = np.full(len(boxes), half)
    hi = np.full(len(boxes), 1 - half)
    seen = ~np.isnan(boxes[:, 0])
    m = MARGIN * extent
    b0, b1 = boxes[seen, 0] - m, boxes[seen, 1] + m
    need_lo, need_hi = b1 - half, b0 + half
    wide = need_lo > need_hi  # the subject (with margin) is wider than the window: centre on it
    mid = (boxes[seen, 0] + boxes[seen, 1]) / 2
    mid = np.where(boxes[seen, 1] >= 0.99, 1.0, np.where(boxes[seen, 0] <= 0.01, 0.0, mid))
    # wider than the window: centre on it, give or take the dead band (detection noise must not
    # shake the window); cut by the frame's edge: hold that edge
    edge = (boxes[seen, 1] >= 0.99) | (boxes[seen, 0] <= 0.01)
    band = np.where(edge, 0.0, DEADBAND)
    need_lo = np.where(wide, mid - band, need_lo)
    need_hi = np.where(wide, mid + band, need_hi)
    lo[seen] = np.clip(need_lo, half, 1 - half)
    hi[seen] = np.clip(need_hi, half, 1 - half)
    return lo, hi, seen


def smooth_path(lo: np.ndarray, hi: np.ndarray, seen: np.ndarray, fps: float) -> np.ndarray:
    """A smooth window-centre path inside the corridors [lo, hi] of one stretch without cuts."""
    n = len(lo)
    if n == 0:
        return np.zeros(0)
    if not seen.any():
        return np.full(n, 0.5).clip(lo, hi)  # nothing to follow: the centre
    first = int(np.argmax(seen))
    # the corridors themselves are averaged over a short window: detection noise averages out
    # instead of pushing the window to and fro
    k = max(1, int(round(SMOOTH_WINDOW * fps / 2)))
    if n > k > 1:
        kernel = np.ones(k) / k
        lo = np.convolve(np.concatenate([np.full(k, lo[0]), lo, np.full(k, lo[-1])]), kernel, mode="same")[k:-k]
        hi = np.convolve(np.concatenate([np.full(k, hi[0]), hi, np.full(k, hi[-1])]), kernel, mode="same")[k:-k]
    p = np.empty(n)
    # lazy start: the centre if the first corridor allows it, else its nearest edge; then hold
    # while the corridor allows (a still subject keeps the window still)
    x = float(np.clip(0.5, lo[first], hi[first]))
    drift = RECENTRE * MAX_SPEED / fps
    for i in range(n):
        if i >= first:
            # no subject (it left): drift back towards the centre, slowly
            x = float(np.clip(x, lo[i], hi[i])) if seen[i] else x + float(np.clip(0.5 - x, -drift, drift))
        p[i] = x
    k = max(1, int(round(SMOOTH_WINDOW * fps)))
    if n > 2 and k > 1:
        kernel = np.ones(k) / k
        for _ in range(SMOOTH_PASSES):
            padded = np.concatenate([np.full(k, p[0]), p, np.full(k, p[-1])])
            p = np.clip(np.convolve(padded, kernel, mode="same")[k:-k], lo, hi)
    v = MAX_SPEED / fps
    for i in range(1, n):  # forward, then backward: every step within v
        p[i] = np.clip(p[i], p[i - 1] - v, p[i - 1] + v)
    for i in range(n - 2, -1, -1):
        p[i] = np.clip(p[i], p[i + 1] - v, p[i + 1] + v)
    return p


@dataclass
class ShotCrop:
    axis: str
    extent: float  # window extent along the axis (fraction of the source)
    source_in: float
    centres: np.ndarray  # window centre per output frame of the shot (and its tail)
    cuts: list[int]  # frame indices (within the shot) where a source cut lets the window jump


class CropPlan:
    """Per shot: the crop window's centre at each output frame; read by ``frames.ReaderPool``."""

    def __init__(self, fps: int, shots: dict[int, ShotCrop]):
        self.fps, self.shots = fps, shots

    def position(self, owner: int, t: float) -> tuple[str, float]:
        """(free axis, window start as a fraction of the slack: 0 = left/top, 1 = right/bottom)."""
        sc = self.shots.get(owner)
        if sc is None or sc.extent >= 1.0 or not len(sc.centres):
            return "x", 0.5
        k = min(len(sc.centres) - 1, max(0, int(round((t - sc.source_in) * self.fps))))
        c = float(sc.centres[k])
        return sc.axis, float(np.clip((c - sc.extent / 2) / (1 - sc.extent), 0.0, 1.0))


def plan_crops(edl: EditDecisionList, probes: list[ClipProbe],
               should_stop: Callable[[], bool] | None = None) -> CropPlan:
    """Analyse what each shot shows and plan its crop path (see the module docstring)."""
    fps = edl.fps
    # a shot plays on under the next shot's transition: its path covers those frames too
    tails = {s.index: int(round(nxt.transition.duration * fps)) + 1 for s, nxt in zip(edl.shots, edl.shots[1:])}
    geometry = {i: window_extent(p, edl.width, edl.height) for i, p in enumerate(probes)}
    ranges: dict[int, list[tuple[float, float]]] = {}
    for s in edl.shots:
        if geometry[s.clip][1] < 1.0:
            ranges.setdefault(s.clip, []).append((s.source_in, s.source_in + (s.frames + tails.get(s.index, 1)) / fps))
    analyses = {clip: analyse_clip(probes[clip], r, geometry[clip][0], should_stop) for clip, r in ranges.items()}
    plan: dict[int, ShotCrop] = {}
    for s in edl.shots:
        axis, extent = geometry[s.clip]
        if extent >= 1.0:
            continue
        an = analyses[s.clip]
        n = s.frames + tails.get(s.index, 1)
        t = s.source_in + np.arange(n) / fps
        boxes = np.full((n, 2), np.nan)
        if len(an.times):
            # between two samples the box moves linearly; next to one sample only (the other
            # sees nothing, or is too far away: 2 sample intervals) it is that sample's box
            j = np.clip(np.searchsorted(an.times, t, side="right"), 1, len(an.times) - 1) if len(an.times) > 1 \
                else np.zeros(n, int)
            i0 = np.maximum(j - 1, 0)
            t0, t1 = an.times[i0], an.times[j]
            reach = 2 * SAMPLE_EVERY + 1.0 / fps
            ok0 = ~np.isnan(an.boxes[i0, 0]) & (np.abs(t - t0) <= reach)
            ok1 = ~np.isnan(an.boxes[j, 0]) & (np.abs(t1 - t) <= reach)
            w = np.clip((t - t0) / np.maximum(t1 - t0, 1e-9), 0, 1)[:, None]
            both = ok0 & ok1
            boxes[both] = (1 - w[both]) * an.boxes[i0[both]] + w[both] * an.boxes[j[both]]
            boxes[ok0 & ~ok1] = an.boxes[i0[ok0 & ~ok1]]
            boxes[ok1 & ~ok0] = an.boxes[j[ok1 & ~ok0]]
        lo, hi, seen = _corridors(boxes, extent)
        cut_frames = sorted({int(np.ceil((c - s.source_in) * fps - 1e-6)) for c in an.cuts
                             if s.source_in < c < s.source_in + n / fps})
        cut_frames = [k for k in cut_frames if 0 < k < n]
        centres = np.empty(n)
        for a, b in zip([0, *cut_frames], [*cut_frames, n]):
            centres[a:b] = smooth_path(lo[a:b], hi[a:b], seen[a:b], fps)
        plan[s.index] = ShotCrop(axis, extent, s.source_in, centres, cut_frames)
    return CropPlan(fps, plan)

