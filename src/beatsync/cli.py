"""``beatsync`` command line: analyze (and, as they land, make / serve)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import BeatsyncError


def _cache_store(args):
    if args.no_cache:
        return None
    from .adapters.local_fs import LocalBlobStore
    from .settings import Settings

    return LocalBlobStore(Settings.from_env().cache_dir)


def _summary(bm) -> str:
    lines = [
        f"tempo        {bm.tempo:.1f} BPM   meter {bm.time_signature}   confidence {bm.confidence:.2f}",
        f"duration     {bm.duration:.2f} s   beats {bm.total_beats}   downbeats {len(bm.downbeats)}   bars {len(bm.bars)}",
        f"method       {bm.detection_method}   ({bm.processing_time_ms / 1000:.2f} s)",
    ]
    if bm.beats:
        first = ", ".join(f"{b.time:.2f}{'*' if b.is_downbeat else ''}" for b in bm.beats[:8])
        lines.append(f"first beats  {first}{' ...' if bm.total_beats > 8 else ''}   (* downbeat)")
    if bm.sections:
        lines.append("")
        lines.append(f"  {'section':8} {'label':5} {'start':>8} {'end':>8} {'energy':>7}")
        for s in bm.sections:
            bar = "#" * int(round(s.energy * 20))
            lines.append(f"  {s.name:8} {s.label:5} {s.start_time:8.2f} {s.end_time:8.2f} {s.energy:7.2f}  {bar}")
    return "\n".join(lines)


def cmd_analyze(args) -> int:
    from .analysis import analyze
    from .settings import Settings

    settings = Settings.from_env()
    method = args.method or settings.analysis_method
    bm = analyze(args.audio, method, args.fps, max_duration=settings.max_audio_duration, cache=_cache_store(args))
    print(_summary(bm))
    if args.json:
        Path(args.json).write_text(bm.to_json())
        print(f"\nbeat map written to {args.json}")
    if args.plot:
        from .analysis.plot import plot_beat_map

        plot_beat_map(args.audio, bm, args.plot)
        print(f"plot written to {args.plot}")
    return 0


def cmd_warmup(args) -> int:
    """Fill the numba cache and load the models, so later processes start fast."""
    import numpy as np

    from .analysis import analyze

    sr = 44100
    t = np.arange(int(sr * 12)) / sr
    clicks = np.zeros_like(t)
    for beat in np.arange(0.25, 12, 0.5):
        i = int(beat * sr)
        clicks[i : i + 400] = np.sin(2 * np.pi * 1000 * t[:400]) * np.hanning(400)
    import io

    from .analysis.synth import encode_wav

    data = encode_wav(clicks.astype(np.float32), sr)
    for method in ("librosa", "madmom", "hybrid"):
        analyze(io.BytesIO(data), method)
    print("warm: numba kernels compiled and cached, madmom models loaded")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="beatsync", description="Cut a music video on the beat.")
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("analyze", help="analyse a song: tempo, beats, downbeats, sections")
    a.add_argument("audio", help="audio file (wav, mp3, m4a, ogg, opus, flac) or a video with sound")
    a.add_argument("--method", choices=("librosa", "madmom", "hybrid"), default=None,
                   help="default: BEATSYNC_ANALYSIS_METHOD, else hybrid")
    a.add_argument("--fps", type=float, default=30.0, help="video frame rate for beat frame numbers")
    a.add_argument("--json", metavar="OUT.json", help="write the beat map JSON here")
    a.add_argument("--plot", metavar="OUT.png", help="draw waveform, onsets, beats and sections")
    a.add_argument("--no-cache", action="store_true", help="do not read or write the beat-map cache")
    a.set_defaults(func=cmd_analyze)
    w = sub.add_parser("warmup", help="compile and cache the analysis kernels (for images and CI)")
    w.set_defaults(func=cmd_warmup)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BeatsyncError as exc:
        print(f"error: {exc.message} (code: {exc.code})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
