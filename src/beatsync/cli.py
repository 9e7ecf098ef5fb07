"""``beatsync`` command line: analyze (and, as they land, make / serve)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import __version__
from .errors import BeatsyncError


def _cache_store(args):
    if args.no_cache:
        return None
    from .bootstrap import cache_store
    from .settings import Settings

    return cache_store(Settings.from_env())


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


class ProgressBar:
    def __init__(self, stream=sys.stderr, width: int = 30):
        self.stream, self.width, self.last = stream, width, None

    def __call__(self, pct: float, step: str) -> None:
        filled = int(self.width * pct / 100)
        line = f"\r[{'#' * filled}{'.' * (self.width - filled)}] {pct:5.1f}% {step:<8}"
        if line != self.last:
            self.stream.write(line)
            self.stream.flush()
            self.last = line
        if pct >= 100:
            self.stream.write("\n")


def cmd_make(args) -> int:
    from .editing import resolve_config
    from .render.pipeline import make_video
    from .settings import Settings

    settings = Settings.from_env()
    overrides = {
        "sync_mode": args.sync_mode, "strength_threshold": args.strength_threshold,
        "transition_style": args.transition, "transition_duration": args.transition_duration,
        "output_resolution": args.resolution, "output_fps": args.fps, "output_format": args.format,
        "fit": args.fit, "preview_only": True if args.preview else None, "preview_duration": args.preview_duration,
    }
    out = args.output
    if args.format is None and out.lower().endswith(".webm"):
        overrides["output_format"] = "webm"
    config = resolve_config(args.preset, overrides)
    result = make_video(
        args.song, args.clips, out, config, method=args.method or settings.analysis_method,
        cache=_cache_store(args), max_audio_duration=settings.max_audio_duration, progress=ProgressBar(),
    )
    if args.edl:
        Path(args.edl).write_text(result.edl.to_json())
    bm = result.beat_map
    print(f"{result.video}: {result.duration:.2f} s, {result.edl.width}x{result.edl.height} @ {result.edl.fps} fps, "
          f"{len(result.edl.shots)} shots ({len(result.edl.shots) - 1} cuts), {result.file_size / 1e6:.1f} MB")
    print(f"song: {bm.tempo:.1f} BPM {bm.time_signature}, window {result.edl.song.start:.2f}-{result.edl.song.end:.2f} s")
    print(f"beside it: {os.path.basename(result.thumbnail)}, {os.path.basename(result.edl_path)}, "
          f"{os.path.basename(result.beat_map_path)}")
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


def cmd_serve(args) -> int:
    """Every route on one port, embedded defaults (SQLite + a local folder), jobs in worker threads."""
    import logging
    import signal
    import threading

    from werkzeug.serving import make_server

    from .bootstrap import bootstrap
    from .http import create_flask_app, set_container
    from .settings import Settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    public = None if os.environ.get("BEATSYNC_PUBLIC_URL") else f"http://{args.host}:{args.port}"
    settings = Settings.from_env(public_url=public)
    container = bootstrap(settings)
    set_container(container)
    server = make_server(args.host, args.port, create_flask_app(), threaded=True)
    print(f"beatsync {__version__} serving on http://{args.host}:{server.server_port} "
          f"(jobs: {settings.job_store}, blobs: {settings.blob_store}, data: {settings.data_dir})", flush=True)
    from .http.auth import auth_configured

    if not auth_configured(settings):
        print("WARNING: no BEATSYNC_API_KEYS (nor BEATSYNC_ID_TOKEN_AUDIENCES): the API is open to anyone who "
              f"can reach {args.host}:{server.server_port}; every caller is 'anonymous'", flush=True)
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            print("WARNING: and it listens beyond loopback", flush=True)
    if settings.orchestrator == "local":
        resumed = container.orchestrator.resume(container.jobs.active())
        if resumed:
            print(f"resumed {resumed} unfinished job(s)", flush=True)
    if settings.notifier == "local":
        container.notifier.start()

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever()
    return 0


def cmd_compose_job(args) -> int:
    """The compose step of one job, as its own process (the Cloud Run job's entry point)."""
    import logging

    from .bootstrap import bootstrap
    from .jobs.steps import TRANSIENT, run_compose

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        outcome = run_compose(bootstrap(), args.job_id)
    except TRANSIENT as exc:
        print(f"compose {args.job_id}: transient error, retry: {exc}", file=sys.stderr)
        return 75  # EX_TEMPFAIL
    print(f"compose {args.job_id}: {outcome['status']}", flush=True)
    return 0


def cmd_stats(args) -> int:
    """The daily analytics of the configured store (SQLite under BEATSYNC_DATA_DIR, or Firestore)."""
    import json

    from .bootstrap import bootstrap
    from .jobs.service import stats

    doc = stats(bootstrap(), args.from_date, args.to_date)
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    cols = [("date", "date"), ("total", "total_jobs"), ("completed", "completed_jobs"), ("failed", "failed_jobs"),
            ("cancelled", "cancelled_jobs"), ("processing s", "total_processing_seconds"),
            ("output bytes", "total_output_bytes"), ("cache hits", "cache_hits")]
    rows = [[str(d[k]) for _, k in cols] for d in doc["days"]]
    rows.append(["total", *[str(doc["totals"][k]) for _, k in cols[1:]]])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, (h, _) in enumerate(cols)]
    print(f"jobs ended {doc['from_date']} .. {doc['to_date']} (UTC)")
    print("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, ((h, _), w) in enumerate(zip(cols, widths))))
    for r in rows:
        print("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))))
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
    m = sub.add_parser("make", help="cut a music video: SONG CLIP [CLIP...] -o OUT")
    m.add_argument("song")
    m.add_argument("clips", nargs="+", metavar="CLIP")
    m.add_argument("-o", "--output", required=True, help="output video (.mp4 or .webm)")
    m.add_argument("--preset", choices=("music_video", "fast_cuts", "cinematic"))
    m.add_argument("--sync-mode", choices=("every_beat", "every_other", "strong_beats", "downbeats"))
    m.add_argument("--strength-threshold", type=float)
    m.add_argument("--transition", choices=("cut", "fade", "zoom", "flash", "glitch", "slide"))
    m.add_argument("--transition-duration", type=float, metavar="S")
    m.add_argument("--resolution", metavar="WxH")
    m.add_argument("--fps", type=int)
    m.add_argument("--format", choices=("mp4", "webm"))
    m.add_argument("--fit", choices=("fill", "letterbox"))
    m.add_argument("--preview", action="store_true", help="render only the most energetic window")
    m.add_argument("--preview-duration", type=float, metavar="S")
    m.add_argument("--method", choices=("librosa", "madmom", "hybrid"), default=None)
    m.add_argument("--edl", metavar="OUT.json", help="also write the edit decision list here")
    m.add_argument("--no-cache", action="store_true")
    m.set_defaults(func=cmd_make)
    w = sub.add_parser("warmup", help="compile and cache the analysis kernels (for images and CI)")
    w.set_defaults(func=cmd_warmup)
    v = sub.add_parser("serve", help="run the HTTP API and the job workers on one machine")
    v.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    v.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8080)), help="default $PORT or 8080")
    v.set_defaults(func=cmd_serve)
    j = sub.add_parser("compose-job", help="run the compose step of one job (the Cloud Run job's entry point)")
    j.add_argument("job_id")
    j.set_defaults(func=cmd_compose_job)
    st = sub.add_parser("stats", help="daily analytics of ended jobs, as a table")
    st.add_argument("--from", dest="from_date", metavar="YYYY-MM-DD", help="first day (default: 29 days before --to)")
    st.add_argument("--to", dest="to_date", metavar="YYYY-MM-DD", help="last day (default: today, UTC)")
    st.add_argument("--json", action="store_true", help="print the StatsResponse JSON instead")
    st.set_defaults(func=cmd_stats)
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
