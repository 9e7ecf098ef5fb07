"""CORS for the public routes (``BEATSYNC_CORS_ORIGINS``, ``BEATSYNC_CORS_CREDENTIALS``).

- No origins configured (the default): no CORS header is ever sent, so browsers keep other
  origins out; a preflight is refused with 403.
- An origin in the list: preflights are answered (204) with the route's methods and the request
  headers the API reads; every answer (errors included) carries ``Access-Control-Allow-Origin``
  with that origin and ``Vary: Origin``.
- ``*``: any origin, answered with ``Access-Control-Allow-Origin: *`` and never with
  ``Access-Control-Allow-Credentials`` (settings refuse ``*`` together with credentials, and a
  wildcard match never gets the header).
"""

from __future__ import annotations

from .auth import USER_HEADER

#: request headers a browser may send (the API reads these); the end-user header too when the
#: feature is on (``BEATSYNC_TRUSTED_CALLERS`` set: a trusted caller's page may name its user)
ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key"
#: response headers a browser script may read besides the simple ones
EXPOSE_HEADERS = "Location, Retry-After"
MAX_AGE = "600"


def allowed_origin(settings, origin: str | None) -> tuple[str, bool] | None:
    """``(value of Access-Control-Allow-Origin, send credentials)`` for ``origin``, or None."""
    if not origin:
        return None
    origins = settings.cors_origin_list
    o = origin.strip().lower().rstrip("/")
    if o in origins and o != "*":
        return o, settings.cors_credentials == "true"  # the configured origin, not the header's bytes
    if "*" in origins:
        return "*", False
    return None


def response_headers(settings, origin: str | None) -> dict[str, str]:
    """Headers added to an actual (non-preflight) answer."""
    match = allowed_origin(settings, origin)
    if match is None:
        return {"Vary": "Origin"} if settings.cors_origin_list else {}
    value, credentials = match
    headers = {"Access-Control-Allow-Origin": value, "Access-Control-Expose-Headers": EXPOSE_HEADERS}
    if value != "*":
        headers["Vary"] = "Origin"
    if credentials:
        headers["Access-Control-Allow-Credentials"] = "true"
    return headers


def allow_headers(settings) -> str:
    """``Access-Control-Allow-Headers``: the headers the API reads, the end-user header included
    when trusted callers are configured."""
    return f"{ALLOW_HEADERS}, {USER_HEADER}" if settings.trusted_callers.strip() else ALLOW_HEADERS


def preflight_headers(settings, origin: str | None, methods: list[str]) -> dict[str, str] | None:
    """Headers of a 204 preflight answer for a route with ``methods``; None: refused."""
    match = allowed_origin(settings, origin)
    if match is None:
        return None
    value, credentials = match
    allow = sorted(set(methods) | ({"HEAD"} if "GET" in methods else set()) | {"OPTIONS"})
    headers = {"Access-Control-Allow-Origin": value, "Access-Control-Allow-Methods": ", ".join(allow),
               "Access-Control-Allow-Headers": allow_headers(settings), "Access-Control-Max-Age": MAX_AGE,
               "Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"}
    if credentials:
        headers["Access-Control-Allow-Credentials"] = "true"
    return headers
