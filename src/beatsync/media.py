"""PyAV helpers shared by analysis and rendering. Imports av: only heavy modules use it."""

from __future__ import annotations

from typing import Callable, Iterator

import av

#: what a corrupt packet raises when decoded
DECODE_ERRORS = (av.error.FFmpegError, ValueError)


def decode_tolerant(container, stream, on_error: Callable[[], None] | None = None) -> Iterator:
    """The decoded frames of ``stream``. A packet that fails to decode (corrupt data mid-stream)
    is skipped and reported to ``on_error``; errors of the demuxer itself propagate."""
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except DECODE_ERRORS:
            if on_error is not None:
                on_error()
            continue
        yield from frames


def is_cover_art(stream) -> bool:
    return bool(stream.disposition & av.stream.Disposition.attached_pic)
