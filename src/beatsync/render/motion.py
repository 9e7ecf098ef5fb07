"""Motion score per clip segment: mean absolute difference between consecutive frames at
64x36 grey, in MOTION_STEP-second bins. Non-reference frames are skipped by the decoder
(half the decoding on typical H.264), which is plenty for a coarse score."""

from __future__ import annotations

import av
import numpy as np

from ..editing.plan import MOTION_STEP
from ..media import decode_tolerant, is_cover_art
from .probe import ClipProbe


def motion_profile(probe: ClipProbe, step: float = MOTION_STEP) -> np.ndarray:
    """Raw motion per ``step`` seconds (mean abs grey difference, 0..255)."""
    bins = max(1, int(np.ceil(probe.duration / step)))
    total = np.zeros(bins)
    count = np.zeros(bins)
    with av.open(probe.path, metadata_errors="ignore") as c:
        s = next(s for s in c.streams.video if not is_cover_art(s))
        s.thread_type = "AUTO"
        s.codec_context.skip_frame = "NONREF"
        prev = None
        try:
            for f in decode_tolerant(c, s):
                if f.pts is None:
                    continue
                g = f.reformat(width=64, height=36, format="gray").to_ndarray().astype(np.int16)
                if prev is not None:
                    t = float(f.pts * s.time_base) - probe.start_time
                    b = min(bins - 1, max(0, int(t / step)))
                    total[b] += np.abs(g - prev).mean()
                    count[b] += 1
                prev = g
        except av.error.FFmpegError:
            pass  # a truncated clip: score what was read
    out = np.divide(total, count, out=np.zeros(bins), where=count > 0)
    # empty bins (sparse frames) take their neighbours' value
    if count.any() and not count.all():
        idx = np.flatnonzero(count)
        out = np.interp(np.arange(bins), idx, out[idx])
    return out


def normalise(profiles: list[np.ndarray]) -> list[tuple[float, ...]]:
    """Scale all clips' motion together to 0..1 (95th percentile = 1), so clips compare."""
    joined = np.concatenate([p for p in profiles if len(p)]) if profiles else np.zeros(0)
    ref = float(np.percentile(joined, 95)) if joined.size else 0.0
    if ref <= 0:
        return [tuple(0.5 for _ in p) for p in profiles]
    return [tuple(float(round(min(1.0, x / ref), 4)) for x in p) for p in profiles]
