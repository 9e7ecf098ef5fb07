"""Webhooks through Cloud Tasks: the CloudTasksNotifier creates HTTP tasks on the queue of
gcloud-tasks-emulator, which dispatches them to a real local receiver (retrying failures)."""

from __future__ import annotations

import uuid

from beatsync.adapters.cloud_tasks import CloudTasksNotifier
from beatsync.signing import EVENT_HEADER, SIGNATURE_HEADER, verify_event
from tests.emulators import tasks_emulator  # noqa: F401
from tests.servers import wait_for, webhook_receiver

SECRET = b"k" * 32


def _event(status="completed"):
    return {"id": uuid.uuid4().hex, "event": f"beat_sync.job.{status}", "job_id": "j1", "status": status,
            "created_at": "2026-11-25T00:00:00Z", "data": {"job_id": "j1"}}


def test_events_are_delivered_signed_and_retried(tasks_emulator):  # noqa: F811
    host, _ = tasks_emulator
    receiver = webhook_receiver(fail_first=2)
    receiver.fail_first = receiver.httpd.RequestHandlerClass.fail_first
    try:
        notifier = CloudTasksNotifier(project="demo-beatsync", location="asia-southeast1", queue="beat-sync-webhooks",
                                      secret=SECRET, emulator_host=host)
        event = _event()
        # (tasks are named by the event id, so Cloud Tasks drops a repeated notify of one event;
        # the emulator does not implement that de-duplication, so it is not asserted here)
        notifier.notify(f"{receiver.url}/hook", event)
        (got,) = wait_for(lambda: receiver.received, timeout=60)
        assert got["json"] == event
        assert got["headers"][EVENT_HEADER] == "beat_sync.job.completed"
        assert verify_event(SECRET, got["body"], got["headers"][SIGNATURE_HEADER])
        assert receiver.fail_first == [0]  # the two failed attempts were retried by the queue
    finally:
        receiver.close()
