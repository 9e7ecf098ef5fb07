"""Parallel render: the same 1080p30 edit (render_speed.py's: a cut every 0.5 s over the shared
clips upscaled to 1080p, x264 veryfast CRF 23, AAC) rendered by 1 process and split into N
segments rendered by N processes, then joined by stream copy (beatsync.render.segments).

    nice -n 10 python benchmarks/parallel_render.py [--lengths 30,120,300] [--workers 1,2,4] [--analysis-only]
    nice -n 10 python benchmarks/parallel_render.py --lengths 60 --workers 1,2  # quicker: the prediction's terms
                                                    [--audio-only]

Each configuration runs in a fresh process. Reported per row: wall s; total CPU s (the process and
all its workers, from getrusage); split overhead = CPU with N workers / CPU with 1 (target <= 1.10);
critical path = the slowest segment's CPU s + the merge's CPU s (what a machine with a core per
segment would wait for; the song's audio is encoded while the segments render, as the analyze step
encodes it while the tasks render: its CPU s is the table's audio column); the largest peak RSS of one task (target < 400 MB at 1080p), alone and with
the Google Cloud client libraries a deployed task also loads. The encoder runs with the threads a
4 vCPU Cloud Run task uses (``--encoder-threads`` to change).
Then a prediction of time to video on Cloud Run (1, 2, 4 and 8 minutes of 1080p output, tasks of 4 vCPU)
from the measured CPU seconds, term by term, each marked measured or assumed. On a shared machine, read CPU seconds:
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


def predict(rows: list[dict], analysis: dict | None) -> None:
    """Time to video on Cloud Run for 1, 2, 4 and 8 minutes of 1080p30 output, term by term: measured
    terms from the rows and the analysis run, the rest marked assumed. The compose execution starts when
    the inputs are fetched (``BEATSYNC_COMPOSE_EARLY_START``): its start-up and clip fetch overlap the
    analysis."""
    from beatsync.render.segments import task_count

    one = sorted((r for r in rows if r["workers"] == 1), key=lambda r: r["seconds"])
    merged = sorted((r for r in rows if r["workers"] > 1), key=lambda r: r["seconds"])
    if not one or not merged:
        return
    if analysis is None:
        analysis = measure_analysis([str(p) for p in prepare_sources()])
    base = one[-1]
    cpu_per_s = base["cpu"] / base["seconds"]  # one process, audio included: an upper bound for video only
    same = [r for r in merged if r["seconds"] in {o["seconds"] for o in one}]
    split = (max(0.0, sum((r["cpu"] - next(o["cpu"] for o in one if o["seconds"] == r["seconds"])) / (r["workers"] - 1)
                          for r in same) / len(same)) if same else 1.0)
    m = merged[-1]
    merge_cpu_per_s = m["merge_cpu"] / m["seconds"]
    audio_cpu_per_s = m.get("audio_cpu", 0.0) / m["seconds"]  # rows saved before it: 0 (encoded in the merge)
    vcpu_eff, start, fetch, poll = 0.7, 8.0, 2.0, 1.5  # assumed (see the legend)
    bytes_per_s = 0.25e6  # assumed: 1080p30 at CRF 23 over real footage, ~60 MB per 4 minutes
    print("\nPrediction: time to video, 1080p30, full video, tasks of 4 vCPU (the default task count)")
    print("| output | tasks | analysis + planning | task start + clip fetch left after it | render one task's "
          "segment | song's audio encoded (beside the render) | last segment to merge | merge | **total** | "
          "started after the plan |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for minutes in (1, 2, 4, 8):
        out_s = 60.0 * minutes
        t = task_count(out_s, 30.0, 8, 10.0, pixels_per_second=1920 * 1080 * 30)
        ana = analysis["song_s"] * out_s / 240.0 + analysis["clips_extra_s"] + analysis["plan_s"]
        task_wall = (cpu_per_s * out_s / t + (split if t > 1 else 0.0)) / (4 * vcpu_eff)
        left = max(0.0, start + fetch - ana)
        merge = (merge_cpu_per_s * out_s + 2 * bytes_per_s * out_s / 100e6) if t > 1 else 0.0
        audio = audio_cpu_per_s * out_s if t > 1 else 0.0  # a one-task render encodes it as it renders
        # after the plan the tasks render while the analyze step encodes the audio; the merge needs both
        total = ana + max(left + task_wall, audio) + poll + merge
        before = ana + audio + start + fetch + task_wall + poll + merge  # compose started when analyze returns
        print(f"| {minutes} min | {t} | {ana:.1f} | {left:.1f} | {task_wall:.1f} | {audio:.1f} | {poll:.1f} | "
              f"{merge:.1f} | **{total:.1f}** | {before:.1f} |")
    print(f"\nTerms. Measured here: analysis + planning ({analysis['method']}, a 4-minute song with 4 clips of 40 s "
          f"1080p30 in {analysis['wall_s']:.1f} s, {analysis['cpu_s']:.1f} CPU s: the song {analysis['song_s']:.1f} s, "
          f"scaled with the song's length; the clips {analysis['clips_extra_s']:.1f} s after it and the plan "
          f"{analysis['plan_s']:.1f} s, not scaled; the analyze service has 2 vCPU like this machine); the render: "
          f"{cpu_per_s:.2f} CPU s per output second (one process, {base['seconds']:.0f} s, audio included) split over "
          f"the tasks, plus {split:.2f} CPU s per extra task (the split rows' extra CPU); the song's audio: "
          f"{audio_cpu_per_s:.4f} CPU s per output second, encoded by the analyze step right after the plan while the "
          f"tasks render; the merge (a remux): {merge_cpu_per_s:.4f} CPU s per output second ({m['seconds']:.0f} s x "
          f"{m['workers']} row). Assumed: "
          f"execution + task container start {start:.0f} s (cached image) and the clip fetch {fetch:.0f} s, both "
          f"overlapping the analysis (they start when the inputs are fetched); {vcpu_eff:.0%} use of a task's 4 vCPU; "
          f"{poll} s from the last segment to the merge call (the poll scheduled from the tasks' rates); the merge's "
          f"GCS transfers at 100 MB/s for {bytes_per_s / 1e6:.2f} MB per output second, twice (segments in, video out). "
          f"The caller's own download of the inputs (before the analysis) is not counted.")


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
    ap.add_argument("--analysis", metavar="JSON", default=None,
                    help="the analysis run's figures (song_s, clips_extra_s, plan_s, wall_s, cpu_s, method) instead "
                         "of measuring them here (a fresh process; the analyze service has 2 vCPU, like this machine)")
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
    # -- prediction: 1, 2, 4 and 8 minutes of 1080p, tasks of 4 vCPU ----------------------------------------
    predict(rows, json.loads(args.analysis) if args.analysis else None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
