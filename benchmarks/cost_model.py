"""What a video costs on Google Cloud and how many an hour one project and region can make.

    python benchmarks/cost_model.py [--region us-central1]     # the tables, from the files below
    python benchmarks/cost_model.py --update-docs              # and into docs/operations.md
    nice -n 10 python benchmarks/cost_model.py --measure       # refresh measurements.json first

Each video's work is priced term by term:
- measured on the development machine (``benchmarks/measurements.json``, dated, each figure with the
  command that produced it): render CPU seconds per output second at 1080p and 720p, the split's extra
  CPU per task, the merge, the analysis, output bytes per second. ``--measure`` renders 10 s at each
  resolution in fresh processes and analyses a 4-minute song (about a minute of CPU); the parallel
  render figures are docs/parallel-render.md's (``benchmarks/parallel_render.py``), named as such.
- counted from a real local job (``job_counts``: Firestore reads/writes/deletes, Cloud Storage
  operations and bytes, Workflows steps, Cloud Tasks, Pub/Sub messages), which
  ``tests/integration/test_cost_counts.py`` checks against a job run through the emulators, so the
  model cannot drift from the code;
- assumed, and printed as such (task start-up, use of 4 vCPU, the caller's status polls, sizes of a
  caller's media);
multiplied by a dated price table (``benchmarks/prices.json``: each price with its page and how it
was read; ``--region``). Quotas come from ``benchmarks/quotas.json``. docs/operations.md's "What it
costs" and "How far it scales" are this script's output (``--update-docs``) (tests/unit/test_cost_model.py
keeps them in step).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PRICES = HERE / "prices.json"
QUOTAS = HERE / "quotas.json"
MEASUREMENTS = HERE / "measurements.json"
OPERATIONS_MD = HERE.parent / "docs" / "operations.md"
BEGIN, END = "<!-- cost-model:begin -->", "<!-- cost-model:end -->"

# -- the deployment's shape (terraform/run.tf, functions.tf; settings defaults) -------------------------
TASK_VCPU, TASK_GIB = 4, 8            # compose job task (run.tf)
ANALYZE_VCPU, ANALYZE_GIB = 2, 4      # analyze service (run.tf)
FUNCTION_VCPU, FUNCTION_GIB = 1, 0.5  # submit and status functions (functions.tf)
TASK_SECONDS, MAX_TASKS = 30, 8       # BEATSYNC_RENDER_TASK_SECONDS, BEATSYNC_RENDER_MAX_TASKS
TARGET_SECONDS = 10.0                 # BEATSYNC_RENDER_TARGET_SECONDS
OUTPUT_PIXELS_PER_S = {"720p": 1280 * 720 * 30, "1080p": 1920 * 1080 * 30}
POLL_SECONDS = 10                     # BEATSYNC_POLL_SECONDS
EARLY_START = True                    # BEATSYNC_COMPOSE_EARLY_START
PREVIEW_SECONDS = 30                  # preview_duration's default (schemas/create_request.schema.json)
from beatsync.jobs.lifecycle import CANCEL_POLL  # noqa: E402
from beatsync.jobs.parallel import PLAN_POLL, TASK_REPORT_EVERY  # noqa: E402
from beatsync.jobs.steps import REPORT_EVERY  # noqa: E402
ARMOR_RULES = 12                      # armor.tf: 2 body-size + 7 WAF + throttle + ban + default
FORWARDING_RULES = 2                  # lb.tf: HTTPS + the HTTP redirect
IMAGES_GIB = 3.0                      # assumed: the analyze and compose images in Artifact Registry

# -- assumptions (each printed with the table) ---------------------------------------------------------
ASSUMED = {
    "task_start_s": (8.0, "execution + task container start before the first frame (cached image; not billed "
                          "while the image is pulled, billed from the container's start: 2 s of it)"),
    "task_billed_start_s": (2.0, "billed start-up of a task: interpreter, imports and clients"),
    "task_fetch_s": (2.0, "a task fetches its clips from GCS (~200 MB at ~100 MB/s)"),
    "task_upload_s": (0.5, "a task uploads its segment"),
    "vcpu_use": (0.7, "a render uses 70 % of a task's 4 vCPU (3 x264 frame threads + the decoding thread)"),
    "poll_wait_s": (1.5, "from the last segment to the merge call (the poll scheduled from the tasks' rates)"),
    "control_call_s": (0.2, "one control call on the analyze service (begin, compose/start, a poll)"),
    "merge_transfer_s_per_mb": (0.02, "merge: segments in and the video out of GCS at ~100 MB/s"),
    "caller_fetch_s": (2.0, "the analyze step fetches the caller's song and clips (their servers' speed)"),
    "song_mb": (5.0, "the caller's song"),
    "clips": (4, "clips per video"),
    "clip_mb": (50.0, "one clip"),
    "status_calls": (6, "status requests a caller makes per video (a poll every ~10 s, and the final read)"),
    "submit_s": (0.3, "a submit request on its function (1 vCPU)"),
    "status_s": (0.1, "a status request on its function"),
    "downloads": (1, "downloads of each output video by the caller (internet egress)"),
    "output_days": (30, "days an output is kept (7 in Standard, then Nearline; the bucket has no delete rule "
                        "for outputs/: storage grows unless the retention sweep or an operator deletes them)"),
    "analysis_cache_hit": (False, "a song is new to the beat-map cache"),
}


def assumed(name):
    return ASSUMED[name][0]


# -- counts per video: kept true by tests/integration/test_cost_counts.py ------------------------------

def workflow_steps(tasks: int, polls: int, stopped_after_end: bool = False) -> int:
    """Steps one execution of workflows/beat_sync.yaml runs for a completed job (each call to the
    analyze service is 5: the call and the ``internal`` subworkflow's 4). ``stopped_after_end``: a poll
    found the job completed while its one task was still finishing (webhook, clean-up), and the workflow
    stopped the execution (5 steps more)."""
    return (32 if tasks > 1 else 26) + 8 * polls + (5 if stopped_after_end else 0)


def polls_for(compose_wall_s: float) -> int:
    """Polls of the compose step: one each ``poll_seconds`` while it runs, then the one that finds it done
    (the polls scheduled from the tasks' rates near the end add about one)."""
    return math.ceil(compose_wall_s / POLL_SECONDS) + 1


def job_counts(tasks: int, polls: int, inputs: int, clips: int, *, status_calls: int = 1,
               cache_hit: bool = False, task_render_s: list[float] | None = None, analysis_s: float = 0.0,
               cloud: bool = True, stopped_after_end: bool = False,
               clip_cache_hit: bool = False, early_start: bool = True,
               task_wait_s: list[float] | None = None) -> dict[str, dict[str, float]]:
    """Calls one completed video makes, by component and kind; ``fixed`` terms are exact, ``poll`` terms
    are the most ``polls`` polls make, ``time`` terms are rates over the seconds given (a task's render,
    the analysis). ``cloud``: the one-task compose runs in its own container and fetches the job's inputs
    (a local run shares the analyze step's work folder and does not). ``stopped_after_end``: as in
    :func:`workflow_steps` (compose/stop reads the job twice and logs that the task is left to finish).
    ``clip_cache_hit``: every clip's planning analysis was in the cache (one read each either way; a miss
    writes it, from the clip's own analysis thread and its own storage client). ``early_start``: the
    analyze step started the compose execution before the plan (``compose_early_start``; it writes, reads
    and deletes ``execution.json``, logs it and reads the job once more); each task then waits
    ``task_wait_s`` for the plan, reading it each PLAN_POLL and the job each CANCEL_POLL."""
    t, k, c = tasks, inputs, clips
    miss = 0 if cache_hit else 1
    renders = task_render_s or [0.0] * t
    out = {
        # submit (the early quota look: unfinished jobs and the last minute's submissions of the owner and of
        # its caller; the job stored with its quota documents in one transaction; its execution) and the
        # caller's status reads
        "api": {"firestore.read": 15 + status_calls, "firestore.write": 6, "gcs.B": status_calls},
    }
    clip_miss = 0 if clip_cache_hit else c
    if t == 1:
        out["analyze"] = {"firestore.read": 14, "firestore.write": 12, "gcs.A": k + 2 + miss + clip_miss,
                          "gcs.B": k + 3 + c, "pubsub.publish": 1}
        out["compose"] = {"firestore.read": 9, "firestore.write": 13, "gcs.A": 10,
                          "gcs.B": 5 + (2 * k if cloud else 0), "gcs.delete": k + 1,
                          "pubsub.publish": 1, "tasks.create": 1}
        # a poll reads the plan (absent), the task's progress and its remaining time: 3 or 4 reads (4 when
        # the task has reported; seen in CI), the most counted
        out["poll"] = {"firestore.read": 1 * polls, "gcs.B": 4 * polls}
        render = sum(renders)
        out["time"] = {"firestore.read": math.ceil(render / CANCEL_POLL) + math.ceil(render / REPORT_EVERY)
                       + math.ceil(analysis_s / CANCEL_POLL),
                       "firestore.write": math.ceil(render / REPORT_EVERY)}
    else:
        # the song's window encoded once (temp/{id}/audio.m4a): written by the analyze step, read by the merge,
        # deleted with temp/
        out["analyze"] = {"firestore.read": 22, "firestore.write": 22, "gcs.A": k + 12 + miss + clip_miss,
                          "gcs.B": k + 11 + 3 * t + c, "gcs.delete": k + 2 + 4 * t,
                          "pubsub.publish": 2, "tasks.create": 1}
        out["compose"] = {"firestore.read": 3 * t, "firestore.write": 2 * t, "gcs.A": 4 * t,
                          "gcs.B": t * (2 * c + 2)}  # every task fetches every clip (a cut every beat)
        out["poll"] = {"firestore.read": 2 * polls, "firestore.write": polls, "gcs.A": 2 * polls,
                       "gcs.B": (1 + 3 * t) * polls}
        out["time"] = {"firestore.read": sum(math.ceil(r / CANCEL_POLL) for r in renders)
                       + math.ceil(analysis_s / CANCEL_POLL),
                       # a report each TASK_REPORT_EVERY and one more where a render ends just past one (CI saw it)
                       "gcs.A": sum(math.ceil(r / TASK_REPORT_EVERY) + 1 for r in renders)}
    if early_start:
        for kind, n in {"firestore.read": 1, "firestore.write": 1, "gcs.A": 1, "gcs.B": 2}.items():
            out["analyze"][kind] = out["analyze"].get(kind, 0) + n
        ends = "compose" if t == 1 else "analyze"  # who ends the job removes temp/, execution.json too
        out[ends]["gcs.delete"] = out[ends].get("gcs.delete", 0) + 1
        waits = task_wait_s or [0.0] * t
        # a task that finds no plan reads execution.json once, then the plan each PLAN_POLL and the job each
        # CANCEL_POLL until the plan is there; after each look that finds none (a 404), the storage library
        # reads the bucket once more (its bucket-metadata cache)
        out["time"]["gcs.B"] = out["time"].get("gcs.B", 0) + sum(2 * math.ceil(w / PLAN_POLL) + 3 for w in waits)
        out["time"]["firestore.read"] += sum(math.ceil(w / CANCEL_POLL) for w in waits)
        # compose/start adopts the execution and reads the tasks' rates for the first wait, as a poll does
        for kind, n in ({"gcs.B": 1} if t == 1 else {"gcs.A": 1, "gcs.B": 1 + t}).items():
            out["poll"][kind] = out["poll"].get(kind, 0) + n
    out["client"] = {"gcs.B": t + 1 + clip_miss}  # each new container's (and clip thread's) client reads the bucket once
    if stopped_after_end:
        out["analyze"]["firestore.read"] += 2
        out["analyze"]["firestore.write"] += 1
    out["workflow"] = {"steps": workflow_steps(t, polls, stopped_after_end)}
    return out


AUDIO_BYTES_PER_S = 192000 / 8  # the AAC track (render/encode.py AUDIO_BIT_RATE)


def blob_bytes(tasks: int, input_bytes: int, clip_bytes: int, video_bytes: int, out_s: float, *,
               cloud: bool = True) -> dict:
    """Bytes written to and read from Cloud Storage for one video, leaving out the small JSON objects
    (plan, beat map, EDL, markers, progress: tens of KB) and thumbnails. Up: the inputs once and the video;
    a parallel render also writes its segments (the video without its audio) and the song's window encoded
    by the analyze step (``temp/{id}/audio.m4a``): the video's bytes again. Down: every task reads every clip
    and the merge reads the segments and the encoded audio; a one-task compose in the cloud reads the inputs."""
    if tasks == 1:
        return {"up": input_bytes + video_bytes, "down": input_bytes if cloud else 0}
    segments, audio = video_bytes - AUDIO_BYTES_PER_S * out_s, AUDIO_BYTES_PER_S * out_s
    return {"up": input_bytes + video_bytes + segments + audio, "down": tasks * clip_bytes + segments + audio}


SMALL_BYTES = 400_000  # the JSON objects and thumbnails left out of blob_bytes, at most (checked by the test)


# -- measured figures -----------------------------------------------------------------------------------

def load_measurements(path: Path = MEASUREMENTS) -> dict:
    return json.loads(path.read_text())


def figure(m: dict, name: str) -> float:
    return m["figures"][name]["value"]


RENDER_10S = r"""
import json, resource, sys, time
spec = json.loads(sys.argv[1])
sys.path.insert(0, spec["bench_dir"])
from render_speed import cut_edit
from beatsync.render.encode import render
edl, probes = cut_edit(spec["sources"], spec["shots"], spec["seconds"])
edl = edl.model_copy(update={"width": spec["width"], "height": spec["height"]})
c0 = time.process_time()
r = render(edl, probes, spec["song"], spec["out"], preset="veryfast", crf=23, threads=spec["threads"])
print(json.dumps({"cpu_s": time.process_time() - c0, "bytes": __import__("os").path.getsize(spec["out"]),
                  "frames": r.frames}))
"""


def measure(seconds: float = 10.0, analysis: bool = False) -> dict:
    """Render ``seconds`` of render_speed.py's edit at 1080p and 720p (fresh process each, the encoder
    threads of a 4 vCPU task); with ``analysis``, analyse a 4-minute song with the clips
    (parallel_render.py's analysis: its wall seconds are a term, so run it on a quiet machine)."""
    import parallel_render
    from render_speed import prepare_sources, shots

    from beatsync.render.encode import ENCODER_MAX_THREADS

    sources = [str(p) for p in prepare_sources()]
    song = parallel_render.long_song(150.0)
    threads = min(4, ENCODER_MAX_THREADS)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (w, h) in {"1080p": (1920, 1080), "720p": (1280, 720)}.items():
            spec = {"sources": sources, "shots": shots(seconds), "song": str(song), "seconds": seconds,
                    "bench_dir": str(HERE), "width": w, "height": h, "threads": threads,
                    "out": os.path.join(tmp, f"{name}.mp4")}
            proc = subprocess.run([sys.executable, "-c", RENDER_10S, json.dumps(spec)], capture_output=True,
                                  text=True)
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr[-3000:])
            out[name] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"  {name}: {out[name]['cpu_s']:.1f} CPU s, {out[name]['bytes']} bytes", file=sys.stderr)
    if not analysis:
        return out
    out["analysis"] = parallel_render.measure_analysis(sources)
    print(f"  analysis: {out['analysis']['wall_s']:.1f} s, {out['analysis']['cpu_s']:.1f} CPU s", file=sys.stderr)
    return out


def refresh_measurements(path: Path = MEASUREMENTS, seconds: float = 10.0, analysis: bool = False) -> dict:
    """Measure here and rewrite ``path``; the parallel-render figures stay those of docs/parallel-render.md."""
    m = load_measurements(path)
    got = measure(seconds, analysis)
    today = datetime.date.today().isoformat()
    cmd = "nice -n 10 python benchmarks/cost_model.py --measure"
    r1080, r720 = got["1080p"], got["720p"]
    f = m["figures"]
    f["render_cpu_ratio_720p"] = {
        "value": round(r720["cpu_s"] / r1080["cpu_s"], 3), "unit": "720p CPU s / 1080p CPU s",
        "source": "measured", "date": today, "command": cmd,
        "detail": f"{seconds:.0f} s of render_speed.py's edit, one process each: 1080p {r1080['cpu_s']:.1f} CPU s, "
                  f"720p {r720['cpu_s']:.1f} CPU s"}
    for name, r in (("1080p", r1080), ("720p", r720)):
        f[f"video_bytes_per_s_{name}"] = {
            "value": round(r["bytes"] / seconds), "unit": "bytes per output second", "source": "measured",
            "date": today, "command": cmd,
            "detail": f"x264 veryfast CRF 23 + AAC over the shared clips (upscaled); real footage differs"}
    if "analysis" not in got:
        m["measured"] = today
        path.write_text(json.dumps(m, indent=1) + "\n")
        return m
    a, cmd = got["analysis"], cmd + " --measure-analysis"
    f["analysis_song_s_per_s"] = {
        "value": round(a["song_s"] / 240.0, 4), "unit": "wall s per second of song (analyze service, 2 vCPU)",
        "source": "measured", "date": today, "command": cmd,
        "detail": f"the default method on a 4-minute song: {a['song_s']:.1f} s, clip work meanwhile"}
    f["analysis_clips_s"] = {
        "value": round(a["clips_extra_s"] + a["plan_s"], 2), "unit": "wall s after the song (clips' probing and "
        "motion analysis left, and the plan)", "source": "measured", "date": today, "command": cmd,
        "detail": f"4 clips of 40 s at 1080p: {a['clips_extra_s']:.1f} s + plan {a['plan_s']:.1f} s"}
    f["analysis_cpu_s"] = {
        "value": round(a["cpu_s"], 1), "unit": "CPU s for the 4-minute song and 4 clips", "source": "measured",
        "date": today, "command": cmd, "detail": "the analyze step's CPU (song, clips, plan)"}
    m["measured"] = today
    path.write_text(json.dumps(m, indent=1) + "\n")
    return m


# -- the model ------------------------------------------------------------------------------------------

def nearline_days(days_kept: float) -> float:
    """Days an output is billed in Nearline: from day 7 until it is deleted, at least Nearline's 30-day
    minimum storage duration (an earlier delete is billed as if kept 30 days)."""
    return max(days_kept - 7, 30) if days_kept > 7 else 0.0


class Model:
    def __init__(self, prices: dict, measurements: dict, region: str = "us-central1"):
        if region not in prices["regions"]:
            raise SystemExit(f"no prices for region {region}; known: {', '.join(prices['regions'])}")
        self.p, self.m, self.region = prices["items"], measurements, region
        self.tier = str(prices["regions"][region]["cloud_run_tier"])

    def price(self, item: str) -> float:
        v = self.p[item]["price"]
        return v[self.tier] if isinstance(v, dict) else v

    # measured terms
    def render_cpu_per_s(self, res: str) -> float:
        base = figure(self.m, "render_cpu_per_s_1080p")
        return base if res == "1080p" else base * figure(self.m, "render_cpu_ratio_720p")

    def video_bytes_per_s(self, res: str) -> float:
        return figure(self.m, f"video_bytes_per_s_{res}")

    def analysis_s(self, song_s: float) -> float:
        return figure(self.m, "analysis_song_s_per_s") * song_s + figure(self.m, "analysis_clips_s")

    def analysis_cpu_s(self, song_s: float) -> float:  # scaled with the wall time of the 4-minute song's run
        return figure(self.m, "analysis_cpu_s") * self.analysis_s(song_s) / self.analysis_s(240.0)

    def tasks_for(self, out_s: float, res: str, task_seconds: float, target_seconds: float | None) -> int:
        """The service's own choice (the analyze step's plan: render/segments.py task_count)."""
        from beatsync.render.segments import task_count

        return task_count(out_s, task_seconds, MAX_TASKS, target_seconds, OUTPUT_PIXELS_PER_S[res])

    def video(self, song_s: float, res: str, preview: bool, task_seconds: float = TASK_SECONDS,
              target_seconds: float | None = TARGET_SECONDS, early: bool = EARLY_START) -> dict:
        """One video: the work of each component, its time to video, and its price. ``early``: the compose
        execution starts once the inputs are fetched (``compose_early_start``): its tasks start and fetch
        the clips while the analysis runs, and are billed while they wait for the plan."""
        out_s = min(song_s, PREVIEW_SECONDS) if preview else song_s
        t = self.tasks_for(out_s, res, task_seconds, target_seconds)
        cpu = self.render_cpu_per_s(res) * out_s
        split = figure(self.m, "split_cpu_per_task") * (t - 1)
        seg_cpu = (cpu + split) / t
        use = assumed("vcpu_use")
        render_wall = seg_cpu / (TASK_VCPU * use)
        video_bytes = self.video_bytes_per_s(res) * out_s
        merge_cpu = figure(self.m, "merge_cpu_per_s") * out_s if t > 1 else 0.0
        merge_wall = merge_cpu + (2 * video_bytes / 1e6 * assumed("merge_transfer_s_per_mb") if t > 1 else 0.0)
        # the song's window encoded once by the analyze step after the plan (a one-task render encodes it as it
        # renders): the step returns after it
        audio_cpu = figure(self.m, "audio_cpu_per_s") * out_s if t > 1 else 0.0
        analysis = self.analysis_s(song_s)
        # a task is ready (started, clips fetched) this long after its execution starts
        ready = assumed("task_start_s") + assumed("task_fetch_s")
        # started early: at the analysis's start, so a task waits for the plan (billed) or the plan for it
        idle = max(0.0, analysis - ready) if early else 0.0
        task_wall = (assumed("task_billed_start_s") + assumed("task_fetch_s") + idle + render_wall
                     + assumed("task_upload_s"))
        # the compose step's wall time after the analysis (the workflow polls it)
        compose_wall = (max(0.0, ready - analysis) if early else ready) + render_wall + assumed("task_upload_s")
        polls = polls_for(compose_wall)
        # the analyze step encodes the song's audio right after the plan: while the tasks render when they
        # were started early, before the compose execution starts otherwise
        after_plan = max(compose_wall, audio_cpu) if early else audio_cpu + compose_wall
        ttv = assumed("caller_fetch_s") + analysis + after_plan + assumed("poll_wait_s") + merge_wall
        k, c = 1 + assumed("clips"), assumed("clips")
        clip_bytes = c * assumed("clip_mb") * 1e6
        input_bytes = assumed("song_mb") * 1e6 + clip_bytes
        counts = job_counts(t, polls, k, c, status_calls=assumed("status_calls"),
                            cache_hit=assumed("analysis_cache_hit"), task_render_s=[render_wall] * t,
                            analysis_s=analysis, early_start=early,
                            task_wait_s=[idle + assumed("task_fetch_s")] * t)
        tot = {}
        for part in counts.values():
            for kind, n in part.items():
                tot[kind] = tot.get(kind, 0) + n
        blob = blob_bytes(t, input_bytes, clip_bytes, video_bytes, out_s)
        controls = 4 + polls if t > 1 else 3 + polls  # begin, analyze, compose/start, polls (, merge)
        analyze_busy = (assumed("caller_fetch_s") + analysis + audio_cpu + merge_wall
                        + (controls - 2) * assumed("control_call_s"))
        api_s = assumed("submit_s") + assumed("status_calls") * assumed("status_s")
        work = {
            "tasks": t, "out_s": out_s, "render_cpu_s": cpu + split, "task_wall_s": task_wall, "polls": polls,
            "ttv_s": ttv, "analysis_s": analysis, "merge_s": merge_wall, "video_bytes": video_bytes, "idle_s": idle,
            "compose_vcpu_s": t * task_wall * TASK_VCPU, "compose_gib_s": t * task_wall * TASK_GIB,
            "analyze_vcpu_s": analyze_busy * ANALYZE_VCPU, "analyze_gib_s": analyze_busy * ANALYZE_GIB,
            "analyze_cpu_s": self.analysis_cpu_s(song_s) + audio_cpu + merge_cpu, "compose_exec_s": compose_wall,
            "api_vcpu_s": api_s * FUNCTION_VCPU, "api_gib_s": api_s * FUNCTION_GIB,
            "run_requests": controls + 1 + assumed("status_calls"),
            "lb_requests": 1 + assumed("status_calls"),
            "steps": tot["steps"], "fs_read": tot.get("firestore.read", 0), "fs_write": tot.get("firestore.write", 0),
            "fs_delete": 1,  # the job document's TTL delete (its logs subcollection is not deleted by TTL)
            "gcs_a": tot.get("gcs.A", 0), "gcs_b": tot.get("gcs.B", 0), "tasks_ops": 2 * tot.get("tasks.create", 0),
            "pubsub_msgs": tot.get("pubsub.publish", 0), "bytes_up": blob["up"], "bytes_down": blob["down"],
            "egress_bytes": assumed("downloads") * video_bytes,
            "storage_gib_month": video_bytes / 2 ** 30 * assumed("output_days") / 30,
        }
        work["dollars"] = self.price_work(work)
        work["total"] = sum(work["dollars"].values())
        return work

    def price_work(self, w: dict) -> dict:
        """Dollars per video, list prices, before free tiers (the monthly bill applies them)."""
        gib = w["video_bytes"] / 2 ** 30
        days = assumed("output_days")
        storage = gib * (min(days, 7) / 30 * self.price("gcs_standard_gib_month")
                         + nearline_days(days) / 30 * self.price("gcs_nearline_gib_month"))
        return {
            "compose tasks (Cloud Run jobs)": w["compose_vcpu_s"] * self.price("run_instance_vcpu_s")
            + w["compose_gib_s"] * self.price("run_instance_gib_s"),
            "analyze service (Cloud Run)": w["analyze_vcpu_s"] * self.price("run_request_vcpu_s")
            + w["analyze_gib_s"] * self.price("run_request_gib_s"),
            "submit/status functions": w["api_vcpu_s"] * self.price("run_request_vcpu_s")
            + w["api_gib_s"] * self.price("run_request_gib_s"),
            "Cloud Run requests": w["run_requests"] * self.price("run_requests"),
            "Workflows steps": w["steps"] * self.price("workflows_internal_step"),
            "Firestore": w["fs_read"] * self.price("firestore_read") + w["fs_write"] * self.price("firestore_write")
            + w["fs_delete"] * self.price("firestore_delete"),
            "GCS operations": w["gcs_a"] * self.price("gcs_class_a") + w["gcs_b"] * self.price("gcs_class_b"),
            "GCS storage (outputs)": storage,
            "egress (caller downloads)": w["egress_bytes"] / 2 ** 30 * self.price("internet_egress_gib"),
            "Cloud Tasks + Pub/Sub": w["tasks_ops"] * self.price("tasks_operation")
            + w["pubsub_msgs"] * 2 * 1024 / 2 ** 40 * self.price("pubsub_tib"),
            "LB data + Armor requests": w["lb_requests"] * self.price("armor_request")
            + w["lb_requests"] * 20e3 / 2 ** 30 * self.price("lb_data_gib"),
        }

    # -- the month -------------------------------------------------------------------------------------
    def fixed_month(self) -> dict:
        return {
            "load balancer forwarding rules": 730 * self.price("lb_forwarding_rule_hour"),
            "Cloud Armor policy + rules": self.price("armor_policy_month") + ARMOR_RULES * self.price("armor_rule_month"),
            "Artifact Registry images": max(IMAGES_GIB - 0.5, 0) * self.price("artifact_registry_gib_month"),
        }

    def month(self, mix: list[tuple[int, float, str, bool]], days: int = 30) -> dict:
        """``mix``: (videos per day, song seconds, resolution, preview). Free tiers applied per month
        (Firestore's per day)."""
        per = [(n, self.video(s, r, p)) for n, s, r, p in mix]

        def total(key):
            return sum(n * days * w[key] for n, w in per)

        def over(amount, free):
            return max(amount - free, 0.0)

        p = self.p
        run_vcpu_i, run_gib_i = total("compose_vcpu_s"), total("compose_gib_s")
        run_vcpu_r = total("analyze_vcpu_s") + total("api_vcpu_s")
        run_gib_r = total("analyze_gib_s") + total("api_gib_s")
        fs = lambda key, item: over(total(key) / days, p[item]["free_per_day"]) * days * self.price(item)  # noqa: E731
        video_gib = total("video_bytes") / 2 ** 30
        days_kept = assumed("output_days")
        bill = {
            "compose tasks (Cloud Run jobs)": over(run_vcpu_i, p["run_instance_vcpu_s"]["free_per_month"])
            * self.price("run_instance_vcpu_s")
            + over(run_gib_i, p["run_instance_gib_s"]["free_per_month"]) * self.price("run_instance_gib_s"),
            "analyze service + functions (Cloud Run)": over(run_vcpu_r, p["run_request_vcpu_s"]["free_per_month"])
            * self.price("run_request_vcpu_s")
            + over(run_gib_r, p["run_request_gib_s"]["free_per_month"]) * self.price("run_request_gib_s")
            + over(total("run_requests"), p["run_requests"]["free_per_month"]) * self.price("run_requests"),
            "Workflows": over(total("steps"), p["workflows_internal_step"]["free_per_month"])
            * self.price("workflows_internal_step"),
            "Firestore": fs("fs_read", "firestore_read") + fs("fs_write", "firestore_write")
            + total("fs_delete") * self.price("firestore_delete"),
            "Cloud Storage operations": over(total("gcs_a"), p["gcs_class_a"]["free_per_month"]) * self.price("gcs_class_a")
            + over(total("gcs_b"), p["gcs_class_b"]["free_per_month"]) * self.price("gcs_class_b"),
            # steady state: each month's outputs kept output_days (7 Standard, the rest Nearline)
            "Cloud Storage (outputs kept)": over(video_gib * min(days_kept, 7) / 30, p["gcs_standard_gib_month"]
                                                 ["free_per_month"]) * self.price("gcs_standard_gib_month")
            + video_gib * nearline_days(days_kept) / 30 * self.price("gcs_nearline_gib_month"),
            "egress (caller downloads)": over(total("egress_bytes") / 2 ** 30, p["internet_egress_gib"]["free_per_month"])
            * self.price("internet_egress_gib"),
            "Cloud Tasks + Pub/Sub": over(total("tasks_ops"), p["tasks_operation"]["free_per_month"])
            * self.price("tasks_operation")
            + over(total("pubsub_msgs") * 2 * 1024 / 2 ** 40, p["pubsub_tib"]["free_per_month_tib"]) * self.price("pubsub_tib"),
            "LB + Cloud Armor (per request)": total("lb_requests") * (self.price("armor_request")
                                                                      + 20e3 / 2 ** 30 * self.price("lb_data_gib")),
        }
        bill.update(self.fixed_month())
        return bill

    # -- capacity --------------------------------------------------------------------------------------
    def capacity(self, quotas: dict, mix: list[tuple[int, float, str, bool]]) -> list[dict]:
        """Videos per hour each limit allows for the mix's proportions, binding one first."""
        n = sum(x[0] for x in mix)
        ws = [(x[0] / n, self.video(x[1], x[2], x[3])) for x in mix]

        def mean(key):
            return sum(f * w[key] for f, w in ws)

        q = {k: v["value"] for k, v in quotas["limits"].items()}
        rows = [
            ("run_job_executions", q["run_job_executions"] * 3600 / mean("compose_exec_s"),
             f"one execution per video for {mean('compose_exec_s'):.0f} s on average"),
            ("run_job_vcpu", q["run_job_vcpu"] * 3600 / mean("compose_vcpu_s"),
             f"{mean('compose_vcpu_s'):.0f} vCPU-s of tasks per video on average"),
            ("workflows_concurrent", q["workflows_concurrent"] * 3600 / mean("ttv_s"),
             f"one execution per video for its {mean('ttv_s'):.0f} s to video"),
            ("analyze_instances", q["analyze_instances"] * ANALYZE_VCPU * 3600 / mean("analyze_cpu_s"),
             f"{mean('analyze_cpu_s'):.1f} CPU s of analysis and merge per video on {ANALYZE_VCPU} vCPU each"),
            ("firestore_day_document", q["firestore_day_document"] * 3600,
             "one increment of the day's analytics document per ended job"),
            ("webhook_dispatch", q["webhook_dispatch"] * 3600, "one webhook per video (when the caller asks for one)"),
            ("submit_function", q["submit_function"] * 3600 / assumed("submit_s"),
             f"a submit request takes {assumed('submit_s')} s (assumed)"),
        ]
        out = [{"limit": k, "videos_per_hour": v, "why": why, **quotas["limits"][k]} for k, v, why in rows]
        return sorted(out, key=lambda r: r["videos_per_hour"])

    def caller_capacity(self, quotas: dict, mix: list[tuple[int, float, str, bool]]) -> list[dict]:
        """Videos per hour one caller can make, whatever the project's capacity."""
        n = sum(x[0] for x in mix)
        ttv = sum(x[0] / n * self.video(x[1], x[2], x[3])["ttv_s"] for x in mix)
        q = {k: v["value"] for k, v in quotas["caller_limits"].items()}
        per_video = 1 + assumed("status_calls")
        rows = [("max_active_jobs", q["max_active_jobs"] * 3600 / ttv, f"a job is active for its {ttv:.0f} s to video"),
                ("max_submissions_per_minute", q["max_submissions_per_minute"] * 60, "one submission per video"),
                ("edge_rate_limit", q["edge_rate_limit"] * 60 / per_video,
                 f"{per_video} requests per video (a submit and {assumed('status_calls')} status reads, assumed)")]
        out = [{"limit": k, "videos_per_hour": v, "why": why, **quotas["caller_limits"][k]} for k, v, why in rows]
        return sorted(out, key=lambda r: r["videos_per_hour"])


# -- output ---------------------------------------------------------------------------------------------

SONGS = [30, 60, 180, 300]
MIX = [(1000, 180, "1080p", True), (200, 180, "1080p", False)]
SEED = {"total": (60, 300), "Cloud Run": (50, 150), "storage": (5, 20)}


def money(x: float) -> str:
    if x >= 100:
        return f"${x:,.0f}"
    if x >= 1:
        return f"${x:.2f}"
    if x >= 0.01:
        return f"${x:.3f}"
    return f"${x:.4f}"


def signed(x: float) -> str:
    return ("-" if x < 0 else "+") + money(abs(x))


def render_tables(model: Model, quotas: dict) -> str:
    m, lines = model.m, []
    add = lines.append
    add("## What it costs")
    add("")
    add(f"Prices read {json.loads(PRICES.read_text())['read']} ({model.region}, Cloud Run tier {model.tier}); "
        f"measurements of {m['measured']} (`benchmarks/measurements.json`).")
    add("")
    add("### Per video")
    add("")
    add("List prices before free tiers. Single task: the whole render in one task of 4 vCPU "
        "(`BEATSYNC_RENDER_TASK_SECONDS` >= the output); parallel: the default, the fewest tasks predicted to "
        "render within `BEATSYNC_RENDER_TARGET_SECONDS` (10 s), at most one per 30 s of output and at most 8. A preview renders 30 s of the song (the whole song when shorter) after analysing all of it.")
    add("")
    add("| song | output | preview: $/video (s to video) | full, single task: $/video (s) | "
        "full, parallel: $/video (s, tasks) | $/minute of output: preview / single / parallel |")
    add("|---|---|---|---|---|---|")
    for song in SONGS:
        for res in ("720p", "1080p"):
            pv = model.video(song, res, True)
            one = model.video(song, res, False, 10 ** 6)
            par = model.video(song, res, False, TASK_SECONDS)
            per_min = " / ".join(money(w["total"] / (w["out_s"] / 60)) for w in (pv, one, par))
            add(f"| {song // 60}:{song % 60:02d} | {res} | {money(pv['total'])} ({pv['ttv_s']:.0f}) | "
                f"{money(one['total'])} ({one['ttv_s']:.0f}) | {money(par['total'])} ({par['ttv_s']:.0f}, "
                f"{par['tasks']}) | {per_min} |")
    add("")
    w = model.video(180, "1080p", False)
    add("Where the money goes, a 3-minute song, 1080p, full video, parallel "
        f"({w['tasks']} tasks, {w['polls']} polls, {w['steps']} Workflows steps, {w['fs_read']:.0f} Firestore reads, "
        f"{w['fs_write']:.0f} writes, {w['gcs_a']:.0f} class A and {w['gcs_b']:.0f} class B operations):")
    add("")
    add("| component | $/video | share |")
    add("|---|---|---|")
    for k, v in sorted(w["dollars"].items(), key=lambda kv: -kv[1]):
        add(f"| {k} | {money(v)} | {v / w['total']:.0%} |")
    add(f"| **total** | **{money(w['total'])}** | |")
    add("")
    add("### The month")
    add("")
    mix_txt = ", ".join(f"{n:,} {'previews' if p else 'full videos'} a day ({s // 60} min songs, {r})"
                        for n, s, r, p in MIX)
    bill = model.month(MIX)
    total = sum(bill.values())
    run = bill["compose tasks (Cloud Run jobs)"] + bill["analyze service + functions (Cloud Run)"]
    storage = bill["Cloud Storage (outputs kept)"] + bill["Cloud Storage operations"]
    add(f"{mix_txt}; 30 days; free tiers applied:")
    add("")
    add("| line | $/month | the seed's estimate |")
    add("|---|---|---|")
    seed = {"Cloud Run": "Cloud Run $50-150", "storage": "storage $5-20"}
    for k, v in sorted(bill.items(), key=lambda kv: -kv[1]):
        note = ""
        if k.startswith("compose") :
            note = f"{seed['Cloud Run']} (model: {money(run)} for all Cloud Run)"
        elif k.startswith("Cloud Storage (outputs"):
            note = f"{seed['storage']} (model: {money(storage)} with operations)"
        add(f"| {k} | {money(v)} | {note} |")
    add(f"| **total** | **{money(total)}** | **$60-300** |")
    add("")
    add("### `BEATSYNC_RENDER_TASK_SECONDS`: faster videos against more task start-ups")
    add("")
    add("A 3-minute song, 1080p, full video, one task per this many seconds (no target: "
        "`BEATSYNC_RENDER_TARGET_SECONDS` below what any count meets); each task adds its start-up (billed 2 s "
        "of 4 vCPU and 8 GiB), its clip fetch, the split's extra CPU and its calls:")
    add("")
    add("| task seconds | tasks | time to video s | $/video | vs 30 s | $/month for the 200 full videos a day |")
    add("|---|---|---|---|---|---|")
    base = model.video(180, "1080p", False, TASK_SECONDS, None)
    for ts in (10, 15, 20, 30, 45, 60, 90, 180):
        w = model.video(180, "1080p", False, ts, None)
        add(f"| {ts} | {w['tasks']} | {w['ttv_s']:.0f} | {money(w['total'])} | "
            f"{w['ttv_s'] - base['ttv_s']:+.0f} s, {signed(w['total'] - base['total'])} | "
            f"{money(w['total'] * 200 * 30)} |")
    add("")
    add("### `BEATSYNC_COMPOSE_EARLY_START`: tasks that wait for the plan against a later start")
    add("")
    add("Started early (the default), the compose execution starts once the inputs are fetched; its tasks "
        "start and fetch the clips while the song and the clips are analysed, and are billed while they wait "
        "for the plan. Started after the plan, a task's start-up and fetch follow the analysis. Full videos, "
        "parallel (the default task count):")
    add("")
    add("| song | output | tasks | after the plan: s to video, $/video | early: s to video, $/video | "
        "early: idle s per task | difference |")
    add("|---|---|---|---|---|---|---|")
    for song, res in ((60, "1080p"), (180, "720p"), (180, "1080p"), (240, "1080p"), (300, "1080p")):
        late = model.video(song, res, False, early=False)
        early = model.video(song, res, False, early=True)
        add(f"| {song // 60}:{song % 60:02d} | {res} | {early['tasks']} | {late['ttv_s']:.0f}, {money(late['total'])} | "
            f"{early['ttv_s']:.0f}, {money(early['total'])} | {early['idle_s']:.1f} | "
            f"{early['ttv_s'] - late['ttv_s']:+.0f} s, {signed(early['total'] - late['total'])} |")
    add("")
    add("A job that fails or is cancelled during its analysis stops the execution at once (its tasks also "
        "see the end within a second and exit): it costs each task's start-up and the clips fetched, "
        "about the billed start-up plus the fetch above per task.")
    add("")
    add("### `BEATSYNC_RENDER_TARGET_SECONDS`: the deadline the task count is sized for")
    add("")
    add("The fewest tasks predicted to render within the target (at most one per 30 s of output, at most 8); "
        "a 3-minute and a 1-minute song, full video:")
    add("")
    add("| target s | 3:00 1080p: tasks, s to video, $/video | 3:00 720p | 1:00 1080p |")
    add("|---|---|---|---|")
    for target in (5, 10, 15, 20, 30, 60):
        cells = []
        for song, res in ((180, "1080p"), (180, "720p"), (60, "1080p")):
            w = model.video(song, res, False, TASK_SECONDS, target)
            cells.append(f"{w['tasks']}, {w['ttv_s']:.0f}, {money(w['total'])}")
        add(f"| {target} | " + " | ".join(cells) + " |")
    add("")
    add("### Terms: measured, counted or assumed")
    add("")
    add("| term | value | measured or assumed |")
    add("|---|---|---|")
    for name, f in m["figures"].items():
        where = f.get("where") or f.get("detail", "")
        add(f"| {name} | {f['value']} {f['unit']} | {f['source']} ({f['date']}: `{f['command']}`; {where}) |")
    add(f"| counts per video | `job_counts()`, `workflow_steps()` | counted: a real job through the emulators "
        f"(`tests/integration/test_cost_counts.py` keeps them equal) |")
    for name, (v, why) in ASSUMED.items():
        add(f"| {name} | {v} | assumed: {why} |")
    add(f"| prices | `benchmarks/prices.json` | read {json.loads(PRICES.read_text())['read']}, each with its page |")
    add("")
    add("## How far it scales")
    add("")
    add(f"Videos per hour one project and region can make with the mix above (5 previews to 1 full video), each "
        f"limit alone, the binding one first:")
    add("")
    add("| limit | value | source | videos/hour | per video | raising it |")
    add("|---|---|---|---|---|---|")
    rows = model.capacity(quotas, MIX)
    for r in rows:
        src = r["source"] + (f" ({r['url']})" if r["url"].startswith("http") else f" (`{r['url']}`)")
        add(f"| {r['unit']} | {r['value']:,} | {src} | {r['videos_per_hour']:,.0f} | {r['why']} | {r['raise']} |")
    first = rows[0]["videos_per_hour"]
    binding = [r for r in rows if r["videos_per_hour"] < first * 1.1]
    add("")
    add(f"So one project and region makes about {first:,.0f} videos an hour, {first * 24:,.0f} a day: "
        f"{first * 24 / sum(x[0] for x in MIX):.0f} times the stated mix, were it spread evenly over the day. "
        f"Binding first, within 10 % of each other: " + "; ".join(r["unit"].split(" (")[0] for r in binding)
        + ". Past them: raise those, then the next rows in order.")
    add("")
    add("One caller (an API key, a Google identity, or one user id of a trusted caller) is held to less, "
        "whatever the project can do:")
    add("")
    add("| limit per caller | value | videos/hour | per video | raising it |")
    add("|---|---|---|---|---|")
    for r in model.caller_capacity(quotas, MIX):
        add(f"| {r['unit']} | {r['value']:,} | {r['videos_per_hour']:,.0f} | {r['why']} | {r['raise']} |")
    add("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--region", default="us-central1")
    ap.add_argument("--update-docs", action="store_true", help="write the tables into docs/operations.md")
    ap.add_argument("--measure", action="store_true", help="measure here first and rewrite measurements.json")
    ap.add_argument("--measure-seconds", type=float, default=10.0)
    ap.add_argument("--measure-analysis", action="store_true",
                    help="with --measure: analyse a 4-minute song too (wall seconds: a quiet machine only)")
    args = ap.parse_args(argv)
    if args.measure:
        sys.path.insert(0, str(HERE))
        refresh_measurements(MEASUREMENTS, args.measure_seconds, args.measure_analysis)
    model = Model(json.loads(PRICES.read_text()), load_measurements(), args.region)
    text = render_tables(model, json.loads(QUOTAS.read_text()))
    print(text)
    if args.update_docs:
        if args.region != "us-central1":
            raise SystemExit("docs/operations.md shows us-central1")
        doc = OPERATIONS_MD.read_text()
        head, rest = doc.split(BEGIN, 1)
        OPERATIONS_MD.write_text(head + BEGIN + "\n" + text + "\n" + END + rest.split(END, 1)[1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
