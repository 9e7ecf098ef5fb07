"""The cloud path on loopback: workflows/beat_sync.yaml executed by workflows-emulator, calling the
analyze service (functions/analyze, served by functions-framework) which starts compose attempts
as processes; jobs in the official Firestore emulator, media in fake-gcs-server, webhooks through
gcloud-tasks-emulator to a local receiver."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from beatsync.adapters.firestore_jobs import FirestoreJobStore
from beatsync.adapters.gcs import GcsBlobStore
from beatsync.adapters.workflows import WorkflowsOrchestrator
from beatsync.bootstrap import bootstrap
from beatsync.jobs import service
from beatsync.settings import Settings
from beatsync.signing import SIGNATURE_HEADER, verify_event
from tests.conftest import ROOT
from tests.emulators import (  # noqa: F401
    _emulator_tool, _wait_http, fake_gcs, firestore_emulator, free_port, stop_process, tasks_emulator)
from tests.servers import Server, media_server, wait_for, webhook_receiver
from tests.suites.service import RecordingOrchestrator

SECRET = "workflow-test-secret"
PROJECT, REGION, WORKFLOW = "demo-beatsync", "asia-southeast1", "beat-sync"


class FaultProxy:
    """Forwards to the analyze service; answers 503 to the first ``fail_analyze`` analyze calls."""

    def __init__(self, target: str):
        self.fail_analyze, self.calls = 0, []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                proxy.calls.append(self.path)
                if self.path == "/internal/analyze" and proxy.fail_analyze > 0:
                    proxy.fail_analyze -= 1
                    self._answer(503, b'{"error": {"code": "unavailable", "message": "injected"}}')
                    return
                req = urllib.request.Request(target + self.path, data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(req, timeout=1800) as resp:
                        self._answer(resp.status, resp.read())
                except urllib.error.HTTPError as exc:
                    self._answer(exc.code, exc.read())

            def _answer(self, status, data):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = Server(Handler)
        self.url = self.server.url

    def count(self, path):
        return self.calls.count(path)


def _start(cmd, env, log: Path, url: str):
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                            start_new_session=True, cwd=str(ROOT))
    _wait_http(url, 60, proc)
    return proc


@pytest.fixture(scope="module")
def stack(tmp_path_factory, firestore_emulator, fake_gcs, tasks_emulator):  # noqa: F811
    tmp = tmp_path_factory.mktemp("wf")
    media_dir = tmp / "media"
    media_dir.mkdir()
    for name in ("lets_go_fishin_excerpt.opus", "bottles.mp4", "cars.mp4", "people.mp4"):
        shutil.copy(ROOT / "examples" / name, media_dir / name)
    (media_dir / "bad.mp4").write_text("this is not a video")
    media = media_server(media_dir)
    receiver = webhook_receiver()
    bucket, collection = f"wf-{uuid.uuid4().hex[:8]}", f"jobs_{uuid.uuid4().hex[:8]}"
    tasks_host, _ = tasks_emulator
    env = {
        "BEATSYNC_JOB_STORE": "firestore", "BEATSYNC_FIRESTORE_COLLECTION": collection, "BEATSYNC_PROJECT": PROJECT,
        "BEATSYNC_BLOB_STORE": "gcs", "BEATSYNC_BUCKET": bucket, "BEATSYNC_GCS_ENDPOINT": fake_gcs,
        "BEATSYNC_NOTIFIER": "cloud_tasks", "BEATSYNC_TASKS_EMULATOR_HOST": tasks_host, "BEATSYNC_REGION": REGION,
        "BEATSYNC_WEBHOOK_SECRET": SECRET, "BEATSYNC_ALLOWED_HOSTS": f"{media.host},{receiver.host}",
        "BEATSYNC_ANALYSIS_METHOD": "librosa", "BEATSYNC_COMPOSE_RUNNER": "process",
        "BEATSYNC_DATA_DIR": str(tmp / "data"), "FIRESTORE_EMULATOR_HOST": firestore_emulator,
        # a full 30 s render runs as 3 compose tasks (a parallel render); an 8 s preview as one
        "BEATSYNC_RENDER_TASK_SECONDS": "12", "BEATSYNC_RENDER_TARGET_SECONDS": "0.001",
    }
    settings = Settings.from_env(env)
    blobs = GcsBlobStore(bucket, project=PROJECT, endpoint=fake_gcs)
    blobs.bucket.client.create_bucket(bucket)
    analyze_port = free_port()
    analyze = _start([str(ROOT / ".venv" / "bin" / "functions-framework"), "--source", "functions/analyze/main.py",
                      "--target", "analyze", "--port", str(analyze_port)], env, tmp / "analyze.log",
                     f"http://127.0.0.1:{analyze_port}/")
    proxy = FaultProxy(f"http://127.0.0.1:{analyze_port}")
    wf_port = free_port()
    wf_env = {"BEATSYNC_CONTROL_URL": proxy.url, "BEATSYNC_AUTH_MODE": "none", "BEATSYNC_POLL_SECONDS": "1",
              "BEATSYNC_COMPOSE_ATTEMPTS": "3"}
    workflows = subprocess.Popen(
        [_emulator_tool("workflows-emulator"), "--source", str(ROOT / "workflows" / "beat_sync.yaml"),
         "--loglevel", "DEBUG", "serve", "--port", str(wf_port)],
        env={**os.environ, **wf_env}, stdout=open(tmp / "workflows.log", "ab"), stderr=subprocess.STDOUT,
        start_new_session=True, cwd=str(tmp))
    wait_for(lambda: b"Uvicorn running" in (tmp / "workflows.log").read_bytes() or workflows.poll() is not None,
             timeout=60)
    assert workflows.poll() is None, (tmp / "workflows.log").read_text()[-2000:]

    class Stack:
        pass

    s = Stack()
    s.media, s.receiver, s.proxy, s.tmp = media, receiver, proxy, tmp
    s.workflows_url = f"http://127.0.0.1:{wf_port}"
    s.container = bootstrap(settings, blobs=blobs, jobs=FirestoreJobStore(project=PROJECT, collection=collection),
                            orchestrator=RecordingOrchestrator())
    s.workflows_log = tmp / "workflows.log"
    yield s
    stop_process(workflows)
    stop_process(analyze)
    proxy.server.close()
    media.close()
    receiver.close()


def execute(stack, argument: dict) -> dict:
    """Start an execution (the emulator runs it to the end within the request) and return its result."""
    url = f"{stack.workflows_url}/v1/projects/{PROJECT}/locations/{REGION}/workflows/{WORKFLOW}/executions"
    # (the emulator binds argument keys to params by name: wrap it as the one param, args)
    req = urllib.request.Request(url, data=json.dumps({"argument": json.dumps({"args": argument})}).encode(),
                                 method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as resp:
        return json.loads(resp.read())


def in_background(fn, *args):
    out = {}

    def run():
        try:
            out["result"] = fn(*args)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    out["thread"] = t
    return out


def body(stack, long=False, **extra):
    m = stack.media.url
    b = {"audio_url": f"{m}/lets_go_fishin_excerpt.opus", "video_urls": [f"{m}/bottles.mp4", f"{m}/cars.mp4",
                                                                         f"{m}/people.mp4"],
         "webhook_url": f"{stack.receiver.url}/hook/{uuid.uuid4().hex}"}
    if long:
        b.update(preset="cinematic", config={"output_resolution": [1920, 1080]})
    else:
        b.update(preset="fast_cuts", preview_only=True, preview_duration=8, config={"output_resolution": [640, 360]})
    b.update(extra)
    return b


def webhook(stack, job_id, timeout=60):
    def find():
        for e in list(stack.receiver.received):
            if e["json"]["job_id"] == job_id:
                return e
        return None

    e = wait_for(find, timeout=timeout, interval=0.2)
    assert verify_event(SECRET.encode(), e["body"], e["headers"][SIGNATURE_HEADER])
    return e["json"]


def outputs(stack, job_id):
    return stack.container.blobs.list(f"outputs/{job_id}/")


def submit(stack, b):
    job, _ = service.submit_create(stack.container, b, "alice")
    return job.job_id


def wait_progress(stack, job_id, above=40.0):
    wait_for(lambda: stack.container.jobs.get(job_id).progress > above, timeout=240, interval=0.1)


def test_happy_path_through_the_orchestrator_adapter(stack):
    # submit -> WorkflowsOrchestrator.create_execution (REST) -> the emulator runs the YAML
    c = bootstrap(stack.container.settings, blobs=stack.container.blobs, jobs=stack.container.jobs,
                  orchestrator=WorkflowsOrchestrator(project=PROJECT, location=REGION, workflow=WORKFLOW,
                                                     endpoint=stack.workflows_url))
    job, _ = service.submit_create(c, body(stack), "alice")
    assert job.execution.startswith(f"projects/{PROJECT}/locations/{REGION}/workflows/{WORKFLOW}/executions/")
    job = wait_for(lambda: (lambda j: j if j.terminal else None)(stack.container.jobs.get(job.job_id)), timeout=120)
    assert job.status == "completed", job
    assert {k.rsplit("/", 1)[1] for k in outputs(stack, job.job_id)} == {
        "preview.mp4", "thumbnail.jpg", "edl.json", "edit.otio", "beat_map.json", "result.json"}
    event = webhook(stack, job.job_id)
    assert event["event"] == "beat_sync.job.completed" and event["data"]["output_url"]
    logs = [e["message"] for e in stack.container.jobs.logs(job.job_id)]
    for needle in ("workflow: started", "downloading started", "analysed:", "compose started before the plan",
                   "workflow: compose attempt 1 is the execution started before the plan",
                   "composing started", "rendered", "job completed"):
        assert any(needle in m for m in logs), (needle, logs)


def test_analyze_answering_503_twice_is_retried(stack):
    job_id = submit(stack, body(stack))
    stack.proxy.fail_analyze = 2
    before = stack.proxy.count("/internal/analyze")
    result = execute(stack, {"job_id": job_id})
    assert result["status"] == "completed"
    assert stack.proxy.count("/internal/analyze") - before == 3
    assert "Retry -> Attempt 2" in stack.workflows_log.read_text()
    assert webhook(stack, job_id)["event"] == "beat_sync.job.completed"


def task_pids(stack, job_id, task):
    return [int(e["message"].rsplit("pid ", 1)[1].rstrip(")")) for e in stack.container.jobs.logs(job_id)
            if e["message"].startswith(f"compose task {task} started: ")]


def test_a_job_of_3_tasks_with_one_task_failing_once_completes_with_one_output(stack):
    job_id = submit(stack, body(stack, long=True))
    run = in_background(execute, stack, {"job_id": job_id})
    pid = wait_for(lambda: (task_pids(stack, job_id, "2/3") or [None])[0], timeout=300, interval=0.1)
    wait_for(lambda: stack.container.blobs.exists(f"temp/{job_id}/progress-003-001.json"), timeout=300, interval=0.1)
    os.killpg(pid, signal.SIGKILL)  # task 2 dies mid-segment; the execution retries it
    run["thread"].join(400)
    assert run["result"]["status"] == "completed", run
    videos = [k for k in outputs(stack, job_id) if k.endswith(".mp4")]
    assert videos == [f"outputs/{job_id}/output.mp4"]
    assert stack.container.blobs.list(f"temp/{job_id}/") == []
    logs = [e["message"] for e in stack.container.jobs.logs(job_id)]
    # started by the analyze step before the plan (compose_early_start), adopted by the workflow
    assert any("compose attempt 1 is the execution started before the plan" in m and m.endswith("3 tasks")
               for m in logs)
    assert not any("compose attempt 2" in m for m in logs)  # retried by the execution, not the workflow
    assert len(task_pids(stack, job_id, "2/3")) == 2
    assert sum(m.startswith("rendered") for m in logs) == 1
    edl = json.loads(stack.container.blobs.get_bytes(f"outputs/{job_id}/edl.json"))
    local = stack.tmp / f"{job_id}.mp4"
    stack.container.blobs.get_file(videos[0], str(local))
    import av

    with av.open(str(local)) as c:  # one frame per planned frame, a valid index
        assert sum(1 for p in c.demux(c.streams.video[0]) if p.size) == edl["total_frames"]
        assert c.duration / 1e6 == pytest.approx(edl["total_frames"] / edl["fps"], abs=0.05)


def test_cancel_during_compose_ends_cancelled_with_nothing_left(stack):
    b = body(stack, long=True)
    job_id = submit(stack, b)
    run = in_background(execute, stack, {"job_id": job_id})
    wait_progress(stack, job_id)
    service.cancel(stack.container, job_id, "alice")
    # ends cancelled, not completed (how fast: benchmarks/cancel_latency.py); a wide bound on a busy machine
    wait_for(lambda: stack.container.jobs.get(job_id).status == "cancelled", timeout=120, interval=0.1)
    run["thread"].join(60)
    assert run["result"]["status"] == "cancelled"
    assert outputs(stack, job_id) == [] and stack.container.blobs.list(f"temp/{job_id}/") == []
    assert webhook(stack, job_id)["event"] == "beat_sync.job.cancelled"


def test_permanent_analyze_failure_is_not_retried(stack):
    job_id = submit(stack, body(stack, video_urls=[f"{stack.media.url}/bad.mp4"]))
    before = stack.proxy.count("/internal/analyze")
    result = execute(stack, {"job_id": job_id})
    assert result["status"] == "failed" and result["error"]["code"] == "unsupported_media"
    assert stack.proxy.count("/internal/analyze") - before == 1
    event = webhook(stack, job_id)
    assert event["event"] == "beat_sync.job.failed" and event["data"]["error"]["code"] == "unsupported_media"


def test_a_passed_deadline_fails_the_job_and_stops_the_render(stack):
    job_id = submit(stack, body(stack, long=True))
    result = execute(stack, {"job_id": job_id, "deadline_seconds": 4})
    assert result["status"] == "failed" and result["error"]["code"] == "deadline_exceeded"
    job = stack.container.jobs.get(job_id)
    assert job.status == "failed" and outputs(stack, job_id) == []
    assert any("compose stopped" in e["message"] for e in stack.container.jobs.logs(job_id))
    assert webhook(stack, job_id)["data"]["error"]["code"] == "deadline_exceeded"


def test_an_execution_started_with_a_create_request_creates_its_own_job(stack):
    result = execute(stack, body(stack))
    assert result["status"] == "completed"
    job = stack.container.jobs.get(result["job_id"])
    assert job.owner == "workflows-console" and job.type == "create"
