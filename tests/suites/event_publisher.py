"""The EventPublisher interface suite: adapter test modules import it and provide ``publisher`` and
``topics``, a helper with ``new()`` (a fresh topic name the publisher takes) and ``receive(topic, n)``
(at least ``n`` messages published to it, in arrival order, as dicts of ``data``, ``attributes``,
``ordering_key`` and ``message_id``, as a subscriber sees them). tests/unit: MemoryPublisher (its record
of messages); tests/integration: PubSubPublisher on the Pub/Sub emulator (a pull subscription with
message ordering, made with the topic)."""

from __future__ import annotations

import json


def test_publish_returns_the_id_the_subscriber_sees_with_data_attributes_and_key(publisher, topics):
    topic = topics.new()
    data = json.dumps({"event": "beat_sync.job.completed", "job_id": "j1", "note": "caf\u00e9"}).encode()
    attributes = {"event": "beat_sync.job.completed", "job_id": "j1", "signature": "t=1,v1=ab"}
    message_id = publisher.publish(topic, data, attributes, ordering_key="j1")
    assert isinstance(message_id, str) and message_id
    (got,) = topics.receive(topic, 1)
    assert got == {"data": data, "attributes": attributes, "ordering_key": "j1", "message_id": message_id}


def test_one_ordering_key_keeps_its_order_and_ids_are_distinct(publisher, topics):
    topic = topics.new()
    ids = [publisher.publish(topic, f"{i}".encode(), {"seq": str(i)}, ordering_key="job-a") for i in range(5)]
    assert len(set(ids)) == 5
    got = topics.receive(topic, 5)
    assert [m["data"] for m in got] == [f"{i}".encode() for i in range(5)]
    assert [m["message_id"] for m in got] == ids and {m["ordering_key"] for m in got} == {"job-a"}


def test_messages_go_only_to_their_own_topic_and_need_no_key(publisher, topics):
    a, b = topics.new(), topics.new()
    id_a = publisher.publish(a, b"to a", {"k": "a"})
    id_b = publisher.publish(b, b"\x00binary to b\xff", {})
    (got_a,) = topics.receive(a, 1)
    (got_b,) = topics.receive(b, 1)
    assert (got_a["message_id"], got_a["data"], got_a["attributes"], got_a["ordering_key"]) == (id_a, b"to a",
                                                                                               {"k": "a"}, "")
    assert (got_b["message_id"], got_b["data"], got_b["attributes"]) == (id_b, b"\x00binary to b\xff", {})
