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
    def __init__(self, *, project: str, location: str, workflow: str, endpoint: str | None = None):
        """``endpoint``: a workflows-emulator URL (REST, anonymous) for local runs and tests."""
        self.project, self.location, self.workflow, self.endpoint = project, location, workflow, endpoint

    @functools.cached_property
    def client(self):
        from google.cloud.workflows import executions_v1

        if self.endpoint:
            from google.api_core.client_options import ClientOptions
            from google.auth.credentials import AnonymousCredentials

            return executions_v1.ExecutionsClient(
                credentials=AnonymousCredentials(), transport="rest",
                client_options=ClientOptions(api_endpoint=self.endpoint))
        return executions_v1.ExecutionsClient()

    @property
    def workflow_path(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/workflows/{self.workflow}"

    def start(self, job) -> str | None:
        from google.cloud.workflows import executions_v1

        execution = executions_v1.Execution(argument=json.dumps({"job_id": job.job_id}))
        return self.client.create_execution(parent=self.workflow_path, execution=execution).name

    def cancel(self, job) -> None:
        from google.api_core.exceptions import FailedPrecondition, NotFound

        if not job.execution:
            return
        try:
            self.client.cancel_execution(name=job.execution)
        except (FailedPrecondition, NotFound):
            pass  # already finished
