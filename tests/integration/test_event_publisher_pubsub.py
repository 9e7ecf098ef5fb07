import time
import uuid

import pytest

from beatsync.adapters.pubsub import PubSubPublisher
from tests.emulators import pubsub_emulator  # noqa: F401  (session fixture)
from tests.pubsub import PROJECT
from tests.suites.event_publisher import *  # noqa: F401,F403  (the EventPublisher interface suite)


@pytest.fixture
def publisher(pubsub_emulator):  # noqa: F811
    return PubSubPublisher(project=PROJECT, timeout=30)


@pytest.fixture
def topics(pubsub_emulator):  # noqa: F811
    from google.cloud import pubsub_v1

    admin, subscriber, made = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient(), []

    class Topics:
        def new(self):
            # a bare name: the adapter makes it projects/{project}/topics/{name}
            name = f"events-{uuid.uuid4().hex[:8]}"
            admin.create_topic(name=admin.topic_path(PROJECT, name))
            subscriber.create_subscription(request={"name": subscriber.subscription_path(PROJECT, name),
                                                    "topic": admin.topic_path(PROJECT, name),
                                                    "enable_message_ordering": True})
            made.append(name)
            return name

        def receive(self, topic, n, timeout=30.0):
            sub, got, deadline = subscriber.subscription_path(PROJECT, topic), [], time.monotonic() + timeout
            while len(got) < n and time.monotonic() < deadline:
                resp = subscriber.pull(subscription=sub, max_messages=10, timeout=5)
                if resp.received_messages:
                    subscriber.acknowledge(subscription=sub, ack_ids=[m.ack_id for m in resp.received_messages])
                    got.extend({"data": m.message.data, "attributes": dict(m.message.attributes),
                                "ordering_key": m.message.ordering_key, "message_id": m.message.message_id}
                               for m in resp.received_messages)
                else:
                    time.sleep(0.1)
            assert len(got) >= n, got
            return got

    yield Topics()
    for name in made:
        subscriber.delete_subscription(subscription=subscriber.subscription_path(PROJECT, name))
        admin.delete_topic(topic=admin.topic_path(PROJECT, name))


def test_a_full_topic_path_is_taken_as_is(publisher, topics):
    name = topics.new()
    message_id = publisher.publish(f"projects/{PROJECT}/topics/{name}", b"x", {})
    assert [m["message_id"] for m in topics.receive(name, 1)] == [message_id]


def test_publishing_to_a_missing_topic_raises(publisher):
    from google.api_core.exceptions import NotFound

    with pytest.raises(NotFound):
        publisher.publish(f"missing-{uuid.uuid4().hex[:8]}", b"x", {}, ordering_key="k")
