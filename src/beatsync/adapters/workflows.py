"""Orchestrator on Google Cloud Workflows: one execution of ``workflows/beat_sync.yaml`` per job.

The execution's argument carries only the job id (the workflow reads everything else from the
job and the deployment's environment), well under Workflows' 512 KB variable limit. Cancel sets
the job's flag (done by the service before calling :meth:`cancel`) and cancels the execution.
The client is built on first use, never at import.
"""

from __future__ import annotations

import functools
import json

from ..ports import Orchestrator


class WorkflowsOrchestrator(Orchestrator):
    #: IAM permissions of each operation (on the workflow).
    PERMISSIONS = {
        "start": (("workflows.executions.create", "workflow"),),
        "cancel": (("workflows.executions.cancel", "workflow"),),
    }

    def __init__(self, *, project: str, location: str, workflow: str, endpoint: str | None = None):
        """``endpoint``: a workflows-emulator URL for local runs and tests. The emulator speaks the
        Executions REST API (the client library only speaks gRPC) and runs an execution to its end
        inside the create call, so against it an execution is started from a background thread."""
        self.project, self.location, self.workflow, self.endpoint = project, location, workflow, endpoint

    @functools.cached_property
    def client(self):
        from google.cloud.workflows import executions_v1

        return executions_v1.ExecutionsClient()

    @property
    def workflow_path(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/workflows/{self.workflow}"

    def start(self, job) -> str | None:
        argument = json.dumps({"job_id": job.job_id})
        if self.endpoint:
            return self._start_on_emulator(argument)
        from google.cloud.workflows import executions_v1

        execution = executions_v1.Execution(argument=argument)
        return self.client.create_execution(parent=self.workflow_path, execution=execution).name

    def _start_on_emulator(self, argument: str) -> str:
        import threading
        import urllib.request
        import uuid

        url = f"{self.endpoint.rstrip('/')}/v1/{self.workflow_path}/executions"
        # the emulator binds the argument's keys to the workflow's params by name (Workflows binds
        # the whole argument to the one param, ``args``), so the argument is wrapped for it
        wrapped = json.dumps({"args": json.loads(argument)})
        req = urllib.request.Request(url, data=json.dumps({"argument": wrapped}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})

        def run():
            with urllib.request.urlopen(req, timeout=24 * 3600) as resp:
                resp.read()

        threading.Thread(target=run, name="workflows-emulator-execution", daemon=True).start()
        return f"{self.workflow_path}/executions/emulator-{uuid.uuid4().hex}"

    def cancel(self, job) -> None:
        from google.api_core.exceptions import FailedPrecondition, NotFound

        if not job.execution or self.endpoint:  # the emulator has no cancel: the flag stops the job
            return
        try:
            self.client.cancel_execution(name=job.execution)
        except (FailedPrecondition, NotFound):
            pass  # already finished
