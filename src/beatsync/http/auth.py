"""Who is calling.

- ``BEATSYNC_API_KEYS`` set (comma-separated): every API route needs ``Authorization: Bearer KEY``
  with one of the keys; the caller is named after a hash of the key (the key never lands in a job).
- unset: the service runs open and every call is the one caller ``anonymous`` (``beatsync serve``
  says so at start-up).
"""

from __future__ import annotations

import hashlib
import hmac

from ..errors import BeatsyncError


class Unauthenticated(BeatsyncError):
    code = "unauthenticated"
    http_status = 401


def identify(request, settings) -> str:
    keys = [k.strip() for k in settings.api_keys.split(",") if k.strip()]
    if not keys:
        return "anonymous"
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("send Authorization: Bearer <API key>")
    if not any(hmac.compare_digest(token.encode(), k.encode()) for k in keys):
        raise Unauthenticated("unknown API key")
    return "key-" + hashlib.sha256(token.encode()).hexdigest()[:16]
