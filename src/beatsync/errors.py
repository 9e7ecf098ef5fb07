"""One root error type; every error carries a machine-readable ``code``.

Adapters (HTTP, CLI, jobs) map these to responses: ``http_status`` is the status an HTTP
layer should answer with, ``code`` is what clients switch on.
"""

from __future__ import annotations

import re

#: an absolute file path (not the path part of a URL: that follows a host name)
_PATH = re.compile(r"(?<![\w:/\]\.%-])/(?:[^\s'\"/:,;()<>]+/)+([^\s'\"/:,;()<>]+)")


def scrub(message: str) -> str:
    """``message`` without server paths: ``/tmp/beatsync-work/JOB/clip_0.mp4`` becomes ``clip_0.mp4``
    (what callers see: job errors, job logs, error answers)."""
    return _PATH.sub(lambda m: m.group(1), message) if "/" in message else message


class BeatsyncError(Exception):
    """Root of every error beatsync raises on purpose."""

    code: str = "internal_error"
    http_status: int = 500
    #: what an HTTP client is told instead of ``message`` (None: the message itself); errors that are
    #: the operator's business (misconfiguration) keep their details for the server log only
    public_message: str | None = None

    def __init__(self, message: str, *, code: str | None = None, details: dict | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = dict(details or {})

    def to_dict(self) -> dict:
        out = {"code": self.code, "message": self.message}
        if self.details:
            out["details"] = self.details
        return out

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class MediaError(BeatsyncError):
    """A media file cannot be used: ``MediaError(message, code=..., source=...)`` (the root error's
    argument order). Codes (stable, documented in the README):

    - ``unsupported_media``: not a media file FFmpeg recognises (empty file, text, image as audio...)
    - ``corrupt_media``: recognised, but truncated or undecodable
    - ``no_audio_stream``: a media file without any audio track (where audio is needed)
    - ``no_video_stream``: a media file without a decodable video track (where a clip is needed)
    - ``too_long``: longer than the configured maximum duration
    - ``too_large``: bigger than a configured size/resolution limit
    """

    code = "corrupt_media"
    http_status = 422

    CODES = (
        "unsupported_media",
        "corrupt_media",
        "no_audio_stream",
        "no_video_stream",
        "too_long",
        "too_large",
    )

    def __init__(self, message: str, *, code: str = "corrupt_media", source: str | None = None,
                 details: dict | None = None):
        if code not in self.CODES:
            raise ValueError(f"unknown media error code {code!r}")
        details = dict(details or {})
        if source is not None:
            details.setdefault("source", source)
        super().__init__(message, code=code, details=details)
        self.source = source


class InvalidRequest(BeatsyncError):
    """A request or configuration is invalid (bad value, unknown preset...)."""

    code = "invalid_request"
    http_status = 400


class StoreUnavailable(BeatsyncError):
    """A store could not complete an operation now (contention, outage): retry later."""

    code = "store_unavailable"
    http_status = 503


class NotFound(BeatsyncError):
    code = "not_found"
    http_status = 404


class Misconfigured(BeatsyncError):
    """The server's own settings are wrong: the operator's fault, not the caller's. Clients get a
    generic 500; the message (which names the setting) goes to the log and the CLI."""

    code = "server_misconfigured"
    http_status = 500
    public_message = "the server is misconfigured; the operator has been told"


class AuthUnavailable(BeatsyncError):
    """Callers cannot be verified right now (the token-signing certificates are unreachable): retry."""

    code = "auth_unavailable"
    http_status = 503


class SegmentsMissing(BeatsyncError):
    """A parallel render's segments are not all rendered yet (a task failed or is still running): the
    merge waits; the compose attempt is retried."""

    code = "segments_missing"
    http_status = 503


# -- every other error class, each with its code and HTTP status. The modules that raise them
# re-export them under their old names (``from ..errors import X  # re-export``).

class HttpError(BeatsyncError):
    """An HTTP-level refusal whose status the HTTP layer chooses per case (415, 413, 404...)."""

    code = "bad_request"
    http_status = 400

    def __init__(self, status: int, code: str, message: str, details: dict | None = None):
        super().__init__(message, code=code, details=details)
        self.http_status = status


class Unauthenticated(BeatsyncError):
    code = "unauthenticated"
    http_status = 401


class Forbidden(BeatsyncError):
    code = "forbidden"
    http_status = 403


class AuthNotConfigured(BeatsyncError):
    code = "auth_not_configured"
    http_status = 503


class NotConfigured(BeatsyncError):
    """A feature this server was asked for needs a package it was installed without (``google-auth``
    for ID tokens and Pub/Sub push tokens: the ``service`` extra)."""

    code = "not_configured"
    http_status = 503


class IdempotencyConflict(BeatsyncError):
    code = "idempotency_conflict"
    http_status = 409


class RateLimited(BeatsyncError):
    code = "rate_limited"
    http_status = 429


class JobAlreadyEnded(BeatsyncError):
    code = "job_already_ended"
    http_status = 409


class IllegalTransition(BeatsyncError):
    code = "illegal_transition"
    http_status = 409


class InsufficientStorage(BeatsyncError):
    code = "insufficient_storage"
    http_status = 503


class BlobNotFound(NotFound):
    code = "blob_not_found"


class JobNotFound(NotFound):
    code = "job_not_found"


class UrlNotAllowed(InvalidRequest):
    code = "url_not_allowed"


class FetchFailed(BeatsyncError):
    """The source could not be downloaded (HTTP error, timeout, connection refused...)."""

    code = "fetch_failed"
    http_status = 422


class TooLarge(BeatsyncError):
    code = "too_large"
    http_status = 413


class FetchCancelled(BeatsyncError):
    """The caller asked to stop (the job was cancelled) while the fetch was running."""

    code = "cancelled"
    http_status = 409


class OutputBusy(BeatsyncError):
    """Another render is writing the same output file now (``beatsync make -o`` holds a lock beside it)."""

    code = "output_busy"
    http_status = 409


class RenderFailed(BeatsyncError):
    """A render produced something inconsistent (segments that do not join): a bug, not the caller's
    media; permanent (retrying the same plan gives the same result)."""

    code = "render_failed"
    http_status = 500


class RenderCancelled(BeatsyncError):
    """A render saw the job's cancel flag (or its end) and stopped."""

    code = "cancelled"
    http_status = 409
