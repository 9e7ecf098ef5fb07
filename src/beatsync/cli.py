"""``beatsync`` command line: analyze, make, timeline, serve, warmup, compose-job, stats."""

from __future__ import annotations

# Only what start-up needs at module level: a Ctrl-C before main() is running would print a traceback
# (everything else is imported inside main, where an interrupt is one line and exit status 130)
import os
import sys


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

    _check_files(args.audio)
    settings = Settings.from_env()
    method = args.method or settings.analysis_method
    bm = analyze(args.audio, method, args.fps, max_duration=settings.max_audio_duration, cache=_cache_store(args),
                 allow_noncommercial=settings.allow_noncommercial_models)
    print(_summary(bm))
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(bm.to_json())
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
    from pathlib import Path

    from .settings import Settings

    folder = Path(os.environ.get("NUMBA_CACHE_DIR") or Settings.from_env().cache_dir / "numba")
    if not (folder.is_dir() and any(folder.rglob("*.nbi"))):
        print("note: first run on this machine: compiling the analysis kernels (about 45 s, once; "
              "`beatsync warmup` does it ahead)", file=sys.stderr, flush=True)


def _check_files(*paths: str) -> None:
    """Every input the user named exists: the same code and message for the same mistake in every command."""
    from .errors import InvalidRequest

    for path in paths:
        if not os.path.exists(path):
            raise InvalidRequest(f"{path}: no such file", code="file_not_found")
        if not os.path.isfile(path):
            raise InvalidRequest(f"{path}: not a file", code="file_not_found")


class OutputLock:
    """One render per output path at a time: ``OUT.lock`` beside the output, held with ``flock`` for the
    whole render (the kernel lets it go if the process dies, so a stale file never blocks) and removed
    at the end. A second render of the same ``-o`` fails at once with ``output_busy``. Folders made for
    the output are removed again if the render leaves nothing in them."""

    def __init__(self, output: str):
        self.output = output
        self.path = os.path.realpath(output) + ".lock"  # one lock however the path is spelt
        self.fd: int | None = None
        self.made: list[str] = []

    def __enter__(self) -> "OutputLock":
        import fcntl

        from .errors import OutputBusy

        folder = os.path.dirname(self.path)
        while not os.path.isdir(folder):
            self.made.append(folder)  # deepest first
            folder = os.path.dirname(folder)
        fd = None
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            while True:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = os.read(fd, 32).decode(errors="replace").strip()
                    raise OutputBusy(f"-o {self.output}: another beatsync make is writing it now"
                                     f"{f' (process {holder})' if holder.isdigit() else ''}; wait for it to end "
                                     "or choose another output", details={"lock": self.path}) from None
                # the holder before us removes the file after unlocking: lock the file that is there now
                try:
                    if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                        break
                except FileNotFoundError:
                    pass
                os.close(fd)
                fd = None
            self.fd = fd
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except BaseException:  # refused or interrupted: leave the lock (if any) and no new folder behind
            if self.fd is not None:
                self.__exit__()
            else:
                if fd is not None:
                    os.close(fd)
                self._remove_folders()
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            os.unlink(self.path)  # while still locked: a waiting render re-checks and takes a fresh file
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = None
        self._remove_folders()

    def _remove_folders(self) -> None:
        for folder in self.made:
            try:
                os.rmdir(folder)  # only if empty: a failed or interrupted render leaves no folder behind
            except OSError:
                break


def cmd_make(args) -> int:
    from .editing import resolve_config
    from .settings import Settings

    settings = Settings.from_env()
    timelines = _timeline_paths(args)  # refused before anything runs
    _check_files(args.song, *args.clips)
    overrides = {
        "sync_mode": args.sync_mode, "strength_threshold": args.strength_threshold,
        "transition_style": args.transition, "transition_duration": args.transition_duration,
        "output_resolution": args.resolution, "output_fps": args.fps, "output_format": output_format(args),
        "fit": args.fit, "preview_only": True if args.preview else None, "preview_duration": args.preview_duration,
        "min_shot_duration": args.min_shot_duration, "section_aware": args.section_aware, "punch": args.punch,
    }
    config = resolve_config(args.preset, overrides, names=CONFIG_FLAGS)
    _check_timeline_rates(timelines, config.output_fps)
    with OutputLock(args.output):  # the render, its side files and the summary: one render at a time
        return _make(args, config, settings, timelines)


def _make(args, config, settings, timelines) -> int:
    from .render.pipeline import make_video

    _first_run_note()
    progress = Progress()
    try:
        result = make_video(
            args.song, args.clips, args.output, config, method=args.method or settings.analysis_method,
            cache=_cache_store(args), max_audio_duration=settings.max_audio_duration, progress=progress,
            workers=args.workers, allow_noncommercial=settings.allow_noncommercial_models,
            timelines=timelines,
            clip_budget=settings.clip_analysis_budget,
        )
    finally:
        progress.close()
    if args.edl:
        with open(args.edl, "w") as fh:
            fh.write(result.edl.to_json())
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
    _print_timelines(result.timelines, result.timeline_warnings)
    return 0


def _timeline_paths(args) -> list[str]:
    """``--timeline`` paths, each one's format checked (by its extension) before anything runs."""
    from .render.timelines import format_of

    paths = list(getattr(args, "timeline", None) or [])
    for p in paths:
        format_of(p)
    return paths


def _check_timeline_rates(paths: list[str], fps: int) -> None:
    from .contracts.edit import timeline_rate_problem
    from .errors import InvalidRequest
    from .render.timelines import format_of

    for p in paths:
        problem = timeline_rate_problem(format_of(p), fps)
        if problem:
            raise InvalidRequest(f"--timeline {p}: {problem}", code="timeline_rate")


def _print_timelines(paths, notes) -> None:
    for p in paths:
        print(f"timeline: {p}")
    for n in notes:
        print(f"warning: {n} (timeline_simplified)", file=sys.stderr)


def cmd_timeline(args) -> int:
    """Export an edit already made (NAME.edl.json) as a timeline, without rendering again. The song and
    clips are those NAME.otio beside it names (or ``--song`` / ``--clip``), the beat and section markers
    come from NAME.beat_map.json beside it (or ``--beat-map``); a job's ``edl.json`` has ``edit.otio`` and
    ``beat_map.json`` beside it."""
    from pathlib import Path

    from .contracts import BeatMap, EditDecisionList
    from .errors import InvalidRequest
    from .render.pipeline import timeline_media, write_timelines
    from .render.timelines import format_of

    fmt = format_of(args.output)
    if not os.path.isfile(args.edl):
        raise InvalidRequest(f"{args.edl}: no such file", code="file_not_found")
    try:
        edl = EditDecisionList.model_validate_json(Path(args.edl).read_text())
    except ValueError as exc:
        raise InvalidRequest(f"{args.edl}: not an edit decision list ({str(exc).splitlines()[0]})",
                             code="invalid_edl") from None
    stem = args.edl[: -len(".edl.json")] if args.edl.endswith(".edl.json") else os.path.splitext(args.edl)[0]
    bm_path, otio_path = stem + ".beat_map.json", stem + ".otio"
    if os.path.basename(args.edl) == "edl.json":  # a job's outputs: edl.json, beat_map.json, edit.otio
        folder = os.path.dirname(args.edl)
        bm_path, otio_path = os.path.join(folder, "beat_map.json"), os.path.join(folder, "edit.otio")
    bm_path = args.beat_map or bm_path
    if not os.path.isfile(bm_path):
        raise InvalidRequest(f"{bm_path}: no such file (the beat map of the edit; --beat-map names it)",
                             code="file_not_found")
    try:
        beat_map = BeatMap.model_validate_json(Path(bm_path).read_text())
    except ValueError as exc:
        raise InvalidRequest(f"{bm_path}: not a beat map ({str(exc).splitlines()[0]})", code="invalid_request") from None
    song, clips, rates = args.song, list(args.clip or []), None
    if clips and len(clips) != len(edl.clips):
        raise InvalidRequest(f"{len(clips)} --clip given; the edit has {len(edl.clips)} clips", code="invalid_request")
    if not (song and clips):  # the media the edit was made from: NAME.otio beside it names them
        from .render.timelines import media_of

        known = media_of(otio_path, len(edl.clips)) if os.path.isfile(otio_path) else None
        if known is None:
            raise InvalidRequest(f"no {otio_path} beside the EDL to name the song and clips: give --song and --clip",
                                 code="invalid_request")
        song, clips = song or known[0], clips or known[1]
        rates = known[2] if clips == known[1] else None  # the clips' own rates, as the edit was made
    from urllib.parse import urlsplit
    from urllib.request import url2pathname

    local = [url2pathname(urlsplit(c).path) if c.startswith("file://") else c for c in clips]
    probes = []
    if all(os.path.isfile(c) for c in local):
        from .render.probe import probe_clip

        probes = [probe_clip(c) for c in local]
    media = timeline_media(song, clips, probes, rates=None if probes else rates)
    notes = write_timelines(edl, beat_map, media, [args.output], [fmt])
    _print_timelines([args.output], notes)
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
    import argparse
    import re

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
    """Every route on one port, embedded defaults (SQLite + a local folder), jobs in worker threads;
    HTTP by the bounded, strict waitress server of :mod:`beatsync.http.server`."""
    import logging
    import signal
    import threading

    from .bootstrap import bootstrap
    from .http import create_flask_app, set_container
    from .http.app import admit, body_policy
    from .http.server import make_server
    from . import __version__
    from .settings import Settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    public = None if os.environ.get("BEATSYNC_PUBLIC_URL") else f"http://{args.host}:{args.port}"
    settings = Settings.from_env(public_url=public)
    container = bootstrap(settings)
    set_container(container)
    server = make_server(create_flask_app(), settings, args.host, args.port, body_policy, admit)
    port = server.effective_port
    print(f"beatsync {__version__} serving on http://{args.host}:{port} "
          f"(jobs: {settings.job_store}, blobs: {settings.blob_store}, data: {settings.data_dir}; "
          f"{settings.http_threads} threads, at most {settings.http_connection_limit} connections)", flush=True)
    from .http.auth import auth_configured

    if not auth_configured(settings):
        print("WARNING: no BEATSYNC_API_KEYS (nor BEATSYNC_ID_TOKEN_AUDIENCES): the API is open to anyone who "
              f"can reach {args.host}:{port}; every caller is 'anonymous'", flush=True)
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
        raise SystemExit(0)  # in the main thread, inside the server's loop: it stops and ends its threads

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.run()
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


def build_parser():
    import argparse
    from typing import get_args

    from . import __version__
    from .contracts import EditConfig
    from .contracts.beat_map import Method
    from .editing.presets import DEFAULT_PRESET, PRESETS
    from .render.pipeline import side_files
    from .settings import Settings

    methods = get_args(Method)
    method_help = (f"beat tracker (default: $BEATSYNC_ANALYSIS_METHOD, else {Settings.analysis_method}); madmom "
                   "and hybrid run non-commercial models and need BEATSYNC_ALLOW_NONCOMMERCIAL_MODELS=1")
    defaults = {name: f.default for name, f in EditConfig.model_fields.items()}

    def dflt(field: str) -> str:
        """The field's range (from the model: the schema's limits) and its default, which is each preset's
        own value where any preset sets the field (``cinematic`` renders at 24 fps)."""
        bounds = {k: getattr(m, k) for m in EditConfig.model_fields[field].metadata for k in ("ge", "le")
                  if getattr(m, k, None) is not None}
        limits = f"{bounds['ge']} to {bounds['le']}; " if len(bounds) == 2 else ""
        if not any(field in p["config"] for p in PRESETS.values()):
            return f"{limits}default: {defaults[field]}"
        values = ", ".join(f"{name}: {p['config'].get(field, defaults[field])}" for name, p in PRESETS.items())
        return f"{limits}default: the preset's ({values})"

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
                        f"{', '.join(os.path.basename(f) for f in side_files('OUT.mp4'))}")
    m.add_argument("--preset", choices=tuple(PRESETS), default=DEFAULT_PRESET,
                   help=f"named edit (default: {DEFAULT_PRESET})")
    m.add_argument("--sync-mode", choices=_choices("sync_mode"), help=dflt("sync_mode"))
    m.add_argument("--strength-threshold", type=float, metavar="X", help=dflt("strength_threshold"))
    m.add_argument("--transition", choices=_choices("transition_style"), help=dflt("transition_style"))
    m.add_argument("--transition-duration", type=float, metavar="S",
                   help=f"{dflt('transition_duration')}; a style given without a duration keeps the preset's, "
                        "else 0.1")
    m.add_argument("--resolution", metavar="WxH", type=_resolution, help=dflt("output_resolution"))
    m.add_argument("--fps", type=int, help=f"output frame rate, {dflt('output_fps')}")
    m.add_argument("--format", choices=_choices("output_format"),
                   help="default: the output's extension (must agree with it)")
    m.add_argument("--fit", choices=_choices("fit"),
                   help=f"fill: crop the centre; letterbox: pad; smart: a crop that follows the subject; {dflt('fit')}")
    m.add_argument("--min-shot-duration", type=float, metavar="S", help=dflt("min_shot_duration"))
    m.add_argument("--section-aware", action=argparse.BooleanOptionalAction, default=None,
                   help=f"cut density follows the sections (calm: downbeats only; chorus/drop: every beat); "
                        f"{dflt('section_aware')}")
    m.add_argument("--punch", action=argparse.BooleanOptionalAction, default=None,
                   help=f"short zoom punches on strong downbeats inside long shots; {dflt('punch')}")
    m.add_argument("--preview", action="store_true", help="render only the most energetic window (default: the "
                   "whole song)")
    m.add_argument("--preview-duration", type=float, metavar="S", help=f"seconds of the preview, {dflt('preview_duration')}")
    m.add_argument("--method", choices=methods, default=None, help=method_help)
    m.add_argument("--edl", metavar="OUT.json", help="also write the edit decision list here (default: only "
                   f"{os.path.basename(side_files('OUT.mp4')[1])} beside the video)")
    m.add_argument("--otio", metavar="OUT.otio", help="also write the cut as an OpenTimelineIO timeline here "
                   f"(default: only {os.path.basename(side_files('OUT.mp4')[2])} beside the video)")
    m.add_argument("--no-cache", action="store_true", help="do not read or write the beat-map and clip-analysis "
                   "cache (default: cache in $BEATSYNC_CACHE_DIR)")
    m.add_argument("--workers", type=int, default=1, metavar="N",
                   help="render N segments in parallel processes and join them (default: 1)")
    m.add_argument("--timeline", action="append", metavar="PATH",
                   help="also write the cut as a timeline for an editor here (repeatable; default: none beyond the "
                        ".otio beside the video); the extension decides the format: " + _timeline_help())
    m.set_defaults(func=cmd_make)
    _timeline_parser(sub)
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


def _timeline_help() -> str:
    from .contracts.edit import TIMELINE_EXTENSIONS

    names = {"otio": "OpenTimelineIO", "fcp_xml": "Final Cut Pro 7 XML (Premiere Pro, Resolve)",
             "fcpxml": "FCPXML (Final Cut Pro, Resolve)", "edl": "CMX 3600 EDL (picture only)"}
    return ", ".join(f"{e} {names.get(f, f)}" for f, e in TIMELINE_EXTENSIONS.items())


def _timeline_parser(sub) -> None:
    t = sub.add_parser("timeline", help="export an edit (NAME.edl.json) as a timeline for an editor, without "
                                         "rendering: EDL.json -o PATH",
                       description="Export an edit already made as a timeline. " + _timeline_help())
    t.add_argument("edl", metavar="EDL.json", help="the edit decision list (NAME.edl.json beside a video)")
    t.add_argument("-o", "--output", required=True, metavar="PATH", help="the timeline; its extension decides the "
                   "format")
    t.add_argument("--song", metavar="SONG", help="the song the edit was cut to (default: as NAME.otio beside the "
                   "EDL names it)")
    t.add_argument("--clip", action="append", metavar="CLIP", help="the clips, in the edit's order (repeat; "
                   "default: as NAME.otio beside the EDL names them)")
    t.add_argument("--beat-map", metavar="BEAT_MAP.json", help="default: NAME.beat_map.json beside the EDL")
    t.set_defaults(func=cmd_timeline)


def main(argv: list[str] | None = None) -> int:
    """Run one command. An error is one line and exit status 2; Ctrl-C (from the first import on) is one
    line and 130, never a traceback; whatever the command was writing is removed on the way out."""
    try:
        from .errors import BeatsyncError

        args = build_parser().parse_args(argv)
        return args.func(args)
    except KeyboardInterrupt:  # first: BeatsyncError may not be imported yet
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)  # on the way out: a second Ctrl-C cannot cut it short
        print("interrupted", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        # what the command was writing is already removed (its with/finally blocks ran); exit here, as
        # CPython kills itself with SIGINT at exit (not 130) when the interrupt was raised inside code it
        # ran through PyRun_String (pydantic-core's imports do), even though it was handled here
        os._exit(130)
    except BeatsyncError as exc:
        print(f"error: {exc.message} (code: {exc.code})", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
