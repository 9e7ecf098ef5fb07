"""HMAC-SHA256 signatures: webhook events and local expiring download links.

Webhook receivers verify a delivery like this (also in the README)::

    header = request.headers["X-Beatsync-Signature"]          # "t=1764000000,v1=5f2b..."
    parts = dict(p.split("=", 1) for p in header.split(","))
    expected = hmac.new(secret, f"{parts['t']}.".encode() + raw_body, hashlib.sha256).hexdigest()
    ok = hmac.compare_digest(expected, parts["v1"]) and abs(time.time() - int(parts["t"])) < tolerance

The timestamp is the time the event was signed (retries re-send the same signed body), so pick the
tolerance to cover the retry window (default 1 hour); deduplicate on the event ``id``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote

SIGNATURE_HEADER = "X-Beatsync-Signature"
EVENT_HEADER = "X-Beatsync-Event"
DEFAULT_TOLERANCE = 3600


def sign_event(secret: bytes, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time() if timestamp is None else timestamp)
    mac = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify_event(secret: bytes, body: bytes, header: str, tolerance: int = DEFAULT_TOLERANCE,
                 now: float | None = None) -> bool:
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        t = int(parts["t"])
    except (ValueError, KeyError):
        return False
    expected = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    now = time.time() if now is None else now
    return hmac.compare_digest(expected, parts.get("v1", "")) and abs(now - t) <= tolerance


def _link_mac(secret: bytes, key: str, expires: int) -> str:
    return hmac.new(secret, f"GET\n{key}\n{expires}".encode(), hashlib.sha256).hexdigest()


def sign_link(secret: bytes, base_url: str, key: str, expires_in: int, now: float | None = None) -> str:
    """``{base_url}/files/{key}?expires=...&signature=...`` for the local server's file route."""
    expires = int((time.time() if now is None else now) + expires_in)
    return f"{base_url.rstrip('/')}/files/{quote(key)}?expires={expires}&signature={_link_mac(secret, key, expires)}"


def check_link(secret: bytes, key: str, expires: str, signature: str, now: float | None = None) -> bool:
    try:
        exp = int(expires)
    except (TypeError, ValueError):
        return False
    if exp < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(_link_mac(secret, key, exp), signature or "")
