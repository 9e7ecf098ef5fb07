"""Small synthetic media for service tests, written once per module."""

from __future__ import annotations

from pathlib import Path


def make_media(root: Path) -> Path:
    from beatsync.analysis.synth import click_track, encode_wav
    from beatsync.render.synth import moving_frames, write_clip

    y, _ = click_track(120.0, 8.0, 22050, offset=0.5)
    (root / "song.wav").write_bytes(encode_wav(y, 22050))
    (root / "silence.wav").write_bytes(encode_wav(0.0 * y, 22050))
    write_clip(str(root / "a.mp4"), moving_frames(5.0, 30, size=(160, 96), seed=1), 30)
    write_clip(str(root / "b.mp4"), moving_frames(5.0, 30, size=(160, 96), seed=2, speed=2.0), 30)
    (root / "bad.mp4").write_text("this is not a video")
    return root


def hostile_clip(path: Path, frames: int = 200_000, size: int = 16, fps: int = 100, gop: int = 250) -> Path:
    """A clip cheap to send and slow to analyse whole: ``frames`` frames of ``size`` x ``size`` at ``fps``
    (200,000 at 100 fps: 2,000 s, about 6 MB), H.264 with a keyframe every ``gop`` frames. One GOP
    (a bar sliding across, inverted halfway) is encoded and its packets repeated with new timestamps,
    so it is made in about a second."""
    from fractions import Fraction

    import av
    import numpy as np

    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "g": str(gop), "bf": "0"})
        s.width = s.height = size
        s.pix_fmt = "yuv420p"
        packets = []
        for i in range(gop):
            img = np.full((size, size, 3), 40, np.uint8)
            img[:, (i * 3) % size:(i * 3) % size + 4] = 220
            frame = av.VideoFrame.from_ndarray(255 - img if i >= gop // 2 else img, format="rgb24")
            frame.pts = i
            packets += s.encode(frame)
        packets += s.encode(None)
        for n in range(frames):
            src = packets[n % len(packets)]
            p = av.Packet(bytes(src))
            p.stream, p.pts, p.dts, p.time_base = s, n, n, Fraction(1, fps)
            p.is_keyframe = src.is_keyframe
            out.mux(p)
    return path


def steady_beat_map(duration: float, bpm: float, offset: float = 0.3, sections: list[tuple[str, float]] | None = None):
    """A 4/4 beat map at ``bpm`` from ``offset`` (downbeats strong), with ``sections`` as (name, energy) pairs
    of equal length (default: one verse)."""
    from beatsync.contracts import Beat, BeatMap, Section

    period = 60.0 / bpm
    beats = [Beat(index=i, time=round(offset + i * period, 4), frame=round((offset + i * period) * 30),
                  strength=1.0 if i % 4 == 0 else 0.4, is_downbeat=i % 4 == 0, bar=i // 4, beat_in_bar=i % 4 + 1)
             for i in range(int((duration - offset) / period))]
    parts = sections or [("verse", 0.6)]
    step = duration / len(parts)
    return BeatMap(tempo=bpm, duration=duration, fps=30, total_beats=len(beats), beats_per_bar=4, time_signature="4/4",
                   confidence=0.9, beats=beats, bars=[],
                   sections=[Section(name=name, start_time=i * step, end_time=duration if i == len(parts) - 1
                                     else (i + 1) * step, energy=energy, label="ABCDEFGH"[i % 8])
                             for i, (name, energy) in enumerate(parts)],
                   detection_method="librosa", processing_time_ms=1, audio_hash="0" * 64, analyzer="test")

