"""The cost model's counts against a real job: a preview (one compose task) and a full video (a
parallel render of 3 tasks) run through workflows/beat_sync.yaml on workflows-emulator, the analyze
service under functions-framework (which starts the compose tasks as processes), jobs in the
Firestore emulator, media in fake-gcs-server, webhooks through gcloud-tasks-emulator and events to
the Pub/Sub emulator. Every process counts its calls to those services at the client libraries
(tests/countsite/sitecustomize.py); the workflow's steps are the emulator's "Step running" lines.

``benchmarks/cost_model.py`` prices a video from per-job counts (``cost_model.job_counts``); this
test fails when the code makes a different number of calls than the model says, so the model
cannot drift from the code. Terms that depend on time (progress writes while a render runs,
cancel-flag reads, polls) are checked against the model's formula for the time this run took.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from beatsync.adapters.firestore_jobs import FirestoreJobStore
from beatsync.adapters.gcs import GcsBlobStore
from beatsync.adapters.workflows import WorkflowsOrchestrator
from beatsync.bootstrap import bootstrap
from beatsync.jobs import service
from beatsync.settings import Settings
from tests.conftest import ROOT
from tests.emulators import (  # noqa: F401
    _emulator_tool, _wait_http, fake_gcs, firestore_emulator, free_port, pubsub_emulator, stop_process,
    tasks_emulator)
from tests.servers import media_server, wait_for, webhook_receiver

sys.path.insert(0, str(ROOT / "benchmarks"))
import cost_model  # noqa: E402

COUNTSITE = ROOT / "tests" / "countsite"
PROJECT, REGION, WORKFLOW = "demo-beatsync", "asia-southeast1", "beat-sync"
TASK_SECONDS = 12  # the 30 s sample song's full video: 3 compose tasks


@pytest.fixture(scope="module")
def stack(tmp_path_factory, firestore_emulator, fake_gcs, tasks_emulator, pubsub_emulator):  # noqa: F811
    from google.cloud import pubsub_v1

    import importlib.util

    spec = importlib.util.spec_from_file_location("beatsync_counting", COUNTSITE / "sitecustomize.py")
    counting = importlib.util.module_from_spec(spec)  # the same module the processes load (this one counts too)
    spec.loader.exec_module(counting)

    tmp = tmp_path_factory.mktemp("cost")
    counts_dir = tmp / "counts"
    counts_dir.mkdir()
    os.environ["BEATSYNC_COUNT_DIR"] = str(counts_dir)
    counting.install()
    media_dir = tmp / "media"
    media_dir.mkdir()
    for name in ("lets_go_fishin_excerpt.opus", "bottles.mp4", "cars.mp4", "people.mp4"):
        shutil.copy(ROOT / "examples" / name, media_dir / name)
    media, receiver = media_server(media_dir), webhook_receiver()
    topic = f"events-{uuid.uuid4().hex[:8]}"
    pubsub_v1.PublisherClient().create_topic(name=f"projects/{PROJECT}/topics/{topic}")
    bucket, collection = f"cost-{uuid.uuid4().hex[:8]}", f"jobs_{uuid.uuid4().hex[:8]}"
    tasks_host, _ = tasks_emulator
    env = {
        "BEATSYNC_JOB_STORE": "firestore", "BEATSYNC_FIRESTORE_COLLECTION": collection, "BEATSYNC_PROJECT": PROJECT,
        "BEATSYNC_BLOB_STORE": "gcs", "BEATSYNC_BUCKET": bucket, "BEATSYNC_GCS_ENDPOINT": fake_gcs,
        "BEATSYNC_NOTIFIER": "cloud_tasks", "BEATSYNC_TASKS_EMULATOR_HOST": tasks_host, "BEATSYNC_REGION": REGION,
        "BEATSYNC_WEBHOOK_SECRET": "cost-test", "BEATSYNC_ALLOWED_HOSTS": f"{media.host},{receiver.host}",
        "BEATSYNC_ANALYSIS_METHOD": "librosa", "BEATSYNC_COMPOSE_RUNNER": "process",
        "BEATSYNC_EVENT_PUBLISHER": "pubsub", "BEATSYNC_DATA_DIR": str(tmp / "data"),
        "FIRESTORE_EMULATOR_HOST": firestore_emulator, "BEATSYNC_RENDER_TASK_SECONDS": str(TASK_SECONDS),
        "BEATSYNC_RENDER_TARGET_SECONDS": "0.001",  # one task per TASK_SECONDS (the floor), not the deadline's count
        "BEATSYNC_COUNT_DIR": str(counts_dir),
        "PYTHONPATH": os.pathsep.join([str(COUNTSITE), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    settings = Settings.from_env(env)
    blobs = GcsBlobStore(bucket, project=PROJECT, endpoint=fake_gcs)
    blobs.bucket.client.create_bucket(bucket)
    port = free_port()
    analyze = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "functions-framework"), "--source", "functions/analyze/main.py", "--target",
         "analyze", "--port", str(port)], env={**os.environ, **env}, stdout=open(tmp / "analyze.log", "ab"),
        stderr=subprocess.STDOUT, start_new_session=True, cwd=str(ROOT))
    _wait_http(f"http://127.0.0.1:{port}/", 60, analyze)
    wf_port = free_port()
    wf_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BEATSYNC_COUNT_DIR")}
    wf_env.update(BEATSYNC_CONTROL_URL=f"http://127.0.0.1:{port}", BEATSYNC_AUTH_MODE="none",
                  BEATSYNC_POLL_SECONDS="2")
    log = tmp / "workflows.log"
    workflows = subprocess.Popen(
        [_emulator_tool("workflows-emulator"), "--source", str(ROOT / "workflows" / "beat_sync.yaml"),
         "--loglevel", "DEBUG", "serve", "--port", str(wf_port)],
        env=wf_env, stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True, cwd=str(tmp))
    wait_for(lambda: b"Uvicorn running" in log.read_bytes() or workflows.poll() is not None, timeout=60)
    assert workflows.poll() is None, log.read_text()[-2000:]

    class Stack:
        pass

    s = Stack()
    s.media, s.receiver, s.topic, s.counts_dir, s.log, s.tmp = media, receiver, topic, counts_dir, log, tmp
    jobs = FirestoreJobStore(project=PROJECT, collection=collection)
    s.container = bootstrap(settings, blobs=blobs, jobs=jobs, orchestrator=WorkflowsOrchestrator(
        project=PROJECT, location=REGION, workflow=WORKFLOW, endpoint=f"http://127.0.0.1:{wf_port}"))
    yield s
    os.environ.pop("BEATSYNC_COUNT_DIR", None)
    stop_process(workflows)
    stop_process(analyze)
    media.close()
    receiver.close()


def read_counts(folder: Path) -> list[dict]:
    lines = []
    for f in sorted(folder.glob("*.jsonl")):
        lines += [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
    return lines


def run_job(stack, body: dict) -> dict:
    """Submit through the service (the submit function's code) as a new caller, wait for the job's end,
    its webhook and the workflow's last step, read its status once; answer what every process did."""
    before = {(x["pid"], x["t"], x["kind"]) for x in read_counts(stack.counts_dir)}
    log_at = stack.log.stat().st_size
    owner = f"caller-{uuid.uuid4().hex[:8]}"
    t0 = time.time()
    job, _ = service.submit_create(stack.container, body, owner)
    t1 = time.time()
    job = wait_for(lambda: (lambda j: j if j.terminal else None)(stack.container.jobs.get(job.job_id)), timeout=400)
    assert job.status == "completed", job
    wait_for(lambda: any(e["json"]["job_id"] == job.job_id for e in stack.receiver.received), timeout=60)
    wait_for(lambda: "Step running: `done`" in stack.log.read_text()[log_at:], timeout=60)
    t2 = time.time()
    service.get_job(stack.container, job.job_id, owner, "create")  # the caller reads its status once
    t3 = time.time()
    # this process: the submit and the status read only (not the test's own waiting)
    lines = [x for x in read_counts(stack.counts_dir) if (x["pid"], x["t"], x["kind"]) not in before
             and (x["pid"] != os.getpid() or t0 <= x["t"] <= t1 or t2 <= x["t"] <= t3)]
    steps = [ln.split("Step running: `", 1)[1].split("`", 1)[0] for ln in stack.log.read_text()[log_at:].splitlines()
             if "Step running: `" in ln]
    return {"job": stack.container.jobs.get(job.job_id), "lines": lines, "steps": steps}


COMPONENT = {"analyze-service": "analyze", "compose-task": "compose"}


def part(line: dict) -> str:
    """Which of the model's terms a call belongs to, from the code that made it."""
    names = [w.split(":")[1] for w in line["where"]]
    if not names:
        return "client"  # the storage client's own bucket read in a new process
    if "compose_poll" in names or "_next_poll" in names:  # compose/start's look at the tasks' rates too
        return "poll"
    if "wait_if_started_early" in names and "_prefetch" not in names:
        return "time"  # a task started before the plan, waiting for it (the inputs it fetches meanwhile are fixed)
    if names[0] == "should_stop" or names[:2] == ["__call__", "render"] or names[:3] == ["__call__", "<lambda>",
                                                                                          "render"]:
        return "time"
    return COMPONENT.get(line["role"], "api")


def observed(run: dict) -> dict:
    out: dict[str, dict[str, int]] = {}
    seen_client: set[int] = set()
    for x in run["lines"]:
        kind = "gcs.delete" if x["kind"] == "gcs.free" else x["kind"]
        where = part(x)
        if where == "client" and x["role"] == "compose-task":
            # a task's first is its client's bucket read; after that, the storage library reads the bucket
            # after a 404 (its metadata cache): a task waiting for the plan gets one per look at most
            where = "time" if x["pid"] in seen_client else "client"
            seen_client.add(x["pid"])
        bucket = out.setdefault(where, {})
        bucket[kind] = bucket.get(kind, 0) + x["n"]
    return out


def task_seconds(run: dict) -> list[float]:
    """Each compose task process's span, first call to last (its render lies within)."""
    spans: dict[int, list[float]] = {}
    for x in run["lines"]:
        if x["role"] == "compose-task":
            spans.setdefault(x["pid"], []).append(x["t"])
    return [max(v) - min(v) for v in spans.values()]


def body(stack, full: bool, preview_s: float = 8) -> dict:
    m = stack.media.url
    b = {"audio_url": f"{m}/lets_go_fishin_excerpt.opus",
         "video_urls": [f"{m}/bottles.mp4", f"{m}/cars.mp4", f"{m}/people.mp4"],
         "webhook_url": f"{stack.receiver.url}/hook/{uuid.uuid4().hex}", "callback_topic": stack.topic,
         "config": {"output_resolution": [640, 360]}}
    if full:
        b["preset"] = "cinematic"
    else:
        b.update(preset="fast_cuts", preview_only=True, preview_duration=preview_s)
    return b


@pytest.mark.parametrize("case", ["preview, one task", "preview of 24 s, 2 tasks", "full video, 3 tasks"])
def test_a_real_job_makes_the_calls_the_cost_model_prices(stack, case):
    full, preview_s, tasks = {"preview, one task": (False, 8, 1), "preview of 24 s, 2 tasks": (False, 24, 2),
                              "full video, 3 tasks": (True, 0, 3)}[case]
    run = run_job(stack, body(stack, full, preview_s))
    job, seen = run["job"], observed(run)
    polls = run["steps"].count("poll")
    assert job.result["output_key"] and polls >= 1
    clips = [ROOT / "examples" / n for n in ("bottles.mp4", "cars.mp4", "people.mp4")]
    spans = task_seconds(run)
    assert len(spans) == tasks, spans  # one process per planned task (the plan's count)
    stopped = "stop_after_end" in run["steps"]
    model = cost_model.job_counts(tasks, polls, inputs=1 + len(clips), clips=len(clips), status_calls=1,
                                  cache_hit=bool(job.metrics.beat_map_cached),
                                  task_render_s=[s + 1.0 for s in spans],
                                  task_wait_s=[s + 1.0 for s in spans],  # within each task's span too
                                  analysis_s=(job.metrics.analysis_time_ms + job.metrics.download_time_ms) / 1000
                                  + 1.0, cloud=False, stopped_after_end=stopped,
                                  clip_cache_hit=job.metrics.clip_analysis_frames == 0)

    # the Workflows steps the execution ran: exactly the model's
    assert len(run["steps"]) == cost_model.workflow_steps(tasks, polls, stopped), Counter(run["steps"])
    # every call not made by a poll or at a rate over time: exactly the model's, per component
    for component in ("api", "analyze", "compose"):
        assert seen.get(component, {}) == model[component], (component, seen.get(component), model[component])
    # polls and the calls made each second while rendering: at most the model's for this run's polls and times
    for term in ("poll", "time"):
        for kind, n in seen.get(term, {}).items():
            assert n <= model[term].get(kind, 0), (term, kind, n, model[term])
    # the storage client's bucket read: one per new process (the analyze service: a few per instance)
    assert seen.get("client", {}).get("gcs.B", 0) <= model["client"]["gcs.B"] + 5
    # the blob bytes: the model's, give or take the small JSON objects and thumbnails
    up = sum(x.get("bytes_up", 0) for x in run["lines"])
    down = sum(x.get("bytes_down", 0) for x in run["lines"])
    song = (ROOT / "examples" / "lets_go_fishin_excerpt.opus").stat().st_size
    clip_bytes = sum(p.stat().st_size for p in clips)
    want = cost_model.blob_bytes(tasks, song + clip_bytes, clip_bytes, job.result["file_size"],
                                 job.result["duration"], cloud=False)
    assert abs(up - want["up"]) <= cost_model.SMALL_BYTES, (up, want)
    assert abs(down - want["down"]) <= cost_model.SMALL_BYTES, (down, want)
