import uuid

import pytest

from beatsync.adapters.pubsub import MemoryPublisher
from tests.suites.event_publisher import *  # noqa: F401,F403  (the EventPublisher interface suite)


@pytest.fixture
def publisher():
    return MemoryPublisher()


@pytest.fixture
def topics(publisher):
    class Topics:
        def new(self):
            return f"events-{uuid.uuid4().hex[:8]}"

        def receive(self, topic, n):
            got = [{k: m[k] for k in ("data", "attributes", "ordering_key", "message_id")} for m in publisher.on(topic)]
            assert len(got) >= n, got
            return got

    return Topics()


def test_only_the_last_messages_are_kept():
    p = MemoryPublisher(limit=3)
    ids = [p.publish("t", str(i).encode(), {}) for i in range(5)]
    assert [m["message_id"] for m in p.on("t")] == ids[2:]
