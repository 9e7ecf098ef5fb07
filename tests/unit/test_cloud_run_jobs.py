"""CloudRunJobRunner against a stand-in of the Cloud Run Admin API v2 (REST) on loopback. There is
no Cloud Run emulator: this checks the requests the runner makes and how it reads the answers
(paths, the run overrides, the execution handle, running vs exited, cancel)."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler

import requests

from beatsync.adapters.cloud_run_jobs import CloudRunJobRunner
from tests.servers import Server

JOB = "projects/p1/locations/asia-southeast1/jobs/beat-sync-compose"


def test_start_state_and_stop_speak_the_admin_api():
    calls, executions = [], {}

    class Api(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def _send(self, status, doc):
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
            calls.append(("POST", self.path, body))
            if self.path == f"/v2/{JOB}:run":
                name = f"{JOB}/executions/e{len(executions) + 1}"
                executions[name] = {"name": name}
                self._send(200, {"name": "operations/op1", "metadata": {"name": name}})
            elif self.path.endswith(":cancel"):
                name = self.path[len("/v2/"):-len(":cancel")]
                executions[name]["completionTime"] = "2026-11-25T00:00:00Z"
                self._send(200, {"name": "operations/op2"})
            else:
                self._send(404, {})

        def do_GET(self):  # noqa: N802
            calls.append(("GET", self.path, None))
            name = self.path[len("/v2/"):]
            self._send(200, executions[name]) if name in executions else self._send(404, {})

    server = Server(Api)
    try:
        runner = CloudRunJobRunner(project="p1", region="asia-southeast1", job="beat-sync-compose",
                                   api=f"{server.url}/v2", session=requests.Session())
        handle = runner.start("0123456789abcdef0123456789abcdef")
        assert handle == f"{JOB}/executions/e1"
        method, path, body = calls[0]
        assert (method, path) == ("POST", f"/v2/{JOB}:run")
        assert body["overrides"]["containerOverrides"][0]["args"] == ["compose-job", "0123456789abcdef0123456789abcdef"]
        assert body["overrides"]["taskCount"] == 1
        parallel = runner.start("0123456789abcdef0123456789abcdef", tasks=3)  # one execution, three tasks
        assert parallel == f"{JOB}/executions/e2" and calls[-1][2]["overrides"]["taskCount"] == 3
        assert runner.state(handle) == "running"
        runner.stop(handle)
        assert calls[-1][:2] == ("POST", f"/v2/{handle}:cancel")
        assert runner.state(handle) == "exited"
        assert runner.state(f"{JOB}/executions/missing") == "unknown"
    finally:
        server.close()
