"""Who is calling.

- ``BEATSYNC_ID_TOKEN_AUDIENCES`` set: a Google-signed ID token (``Authorization: Bearer TOKEN``, as the
  seed's service-to-service "Option 2" sends) is accepted only from an email listed in
  ``BEATSYNC_ALLOWED_CALLERS``, after its signature (Google's certificates), expiry, issuer and
  audience are verified. With no email listed every ID token is refused (401, before any
  certificate is fetched): any service account of any project can mint a Google-signed token for
  any audience, so the audience alone names no one. The caller is ``google:EMAIL``.
- ``BEATSYNC_API_KEYS`` set: ``Authorization: Bearer KEY`` with one of the keys; the caller is named
  after a hash of the key (the key never lands in a job).
- neither: the service runs open and every call is the one caller ``anonymous`` (``beatsync serve``
  says so at start-up), unless ``BEATSYNC_REQUIRE_AUTH`` is on (it is wherever the platform sets
  ``K_SERVICE``: a deployed function), where every API route answers 503 ``auth_not_configured``
  and logs a CRITICAL line: a deployment never runs open by omission.
Both may be set; a token that looks like a JWT is checked as an ID token, anything else as a key.

End users: a caller listed in ``BEATSYNC_TRUSTED_CALLERS`` (a platform backend acting for its own
users) may name the end user with ``X-Beatsync-User-Id: USER``; the principal is then
``CALLER/user:USER``: quotas are that user's and, shared by all its users, the caller's; job lists
are that user's, within that caller only (the caller itself lists all of them, ``GET /jobs?user_id=``
one user's). Any other caller naming a user gets 403 ``user_not_allowed``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import sys
import threading
import time

from ..errors import AuthNotConfigured, AuthUnavailable, Forbidden, Unauthenticated  # noqa: F401 - re-export
from ..jobs.model import USER_SEPARATOR, caller_of

ISSUERS = ("accounts.google.com", "https://accounts.google.com")
CERTS_TTL = 3600.0


USER_HEADER = "X-Beatsync-User-Id"
_USER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+:-]{0,127}")


CERTS_DEADLINE = 10.0  # seconds for the whole fetch of the certificates: connect, headers and body
CERTS_MAX_BYTES = 1 << 20
_certs: dict[str, tuple[float, dict]] = {}
_certs_lock = threading.Lock()
_fetch_lock = threading.Lock()  # one fetch at a time: callers arriving meanwhile wait for its result


def _google_certs(url: str) -> dict:
    """Google's token-signing certificates (cached CERTS_TTL). One overall deadline covers the fetch,
    a slow or stalled certificate server included; callers arriving while one fetch runs wait for it
    (within the same deadline) instead of starting their own. AuthUnavailable when they cannot be had."""
    def cached():
        with _certs_lock:
            hit = _certs.get(url)
            return hit[1] if hit and time.monotonic() - hit[0] < CERTS_TTL else None

    certs = cached()
    if certs is not None:
        return certs
    deadline = time.monotonic() + CERTS_DEADLINE
    if not _fetch_lock.acquire(timeout=CERTS_DEADLINE):
        raise AuthUnavailable("cannot fetch the token-signing certificates; try again", details={"retry_after": 5})
    try:
        certs = cached()  # fetched by the caller this one waited for
        if certs is None:
            certs = _fetch_certs(url, max(0.1, deadline - time.monotonic()))
            with _certs_lock:
                _certs[url] = (time.monotonic(), certs)
        return certs
    finally:
        _fetch_lock.release()


def _fetch_certs(url: str, timeout: float) -> dict:
    from urllib.parse import urlsplit

    from ..errors import BeatsyncError
    from ..fetch import Policy
    from ..fetch import request as fetch_request

    unavailable = AuthUnavailable("cannot fetch the token-signing certificates; try again", details={"retry_after": 5})
    # the operator's configured URL (Google's by default): its host is allowed as configured
    policy = Policy(allowed_hosts=(urlsplit(url).hostname or "",), max_bytes=CERTS_MAX_BYTES, timeout=timeout)
    try:
        resp = fetch_request("GET", url, policy)
        try:
            if resp.status != 200:
                raise unavailable
            body = b""
            while chunk := resp.read1(65536):
                body += chunk
                if len(body) > CERTS_MAX_BYTES:
                    raise unavailable
        finally:
            resp.close()
        certs = json.loads(body)
    except (BeatsyncError, ValueError):
        raise unavailable from None
    if not isinstance(certs, dict):
        raise unavailable
    return certs


def verify_google_token(token: str, audiences: list[str], certs_url: str) -> dict:
    """The claims of a Google-signed ID token (signature, expiry, audience, issuer, verified email).
    503 ``not_configured`` when google-auth is not installed (it is in the ``service`` extra)."""
    try:
        from google.auth import exceptions, jwt
    except ImportError:
        from ..errors import NotConfigured

        raise NotConfigured("verifying Google ID tokens needs the google-auth package (pip install "
                            "'beatsync[service]')", details={"retry_after": 300}) from None

    certs = _google_certs(certs_url)  # AuthUnavailable (503) when they cannot be fetched
    try:
        claims = jwt.decode(token, certs=certs, audience=audiences)
    except (ValueError, exceptions.GoogleAuthError) as exc:
        raise Unauthenticated(f"invalid ID token: {exc}") from None
    if claims.get("iss") not in ISSUERS:
        raise Unauthenticated("ID token not issued by Google")
    email = claims.get("email")
    if not email or claims.get("email_verified") is False:
        raise Unauthenticated("ID token carries no verified email")
    return claims


def _verify_id_token(token: str, settings) -> str:
    """Identity fails closed: only the emails of ``BEATSYNC_ALLOWED_CALLERS``; none listed, none."""
    allowed = [e.strip().lower() for e in settings.allowed_callers.split(",") if e.strip()]
    if not allowed:
        raise Unauthenticated("this service accepts no ID tokens (no allowed callers are configured); "
                              "send an API key")
    audiences = [a.strip() for a in settings.id_token_audiences.split(",") if a.strip()]
    email = verify_google_token(token, audiences, settings.id_token_certs_url)["email"]
    if email.lower() not in allowed:
        raise Forbidden(f"{email} may not call this service")
    return f"google:{email.lower()}"


def auth_configured(settings) -> bool:
    return bool(settings.api_keys.strip() or settings.id_token_audiences.strip())


def _caller(request, settings) -> str:
    if not auth_configured(settings):
        if settings.require_auth:
            sys.stderr.write(json.dumps({
                "severity": "CRITICAL", "message": "auth_not_configured: neither BEATSYNC_API_KEYS nor "
                "BEATSYNC_ID_TOKEN_AUDIENCES is set on a deployed service; refusing every API route"}) + "\n")
            raise AuthNotConfigured("this deployment has no caller identity configured; the API is closed",
                                    details={"retry_after": 60})
        return "anonymous"
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("send Authorization: Bearer <ID token or API key>")
    if settings.id_token_audiences.strip() and token.count(".") == 2:
        return _verify_id_token(token, settings)
    keys = [k.strip() for k in settings.api_keys.split(",") if k.strip()]
    if keys and any(hmac.compare_digest(token.encode(), k.encode()) for k in keys):
        return "key-" + hashlib.sha256(token.encode()).hexdigest()[:16]
    raise Unauthenticated("unknown API key")


def trusted(caller: str, settings) -> bool:
    for entry in (e.strip().lower() for e in settings.trusted_callers.split(",")):
        if entry and caller.lower() in (entry, f"google:{entry}"):
            return True
    return False


def _check_user(caller: str, user: str, settings) -> str:
    if not trusted(caller, settings):
        raise Forbidden(f"{caller} may not act for end users ({USER_HEADER})", code="user_not_allowed")
    if not _USER_ID.fullmatch(user):
        from ..errors import InvalidRequest

        raise InvalidRequest(f"{USER_HEADER} must be 1-128 letters, digits or ._@+:-", code="invalid_user_id")
    return user


def listed_user(request, principal: str, settings) -> str | None:
    """``GET /jobs?user_id=USER``: one end user of a trusted caller (the same rules as the
    ``X-Beatsync-User-Id`` header: 403 ``user_not_allowed`` for other callers, 400 if malformed)."""
    user = request.args.get("user_id")
    if user is None or user == "":
        return None
    return _check_user(caller_of(principal), user.strip(), settings)


def identify(request, settings) -> str:
    """The principal jobs belong to: the verified caller, or ``CALLER/user:USER`` when a trusted
    caller names its end user."""
    caller = _caller(request, settings)
    user = request.headers.get(USER_HEADER)
    if user is None:
        return caller
    user = _check_user(caller, user.strip(), settings)
    return f"{caller}{USER_SEPARATOR}{user}"



def verify_push(request, settings) -> str:
    """A Pub/Sub push request: its OIDC token must be Google-signed for the push audience and carry
    the push service account's email (``BEATSYNC_PUBSUB_PUSH_AUDIENCE``, ``..._SERVICE_ACCOUNT``)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("push requests carry the subscription's OIDC token")
    claims = verify_google_token(token.strip(), [settings.pubsub_push_audience], settings.id_token_certs_url)
    if claims["email"].lower() != settings.pubsub_push_service_account.strip().lower():
        raise Forbidden(f"{claims['email']} is not the push service account")
    return f"google:{claims['email'].lower()}"


def is_admin(caller: str, settings) -> bool:
    """Without authentication the one local caller is the admin; with it, ``BEATSYNC_ADMIN_CALLERS``."""
    if not auth_configured(settings):
        return True
    admins = {a.strip().lower() for a in settings.admin_callers.split(",") if a.strip()}
    return caller.lower() in admins
