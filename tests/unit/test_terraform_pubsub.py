"""terraform/pubsub.tf and terraform/metrics.tf against the service they configure."""

from __future__ import annotations

import re
from dataclasses import fields

from beatsync.http.app import ROUTES
from beatsync.settings import Settings
from tests.conftest import ROOT
from tests.unit.test_terraform import blocks, parsed, resources

PUSH_ROUTE = "/api/v1/beat-sync/pubsub/push"


def _locals() -> dict:
    return {k: v for b in blocks("locals") for k, v in b.items()}


def test_topics_and_the_push_subscription_with_dead_letter_and_retry():
    topics = resources("google_pubsub_topic")
    assert set(topics) == {"requests", "dead_letter", "events"}
    variables = {k: v for b in blocks("variable") for k, v in b.items()}
    assert variables["pubsub_requests_topic"]["default"] == "beat-sync-requests"  # the seed's name
    assert variables["pubsub_max_delivery_attempts"]["default"] == 5
    for topic in topics.values():
        assert topic["kms_key_name"] == "${var.kms_key_name}"

    sub = resources("google_pubsub_subscription")["requests_push"]
    assert sub["topic"] == "${google_pubsub_topic.requests.id}"
    (push,) = sub["push_config"]
    (oidc,) = push["oidc_token"]
    assert oidc["service_account_email"] == "${google_service_account.pubsub_push.email}"
    assert oidc["audience"] == "${local.pubsub_push_audience}"
    assert push["push_endpoint"] == "${local.pubsub_push_audience}" + PUSH_ROUTE
    assert any(g == "pubsub" and re.fullmatch(p + r"/?\Z", PUSH_ROUTE) for g, _, p, _ in ROUTES)
    (dead,) = sub["dead_letter_policy"]
    assert dead["dead_letter_topic"] == "${google_pubsub_topic.dead_letter.id}"
    assert dead["max_delivery_attempts"] == "${var.pubsub_max_delivery_attempts}"
    (retry,) = sub["retry_policy"]
    assert retry["minimum_backoff"] and retry["maximum_backoff"]
    # dead letters stay readable for operators
    assert resources("google_pubsub_subscription")["dead_letter"]["topic"] == "${google_pubsub_topic.dead_letter.id}"


def test_the_submit_function_serves_the_push_route_with_its_settings():
    local = _locals()
    known = {"BEATSYNC_" + f.name.upper() for f in fields(Settings)}
    intake = local["pubsub_intake_env"]
    assert set(intake) == {"BEATSYNC_PUBSUB_PUSH_AUDIENCE", "BEATSYNC_PUBSUB_PUSH_SERVICE_ACCOUNT",
                           "BEATSYNC_PUBSUB_DEAD_LETTER_TOPIC"} and set(intake) <= known
    assert intake["BEATSYNC_PUBSUB_PUSH_AUDIENCE"] == "${local.pubsub_push_audience}"
    assert re.match(r"\$\{merge\(local.common_env, .*local.pubsub_intake_env, \{", local["function_env"])
    assert resources("google_cloudfunctions2_function")["submit"]["service_config"][0]["environment_variables"] \
        == "${local.function_env}"
    assert local["common_env"]["BEATSYNC_EVENT_PUBLISHER"] == "pubsub"
    assert '"pubsub"' in (ROOT / "functions" / "submit" / "main.py").read_text()
    assert local["pubsub_push_audience"].endswith("cloudfunctions.net/${local.submit_name}")


def test_pubsub_iam_is_least_privilege():
    agent = "${local.pubsub_agent}"
    assert _locals()["pubsub_agent"].endswith("@gcp-sa-pubsub.iam.gserviceaccount.com")
    topic_iam = resources("google_pubsub_topic_iam_member")
    assert topic_iam["agent_dead_letters"]["member"] == agent
    assert topic_iam["agent_dead_letters"]["topic"] == "${google_pubsub_topic.dead_letter.name}"
    sub_iam = resources("google_pubsub_subscription_iam_member")["agent_acks_dead_letters"]
    assert (sub_iam["member"], sub_iam["role"]) == (agent, "roles/pubsub.subscriber")
    assert sub_iam["subscription"] == "${google_pubsub_subscription.requests_push.name}"
    mint = resources("google_service_account_iam_member")["agent_mints_push_tokens"]
    assert (mint["member"], mint["role"]) == (agent, "roles/iam.serviceAccountTokenCreator")
    assert mint["service_account_id"] == "${google_service_account.pubsub_push.name}"
    # the push reaches the submit function without a grant of its own (the function is public and
    # checks the push token itself): no extra invoker to keep least-privileged
    invokers = resources("google_cloud_run_service_iam_member")
    assert set(invokers) == {"public"} and "submit" in _locals()["public_functions"]
    # events are published by exactly the components that start and end jobs
    local = _locals()
    assert local["event_publishers"] == local["enqueuers"]
    assert topic_iam["events"]["topic"] == "${google_pubsub_topic.events.name}"
    roles = {v["role"] for v in topic_iam.values()}
    assert roles == {"roles/pubsub.publisher"}


def test_the_seeds_job_metrics_exist_as_log_based_metrics():
    metrics = resources("google_logging_metric")
    assert metrics["job_count"]["name"] == "beat_sync/job_count"
    assert metrics["job_duration"]["name"] == "beat_sync/job_duration"
    assert "metrics.tf" in parsed() and "pubsub.tf" in parsed()


def test_analytics_markers_expire_like_the_jobs():
    ttl = resources("google_firestore_field")["analytics_counted_ttl"]
    assert (ttl["collection"], ttl["field"]) == ("counted", "expire_at")
    src = (ROOT / "src" / "beatsync" / "adapters" / "analytics.py").read_text()
    assert '"expire_at"' in src and 'collection("counted")' in src
