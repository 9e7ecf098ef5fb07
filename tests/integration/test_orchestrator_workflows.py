"""WorkflowsOrchestrator on workflows-emulator: each start() creates an execution of
workflows/beat_sync.yaml for the job, which calls the analyze service (functions/analyze served by
functions-framework; compose attempts as local processes) step by step. Jobs and media live in a
SQLite store and a local folder shared by the test and the service (the cloud stores have their own
suites). The emulator has no cancel: cancel() leaves the execution to see the job's flag."""

from __future__ import annotations

import os
import subprocess

import pytest

from beatsync.adapters.workflows import WorkflowsOrchestrator
from beatsync.bootstrap import bootstrap
from beatsync.settings import Settings
from tests.conftest import ROOT
from tests.emulators import _emulator_tool, _wait_http, free_port, stop_process
from tests.servers import wait_for
from tests.suites.orchestrator import *  # noqa: F401,F403  (the Orchestrator interface suite)
from tests.suites.orchestrator import stored
from tests.suites.service import RecordingOrchestrator

PROJECT, REGION, WORKFLOW = "demo-beatsync", "asia-southeast1", "beat-sync"


@pytest.fixture(scope="module")
def engine(tmp_path_factory, media):
    tmp = tmp_path_factory.mktemp("orchestrator-workflows")
    env = {"BEATSYNC_DATA_DIR": str(tmp / "data"), "BEATSYNC_ALLOWED_HOSTS": media.host,
           "BEATSYNC_ANALYSIS_METHOD": "librosa", "BEATSYNC_COMPOSE_RUNNER": "process",
           "BEATSYNC_JOB_STORE": "sqlite", "BEATSYNC_BLOB_STORE": "local"}
    started = []
    try:
        port = free_port()
        started.append(subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "functions-framework"), "--source", "functions/analyze/main.py",
             "--target", "analyze", "--port", str(port)], env={**os.environ, **env}, cwd=str(ROOT),
            stdout=open(tmp / "analyze.log", "ab"), stderr=subprocess.STDOUT, start_new_session=True))
        _wait_http(f"http://127.0.0.1:{port}/", 60, started[-1])
        wf_port, log = free_port(), tmp / "workflows.log"
        started.append(subprocess.Popen(
            [_emulator_tool("workflows-emulator"), "--source", str(ROOT / "workflows" / "beat_sync.yaml"),
             "serve", "--port", str(wf_port)],
            env={**os.environ, "BEATSYNC_CONTROL_URL": f"http://127.0.0.1:{port}", "BEATSYNC_AUTH_MODE": "none",
                 "BEATSYNC_POLL_SECONDS": "1"},
            stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True, cwd=str(tmp)))
        wait_for(lambda: b"Uvicorn running" in log.read_bytes() or started[-1].poll() is not None, timeout=60)
        assert started[-1].poll() is None, log.read_text()[-2000:]

        class Engine:
            jobs = bootstrap(Settings.from_env(env), orchestrator=RecordingOrchestrator())
            orchestrator = WorkflowsOrchestrator(project=PROJECT, location=REGION, workflow=WORKFLOW,
                                                 endpoint=f"http://127.0.0.1:{wf_port}")
            workflows_log = log

            def finished(self, job_id):
                # the workflow's last step logs "job {id} ended: {status}" before it returns
                return f"job {job_id} ended: " in log.read_text(errors="replace")

        yield Engine()
    finally:
        for proc in started:
            stop_process(proc)


def test_start_creates_an_execution_for_the_job(engine, media):
    job = stored(engine, media, video_urls=[f"{media.url}/nope.mp4"])
    handle = engine.orchestrator.start(job)
    assert handle.startswith(f"projects/{PROJECT}/locations/{REGION}/workflows/{WORKFLOW}/executions/")
    assert engine.orchestrator.start(job) != handle  # one execution per start
    wait_for(lambda: engine.finished(job.job_id), timeout=120, interval=0.2)
    assert engine.jobs.jobs.get(job.job_id).error.code == "source_not_found"
    assert any(m["message"] == "workflow: started" for m in engine.jobs.jobs.logs(job.job_id))
