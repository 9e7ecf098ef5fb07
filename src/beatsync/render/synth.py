"""Generated clips for tests and benchmarks (PyAV into files): solid colours, moving
patterns, rotation metadata, variable frame rate, full range, any size and rate."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np


def write_clip(
    path: str,
    frames,  # iterable of (H, W, 3) uint8 RGB arrays
    fps: float = 30,
    *,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    rotation: int = 0,
    timestamps=None,  # seconds per frame, for variable frame rate
    gop: int = 12,
    audio: bool = False,
) -> str:
    frames = list(frames)
    h, w = frames[0].shape[:2]
    with av.open(path, "w") as out:
        rate = Fraction(fps).limit_denominator(1001)
        v = out.add_stream(codec, rate=rate, options={"preset": "ultrafast", "g": str(gop)} if codec == "libx264" else {})
        v.width, v.height, v.pix_fmt = w, h, pix_fmt
        tb = Fraction(1, 1000) if timestamps is not None else 1 / rate
        v.codec_context.time_base = tb
        if pix_fmt.startswith("yuvj"):
            v.codec_context.color_range = 2
        if rotation:
            v.set_display_rotation(rotation)
        a = None
        if audio:
            a = out.add_stream("aac", rate=44100, layout="mono")
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = int(round(timestamps[i] * 1000)) if timestamps is not None else i
            frame.time_base = tb
            for p in v.encode(frame):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
        if a is not None:
            n = int(len(frames) / fps * 44100)
            y = (0.1 * np.sin(np.arange(n) * 0.05)).astype(np.float32)
            for i in range(0, n - 1024, 1024):
                af = av.AudioFrame.from_ndarray(y[None, i : i + 1024], format="flt", layout="mono")
                af.sample_rate, af.pts = 44100, i
                for p in a.encode(af):
                    out.mux(p)
            for p in a.encode(None):
                out.mux(p)
    return path


def solid_frames(rgb, seconds: float, fps: float, size=(160, 90)):
    w, h = size
    img = np.empty((h, w, 3), np.uint8)
    img[:] = rgb
    return [img.copy() for _ in range(int(round(seconds * fps)))]


def moving_frames(seconds: float, fps: float, size=(160, 90), speed: float = 1.0, seed: int = 0):
    """A textured pattern scrolling ``speed`` pixels per frame (speed 0: still)."""
    w, h = size
    rng = np.random.default_rng(seed)
    tex = rng.integers(0, 255, (h, w * 4, 3), dtype=np.uint8)
    tex = np.repeat(np.repeat(tex[:, ::8], 8, axis=1)[:, : w * 4], 1, axis=0)
    out = []
    for i in range(int(round(seconds * fps))):
        x = int(i * speed) % (w * 3)
        out.append(np.ascontiguousarray(tex[:, x : x + w]))
    return out
