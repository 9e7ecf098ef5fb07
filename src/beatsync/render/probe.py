"""Probe a clip: duration, frame rate (constant or variable), rotation, aspect, size, format.

Reads the container header and decodes the first frame (to prove the clip is decodable and
to read the display-matrix rotation phones write). Limits are checked before any decoding.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction

import av

from ..errors import MediaError
from ..media import decode_tolerant, is_cover_art

MAX_STREAMS = 64


@dataclass(frozen=True)
class ClipProbe:
    path: str
    duration: float
    fps: float  # average frame rate
    variable_frame_rate: bool
    width: int  # coded size, before rotation
    height: int
    rotation: int  # degrees to rotate for display: 0, 90, 180, 270 (counter-clockwise, FFmpeg's sign)
    sample_aspect_ratio: Fraction
    pix_fmt: str
    full_range: bool
    codec: str
    has_audio: bool
    start_time: float
    keyframes: tuple[float, ...] = ()  # from the container index, where it has one

    @property
    def display_size(self) -> tuple[int, int]:
        w = round(self.width * float(self.sample_aspect_ratio))
        return (self.height, w) if self.rotation in (90, 270) else (w, self.height)


def _name(path) -> str:
    return os.path.basename(os.fspath(path))


def probe_clip(path: str | os.PathLike, *, max_pixels: int = 4096 * 2304, max_duration: float = 3600.0) -> ClipProbe:
    name = _name(path)
    if not os.path.isfile(path):
        raise MediaError(f"clip {name}: file not found", code="unsupported_media", source=name)
    if os.path.getsize(path) == 0:
        raise MediaError(f"clip {name}: the file is empty", code="unsupported_media", source=name)
    try:
        container = av.open(os.fspath(path), metadata_errors="ignore")
    except av.error.InvalidDataError:
        raise MediaError(f"clip {name}: not a video file FFmpeg can read", code="unsupported_media", source=name) from None
    except av.error.FFmpegError as exc:
        raise MediaError(f"clip {name}: cannot be opened ({exc})", code="corrupt_media", source=name) from None
    try:
        if len(container.streams) > MAX_STREAMS:
            raise MediaError(f"clip {name}: {len(container.streams)} streams", code="unsupported_media", source=name)
        if container.format.name == "image2" or container.format.name.endswith("_pipe"):
            raise MediaError(f"clip {name}: a still image ({container.format.name}), not a video", code="no_video_stream",
                             source=name)
        videos = [s for s in container.streams.video if not is_cover_art(s) and s.codec_context is not None]
        if not videos:
            raise MediaError(f"clip {name}: no video track", code="no_video_stream", source=name)
        stream = videos[0]
        cc = stream.codec_context
        if cc.width * cc.height > max_pixels:
            raise MediaError(f"clip {name}: {cc.width}x{cc.height} is above the resolution limit", code="too_large",
                             source=name, details={"width": cc.width, "height": cc.height})
        tb = stream.time_base
        duration = None
        if stream.duration is not None and tb is not None:
            duration = float(stream.duration * tb)
        elif container.duration:
            duration = container.duration / 1_000_000
        if duration is not None and duration > max_duration:
            raise MediaError(f"clip {name}: {duration:.0f} s is above the limit", code="too_long", source=name)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        base = stream.base_rate or rate
        # one frame is decoded: frame threads would allocate a decoder (and its pictures) per core
        stream.thread_type = "SLICE"
        try:
            first = next(decode_tolerant(container, stream), None)
        except av.error.FFmpegError:
            first = None
        if first is None:
            raise MediaError(f"clip {name}: no video frame could be decoded", code="corrupt_media", source=name)
        rotation = int(round(first.rotation or 0)) % 360
        rotation = min((0, 90, 180, 270), key=lambda r: min(abs(r - rotation), 360 - abs(r - rotation)))
        start = float(stream.start_time * tb) if stream.start_time is not None and tb else 0.0
        if not duration or duration <= 0:
            duration = _duration_by_scan(path, stream.index)
        sar = stream.sample_aspect_ratio or Fraction(1, 1)
        pix_fmt = cc.pix_fmt or first.format.name
        full_range = pix_fmt.startswith("yuvj") or getattr(first, "color_range", 0) == 2
        vfr = bool(rate and base and abs(float(rate) - float(base)) / float(base) > 0.01)
        return ClipProbe(
            path=os.fspath(path), duration=float(duration), fps=float(rate) if rate else 0.0, variable_frame_rate=vfr,
            width=cc.width, height=cc.height, rotation=rotation, sample_aspect_ratio=Fraction(sar),
            pix_fmt=pix_fmt, full_range=bool(full_range), codec=cc.name,
            has_audio=bool(container.streams.audio), start_time=start,
            keyframes=tuple(sorted(round(float(e.timestamp * tb) - start, 4)
                                   for e in stream.index_entries if e.is_keyframe)) if tb else (),
        )
    finally:
        container.close()


def _duration_by_scan(path, index: int) -> float:
    with av.open(os.fspath(path)) as c:
        s = c.streams[index]
        last = 0.0
        for packet in c.demux(s):
            if packet.pts is not None:
                last = max(last, float((packet.pts + (packet.duration or 0)) * s.time_base))
        return last
