"""Pub/Sub test harness over the emulator: the seed's topology (requests topic, push subscription
with a dead-letter policy, dead-letter and events topics with pull subscriptions) and the push relay.

The emulator pushes (and redelivers, and dead-letters after ``max_delivery_attempts``) like Pub/Sub,
but its push requests carry no OIDC token, even with ``oidc_token`` in the push config (checked:
no Authorization header). So the push endpoint is a relay that plays Google's part: it adds an ID
token for the push service account, signed by the test's stand-in for Google's keys, forwards the
request to the service's push route and answers the emulator with the service's status. The service
verifies that token exactly as in production.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler

import httpx

from tests.servers import Server

PROJECT = "demo-beatsync"
PUSHER = "beatsync-pubsub-push@demo-beatsync.iam.gserviceaccount.com"
PUSH_PATH = "/api/v1/beat-sync/pubsub/push"


class Topology:
    """Fresh topics and subscriptions (unique names) on the emulator."""

    def __init__(self, push_endpoint: str, dead_letter: str, max_delivery_attempts: int = 5):
        from google.cloud import pubsub_v1

        self.publisher = pubsub_v1.PublisherClient()
        self.subscriber = pubsub_v1.SubscriberClient()
        tag = uuid.uuid4().hex[:8]
        p, s = self.publisher, self.subscriber
        self.requests = p.topic_path(PROJECT, f"beat-sync-requests-{tag}")
        self.dead_letter = dead_letter  # shared with the service's setting; made by dead_letter_topic()
        self.events = p.topic_path(PROJECT, f"beat-sync-events-{tag}")
        for topic in (self.requests, self.events):
            p.create_topic(name=topic)
        self.dead_letter_sub = s.subscription_path(PROJECT, f"dead-letter-{tag}")  # sees this test's messages only
        self.events_sub = s.subscription_path(PROJECT, f"events-{tag}")
        self.push_sub = s.subscription_path(PROJECT, f"beat-sync-requests-push-{tag}")
        s.create_subscription(request={"name": self.dead_letter_sub, "topic": self.dead_letter})
        s.create_subscription(request={"name": self.events_sub, "topic": self.events, "enable_message_ordering": True})
        s.create_subscription(request={
            "name": self.push_sub, "topic": self.requests, "ack_deadline_seconds": 30,
            "push_config": {"push_endpoint": push_endpoint,
                            "oidc_token": {"service_account_email": PUSHER, "audience": push_endpoint}},
            "dead_letter_policy": {"dead_letter_topic": self.dead_letter, "max_delivery_attempts": max_delivery_attempts},
            "retry_policy": {"minimum_backoff": {"seconds": 0}, "maximum_backoff": {"seconds": 1}}})

    def publish(self, body, raw: bytes | None = None, **attributes) -> str:
        data = raw if raw is not None else json.dumps(body).encode()
        return self.publisher.publish(self.requests, data, **attributes).result(timeout=30)

    def pull(self, subscription: str, want: int, timeout: float = 30.0) -> list:
        """At least ``want`` messages (acknowledged) within ``timeout`` seconds, in arrival order."""
        got, deadline = [], time.monotonic() + timeout
        while len(got) < want and time.monotonic() < deadline:
            resp = self.subscriber.pull(subscription=subscription, max_messages=10, timeout=5)
            if resp.received_messages:
                self.subscriber.acknowledge(subscription=subscription,
                                            ack_ids=[m.ack_id for m in resp.received_messages])
                got.extend((time.monotonic(), m.message) for m in resp.received_messages)
            else:
                time.sleep(0.1)
        return got

    def close(self):
        for sub in (self.push_sub, self.dead_letter_sub, self.events_sub):
            self.subscriber.delete_subscription(subscription=sub)
        for topic in (self.requests, self.events):
            self.publisher.delete_topic(topic=topic)


def dead_letter_topic() -> str:
    from google.cloud import pubsub_v1

    topic = pubsub_v1.PublisherClient.topic_path(PROJECT, f"beat-sync-requests-dead-letter-{uuid.uuid4().hex[:8]}")
    pubsub_v1.PublisherClient().create_topic(name=topic)
    return topic


def relay(target: str, token, fail_after_forwarding: int = 0, with_token: bool = True) -> Server:
    """The push endpoint the emulator calls. ``token()``: a fresh ID token for the push account;
    ``fail_after_forwarding``: answer that many deliveries 500 although the service handled them
    (an acknowledgement lost on the way back)."""
    deliveries: list[dict] = []
    lock = threading.Lock()
    state = {"to_fail": fail_after_forwarding}

    class Relay(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {"Content-Type": self.headers.get("Content-Type", "application/json")}
            if with_token:
                headers["Authorization"] = f"Bearer {token()}"
            began = time.monotonic()
            try:
                resp = httpx.post(target, content=body, headers=headers, timeout=30)
                status, answer = resp.status_code, resp.json()
            except httpx.HTTPError as exc:
                status, answer = 502, {"relay_error": str(exc)}
            with lock:
                forwarded = status
                if 200 <= status < 300 and state["to_fail"] > 0:
                    state["to_fail"] -= 1
                    status = 500
                deliveries.append({"time": time.monotonic(), "received": began, "message": json.loads(body)["message"],
                                   "service_status": forwarded, "answered": status, "answer": answer})
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = Server(Relay)
    server.deliveries = deliveries
    return server
