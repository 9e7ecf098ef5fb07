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
