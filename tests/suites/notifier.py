"""The Notifier interface suite: adapter test modules import it and provide ``notifier``, a factory
``notifier(*receivers)`` returning a Notifier that may deliver to those receivers (tests/servers.py
webhook receivers), and ``secret``, the key it signs with (tests/unit: LocalWebhookNotifier;
tests/integration: CloudTasksNotifier on gcloud-tasks-emulator)."""

from __future__ import annotations

import time
import uuid

from beatsync.signing import EVENT_HEADER, SIGNATURE_HEADER, verify_event
from tests.servers import wait_for, webhook_receiver

DEADLINE = 60  # seconds: the emulator's queue retries with backoff


def event(job_id="j1", status="completed"):
    return {"id": uuid.uuid4().hex, "event": f"beat_sync.job.{status}", "job_id": job_id, "status": status,
            "created_at": "2026-11-25T00:00:00Z", "data": {"job_id": job_id}}


def test_an_event_is_delivered_signed(notifier, secret):
    receiver = webhook_receiver()
    try:
        e = event()
        t = time.monotonic()
        notifier(receiver).notify(f"{receiver.url}/hook/1", e)
        assert time.monotonic() - t < 10  # queued, not delivered inline (a wide bound on a busy machine)
        (got,) = wait_for(lambda: receiver.received, timeout=DEADLINE)
        assert got["json"] == e and receiver.paths == ["/hook/1"]
        assert got["headers"][EVENT_HEADER] == "beat_sync.job.completed"
        assert got["headers"]["Content-Type"] == "application/json"
        assert verify_event(secret, got["body"], got["headers"][SIGNATURE_HEADER])
        assert not verify_event(b"another secret, 32 bytes long...", got["body"], got["headers"][SIGNATURE_HEADER])
    finally:
        receiver.close()


def test_failed_deliveries_are_retried_until_accepted(notifier, secret):
    receiver = webhook_receiver(fail_first=2)  # answers 500 twice, then 204
    try:
        e = event(status="failed")
        notifier(receiver).notify(f"{receiver.url}/hook", e)
        (got,) = wait_for(lambda: receiver.received, timeout=DEADLINE)
        assert got["json"] == e and verify_event(secret, got["body"], got["headers"][SIGNATURE_HEADER])
        assert receiver.paths == ["/hook"] * 3  # two refused attempts, then the accepted one
    finally:
        receiver.close()


def test_events_to_two_destinations_are_both_delivered(notifier, secret):
    a, b = webhook_receiver(), webhook_receiver()
    try:
        n = notifier(a, b)
        ea, eb = event("ja"), event("jb", "cancelled")
        n.notify(f"{a.url}/a", ea)
        n.notify(f"{b.url}/b", eb)
        wait_for(lambda: a.received and b.received, timeout=DEADLINE)
        assert [r["json"] for r in a.received] == [ea] and [r["json"] for r in b.received] == [eb]
        assert b.received[0]["headers"][EVENT_HEADER] == "beat_sync.job.cancelled"
        for r in a.received + b.received:
            assert verify_event(secret, r["body"], r["headers"][SIGNATURE_HEADER])
    finally:
        a.close()
        b.close()


def test_a_url_with_a_non_ascii_path_and_query_is_delivered(notifier, secret):
    receiver = webhook_receiver()
    try:
        e = event()
        notifier(receiver).notify(f"{receiver.url}/h\u00e9/\u00e9t\u00e9?q=\u00fc", e)
        (got,) = wait_for(lambda: receiver.received, timeout=DEADLINE)
        assert got["json"] == e and receiver.paths == ["/h%C3%A9/%C3%A9t%C3%A9?q=%C3%BC"]
    finally:
        receiver.close()
