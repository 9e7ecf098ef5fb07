"""A corpus of broken and hostile media, generated (small) into a folder."""

from __future__ import annotations

import struct
from pathlib import Path

import av
import numpy as np

from beatsync.analysis.synth import click_track, encode_audio, encode_wav
from beatsync.render.synth import moving_frames, write_clip


def _wav_header_claiming(seconds: float, sr: int = 8000) -> bytes:
    """A WAV whose header promises ``seconds`` of 8-bit mono audio, followed by one second of it."""
    data_size = int(seconds * sr)
    header = b"RIFF" + struct.pack("<I", 36 + data_size) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sr, sr, 1, 8)
    header += b"data" + struct.pack("<I", data_size)
    return header + bytes([128]) * sr


def _y4m_claiming(width: int, height: int) -> bytes:
    """A YUV4MPEG2 stream whose header says ``width`` x ``height``, with a token of frame data."""
    return f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n".encode() + b"FRAME\n" + bytes(4096)


def _many_streams(path: Path, n: int) -> None:
    with av.open(str(path), "w", format="matroska") as out:
        streams = []
        for _ in range(n):
            s = out.add_stream("pcm_s16le", rate=8000)
            s.layout = "mono"
            streams.append(s)
        for s in streams:  # one short packet each (the header is written at the first packet)
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 80), np.int16), format="s16", layout="mono")
            frame.sample_rate = 8000
            for p in s.encode(frame):
                out.mux(p)


def _png(path: Path) -> None:
    with av.open(str(path), "w", format="image2") as out:
        s = out.add_stream("png", rate=1)
        s.width, s.height, s.pix_fmt = 64, 48, "rgb24"
        frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
        for p in s.encode(frame):
            out.mux(p)
        for p in s.encode():
            out.mux(p)


def _zeroed_packets(src: bytes) -> bytes:
    """Keep the container structure (moov intact), zero the coded frames in mdat: nothing decodes."""
    data = bytearray(src)
    at = data.find(b"mdat")
    size = struct.unpack(">I", data[at - 4:at])[0]
    data[at + 4:at - 4 + size] = bytes(size - 8)
    return bytes(data)


def _ten_hours(path: Path) -> None:
    """Audio whose container says it lasts 10 hours (a packet at 0 s and one at 10 h): refused by its
    duration before any decoding, at a few kilobytes."""
    sr = 8000
    with av.open(str(path), "w", format="matroska") as out:
        s = out.add_stream("pcm_s16le", rate=sr)
        s.layout = "mono"
        for i, start in enumerate((0, 10 * 3600 * sr)):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, sr), np.int16), format="s16", layout="mono")
            frame.sample_rate, frame.pts = sr, start
            frame.time_base = s.codec_context.time_base or __import__("fractions").Fraction(1, sr)
            for p in s.encode(frame):
                out.mux(p)
        for p in s.encode():
            out.mux(p)


def _huge_moov(src: bytes) -> bytes:
    """An mp4 whose sample-size table claims enormous samples."""
    data = bytearray(src)
    i = data.find(b"stsz")
    if i >= 0:
        count = struct.unpack(">I", data[i + 12:i + 16])[0]
        for k in range(count):
            off = i + 16 + 4 * k
            data[off:off + 4] = struct.pack(">I", 0x7FFFFFF0)
    return bytes(data)


def _corrupt_middle(src: bytes) -> bytes:
    data = bytearray(src)
    rng = np.random.default_rng(7)
    a, b = len(data) // 2, len(data) // 2 + 2000
    data[a:b] = rng.integers(0, 256, b - a, dtype=np.uint8).tobytes()
    return bytes(data)


def make_corpus(root: Path) -> dict[str, Path]:
    """``name -> path``. Good files: song.wav, clip.mp4; the rest are broken in one way each."""
    root.mkdir(parents=True, exist_ok=True)
    y, _ = click_track(120.0, 6.0, 22050, offset=0.5)
    files: dict[str, bytes | None] = {}
    files["song.wav"] = encode_wav(y, 22050)
    clip = root / "clip.mp4"
    write_clip(str(clip), moving_frames(3.0, 30, size=(160, 96), seed=3), 30, gop=15)
    good = clip.read_bytes()
    files["empty.mp3"] = b""
    files["empty.mp4"] = b""
    files["text.mp3"] = b"Dear diary, today I renamed a text file.\n" * 40
    files["text.mp4"] = b"not a video at all\n" * 200
    files["truncated.mp4"] = good[: int(len(good) * 0.6)]  # moov (written last) is gone
    files["huge_moov.mp4"] = _huge_moov(good)
    files["giant_16384.mp4"] = _y4m_claiming(16384, 16384)  # FFmpeg itself refuses this size
    files["giant_12000.mp4"] = _y4m_claiming(12000, 12000)  # opens; our pixel limit refuses it
    files["lying_wav_header.wav"] = _wav_header_claiming(10 * 3600)  # FFmpeg trusts the file size: 1 s
    files["audio_only.mp4"] = encode_audio(y, 22050, "mp4", "aac")
    files["video_no_audio.mp4"] = good  # a fine clip, but no soundtrack: refused as the song
    files["no_frames.mp4"] = _zeroed_packets(good)
    files["corrupt_middle.mp4"] = _corrupt_middle(good)
    files["truncated.mp3"] = encode_audio(y, 22050, "mp3", "libmp3lame")[:300]
    for name, data in files.items():
        (root / name).write_bytes(data)
    _many_streams(root / "many_streams.mkv", 1000)
    _ten_hours(root / "ten_hours.mka")
    _png(root / "image.png")
    return {p.name: p for p in root.iterdir()}
