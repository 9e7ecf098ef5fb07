"""The Pub/Sub push intake and the job events, in process (the emulator tests are in
tests/integration/test_pubsub_emulator.py): OIDC push authentication against certificates served
over HTTP, one job per message however often it is delivered, unprocessable messages acknowledged
and dead-lettered with their reason, transient failures answered so that Pub/Sub retries, and the
signed events of a job on its callback topic."""

from __future__ import annotations

import base64
import json

import functions_framework
import jsonschema
import pytest

from beatsync.adapters.pubsub import MemoryPublisher
from beatsync.adapters.sqlite_jobs import SqliteJobStore
from beatsync.bootstrap import bootstrap
from beatsync.contracts.schemas import validator
from beatsync.errors import Misconfigured, StoreUnavailable
from beatsync.http import set_container
from beatsync.jobs import service, steps
from beatsync.settings import Settings
from beatsync.signing import verify_event
from tests.conftest import ROOT
from tests.suites.service import RecordingOrchestrator, create_body
from tests.unit.test_auth_and_limits import google  # noqa: F401  (certificate server fixture)

PUSH = "/api/v1/beat-sync/pubsub/push"
AUDIENCE = "https://asia-southeast1-demo-beatsync.cloudfunctions.net/beatsync-submit"
PUSHER = "beatsync-pubsub-push@demo-beatsync.iam.gserviceaccount.com"
SUBSCRIPTION = "projects/demo-beatsync/subscriptions/beat-sync-requests-push"
DLQ = "beat-sync-requests-dead-letter"
EVENTS = "projects/demo-beatsync/topics/beat-sync-events"


class Jobs(SqliteJobStore):
    down = False

    def create(self, job, quota=None):
        if self.down:
            raise StoreUnavailable("job store unavailable (injected)")
        return super().create(job, quota)


class BrokenPublisher(MemoryPublisher):
    def publish(self, topic, data, attributes, ordering_key=""):
        raise TimeoutError("publish timed out (injected)")


@pytest.fixture
def setup(tmp_path, google, media):  # noqa: F811
    def build(events=None, **settings):
        values = dict(data_dir=tmp_path / "data", allowed_hosts=media.host, project="demo-beatsync",
                      event_publisher="memory", pubsub_push_audience=AUDIENCE, pubsub_push_service_account=PUSHER,
                      pubsub_dead_letter_topic=DLQ, id_token_certs_url=google.url + "/certs")
        values.update(settings)
        s = Settings.from_env({}, **values)
        c = bootstrap(s, orchestrator=RecordingOrchestrator(), jobs=Jobs(s.data_dir / "jobs.db"),
                      events=events or (MemoryPublisher() if s.event_publisher != "none" else None))
        set_container(c)
        client = functions_framework.create_app(target="submit", source=str(ROOT / "functions/submit/main.py"))
        return c, client.test_client()

    yield build
    set_container(None)


def envelope(body, message_id="m-1", attributes=None, raw: bytes | None = None):
    data = raw if raw is not None else json.dumps(body).encode()
    return {"message": {"data": base64.b64encode(data).decode(), "messageId": message_id, "message_id": message_id,
                        "attributes": attributes or {}, "publishTime": "2026-11-29T10:00:00Z"},
            "subscription": SUBSCRIPTION}


def push(client, google, env, token=None):  # noqa: F811
    token = token if token is not None else google.token(email=PUSHER, aud=AUDIENCE)
    return client.post(PUSH, json=env, headers={"Authorization": f"Bearer {token}"} if token else {})


def test_push_needs_the_subscriptions_oidc_token(setup, google, media):  # noqa: F811
    _, client = setup()
    env = envelope(create_body(media))
    assert push(client, google, env, token="").status_code == 401
    assert push(client, google, env, token=google.token(email=PUSHER, aud="https://elsewhere")).status_code == 401
    assert push(client, google, env, token=google.token(email=PUSHER, aud=AUDIENCE,
                                                        signer_pem=google.impostor_pem)).status_code == 401
    assert push(client, google, env, token=google.token(email="someone@x.iam.gserviceaccount.com",
                                                        aud=AUDIENCE)).status_code == 403
    assert push(client, google, env).status_code == 200


def test_without_configuration_the_route_is_absent(setup, google, media):  # noqa: F811
    _, client = setup(pubsub_push_audience="", pubsub_dead_letter_topic="", event_publisher="none")
    assert push(client, google, envelope(create_body(media))).status_code == 404


def test_a_message_makes_one_job_however_often_it_is_delivered(setup, google, media):  # noqa: F811
    c, client = setup()
    body = create_body(media, callback_topic=EVENTS)
    first = push(client, google, envelope(body, "m-1"))
    assert first.status_code == 200, first.json
    doc = first.json
    jsonschema.validate(doc, json.loads((ROOT / "schemas/pubsub_push_result.schema.json").read_text()))
    assert doc["acknowledged"] and doc["created"] and not doc["dead_lettered"]
    again = push(client, google, envelope(body, "m-1")).json
    assert again["job_id"] == doc["job_id"] and again["created"] is False
    job = c.jobs.get(doc["job_id"])
    assert job.owner == "pubsub:beat-sync-requests-push" and job.request["callback_topic"] == EVENTS
    assert c.orchestrator.started == [doc["job_id"]]
    # an explicit idempotency key spans message ids (a publisher that retried its publish)
    a = push(client, google, envelope(body, "m-2", {"idempotency_key": "order-7"})).json
    b = push(client, google, envelope(body, "m-3", {"idempotency_key": "order-7"})).json
    assert a["job_id"] == b["job_id"] != doc["job_id"] and b["created"] is False


@pytest.mark.parametrize("raw, code", [
    (b"not json at all", "invalid_message"),
    (b'{"audio_url": NaN}', "invalid_message"),
    (b"[1, 2]", "invalid_message"),
    (b"\xff\xfe", "invalid_message"),
    (json.dumps({"audio_url": "https://example.com/a.mp3"}).encode(), "invalid_request"),
    (json.dumps({"audio_url": "http://127.0.0.1:1/a.wav", "video_urls": ["http://127.0.0.1:1/a.mp4"]}).encode(),
     "url_not_allowed"),
])
def test_a_message_that_can_never_succeed_is_acknowledged_and_dead_lettered(setup, google, raw, code):  # noqa: F811
    c, client = setup()
    resp = push(client, google, envelope(None, "bad-1", {"source": "app"}, raw=raw))
    assert resp.status_code == 200, resp.json
    assert resp.json["dead_lettered"] and resp.json["job_id"] is None and resp.json["error"]["code"] == code
    (dead,) = c.events.on(DLQ)
    assert dead["data"] == raw and dead["attributes"]["source"] == "app"
    assert dead["attributes"]["beatsync_error_code"] == code
    assert dead["attributes"]["beatsync_source_message_id"] == "bad-1"
    assert c.jobs.list("pubsub:beat-sync-requests-push")[1] == 0


def test_the_per_caller_quotas_do_not_dead_letter_a_burst(setup, google, media):  # noqa: F811
    c, client = setup(max_active_jobs=1, max_submissions_per_minute=1)
    answers = [push(client, google, envelope(create_body(media), f"burst-{i}")) for i in range(3)]
    assert [a.status_code for a in answers] == [200] * 3 and all(a.json["created"] for a in answers)
    with pytest.raises(service.RateLimited):  # the HTTP API keeps them
        service.submit_create(c, create_body(media), "alice")
        service.submit_create(c, create_body(media), "alice")


def test_transient_failures_are_answered_for_a_retry(setup, google, media):  # noqa: F811
    c, client = setup()
    c.jobs.down = True
    resp = push(client, google, envelope(create_body(media), "m-9"))
    assert resp.status_code == 503 and resp.headers["Retry-After"]
    c.jobs.down = False
    assert push(client, google, envelope(create_body(media), "m-9")).json["created"] is True
    # the dead-letter topic unreachable: not acknowledged, Pub/Sub redelivers (then dead-letters itself)
    _, client = setup(events=BrokenPublisher())
    assert push(client, google, envelope(None, "bad-2", raw=b"nope")).status_code == 503
    # not a push envelope at all: 400
    assert push(client, google, {"hello": "world"}).status_code == 400


def _events(c):
    out = []
    for m in c.events.on(EVENTS):
        doc = json.loads(m["data"])
        validator("webhook_event").validate(doc)
        assert verify_event(c.settings.secret("webhook_secret"), m["data"], m["attributes"]["signature"])
        assert m["ordering_key"] == doc["job_id"] == m["attributes"]["job_id"]
        assert m["attributes"]["event"] == doc["event"] and m["attributes"]["status"] == doc["status"]
        assert m["attributes"]["job_type"] == "create"
        out.append((doc["job_id"], doc["event"]))
    return out


def test_the_job_events_go_to_the_callback_topic_signed_and_ordered_by_job(setup, media):
    c, _ = setup()
    done, _ = service.submit_create(c, create_body(media, callback_topic=EVENTS), "alice")
    steps.run_analyze(c, done.job_id)
    steps.run_compose(c, done.job_id)
    cancelled, _ = service.submit_create(c, create_body(media, callback_topic=EVENTS), "alice")
    steps.begin(c, cancelled.job_id)
    service.cancel(c, cancelled.job_id, "alice")
    failed, _ = service.submit_create(c, create_body(media, callback_topic=EVENTS), "alice")
    steps.end(c, failed.job_id, "failed", "workflow_failed", "gave up")
    quiet, _ = service.submit_create(c, create_body(media), "alice")  # no callback_topic: nothing published
    steps.end(c, quiet.job_id, "failed", "workflow_failed", "gave up")
    assert _events(c) == [(done.job_id, "beat_sync.job.processing"), (done.job_id, "beat_sync.job.completed"),
                          (cancelled.job_id, "beat_sync.job.processing"), (cancelled.job_id, "beat_sync.job.cancelled"),
                          (failed.job_id, "beat_sync.job.failed")]
    completed = json.loads(c.events.on(EVENTS)[1]["data"])
    assert completed["data"]["output_url"] and completed["data"]["metrics"]["bytes_out"] > 0


def test_a_callback_topic_is_refused_where_it_cannot_be_honoured(setup, media):
    c, _ = setup(event_publisher="none", pubsub_dead_letter_topic="")
    with pytest.raises(service.InvalidRequest) as err:
        service.submit_create(c, create_body(media, callback_topic=EVENTS), "alice")
    assert err.value.code == "callback_topic_unsupported"
    c, _ = setup()
    with pytest.raises(service.InvalidRequest) as err:
        service.submit_create(c, create_body(media, callback_topic="projects/other-project/topics/events"), "alice")
    assert err.value.code == "callback_topic_not_allowed"


def test_only_the_configured_event_topics_are_honoured(setup, google, media):  # noqa: F811
    """BEATSYNC_EVENT_TOPICS (terraform: the events topic, the only one its accounts may publish
    to): any other callback_topic is refused when the job is asked for, never left to fail later."""
    c, client = setup(event_topics=EVENTS)
    other = "projects/demo-beatsync/topics/someone-elses-topic"
    r = client.post("/api/v1/beat-sync/create", json=create_body(media, callback_topic=other))
    assert r.status_code == 400 and r.json["error"]["code"] == "callback_topic_not_allowed", r.json
    assert r.json["error"]["details"]["allowed"] == [EVENTS]
    assert client.post("/api/v1/beat-sync/create", json=create_body(media, callback_topic="someone-elses-topic")) \
        .status_code == 400  # a bare topic id is read in the service's project
    for named in (EVENTS, EVENTS.rsplit("/", 1)[1]):
        r = client.post("/api/v1/beat-sync/create", json=create_body(media, callback_topic=named))
        assert r.status_code == 202, r.json
    # a push message naming another topic can never succeed: acknowledged and dead-lettered, no job
    resp = push(client, google, envelope(create_body(media, callback_topic=other), "m-topic"))
    assert resp.status_code == 200 and resp.json["dead_lettered"] and resp.json["job_id"] is None, resp.json
    assert resp.json["error"]["code"] == "callback_topic_not_allowed"
    (dead,) = c.events.on(DLQ)
    assert dead["attributes"]["beatsync_error_code"] == "callback_topic_not_allowed"
    assert c.jobs.list("pubsub:beat-sync-requests-push")[1] == 0
    ok = push(client, google, envelope(create_body(media, callback_topic=EVENTS), "m-events")).json
    assert ok["created"] and c.jobs.get(ok["job_id"]).request["callback_topic"] == EVENTS
    # the setting is checked when the service starts
    with pytest.raises(Misconfigured):
        Settings.from_env({}, data_dir=c.settings.data_dir, event_topics=EVENTS)  # publishes nothing
    with pytest.raises(Misconfigured):
        Settings.from_env({}, data_dir=c.settings.data_dir, event_publisher="memory", event_topics="events")  # no project


def test_without_google_auth_the_push_route_answers_503_not_configured(setup, google, media, monkeypatch):  # noqa: F811
    """Issue 21, finding 7: after an install without google-auth, a push with a token answered 500
    (ModuleNotFoundError). Now 503 ``not_configured`` in the JSON error format (google-auth is in the
    ``service`` extra, so the README's install has it)."""
    import sys

    _, client = setup()
    monkeypatch.setitem(sys.modules, "google.auth", None)  # import google.auth raises ImportError
    r = push(client, google, envelope(create_body(media)))
    assert r.status_code == 503 and r.json["error"]["code"] == "not_configured", r.json
    assert r.headers["Retry-After"]
