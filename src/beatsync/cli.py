"""``beatsync`` command line: analyze, make, serve, warmup, compose-job."""

from __future__ import annotations

import argparse
import os
import re
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
    bm = analyze(args.audio, method, args.fps, max_duration=settings.max_audio_duration, cache=_cache_store(args),
                 allow_noncommercial=settings.allow_noncommercial_models)
    print(_summary(bm))
    if args.json:
        Path(args.json).write_text(bm.to_json())
        print(f"\nbeat map written to {args.json}")
    if args.plot:
        from .analysis.plot import plot_beat_map

        plot_beat_map(args.audio, bm, args.plot)
        print(f"plot written to {args.plot}")
    return 0


class Progress:
    """Progress of ``beatsync make`` on stderr: a tqdm bar where a terminal is attached, plain lines
    (one per step, and every 10 %) when stderr is piped or redirected."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.bar = None
        if self.stream.isatty():
            import shutil

            from tqdm import tqdm

            size = shutil.get_terminal_size((80, 24))  # a fresh pty may report 0 x 0: tqdm then draws nothing
            self.bar = tqdm(total=100, file=self.stream, ncols=min(size.columns or 80, 100), nrows=size.lines or 24,
                            bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed}")
        self.step, self.tenth = None, -1

    def __call__(self, pct: float, step: str) -> None:
        if self.bar is not None:
            self.bar.set_description_str(f"{step:<8}", refresh=False)
            self.bar.update(max(0.0, pct - self.bar.n))
            return
        tenth = int(pct // 10)
        if step != self.step or tenth != self.tenth:
            self.stream.write(f"progress {pct:5.1f}% {step}\n")
            self.stream.flush()
            self.step, self.tenth = step, tenth

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _first_run_note() -> None:
    """One line when librosa's kernels have not been compiled on this machine yet (about 45 s once)."""
    from .settings import Settings

    folder = Path(os.environ.get("NUMBA_CACHE_DIR") or Settings.from_env().cache_dir / "numba")
    if not (folder.is_dir() and any(folder.rglob("*.nbi"))):
        print("note: first run on this machine: compiling the analysis kernels (about 45 s, once; "
              "`beatsync warmup` does it ahead)", file=sys.stderr, flush=True)


def _check_inputs(args) -> None:
    from .errors import InvalidRequest

    for path in (args.song, *args.clips):
        if not os.path.isfile(path):
            raise InvalidRequest(f"{path}: no such file", code="file_not_found")


def cmd_make(args) -> int:
    from .editing import resolve_config
    from .render.pipeline import make_video
    from .settings import Settings

    settings = Settings.from_env()
    _check_inputs(args)
    overrides = {
        "sync_mode": args.sync_mode, "strength_threshold": args.strength_threshold,
        "transition_style": args.transition, "transition_duration": args.transition_duration,
        "output_resolution": args.resolution, "output_fps": args.fps, "output_format": output_format(args),
        "fit": args.fit, "preview_only": True if args.preview else None, "preview_duration": args.preview_duration,
        "min_shot_duration": args.min_shot_duration, "section_aware": args.section_aware, "punch": args.punch,
    }
    config = resolve_config(args.preset, overrides, names=CONFIG_FLAGS)
    _first_run_note()
    progress = Progress()
    try:
        result = make_video(
            args.song, args.clips, args.output, config, method=args.method or settings.analysis_method,
            cache=_cache_store(args), max_audio_duration=settings.max_audio_duration, progress=progress,
            workers=args.workers, allow_noncommercial=settings.allow_noncommercial_models,
        )
    finally:
        progress.close()
    if args.edl:
        Path(args.edl).write_text(result.edl.to_json())
    if args.otio and os.path.abspath(args.otio) != os.path.abspath(result.otio_path):
        import shutil

        shutil.copyfile(result.otio_path, args.otio)
    bm = result.beat_map
    print(f"{result.video}: {result.duration:.2f} s, {result.edl.width}x{result.edl.height} @ {result.edl.fps} fps, "
          f"{len(result.edl.shots)} shots ({len(result.edl.cut_frames)} cuts), {result.file_size / 1e6:.1f} MB")
    print(f"song: {bm.tempo:.1f} BPM {bm.time_signature}, window {result.edl.song.start:.2f}-{result.edl.song.end:.2f} s")
    print(f"beside it: {os.path.basename(result.thumbnail)}, {os.path.basename(result.edl_path)}, "
          f"{os.path.basename(result.otio_path)}, {os.path.basename(result.beat_map_path)}")
    for w in result.edl.warnings:
        print(f"warning: {w.message} ({w.code})", file=sys.stderr)
    return 0


#: ``beatsync make`` flag for each edit-config field, so errors name what the user typed
CONFIG_FLAGS = {
    "sync_mode": "--sync-mode", "strength_threshold": "--strength-threshold", "transition_style": "--transition",
    "transition_duration": "--transition-duration", "output_resolution": "--resolution", "output_fps": "--fps",
    "output_format": "--format", "fit": "--fit", "preview_duration": "--preview-duration",
    "min_shot_duration": "--min-shot-duration", "section_aware": "--section-aware", "punch": "--punch",
}


def output_format(args) -> str:
    """The container the output's extension names; ``--format`` may only agree with it."""
    from .contracts.edit import OUTPUT_FORMATS
    from .errors import InvalidRequest

    ext = os.path.splitext(args.output)[1].lower().lstrip(".")
    if ext not in OUTPUT_FORMATS:
        raise InvalidRequest(f"-o {args.output}: the extension must be one of "
                             f"{', '.join('.' + f for f in OUTPUT_FORMATS)} (it decides the format)",
                             code="invalid_output")
    if args.format is not None and args.format != ext:
        raise InvalidRequest(f"--format {args.format} does not match -o {args.output} (.{ext}); drop --format or "
                             f"change the extension", code="invalid_output")
    return ext


def _resolution(text: str) -> str:
    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text}: expected WIDTHxHEIGHT, e.g. 1920x1080")
    return f"{int(m[1])}x{int(m[2])}"


def cmd_warmup(args) -> int:
    """Fill the numba cache and load the models, so later processes start fast."""
    import numpy as np

    from .analysis import METHODS, NONCOMMERCIAL_METHODS, analyze
    from .settings import Settings

    allowed = Settings.from_env().allow_noncommercial_models
    sr = 44100
    t = np.arange(int(sr * 12)) / sr
    clicks = np.zeros_like(t)
    for beat in np.arange(0.25, 12, 0.5):
        i = int(beat * sr)
        clicks[i : i + 400] = np.sin(2 * np.pi * 1000 * t[:400]) * np.hanning(400)
    import io

    from .analysis.synth import encode_wav

    data = encode_wav(clicks.astype(np.float32), sr)
    methods = [m for m in METHODS if allowed or m not in NONCOMMERCIAL_METHODS]
    for method in methods:
        analyze(io.BytesIO(data), method, allow_noncommercial=allowed)
    print(f"warm: numba kernels compiled and cached, models loaded ({', '.join(methods)})")
    return 0


def cmd_serve(args) -> int:
    """Every route on one port, embedded defaults (SQLite + a local folder), jobs in worker threads."""
    import logging
    import signal
    import threading

    from werkzeug.serving import make_server

    from .bootstrap import bootstrap
    from .http import create_flask_app, set_container
    from .http.app import request_handler_class
    from .settings import Settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    public = None if os.environ.get("BEATSYNC_PUBLIC_URL") else f"http://{args.host}:{args.port}"
    settings = Settings.from_env(public_url=public)
    container = bootstrap(settings)
    set_container(container)
    server = make_server(args.host, args.port, create_flask_app(), threaded=True,
                         request_handler=request_handler_class())
    print(f"beatsync {__version__} serving on http://{args.host}:{server.server_port} "
          f"(jobs: {settings.job_store}, blobs: {settings.blob_store}, data: {settings.data_dir})", flush=True)
    from .http.auth import auth_configured

    if not auth_configured(settings):
        print("WARNING: no BEATSYNC_API_KEYS (nor BEATSYNC_ID_TOKEN_AUDIENCES): the API is open to anyone who "
              f"can reach {args.host}:{server.server_port}; every caller is 'anonymous'", flush=True)
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            print("WARNING: and it listens beyond loopback", flush=True)
    from .jobs.lifecycle import finish_pending_ends

    finished = finish_pending_ends(container)  # ends a killed process left unfinished (audit, webhook...)
    if finished:
        print(f"finished the end of {finished} job(s)", flush=True)
    if settings.orchestrator == "local":
        resumed = container.orchestrator.resume(container.jobs.active())
        if resumed:
            print(f"resumed {resumed} unfinished job(s)", flush=True)
    if settings.notifier == "local":
        container.notifier.start()
    from .jobs.storage import sweep_forever

    threading.Thread(target=sweep_forever, args=(container,), name="beatsync-sweep", daemon=True).start()

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
    # a task of a parallel render (Cloud Run sets these; so does the process runner)
    index = int(os.environ.get("CLOUD_RUN_TASK_INDEX") or 0)
    count = int(os.environ.get("CLOUD_RUN_TASK_COUNT") or 1)
    try:
        if count > 1:
            from .jobs.parallel import run_task

            outcome = run_task(bootstrap(), args.job_id, index, count)
        else:
            outcome = run_compose(bootstrap(), args.job_id, parallel=False)
    except TRANSIENT as exc:
        print(f"compose {args.job_id}: transient error, retry: {exc}", file=sys.stderr)
        return 75  # EX_TEMPFAIL
    print(f"compose {args.job_id}: {outcome['status']}", flush=True)
    return 0


def _choices(field: str) -> tuple[str, ...]:
    """The allowed values of an edit-config field, read from the model (one list per choice)."""
    from typing import get_args

    from .contracts import EditConfig

    return get_args(EditConfig.model_fields[field].annotation)


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
    from typing import get_args

    from .contracts import EditConfig
    from .contracts.beat_map import Method
    from .editing.presets import DEFAULT_PRESET, PRESETS

    from .settings import Settings

    methods = get_args(Method)
    method_help = (f"beat tracker (default: $BEATSYNC_ANALYSIS_METHOD, else {Settings.analysis_method}); madmom "
                   "and hybrid run non-commercial models and need BEATSYNC_ALLOW_NONCOMMERCIAL_MODELS=1")
    defaults = {name: f.default for name, f in EditConfig.model_fields.items()}
    preset_cfg = PRESETS[DEFAULT_PRESET]["config"]

    def dflt(field: str) -> str:
        value = preset_cfg.get(field, defaults[field])
        return f"default: the preset's ({DEFAULT_PRESET}: {value})" if field in preset_cfg else f"default: {value}"

    p = argparse.ArgumentParser(prog="beatsync", description="Cut a music video on the beat.")
    p.add_argument("--version", action="version", version=f"beatsync {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("analyze", help="analyse a song: tempo, beats, downbeats, sections")
    a.add_argument("audio", help="audio file (wav, mp3, m4a, ogg, opus, flac) or a video with sound")
    a.add_argument("--method", choices=methods, default=None, help=method_help)
    a.add_argument("--fps", type=float, default=30.0, help="video frame rate for beat frame numbers (default: 30)")
    a.add_argument("--json", metavar="OUT.json", help="write the beat map JSON here (default: not written)")
    a.add_argument("--plot", metavar="OUT.png", help="draw waveform, onsets, beats and sections (default: no plot)")
    a.add_argument("--no-cache", action="store_true", help="do not read or write the beat-map cache (default: cache "
                   "in $BEATSYNC_CACHE_DIR)")
    a.set_defaults(func=cmd_analyze)
    m = sub.add_parser("make", help="cut a music video: SONG CLIP [CLIP...] -o OUT",
                       description=f"Cut a music video. With no flags the edit is the {DEFAULT_PRESET!r} preset; "
                                   "any flag overrides that one setting of the preset.")
    m.add_argument("song", help="the soundtrack (any audio FFmpeg reads)")
    m.add_argument("clips", nargs="+", metavar="CLIP", help="video clips (any video FFmpeg reads)")
    m.add_argument("-o", "--output", required=True,
                   help="output video; its extension (.mp4 or .webm) decides the format. Beside it: "
                        "NAME.thumbnail.jpg, NAME.edl.json, NAME.otio, NAME.beat_map.json")
    m.add_argument("--preset", choices=tuple(PRESETS), default=DEFAULT_PRESET,
                   help=f"named edit (default: {DEFAULT_PRESET})")
    m.add_argument("--sync-mode", choices=_choices("sync_mode"), help=dflt("sync_mode"))
    m.add_argument("--strength-threshold", type=float, metavar="X", help=dflt("strength_threshold"))
    m.add_argument("--transition", choices=_choices("transition_style"), help=dflt("transition_style"))
    m.add_argument("--transition-duration", type=float, metavar="S",
                   help=f"{dflt('transition_duration')}; a style given without a duration keeps the preset's, "
                        "else 0.1")
    m.add_argument("--resolution", metavar="WxH", type=_resolution, help=dflt("output_resolution"))
    m.add_argument("--fps", type=int, help=dflt("output_fps"))
    m.add_argument("--format", choices=_choices("output_format"),
                   help="default: the output's extension (must agree with it)")
    m.add_argument("--fit", choices=_choices("fit"),
                   help=f"fill: crop the centre; letterbox: pad; smart: a crop that follows the subject ({dflt('fit')})")
    m.add_argument("--min-shot-duration", type=float, metavar="S", help=dflt("min_shot_duration"))
    m.add_argument("--section-aware", action=argparse.BooleanOptionalAction, default=None,
                   help=f"cut density follows the sections (calm: downbeats only; chorus/drop: every beat) "
                        f"({dflt('section_aware')})")
    m.add_argument("--punch", action=argparse.BooleanOptionalAction, default=None,
                   help=f"short zoom punches on strong downbeats inside long shots ({dflt('punch')})")
    m.add_argument("--preview", action="store_true", help="render only the most energetic window (default: the "
                   "whole song)")
    m.add_argument("--preview-duration", type=float, metavar="S", help=dflt("preview_duration"))
    m.add_argument("--method", choices=methods, default=None, help=method_help)
    m.add_argument("--edl", metavar="OUT.json", help="also write the edit decision list here (default: only "
                   "NAME.edl.json beside the video)")
    m.add_argument("--otio", metavar="OUT.otio", help="also write the cut as an OpenTimelineIO timeline here "
                   "(default: only NAME.otio beside the video)")
    m.add_argument("--no-cache", action="store_true", help="do not read or write the beat-map cache (default: cache "
                   "in $BEATSYNC_CACHE_DIR)")
    m.add_argument("--workers", type=int, default=1, metavar="N",
                   help="render N segments in parallel processes and join them (default: 1)")
    m.set_defaults(func=cmd_make)
    w = sub.add_parser("warmup", help="compile and cache the analysis kernels (for images and CI)")
    w.set_defaults(func=cmd_warmup)
    v = sub.add_parser("serve", help="run the HTTP API and the job workers on one machine")
    v.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    v.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8080)), help="default: $PORT, else 8080")
    v.set_defaults(func=cmd_serve)
    j = sub.add_parser("compose-job", help="run the compose step of one job, or one task of it with "
                                           "CLOUD_RUN_TASK_INDEX/COUNT (the Cloud Run job's entry point)")
    j.add_argument("job_id", help="the job to compose")
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
