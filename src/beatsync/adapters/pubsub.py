"""EventPublisher adapters: Google Cloud Pub/Sub, and an in-process one for local runs and tests.

The Pub/Sub client is built on first use (it honours ``PUBSUB_EMULATOR_HOST``), with message
ordering on, so the events of one job (ordering key = job id) arrive in the order they happened
to a subscription with ordering enabled.
"""

from __future__ import annotations

import collections
import functools
import threading
import uuid

from ..ports import EventPublisher

#: seconds one publish may take, retries included
PUBLISH_TIMEOUT = 20.0


def topic_path(topic: str, project: str) -> str:
    if topic.startswith("projects/"):
        return topic
    if not project:
        raise ValueError(f"topic {topic!r} needs a project (BEATSYNC_PROJECT)")
    return f"projects/{project}/topics/{topic}"


class PubSubPublisher(EventPublisher):
    #: IAM permissions of each operation (tests/unit/test_permissions.py): ``topic`` is the topic
    #: published to, so a grant on one topic covers publishing there and nowhere else
    PERMISSIONS = {
        "publish": (("pubsub.topics.publish", "topic"),),
    }

    def __init__(self, *, project: str, timeout: float = PUBLISH_TIMEOUT):
        self.project, self.timeout = project, timeout

    @functools.cached_property
    def client(self):
        from google.cloud import pubsub_v1

        return pubsub_v1.PublisherClient(
            publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True))

    def publish(self, topic, data, attributes, ordering_key=""):
        path = topic_path(topic, self.project)
        future = self.client.publish(path, data, ordering_key=ordering_key, **attributes)
        try:
            return future.result(timeout=self.timeout)
        except BaseException:
            if ordering_key:  # a failed publish pauses its ordering key until resumed
                self.client.resume_publish(path, ordering_key)
            future.cancel()
            raise


class MemoryPublisher(EventPublisher):
    """Keeps the last ``limit`` messages in this process (``BEATSYNC_EVENT_PUBLISHER=memory``): for a
    single-machine run that wants to see what would be published, and for tests."""

    def __init__(self, limit: int = 1000):
        self.messages: collections.deque[dict] = collections.deque(maxlen=limit)
        self._lock = threading.Lock()

    def publish(self, topic, data, attributes, ordering_key=""):
        message_id = uuid.uuid4().hex
        with self._lock:
            self.messages.append({"topic": topic, "data": bytes(data), "attributes": dict(attributes),
                                  "ordering_key": ordering_key, "message_id": message_id})
        return message_id

    def on(self, topic: str) -> list[dict]:
        with self._lock:
            return [m for m in self.messages if m["topic"] == topic]
