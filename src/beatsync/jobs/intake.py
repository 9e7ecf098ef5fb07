"""The Pub/Sub intake (the seed's "Option 3"): a push delivery of a message on ``beat-sync-requests``
becomes a create job.

- The message body is the seed's message: a create request (``audio_url``, ``video_urls``, optional
  ``config`` / ``preset`` ...) with an optional ``callback_topic`` for the job's events.
- Idempotent: the job's idempotency key is the message attribute ``idempotency_key`` if given, else
  ``pubsub:{message id}``, so a redelivered message finds the job it made the first time.
- A message that can never succeed (not base64 JSON, fails the create schema, a refused URL, ...) is
  acknowledged (2xx: redelivering it would fail the same way) after it was logged and published,
  with the reason in its attributes, to the dead-letter topic (``BEATSYNC_PUBSUB_DEAD_LETTER_TOPIC``).
- The per-caller quotas of the HTTP API do not apply (see :func:`handle_push`).
- A transient failure (job store or orchestrator unavailable, dead-letter publish failing)
  answers 5xx: Pub/Sub redelivers with backoff, and after the subscription's
  ``max_delivery_attempts`` forwards the message to the same dead-letter topic itself.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any

from ..contracts import api
from ..errors import BeatsyncError, InvalidRequest, StoreUnavailable
from .lifecycle import audit
from .service import parse_request, submit_create

if TYPE_CHECKING:
    from ..container import Container

IDEMPOTENCY_ATTRIBUTE = "idempotency_key"
MAX_ATTRIBUTE_BYTES = 1024  # Pub/Sub's limit on an attribute value


def transient(exc: BeatsyncError) -> bool:
    return exc.http_status >= 500 or exc.http_status == 429


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def decode(message: api.PubSubMessage) -> Any:
    try:
        raw = base64.b64decode(message.data, validate=True)
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, binascii.Error, RecursionError) as exc:
        raise InvalidRequest(f"the message data is not base64-encoded JSON: {str(exc)[:200]}",
                             code="invalid_message") from None


def owner_of(subscription: str) -> str:
    """Jobs made from a subscription's messages belong to ``pubsub:{subscription id}``."""
    return "pubsub:" + subscription.rsplit("/", 1)[-1][:200]


def handle_push(c: "Container", body: Any) -> tuple[int, dict]:
    """Answer one push delivery: ``(HTTP status, PubSubPushResult)``; transient failures raise."""
    push = parse_request("pubsub_push", api.PubSubPush, body)  # not an envelope: 400 (retried, then dead-lettered)
    msg = push.message
    message_id = msg.messageId or msg.message_id
    if not message_id:
        raise InvalidRequest("the push message has no messageId", code="invalid_request")
    attributes = msg.attributes or {}
    key = attributes.get(IDEMPOTENCY_ATTRIBUTE) or f"pubsub:{message_id}"
    try:
        request = decode(msg)
        if not isinstance(request, dict):
            raise InvalidRequest("the message must be a JSON object (a create request)", code="invalid_message")
        # no per-caller quotas: every message of a subscription is one caller, and a 429 would be retried
        # only max_delivery_attempts times before a burst's tail is dead-lettered; the topic is the
        # queue and its IAM decides who may publish
        job, created = submit_create(c, request, owner_of(push.subscription), key, limits=False)
    except BeatsyncError as exc:
        if transient(exc):
            audit("pubsub.retry", message_id=message_id, subscription=push.subscription, code=exc.code,
                  reason=exc.message[:500], delivery_attempt=push.deliveryAttempt)
            raise
        dead = dead_letter(c, push, message_id, exc)
        doc = api.PubSubPushResult(acknowledged=True, dead_lettered=dead, error={
            "code": exc.code, "message": exc.message, "details": None})
        return 200, doc.model_dump(mode="json")
    audit("pubsub.accepted", message_id=message_id, subscription=push.subscription, job_id=job.job_id,
          created=created, delivery_attempt=push.deliveryAttempt)
    return 200, api.PubSubPushResult(acknowledged=True, job_id=job.job_id, created=created).model_dump(mode="json")


def dead_letter(c: "Container", push: api.PubSubPush, message_id: str, exc: BeatsyncError) -> bool:
    """Log why the message can never succeed and publish it, with the reason, to the dead-letter
    topic; True if published. A failing publish is transient (raised): Pub/Sub redelivers."""
    topic = c.settings.pubsub_dead_letter_topic
    audit("pubsub.rejected", level="warning", message_id=message_id, subscription=push.subscription, code=exc.code,
          reason=exc.message[:500], dead_letter_topic=topic or None, delivery_attempt=push.deliveryAttempt)
    if not topic:
        return False
    try:
        data = base64.b64decode(push.message.data, validate=True)
    except (ValueError, binascii.Error):
        data = push.message.data.encode()
    attributes = {**(push.message.attributes or {}),
                  "beatsync_error_code": exc.code,
                  "beatsync_error_message": exc.message.encode()[:MAX_ATTRIBUTE_BYTES].decode(errors="ignore"),
                  "beatsync_source_message_id": message_id[:MAX_ATTRIBUTE_BYTES],
                  "beatsync_source_subscription": push.subscription[:MAX_ATTRIBUTE_BYTES]}
    try:
        if c.events is None:
            raise RuntimeError("no event publisher configured")
        c.events.publish(topic, data, attributes)
    except Exception as err:  # noqa: BLE001 - transient: Pub/Sub redelivers, then dead-letters itself
        raise StoreUnavailable(f"could not publish to the dead-letter topic: {err}", code="dead_letter_unavailable",
                               details={"retry_after": 10}) from None
    return True
