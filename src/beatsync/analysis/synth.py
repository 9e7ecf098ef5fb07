"""Small signal generators and an in-memory encoder, for tests, warm-up and benchmarks."""

from __future__ import annotations

import io

import numpy as np


def click_track(
    bpm: float,
    duration: float,
    sr: int = 44100,
    beats_per_bar: int = 4,
    accent: float = 1.0,
    offset: float = 0.5,
    weak_gain: float = 0.35,
) -> tuple[np.ndarray, np.ndarray]:
    """Clicks on every beat; downbeats louder and lower-pitched (plus a bass thump) when
    ``accent`` > 0. Returns (samples, beat_times)."""
    n = int(duration * sr)
    y = np.zeros(n, np.float32)
    period = 60.0 / bpm
    times = np.arange(offset, duration - 0.1, period)
    length = int(0.06 * sr)
    t = np.arange(length) / sr
    env = np.exp(-t * 60)
    for k, bt in enumerate(times):
        i = int(round(bt * sr))
        down = accent > 0 and k % beats_per_bar == 0
        freq = 800.0 if down else 1600.0
        click = np.sin(2 * np.pi * freq * t) * env * (1.0 if down or accent <= 0 else weak_gain)
        if down:
            click = click + 0.8 * np.sin(2 * np.pi * 60 * t) * np.exp(-t * 20)
        seg = y[i : i + length]
        seg += click[: len(seg)].astype(np.float32)
    y /= max(1.0, float(np.abs(y).max()) / 0.9)
    return y, times


def encode_wav(samples: np.ndarray, sr: int) -> bytes:
    """16-bit PCM WAV bytes (mono or (channels, n))."""
    import wave

    x = np.atleast_2d(samples)
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2").T.copy()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(x.shape[0])
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def encode_audio(samples: np.ndarray, sr: int, fmt: str = "mp3", codec: str = "libmp3lame", bitrate: int = 128000) -> bytes:
    """Encode mono float samples with PyAV into memory (mp3, ogg/vorbis, opus, flac, m4a/aac)."""
    import av

    buf = io.BytesIO()
    with av.open(buf, mode="w", format=fmt) as out:
        rate = 48000 if codec == "libopus" else sr
        stream = out.add_stream(codec, rate=rate, layout="mono")
        if codec not in ("flac", "pcm_s16le"):
            stream.bit_rate = bitrate
        frame_size = 1152 if codec == "libmp3lame" else 1024
        resampler = av.AudioResampler(format=stream.codec_context.format or "fltp", layout="mono", rate=rate)
        for i in range(0, len(samples), frame_size):
            chunk = samples[i : i + frame_size].astype(np.float32)
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
            frame.sample_rate = sr
            for f in resampler.resample(frame):
                for pkt in stream.encode(f):
                    out.mux(pkt)
        for f in resampler.resample(None):
            for pkt in stream.encode(f):
                out.mux(pkt)
        for pkt in stream.encode(None):
            out.mux(pkt)
    return buf.getvalue()
