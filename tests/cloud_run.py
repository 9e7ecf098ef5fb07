"""A stand-in of the Cloud Run Admin API v2 (REST) on loopback, for CloudRunJobRunner. There is no
Cloud Run emulator; this one does what Cloud Run does with the compose job's execution, on this
machine: ``jobs/{job}:run`` starts an execution of ``taskCount`` tasks, each a process running the
container's entry point (``python -m beatsync.cli`` plus the overridden args) with
``CLOUD_RUN_TASK_INDEX`` / ``CLOUD_RUN_TASK_COUNT`` / ``CLOUD_RUN_TASK_ATTEMPT`` set and this
process's environment (the job's configured env); a failed task is started again up to
``max_retries`` times; the execution gets its ``completionTime`` once every task has ended;
``executions/{id}:cancel`` kills the tasks and completes it. Every request is recorded in ``calls``.
Not modelled: IAM, parallelism limits (all tasks run at once), task timeouts, operations polling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler

from tests.emulators import stop_process
from tests.servers import Server


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


class _Execution:
    def __init__(self, name: str, args: list[str], count: int, max_retries: int):
        self.name, self.args, self.count, self.max_retries = name, args, count, max_retries
        self.doc = {"name": name, "createTime": _now(), "taskCount": count}
        self.procs: list[subprocess.Popen] = []
        self.cancelled = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._task, args=(i,), daemon=True) for i in range(count)]
        for t in self.threads:
            t.start()
        threading.Thread(target=self._finish, daemon=True).start()

    def _task(self, index: int) -> None:
        for attempt in range(self.max_retries + 1):
            with self.lock:
                if self.cancelled.is_set():
                    return
                env = {**os.environ, "CLOUD_RUN_TASK_INDEX": str(index),
                       "CLOUD_RUN_TASK_COUNT": str(self.count), "CLOUD_RUN_TASK_ATTEMPT": str(attempt)}
                proc = subprocess.Popen([sys.executable, "-m", "beatsync.cli", *self.args], env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
                self.procs.append(proc)
            if proc.wait() == 0:
                return

    def _finish(self) -> None:
        for t in self.threads:
            t.join()
        with self.lock:
            self.doc.setdefault("completionTime", _now())

    def cancel(self) -> bool:
        with self.lock:
            if "completionTime" in self.doc:
                return False
            self.cancelled.set()
            procs = list(self.procs)
        for proc in procs:
            stop_process(proc)
        with self.lock:
            self.doc["completionTime"] = _now()
            self.doc["cancelledCount"] = self.count
        return True


class CloudRunStandIn:
    def __init__(self, job_path: str, max_retries: int = 0):
        self.job_path, self.max_retries = job_path, max_retries
        self.calls: list[tuple[str, str, dict | None]] = []
        self.executions: dict[str, _Execution] = {}
        api = self

        class Handler(BaseHTTPRequestHandler):
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
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                api.calls.append(("POST", self.path, body))
                if self.path == f"/v2/{api.job_path}:run":
                    overrides = body.get("overrides", {})
                    args = (overrides.get("containerOverrides") or [{}])[0].get("args", [])
                    name = f"{api.job_path}/executions/{api.job_path.rsplit('/', 1)[1]}-{uuid.uuid4().hex[:5]}"
                    api.executions[name] = _Execution(name, args, int(overrides.get("taskCount", 1)), api.max_retries)
                    self._send(200, {"name": f"projects/p/locations/l/operations/{uuid.uuid4()}",
                                     "metadata": api.executions[name].doc})
                elif self.path.startswith("/v2/") and self.path.endswith(":cancel"):
                    execution = api.executions.get(self.path[len("/v2/"):-len(":cancel")])
                    if execution is None:
                        self._send(404, {"error": {"code": 404, "status": "NOT_FOUND"}})
                    elif execution.cancel():
                        self._send(200, {"name": "operations/cancel", "metadata": execution.doc})
                    else:
                        self._send(400, {"error": {"code": 400, "status": "FAILED_PRECONDITION"}})
                else:
                    self._send(404, {"error": {"code": 404, "status": "NOT_FOUND"}})

            def do_GET(self):  # noqa: N802
                api.calls.append(("GET", self.path, None))
                execution = api.executions.get(self.path[len("/v2/"):])
                if execution is None:
                    self._send(404, {"error": {"code": 404, "status": "NOT_FOUND"}})
                else:
                    with execution.lock:
                        self._send(200, dict(execution.doc))

        self.server = Server(Handler)
        self.url = f"{self.server.url}/v2"

    def close(self) -> None:
        for execution in list(self.executions.values()):
            execution.cancel()
        self.server.close()
