"""CloudRunJobRunner against tests/cloud_run.py, a stand-in of the Cloud Run Admin API v2 (REST) on
loopback that runs each execution's tasks as local processes. There is no Cloud Run emulator: the
ComposeRunner suite checks the behaviour through the stand-in, and the test below the requests the
runner makes (paths, the run overrides, the execution handle, cancel)."""

from __future__ import annotations

import uuid

import pytest
import requests

from beatsync.adapters.cloud_run_jobs import CloudRunJobRunner
from tests.cloud_run import CloudRunStandIn
from tests.servers import wait_for
from tests.suites.compose_runner import *  # noqa: F401,F403  (the ComposeRunner interface suite)

JOB = "projects/p1/locations/asia-southeast1/jobs/beat-sync-compose"


@pytest.fixture
def api():
    stand_in = CloudRunStandIn(JOB, max_retries=1)
    yield stand_in
    stand_in.close()


@pytest.fixture
def runner(api):
    return CloudRunJobRunner(project="p1", region="asia-southeast1", job="beat-sync-compose", api=api.url,
                             session=requests.Session())


def test_the_runner_speaks_the_admin_api(api, runner, data_dir):  # noqa: F811  (data_dir: the suite's fixture)
    job_id = uuid.uuid4().hex
    handle = runner.start(job_id)
    method, path, body = api.calls[0]
    assert (method, path) == ("POST", f"/v2/{JOB}:run")
    assert body["overrides"]["containerOverrides"][0]["args"] == ["compose-job", job_id]
    assert body["overrides"]["taskCount"] == 1
    assert handle.startswith(f"{JOB}/executions/")  # the Execution named in the operation's metadata
    parallel = runner.start(job_id, tasks=3)  # one execution, three tasks
    assert parallel != handle and api.calls[-1][2]["overrides"]["taskCount"] == 3
    assert runner.state(handle) in ("running", "exited") and api.calls[-1][:2] == ("GET", f"/v2/{handle}")
    runner.stop(parallel)
    assert api.calls[-1][:2] == ("POST", f"/v2/{parallel}:cancel")
    wait_for(lambda: runner.state(handle) == "exited", timeout=60, interval=0.2)
    runner.stop(handle)  # cancelling a finished execution: Cloud Run answers 400, not an error here
