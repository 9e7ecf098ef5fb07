"""ComposeRunner on Cloud Run jobs: each compose attempt is an execution of the compose job
(4 vCPU / 8 GiB per task, task timeout up to hours: no HTTP request limit applies), started with the
job id as its argument and ``taskCount`` tasks (the segments of a parallel render), inspected and cancelled through the Cloud Run Admin API v2 (REST, with the
service account's credentials). The session is built on first use, never at import."""

from __future__ import annotations

import functools

from ..ports import ComposeRunner

API = "https://run.googleapis.com/v2"


class CloudRunJobRunner(ComposeRunner):
    #: IAM permissions of each operation: executions of the compose job, started with overrides
    #: (the job id as argument) and so acting as the job's service account.
    PERMISSIONS = {
        "start": (("run.jobs.runWithOverrides", "compose_job"), ("iam.serviceAccounts.actAs", "compose_account")),
        "state": (("run.executions.get", "compose_job"),),
        "stop": (("run.executions.cancel", "compose_job"),),
    }

    def __init__(self, *, project: str, region: str, job: str, api: str = API, session=None):
        """``session``: a requests-style session (default: an AuthorizedSession with the service
        account's credentials, built on first use)."""
        self.project, self.region, self.job, self.api = project, region, job, api.rstrip("/")
        if session is not None:
            self.session = session

    @functools.cached_property
    def session(self):
        import google.auth
        from google.auth.transport.requests import AuthorizedSession

        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        return AuthorizedSession(credentials)

    @property
    def job_path(self) -> str:
        return f"projects/{self.project}/locations/{self.region}/jobs/{self.job}"

    def start(self, job_id: str, tasks: int = 1) -> str:
        # one execution of ``tasks`` tasks: each reads CLOUD_RUN_TASK_INDEX / CLOUD_RUN_TASK_COUNT and renders
        # its segment; the job's max_retries retries a failed task; cancelling the execution stops them all
        body = {"overrides": {"containerOverrides": [{"args": ["compose-job", job_id]}], "taskCount": int(tasks)}}
        resp = self.session.post(f"{self.api}/{self.job_path}:run", json=body, timeout=60)
        resp.raise_for_status()
        # a long-running operation; its metadata is the Execution being created
        return resp.json()["metadata"]["name"]

    def state(self, handle: str) -> str:
        resp = self.session.get(f"{self.api}/{handle}", timeout=30)
        if resp.status_code == 404:
            return "unknown"
        resp.raise_for_status()
        execution = resp.json()
        return "exited" if execution.get("completionTime") else "running"

    def stop(self, handle: str) -> None:
        resp = self.session.post(f"{self.api}/{handle}:cancel", json={}, timeout=30)
        if resp.status_code not in (200, 400, 404, 409):  # already finished: nothing to stop
            resp.raise_for_status()
