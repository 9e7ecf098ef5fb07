"""Decode the audio of any upload (wav, mp3, m4a/aac, ogg, opus, flac, or a video's sound) with PyAV.

One pass: demux the chosen stream, decode packet by packet (a corrupt packet is skipped and
counted, not fatal unless nothing decodes), resample to mono float32 at a fixed rate.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from typing import BinaryIO, Union

import av
import numpy as np

from ..errors import MediaError
from ..media import DECODE_ERRORS, decode_tolerant

Source = Union[str, os.PathLike, bytes, BinaryIO]

#: madmom's networks were trained on 44.1 kHz audio; librosa features use a 22.05 kHz copy
ANALYSIS_SR = 44100


@dataclass(frozen=True)
class Audio:
    samples: np.ndarray  # float32, mono, in [-1, 1]
    sample_rate: int
    declared_duration: float | None = None

    @property
    def duration(self) -> float:
        return len(self.samples) / float(self.sample_rate)


def source_name(source: Source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return getattr(source, "name", None) or "<bytes>"


def read_source_bytes(source: Source) -> bytes:
    """The raw bytes of a source (used for the content hash)."""
    if isinstance(source, bytes):
        return source
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            raise MediaError(f"file not found: {os.fspath(source)}", code="unsupported_media", source=os.fspath(source)) from None
        except IsADirectoryError:
            raise MediaError(f"is a directory: {os.fspath(source)}", code="unsupported_media", source=os.fspath(source)) from None
    pos = source.tell()
    data = source.read()
    source.seek(pos)
    return data


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _open(data: bytes, name: str):
    if not data:
        raise MediaError(f"{name}: the file is empty", code="unsupported_media", source=name)
    try:
        return av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    except av.error.InvalidDataError:
        raise MediaError(f"{name}: not an audio or video file FFmpeg can read", code="unsupported_media", source=name) from None
    except av.error.FFmpegError as exc:
        raise MediaError(f"{name}: cannot be opened ({exc})", code="corrupt_media", source=name) from None


def pick_audio_stream(container) -> "av.audio.stream.AudioStream":
    """The audio track to analyse: FFmpeg's best audio stream (which prefers the default
    disposition and more channels), ignoring cover art and other non-audio streams."""
    candidates = [s for s in container.streams.audio if s.codec_context is not None and s.channels > 0]
    if not candidates:
        raise MediaError("the file has no audio track", code="no_audio_stream")
    try:
        best = container.streams.best("audio")
    except Exception:  # pragma: no cover - defensive: PyAV raises on odd containers
        best = None
    if best is not None and best in candidates:
        return best
    defaults = [s for s in candidates if s.disposition & av.stream.Disposition.default]
    return (defaults or candidates)[0]


def _declared_duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / 1_000_000.0
    return None


def declared_duration(path: str | os.PathLike) -> float | None:
    """The length the song's audio stream declares (no decoding); None if it declares none or the
    file cannot be read (the analysis then says why)."""
    try:
        with av.open(os.fspath(path), mode="r", metadata_errors="ignore") as container:
            seconds = _declared_duration(container, pick_audio_stream(container))
    except (MediaError, av.error.FFmpegError, OSError):
        return None
    return seconds if seconds is not None and seconds > 0 else None


def decode_audio(
    source: Source,
    *,
    sample_rate: int = ANALYSIS_SR,
    max_duration: float = 15 * 60.0,
    data: bytes | None = None,
) -> Audio:
    """Decode ``source`` to mono float32 at ``sample_rate``.

    Raises :class:`~beatsync.errors.MediaError` with code ``unsupported_media``,
    ``corrupt_media``, ``no_audio_stream`` or ``too_long``.
    """
    name = source_name(source)
    if data is None:
        data = read_source_bytes(source)
    container = _open(data, name)
    try:
        try:
            stream = pick_audio_stream(container)
        except MediaError as exc:
            raise MediaError(f"{name}: {exc.message}", code=exc.code, source=name) from None
        declared = _declared_duration(container, stream)
        if declared is not None and declared > max_duration:
            raise MediaError(
                f"{name}: {declared:.0f} s of audio, the limit is {max_duration:.0f} s", code="too_long",
                source=name,
                details={"duration": declared, "max_duration": max_duration},
            )
        stream.thread_type = "AUTO"
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks: list[np.ndarray] = []
        n_samples = 0
        limit = int((max_duration + 1.0) * sample_rate)
        bad_packets = 0
        good_frames = 0

        def take(frames) -> None:
            nonlocal n_samples
            for out in frames:
                arr = out.to_ndarray().reshape(-1)
                chunks.append(arr)
                n_samples += arr.shape[0]

        def bad() -> None:
            nonlocal bad_packets
            bad_packets += 1

        for frame in decode_tolerant(container, stream, on_error=bad):
            good_frames += 1
            try:
                take(resampler.resample(frame))
            except DECODE_ERRORS:
                bad()
            if n_samples > limit:
                raise MediaError(
                    f"{name}: longer than the limit of {max_duration:.0f} s", code="too_long",
                    source=name,
                    details={"max_duration": max_duration},
                )
        try:
            take(resampler.resample(None))
        except DECODE_ERRORS:
            pass
    except av.error.FFmpegError as exc:
        raise MediaError(f"{name}: decoding failed ({exc})", code="corrupt_media", source=name) from None
    finally:
        container.close()

    if good_frames == 0:
        raise MediaError(f"{name}: no audio could be decoded", code="corrupt_media", source=name,
                         details={"bad_packets": bad_packets})
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    samples = np.nan_to_num(samples.astype(np.float32, copy=False), copy=False)
    np.clip(samples, -1.0, 1.0, out=samples)
    audio = Audio(samples=samples, sample_rate=sample_rate, declared_duration=declared)
    if declared is not None and declared > 2.0 and audio.duration < 0.9 * declared - 0.5:
        raise MediaError(
            f"{name}: the file is truncated (decoded {audio.duration:.1f} s of {declared:.1f} s)", code="corrupt_media",
            source=name,
            details={"decoded_duration": audio.duration, "declared_duration": declared},
        )
    return audio
