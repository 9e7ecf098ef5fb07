"""Notifier on Cloud Tasks: each webhook event becomes an HTTP task on the webhook queue; the
queue's retry policy (terraform/tasks.tf: attempts, min/max backoff, dispatch limits) delivers it.
The body is signed when the task is created (retries re-send it unchanged; see
:mod:`beatsync.signing`). The client is built on first use, never at import."""

from __future__ import annotations

import functools
import json

from ..ports import Notifier
from ..signing import EVENT_HEADER, SIGNATURE_HEADER, sign_event


def ascii_url(url: str) -> str:
    """``url`` as the local notifier puts it on the wire: an IDNA host and a UTF-8 percent-encoded path
    and query (Cloud Tasks encodes "some characters" of a task's URL; the emulator none)."""
    if url.isascii():
        return url
    from urllib.parse import urlsplit, urlunsplit

    from ..fetch import ascii_host, ascii_path

    parts = urlsplit(url)
    host = ascii_host(parts.hostname or "")
    netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, ascii_path(parts.path or "/"),
                       ascii_path(parts.query) if parts.query else "", ""))


class CloudTasksNotifier(Notifier):
    #: IAM permissions of each operation: a task on the queue, carrying (when configured) the
    #: OIDC identity of the tasks account, which the creator must be able to act as.
    PERMISSIONS = {
        "notify": (("cloudtasks.tasks.create", "queue"), ("iam.serviceAccounts.actAs", "tasks_account")),
    }

    def __init__(self, *, project: str, location: str, queue: str, secret: bytes, emulator_host: str | None = None,
                 service_account: str | None = None):
        self.project, self.location, self.queue_name = project, location, queue
        self.secret, self.emulator_host, self.service_account = secret, emulator_host, service_account

    @functools.cached_property
    def client(self):
        from google.cloud import tasks_v2

        if self.emulator_host:
            import grpc
            from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

            return tasks_v2.CloudTasksClient(
                transport=CloudTasksGrpcTransport(channel=grpc.insecure_channel(self.emulator_host)))
        return tasks_v2.CloudTasksClient()

    @property
    def queue_path(self) -> str:
        return self.client.queue_path(self.project, self.location, self.queue_name)

    def notify(self, url: str, event: dict) -> None:
        from google.api_core.exceptions import AlreadyExists
        from google.cloud import tasks_v2

        body = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
        request = tasks_v2.HttpRequest(
            http_method=tasks_v2.HttpMethod.POST, url=ascii_url(url), body=body,
            headers={"Content-Type": "application/json", SIGNATURE_HEADER: sign_event(self.secret, body),
                     EVENT_HEADER: event["event"]})
        if self.service_account:  # receivers on Cloud Run / Functions can require this identity
            request.oidc_token = tasks_v2.OidcToken(service_account_email=self.service_account)
        # the event id names the task: a repeated notify of the same event is deduplicated
        task = tasks_v2.Task(name=f"{self.queue_path}/tasks/{event['id']}", http_request=request)
        try:
            self.client.create_task(parent=self.queue_path, task=task)
        except AlreadyExists:
            pass
