"""Parallel render: the same 1080p30 edit (render_speed.py's: a cut every 0.5 s over the shared
clips upscaled to 1080p, x264 veryfast CRF 23, AAC) rendered by 1 process and split into N
segments rendered by N processes, then joined by stream copy (beatsync.render.segments).

    nice -n 10 python benchmarks/parallel_render.py [--lengths 30,120,300] [--workers 1,2,4] [--analysis-only]
                                                    [--audio-only]

Each configuration runs in a fresh process. Reported per row: wall s; total CPU s (the process and
all its workers, from getrusage); split overhead = CPU with N workers / CPU with 1 (target <= 1.10);
critical path = the slowest segment's CPU s + the merge's CPU s (what a machine with a core per
segment would wait for; the song's audio is encoded while the segments render, as the analyze step
encodes it while the tasks render: its CPU s is the table's audio column); the largest peak RSS of one task (target < 400 MB at 1080p), alone and with
the Google Cloud client libraries a deployed task also loads. The encoder runs with the threads a
4 vCPU Cloud Run task uses (``--encoder-threads`` to change).
Then a prediction of time to video on Cloud Run (8 tasks of 4 vCPU, a 4-minute song) from the
measured CPU seconds; its derivation is printed with it. On a shared machine, read CPU seconds:
wall time depends on what else runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import render_speed  # noqa: E402
from render_speed import CACHE, ffmpeg_exe, prepare_sources, shots  # noqa: E402

from beatsync.render.encode import ENCODER_MAX_THREADS  # noqa: E402

if not (render_speed.SHARED / "video").is_dir():  # a git worktree: the shared data sits elsewhere
    render_speed.SHARED = Path(os.environ.get("BEATSYNC_SHARED_DATA", "/work/shared/data"))
SONG = render_speed.SHARED / "music" / render_speed.SONG.name

SCRIPT = r"""
import json, resource, sys, time
from beatsync.render.encode import render
from beatsync.render.segments import render_parallel
spec = json.loads(sys.argv[1])
t0 = time.perf_counter()
sys.path.insert(0, spec["bench_dir"])
from render_speed import cut_edit
edl, probes = cut_edit(spec["sources"], spec["shots"], spec["seconds"])
w = spec["workers"]
if w == 1:
    c0 = time.process_time()
    r = render(edl, probes, spec["song"], spec["out"], preset="veryfast", crf=23, threads=spec["threads"])
    segments = [{"frames": r.frames, "cpu_s": time.process_time() - c0,
                 "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}]
    merge_cpu = audio_cpu = 0.0
else:
    r = render_parallel(edl, probes, spec["song"], spec["out"], workers=w, tasks=w, preset="veryfast",
                        threads=spec["threads"])
    segments, merge_cpu, audio_cpu = list(r.segments), r.merge_cpu_s, r.audio_cpu_s
wall = time.perf_counter() - t0
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": wall, "cpu": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
                  "segments": segments, "merge_cpu": merge_cpu, "audio_cpu": audio_cpu, "frames": r.frames,
                  "parent_rss_mb": me.ru_maxrss / 1024}))
"""


def long_song(seconds: float) -> Path:
    """The benchmark song looped to ``seconds`` (the shared songs are shorter than 5 minutes)."""
    dst = CACHE / f"song_{int(seconds)}s.wav"
    if not dst.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-stream_loop", "-1", "-i", str(SONG), "-t",
                        str(seconds + 1), "-ac", "2", "-ar", "44100", str(dst)], check=True)
    return dst


CLOUD = r"""
import resource, sys
import beatsync.render.segments, beatsync.jobs.steps
if sys.argv[1] == "cloud":  # what a deployed compose task has loaded besides the render: GCS + Firestore clients
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore, storage
    storage.Client(project="p", credentials=AnonymousCredentials())
    firestore.Client(project="p", credentials=AnonymousCredentials())
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def cloud_libraries_mb() -> float:
    """Peak RSS a deployed compose task adds to a local one before rendering: the Google Cloud client
    libraries and their clients (measured, as the difference between two fresh processes)."""
    def peak(kind: str) -> float:
        out = subprocess.run([sys.executable, "-c", CLOUD, kind], capture_output=True, text=True, check=True)
        return float(out.stdout.strip().splitlines()[-1])
    return peak("cloud") - peak("local")


ANALYSIS = r"""
import json, sys, time
from beatsync.analysis import analyze
from beatsync.editing import resolve_config
from beatsync.render.pipeline import plan_edit, start_clip_analysis
from beatsync.settings import Settings
spec = json.loads(sys.argv[1])
budget = Settings.from_env().clip_analysis_budget  # BEATSYNC_CLIP_ANALYSIS_BUDGET, as the analyze step
t0, c0 = time.perf_counter(), time.process_time()
clip_work = start_clip_analysis(spec["sources"], budget=budget)  # as the analyze step: while the song is analysed
beat_map = analyze(spec["song"], fps=30)  # the default method, no cache
t1 = time.perf_counter()
analysed = clip_work.result()
t2 = time.perf_counter()
edl, probes = plan_edit(beat_map, spec["sources"], resolve_config(None, {"output_resolution": "1920x1080"}),
                        analysed=analysed)
print(json.dumps({"song_s": t1 - t0, "clips_extra_s": t2 - t1, "plan_s": time.perf_counter() - t2,
                  "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                  "clips_s": clip_work.seconds, "clip_frames": sum(a.frames for a in analysed[1]),
                  "budget": budget, "shots": len(edl.shots), "method": beat_map.detection_method}))
"""


def measure_analysis(sources: list[str]) -> dict:
    """Analysis (the default method) of a 4-minute song and the edit's planning (probing, motion, plan)
    over the benchmark's clips, as the analyze step does them: wall seconds in a fresh process."""
    song = long_song(240.0)
    proc = subprocess.run([sys.executable, "-c", ANALYSIS, json.dumps({"song": str(song), "sources": sources})],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


AUDIO = r"""
import json, sys, time
from beatsync.contracts import ClipRef, EditDecisionList, Shot, SongWindow, Transition
from beatsync.render.encode import encode_audio
spec = json.loads(sys.argv[1])
out = {}
for fmt in ("mp4", "webm"):
    edl = EditDecisionList(fps=30, width=1920, height=1080, fit="fill", output_format=fmt,
                           song=SongWindow(start=0.0, end=spec["seconds"], audio_hash="-"),
                           total_frames=int(spec["seconds"] * 30), clips=[ClipRef(index=0, name="-", duration=1.0)],
                           shots=[Shot(index=0, clip=0, source_in=0, start_frame=0, end_frame=int(spec["seconds"] * 30),
                                       transition=Transition(style="cut", duration=0), section="verse", motion=0.5)])
    runs = []
    for _ in range(2):
        c0 = time.process_time()
        encode_audio(edl, spec["song"], spec["out"] + "." + fmt)
        runs.append(time.process_time() - c0)
    out[fmt] = min(runs)
print(json.dumps(out))
"""


def measure_audio(seconds: float = 240.0) -> dict:
    """The song's window encoded alone, as the analyze step encodes it for a parallel render's merge
    (AAC 192k for mp4, Opus 160k for webm): the fewer CPU s of 2 runs, in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = {"song": str(long_song(seconds)), "seconds": seconds, "out": os.path.join(tmp, "audio")}
        proc = subprocess.run([sys.executable, "-c", AUDIO, json.dumps(spec)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def predict(rows: list[dict], analysis_s: float | None) -> None:
    """Time to video for a 4-minute song on 8 tasks of 4 vCPU: measured terms and stated assumptions."""
    song_s, tasks, per_task = 240.0, 8, 30.0
    same = [r for r in rows if abs(r["seconds"] / r["workers"] - per_task) < 1e-6 and r["workers"] > 1]
    one = sorted((r for r in rows if r["workers"] == 1), key=lambda r: r["seconds"])
    merged = sorted((r for r in rows if r["workers"] > 1), key=lambda r: r["seconds"])
    if not one or not merged:
        return
    if same:  # a row whose segments are 30 s of output each, like a task's: its slowest segment, measured
        r = max(same, key=lambda r: r["seconds"])
        task_cpu = max(s["cpu_s"] for s in r["segments"])
        task_src = f"the slowest 30 s segment of the {r['seconds']:.0f} s x {r['workers']} row"
    else:
        r = one[-1]
        task_cpu = r["cpu"] / r["seconds"] * per_task
        task_src = f"{r['cpu'] / r['seconds']:.2f} CPU s per output second (1 process, {r['seconds']:.0f} s) x 30 s"
    m = merged[-1]
    merge_cpu = m["merge_cpu"] / m["seconds"] * song_s
    measured = None
    if analysis_s is None:
        measured = measure_analysis([str(p) for p in prepare_sources()])
        analysis_s = measured["wall_s"]
    two_core = one[-1]["cpu"] / one[-1]["wall"] / 2  # one render's use of this machine's 2 cores
    vcpu_eff = 0.7  # assumed for 4 vCPU (3 x264 frame threads + the decoding thread)
    task_wall = task_cpu / (4 * vcpu_eff)
    transfer = 2 * 60 / 100  # merge: ~60 MB of segments in and ~60 MB of output out of GCS at ~100 MB/s (assumed)
    merge_wall = merge_cpu + transfer
    audio_s = m.get("audio_cpu", 0.0) / m["seconds"] * song_s  # rows saved before it: 0 (encoded in the merge)
    start, fetch, poll = 8.0, 2.0, 1.5
    total = analysis_s + audio_s + start + fetch + task_wall + poll + merge_wall
    print(f"\nPrediction: a 4-minute song, {tasks} tasks x 4 vCPU")
    print("| term | s | source |")
    print("|---|---|---|")
    src = (f"measured here ({measured['cpu_s']:.1f} CPU s): the song's {measured['method']} analysis "
           f"{measured['song_s']:.1f} s, with the 4 clips' probing and motion analysis running meanwhile and "
           f"{measured['clips_extra_s']:.1f} s after it, then the plan {measured['plan_s']:.1f} s; the analyze service "
           f"has 2 vCPU like this machine" if measured else "--analysis-s")
    print(f"| analysis + planning (analyze service, warm) | {analysis_s:.1f} | {src} |")
    print(f"| the song's audio encoded once (analyze step, after the plan) | {audio_s:.1f} | {audio_s:.1f} CPU s "
          f"measured (the {m['seconds']:.0f} s x {m['workers']} row, scaled to 240 s); on the critical path while the "
          f"compose execution starts after the analyze step returns |")
    print(f"| execution + task container start | {start:.1f} | assumed (cached image); not measurable here |")
    print(f"| a task fetches its clips from GCS | {fetch:.1f} | assumed: ~200 MB at ~100 MB/s |")
    print(f"| render one task's 30 s of output | {task_wall:.1f} | {task_cpu:.1f} CPU s measured ({task_src}); on "
          f"4 vCPU at an assumed {vcpu_eff:.0%} use of the cores (one render uses {two_core:.0%} of this "
          f"machine's 2) |")
    print(f"| from the last segment to the merge call | {poll:.1f} | the poll scheduled from the tasks' rates "
          f"comes 0.5-1.5 s after the predicted end (assumed: the prediction holds within a second) |")
    print(f"| merge (remux + uploads) | {merge_wall:.1f} | {merge_cpu:.1f} CPU s measured (the "
          f"{m['seconds']:.0f} s x {m['workers']} row, scaled to 240 s) + {transfer:.1f} s GCS transfers (assumed) |")
    print(f"| **total** | **{total:.1f}** | target <= 45 s |")


def run(spec: dict) -> dict:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(spec)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(lengths: list[float], workers: list[int], threads: int) -> list[dict]:
    sources = [str(p) for p in prepare_sources()]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in lengths:
            song = long_song(max(seconds, 150.0))
            for w in workers:
                spec = {"sources": sources, "shots": shots(seconds), "song": str(song), "seconds": seconds,
                        "bench_dir": str(ROOT / "benchmarks"),
                        "workers": w, "threads": threads, "out": os.path.join(tmp, f"out_{int(seconds)}_{w}.mp4")}
                t = time.perf_counter()
                r = run(spec)
                r.update(seconds=seconds, workers=w)
                rows.append(r)
                print(f"  {seconds:5.0f} s x {w} workers: {r['wall']:.1f} s wall, {r['cpu']:.1f} CPU s "
                      f"({time.perf_counter() - t:.0f} s with start-up)", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", default="30,120,300", help="seconds of output, comma-separated")
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--encoder-threads", type=int, default=None,
                    help="x264 threads per task (default: what a 4 vCPU Cloud Run task uses, "
                         "min(4, ENCODER_MAX_THREADS))")
    ap.add_argument("--analysis-s", type=float, default=None,
                    help="analysis + planning wall s for a 4-minute song on the analyze service (default: measured "
                         "here, a fresh process; the analyze service has 2 vCPU, like this machine)")
    ap.add_argument("--analysis-only", action="store_true",
                    help="measure and print only the analysis + planning term (no render)")
    ap.add_argument("--audio-only", action="store_true",
                    help="measure and print only the song's audio encoding (the analyze step's, for the merge)")
    ap.add_argument("--save", metavar="FILE", help="write the measured rows to FILE (JSON)")
    ap.add_argument("--load", metavar="FILE", help="print the tables and the prediction from rows saved earlier")
    args = ap.parse_args(argv)
    lengths = [float(x) for x in args.lengths.split(",")]
    workers = [int(x) for x in args.workers.split(",")]
    threads = args.encoder_threads or min(4, ENCODER_MAX_THREADS)
    if args.audio_only:
        a = measure_audio()
        print("\n| the song's window encoded once (240 s, one process) | CPU s | CPU s per output second |")
        print("|---|---|---|")
        for fmt, codec in (("mp4", "AAC 192k"), ("webm", "Opus 160k")):
            print(f"| {fmt}: {codec} | {a[fmt]:.2f} | {a[fmt] / 240:.4f} |")
        return 0
    if args.analysis_only:
        m = measure_analysis([str(p) for p in prepare_sources()])
        print("\n| term | wall s | CPU s | song analysis s | clips' analysis s (frames decoded, budget) | clips after "
              "the song s | plan s |")
        print("|---|---|---|---|---|---|---|")
        print(f"| analysis + planning ({m['method']}, 4-minute song, 4 clips of 40 s 1080p30) | {m['wall_s']:.1f} | "
              f"{m['cpu_s']:.1f} | {m['song_s']:.1f} | {m['clips_s']:.1f} ({m['clip_frames']}, {m['budget']:.0f}) | "
              f"{m['clips_extra_s']:.1f} | {m['plan_s']:.1f} |")
        return 0
    if args.load:
        saved = json.loads(Path(args.load).read_text())
        rows, threads, cloud_mb = saved["rows"], saved["threads"], saved["cloud_mb"]
    else:
        rows, cloud_mb = measure(lengths, workers, threads), cloud_libraries_mb()
    if args.save:
        Path(args.save).write_text(json.dumps({"rows": rows, "threads": threads, "cloud_mb": cloud_mb}))
    base = {r["seconds"]: r["cpu"] for r in rows if r["workers"] == 1}
    print(f"\n1920x1080@30 output, a cut every 0.5 s, x264 veryfast CRF 23, {threads} encoder threads per task; "
          f"one run each\n")
    print("| output | workers | wall s | total CPU s | split overhead | critical path CPU s | slowest segment CPU s "
          "| merge CPU s | audio CPU s | peak RSS per task MB | deployed task MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        slow = max(s["cpu_s"] for s in r["segments"])
        over = f"{r['cpu'] / base[r['seconds']]:.3f}" if r["seconds"] in base else "-"
        rss = max(s["peak_rss_mb"] for s in r["segments"])
        print(f"| {r['seconds']:.0f} s | {r['workers']} | {r['wall']:.1f} | {r['cpu']:.1f} | {over} | "
              f"{slow + r['merge_cpu']:.1f} | {slow:.1f} | {r['merge_cpu']:.2f} | {r.get('audio_cpu', 0.0):.2f} | "
              f"{rss:.0f} | {rss + cloud_mb:.0f} |")
    print(f"\nPeak RSS per task: the largest ru_maxrss of one rendering process (with 1 worker: the whole render, "
          f"audio included). Deployed task = that + {cloud_mb:.0f} MB measured for the Google Cloud client "
          f"libraries and clients a deployed compose task also holds (two fresh processes compared).")
    # -- prediction: a 4-minute song, 8 tasks of 4 vCPU ---------------------------------------------------
    predict(rows, args.analysis_s)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
