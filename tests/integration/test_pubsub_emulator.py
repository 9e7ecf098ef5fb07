"""The Pub/Sub intake and events on the Pub/Sub emulator, against a running `beatsync serve`:
publish -> push (through the token relay of tests/pubsub.py) -> a job; a lost acknowledgement
redelivers the message and no second job is made; an unprocessable message is acknowledged and
dead-lettered by the service with its reason; a delivery Pub/Sub cannot get accepted (no token) is
dead-lettered by Pub/Sub after max_delivery_attempts; the job's events arrive on its callback
topic, signed, in order. The round trip's timing is measured by benchmarks/pubsub_roundtrip.py."""

from __future__ import annotations

import json

import pytest

from beatsync.adapters.sqlite_jobs import SqliteJobStore
from beatsync.signing import verify_event
from tests.emulators import pubsub_emulator  # noqa: F401  (session fixture)
from tests.pubsub import PUSH_PATH, PUSHER, Topology, dead_letter_topic, relay
from tests.servers import Serve, wait_for
from tests.unit.test_auth_and_limits import google  # noqa: F401  (Google's certificates, played locally)

AUDIENCE = "https://asia-southeast1-demo-beatsync.cloudfunctions.net/beatsync-submit"
OWNER = "pubsub:"


@pytest.fixture(scope="module")
def service(tmp_path_factory, pubsub_emulator, google, media):  # noqa: F811
    dead_letter = dead_letter_topic()
    data = tmp_path_factory.mktemp("pubsub") / "data"
    serve = Serve(data, {
        "BEATSYNC_EVENT_PUBLISHER": "pubsub", "BEATSYNC_PROJECT": "demo-beatsync",
        "BEATSYNC_PUBSUB_PUSH_AUDIENCE": AUDIENCE, "BEATSYNC_PUBSUB_PUSH_SERVICE_ACCOUNT": PUSHER,
        "BEATSYNC_PUBSUB_DEAD_LETTER_TOPIC": dead_letter, "BEATSYNC_ID_TOKEN_CERTS_URL": google.url + "/certs",
        "BEATSYNC_ALLOWED_HOSTS": media.host, "BEATSYNC_ANALYSIS_METHOD": "librosa"})
    serve.dead_letter = dead_letter
    serve.jobs = SqliteJobStore(data / "jobs.db")
    yield serve
    serve.stop()


@pytest.fixture
def wire(service, google):  # noqa: F811
    made = []

    def build(**relay_options):
        r = relay(service.url + PUSH_PATH, lambda: google.token(email=PUSHER, aud=AUDIENCE), **relay_options)
        t = Topology(r.url + PUSH_PATH, service.dead_letter)
        made.append((r, t))
        return r, t

    yield build
    for r, t in made:
        t.close()
        r.close()


def request(media, topology, clip="bad.mp4"):
    # bad.mp4 fails at the media check, seconds after the job starts: a quick processing -> failed
    return {"audio_url": f"{media.url}/song.wav", "video_urls": [f"{media.url}/{clip}"], "method": "librosa",
            "callback_topic": topology.events}


def test_a_published_request_becomes_a_job_whose_events_reach_the_callback_topic(service, wire, media):
    r, t = wire()
    message_id = t.publish(request(media, t), source="app")
    wait_for(lambda: any(d["answered"] == 200 for d in r.deliveries), timeout=30)
    (delivery,) = r.deliveries
    assert delivery["message"]["messageId"] == message_id and delivery["answer"]["created"]
    job_id = delivery["answer"]["job_id"]
    job = service.jobs.get(job_id)
    assert job.owner.startswith(OWNER) and job.idempotency_key == f"pubsub:{message_id}"
    events = t.pull(t.events_sub, 2)
    docs = [json.loads(m.data) for _, m in events]
    assert [d["event"] for d in docs] == ["beat_sync.job.processing", "beat_sync.job.failed"]
    secret = (service.data / "secrets" / "webhook_secret").read_text().strip().encode()
    for (_, m), doc in zip(events, docs):
        assert m.ordering_key == job_id == doc["job_id"] == m.attributes["job_id"]
        assert m.attributes["event"] == doc["event"] and m.attributes["job_type"] == "create"
        assert verify_event(secret, m.data, m.attributes["signature"])
    assert docs[1]["data"]["error"]["code"] and docs[1]["data"]["metrics"]["download_time_ms"] is not None


def test_a_redelivered_message_makes_no_second_job(service, wire, media):
    r, t = wire(fail_after_forwarding=1)  # the first acknowledgement is lost on its way back
    message_id = t.publish(request(media, t))
    wait_for(lambda: any(d["answered"] == 200 for d in r.deliveries), timeout=30)
    first, second = r.deliveries[:2]
    assert first["message"]["messageId"] == second["message"]["messageId"] == message_id
    assert first["answer"]["created"] is True and second["answer"]["created"] is False
    assert first["answer"]["job_id"] == second["answer"]["job_id"]
    owner = service.jobs.get(first["answer"]["job_id"]).owner
    assert [j.idempotency_key for j in service.jobs.list(owner, limit=100)[0]].count(f"pubsub:{message_id}") == 1


def test_a_message_that_can_never_succeed_is_acknowledged_and_dead_lettered_with_its_reason(service, wire):
    r, t = wire()
    message_id = t.publish(None, raw=b"{not json", source="app")
    wait_for(lambda: r.deliveries, timeout=30)
    assert r.deliveries[0]["answered"] == 200 and r.deliveries[0]["answer"]["dead_lettered"]
    (_, dead), = t.pull(t.dead_letter_sub, 1)
    assert dead.data == b"{not json" and dead.attributes["source"] == "app"
    assert dead.attributes["beatsync_error_code"] == "invalid_message"
    assert dead.attributes["beatsync_source_message_id"] == message_id
    assert len(r.deliveries) == 1  # acknowledged: never redelivered


def test_deliveries_the_service_refuses_are_dead_lettered_by_pubsub_after_bounded_attempts(service, wire, media):
    r, t = wire(with_token=False)  # what the emulator sends by itself: no OIDC token
    t.publish(request(media, t), source="no-token")
    (_, dead), = t.pull(t.dead_letter_sub, 1, timeout=60)
    assert dead.attributes["source"] == "no-token"
    assert dead.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
    assert [d["service_status"] for d in r.deliveries] == [401] * 5
