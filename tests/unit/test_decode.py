"""Decoding real containers and codecs, stream choice, and the media error codes."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from beatsync.analysis import analyze
from beatsync.analysis.decode import decode_audio
from beatsync.analysis.synth import click_track, encode_audio, encode_wav
from beatsync.errors import MediaError

SR = 44100


@pytest.fixture(scope="module")
def clicks():
    y, truth = click_track(120.0, 6.0, SR)
    return y, truth


@pytest.mark.parametrize(
    "fmt,codec",
    [("mp3", "libmp3lame"), ("ogg", "libopus"), ("flac", "flac"), ("ipod", "aac"), ("wav", "pcm_s16le")],
)
def test_decodes_common_formats(clicks, fmt, codec):
    y, _ = clicks
    data = encode_audio(y, SR, fmt, codec)
    audio = decode_audio(data)
    assert audio.sample_rate == SR
    assert audio.duration == pytest.approx(6.0, abs=0.1)
    assert np.abs(audio.samples).max() > 0.3


def _video_with_tracks(audio_tracks: list[np.ndarray], default_index: int | None = None, cover_art: bool = False) -> bytes:
    """An mkv with a tiny video stream and several audio tracks (PyAV into memory)."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as out:
        v = out.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 64, 64, "yuv420p"
        streams = []
        for _ in audio_tracks:
            a = out.add_stream("aac", rate=SR, layout="mono")
            streams.append(a)
        if default_index is not None:
            for i, s in enumerate(streams):
                s.disposition = av.stream.Disposition.default if i == default_index else av.stream.Disposition(0)
        for i in range(20):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 10, np.uint8), format="rgb24")
            for p in v.encode(frame):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
        for s, y in zip(streams, audio_tracks):
            for i in range(0, len(y) - 1024, 1024):
                fr = av.AudioFrame.from_ndarray(y[None, i : i + 1024].astype(np.float32), format="flt", layout="mono")
                fr.sample_rate = SR
                fr.pts = i
                for p in s.encode(fr):
                    out.mux(p)
            for p in s.encode(None):
                out.mux(p)
    return buf.getvalue()


def test_audio_track_of_a_video_and_track_choice(clicks):
    y, _ = clicks
    quiet = 0.01 * np.sin(np.arange(len(y)) * 0.05).astype(np.float32)
    data = _video_with_tracks([quiet, y], default_index=1)
    audio = decode_audio(data)
    # the default-disposition track (the clicks) is chosen, not the first one
    assert np.abs(audio.samples).max() > 0.3
    bm = analyze(data, "librosa")
    assert bm.tempo == pytest.approx(120, rel=0.02)


def test_video_without_audio_is_no_audio_stream():
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        v = out.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 64, 64, "yuv420p"
        for i in range(5):
            for p in v.encode(av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
    with pytest.raises(MediaError) as e:
        decode_audio(buf.getvalue())
    assert e.value.code == "no_audio_stream"


def test_empty_file(tmp_path):
    p = tmp_path / "empty.mp3"
    p.write_bytes(b"")
    with pytest.raises(MediaError) as e:
        analyze(p, "librosa")
    assert e.value.code == "unsupported_media"
    assert "empty" in e.value.message


def test_text_renamed_mp3(tmp_path):
    p = tmp_path / "notes.mp3"
    p.write_text("These are my notes, not a song.\n" * 50)
    with pytest.raises(MediaError) as e:
        analyze(p, "librosa")
    assert e.value.code in ("unsupported_media", "corrupt_media")
    assert str(p) in e.value.message


def test_truncated_mp3(clicks, tmp_path):
    y, _ = click_track(120.0, 30.0, SR)
    data = encode_audio(y, SR, "mp3", "libmp3lame")
    p = tmp_path / "cut.mp3"
    p.write_bytes(data[: len(data) // 3])
    with pytest.raises(MediaError) as e:
        analyze(p, "librosa")
    assert e.value.code == "corrupt_media"
    assert "truncated" in e.value.message


def test_too_long_refused_before_decoding():
    y = np.zeros(SR * 20, np.float32)
    with pytest.raises(MediaError) as e:
        decode_audio(encode_wav(y, SR), max_duration=10)
    assert e.value.code == "too_long"
    assert e.value.details["duration"] == pytest.approx(20, abs=0.1)


def test_missing_file():
    with pytest.raises(MediaError) as e:
        analyze("/nonexistent/song.mp3", "librosa")
    assert e.value.code == "unsupported_media"
