"""The six transitions, on yuv420p frames as numpy planes (only transition frames pay this).

``k`` counts frames into a transition of ``n`` frames (0 <= k < n); ``outgoing`` is the
previous shot still playing, ``incoming`` the new shot. Each returns a new frame.

- cut:    incoming (no blending)
- fade:   crossfade, incoming weight (k+1)/(n+1)
- zoom:   punch-in: the incoming shot starts magnified 1.3x and settles to 1x
- flash:  a white flash on the cut that decays over the transition
- glitch: chroma (RGB) split and horizontal block displacement, decaying
- slide:  push: the incoming shot slides in from the right and pushes the outgoing out

``punch`` is the beat accent inside a shot (config ``punch``): a 1.12x zoom on the beat easing
back over 0.2 s.
"""

from __future__ import annotations

import av
import numpy as np

from ..contracts.edit import TRANSITIONS as STYLES
NEEDS_OUTGOING = {"fade", "slide"}


def _planes(frame: av.VideoFrame) -> np.ndarray:
    return frame.to_ndarray()  # (h * 3 / 2, w) for yuv420p


def _frame(arr: np.ndarray) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="yuv420p")


def _split(arr: np.ndarray, h: int, w: int):
    y = arr[:h]
    u = arr[h : h + h // 4].reshape(h // 2, w // 2)
    v = arr[h + h // 4 :].reshape(h // 2, w // 2)
    return y, u, v


def _join(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    h, w = y.shape
    return np.concatenate([y, u.reshape(h // 4, w), v.reshape(h // 4, w)])


def _zoom(a: np.ndarray, w: int, h: int, z: float) -> av.VideoFrame:
    """The centre 1/z of the picture, scaled back to full size."""
    cw, ch = int(w / z) // 4 * 4, int(h / z) // 4 * 4
    x0, y0 = (w - cw) // 4 * 2, (h - ch) // 4 * 2
    y, u, v = _split(a, h, w)
    crop = _join(y[y0 : y0 + ch, x0 : x0 + cw], u[y0 // 2 : (y0 + ch) // 2, x0 // 2 : (x0 + cw) // 2],
                 v[y0 // 2 : (y0 + ch) // 2, x0 // 2 : (x0 + cw) // 2])
    return _frame(_planes(_frame(crop).reformat(width=w, height=h, format="yuv420p", interpolation="BILINEAR")))


#: beat-accent punch: a zoom of PUNCH_ZOOM on the beat frame, settling to none over PUNCH_SECONDS
PUNCH_ZOOM = 1.12
PUNCH_SECONDS = 0.2


def punch(frame: av.VideoFrame, k: int, n: int) -> av.VideoFrame:
    """Frame ``k`` (0 <= k < n) of a beat-accent punch: strongest on the beat, easing out."""
    return _zoom(_planes(frame), frame.width, frame.height, 1.0 + (PUNCH_ZOOM - 1.0) * (1.0 - k / n) ** 2)


def apply(style: str, k: int, n: int, incoming: av.VideoFrame, outgoing: av.VideoFrame | None, seed: int = 0) -> av.VideoFrame:
    if style == "cut" or n <= 0:
        return incoming
    w, h = incoming.width, incoming.height
    p = (k + 1) / (n + 1)  # progress, 0 < p < 1
    a = _planes(incoming)
    if style == "fade":
        b = _planes(outgoing) if outgoing is not None else np.zeros_like(a)
        out = (a.astype(np.uint16) * int(p * 256) + b.astype(np.uint16) * (256 - int(p * 256))) >> 8
        return _frame(out.astype(np.uint8))
    if style == "flash":
        y, u, v = _split(a, h, w)
        white = 1.0 - k / n  # brightest on the cut frame
        y = (y * (1 - white) + 235 * white).astype(np.uint8)
        u = (u * (1 - white) + 128 * white).astype(np.uint8)
        v = (v * (1 - white) + 128 * white).astype(np.uint8)
        return _frame(_join(y, u, v))
    if style == "zoom":
        return _zoom(a, w, h, 1.0 + 0.3 * (1.0 - k / n))
    if style == "glitch":
        strength = 1.0 - k / n
        rng = np.random.default_rng(seed * 1000 + k)
        y, u, v = (plane.copy() for plane in _split(a, h, w))
        shift = max(1, int(w * 0.02 * strength)) // 2 * 2 or 2
        u = np.roll(u, shift // 2, axis=1)
        v = np.roll(v, -shift // 2, axis=1)
        bands = max(2, int(8 * strength))
        for _ in range(bands):
            top = int(rng.integers(0, max(1, h // 2 - 8))) * 2
            height = int(rng.integers(4, max(6, h // 12))) // 2 * 2
            dx = int(rng.integers(-w // 10, w // 10 + 1)) // 2 * 2
            y[top : top + height] = np.roll(y[top : top + height], dx, axis=1)
            u[top // 2 : (top + height) // 2] = np.roll(u[top // 2 : (top + height) // 2], dx // 2, axis=1)
            v[top // 2 : (top + height) // 2] = np.roll(v[top // 2 : (top + height) // 2], dx // 2, axis=1)
        return _frame(_join(y, u, v))
    if style == "slide":
        b = _planes(outgoing) if outgoing is not None else np.zeros_like(a)
        off = int(round(w * (1.0 - p))) // 2 * 2  # incoming's left edge
        ya, ua, va = _split(a, h, w)
        yb, ub, vb = _split(b, h, w)
        y = np.concatenate([yb[:, w - off :], ya[:, : w - off]], axis=1) if off else ya
        u = np.concatenate([ub[:, (w - off) // 2 :], ua[:, : (w - off) // 2]], axis=1) if off else ua
        v = np.concatenate([vb[:, (w - off) // 2 :], va[:, : (w - off) // 2]], axis=1) if off else va
        return _frame(_join(y, u, v))
    raise ValueError(f"unknown transition {style!r}")
