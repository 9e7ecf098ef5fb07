"""Routes, request parsing and error mapping.

Each route belongs to a group; a Cloud Function serves some groups (``functions/submit`` serves
``submit``), ``beatsync serve`` serves them all on one port. Errors are answered as
``{"error": {"code", "message", "details"}}`` with the error's HTTP status; nothing escapes as a
bare 500 page.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
from dataclasses import dataclass
from typing import Any, Callable

# Flask and Werkzeug are imported where a response is built: the error classes, routes and
# dispatch logic here stay importable (and testable) without them loaded

from .. import __version__
from ..contracts.api import StepRequest
from ..contracts.schemas import openapi
from ..errors import BeatsyncError, Forbidden, HttpError, InvalidRequest, Misconfigured, scrub  # noqa: F401
from ..jobs import intake, service, steps
from ..jobs.lifecycle import audit, sweep_pending_ends
from ..signing import check_link
from .auth import identify, is_admin, listed_user, verify_push
from .cors import preflight_headers, response_headers
from . import docs, studio_page
from .health import check

log = logging.getLogger("beatsync.http")

API = "/api/v1/beat-sync"
MAX_JSON_BYTES = 1 << 20  # 1 MiB: a create request with 20 long URLs is a few KB
MAX_JSON_DEPTH = 32  # the deepest request document is 3 levels; deeper is refused before validation
#: an upload's multipart framing and form fields beyond the file itself (``max_input_bytes``)
MULTIPART_OVERHEAD = 1 << 20
MAX_FORM_PARTS = 8  # audio_file, method, fps and a little slack
BODY_CHUNK = 64 * 1024  # bodies are read in pieces of this size


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] | None = None


# -- container -----------------------------------------------------------------------------------

_container = None
_factory: Callable[[], Any] | None = None
_container_lock = threading.Lock()


def set_container_factory(factory: Callable[[], Any] | None) -> None:
    """What builds the process's container on first use: an entry point installs it
    (``functions/*/main.py``: ``beatsync.bootstrap.bootstrap``), so that nothing is built at import
    time and this layer never imports the composition root."""
    global _factory
    with _container_lock:
        _factory = factory


def get_container():
    """The process's container: the one set, else the factory's, built on first use (never at import)."""
    global _container
    with _container_lock:
        if _container is None:
            if _factory is None:
                raise Misconfigured("no container: the entry point sets one (set_container) or installs a factory "
                                    "(set_container_factory)")
            _container = _factory()
        return _container


def set_container(container) -> None:
    global _container
    with _container_lock:
        _container = container


# -- request helpers -----------------------------------------------------------------------------

def caller(request) -> str:
    """Who is calling. Authentication (API keys, Google ID tokens) plugs in here; unauthenticated
    local use is one caller, ``anonymous``."""
    return identify(request, get_container().settings)


def read_body(request, limit: int) -> bytes:
    """The request's body, read in bounded pieces: 413 ``body_too_large`` as soon as it passes
    ``limit`` (a ``Content-Length`` over it: before any byte is read), chunked or not, under any
    server (``beatsync serve``'s, gunicorn in the functions, Werkzeug's in tests)."""
    cached = request.environ.get("beatsync.body")
    if cached is not None:
        return cached
    too_large = HttpError(413, "body_too_large", f"this route's bodies are limited to {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    stream, chunks, size = request.stream, [], 0
    while True:
        try:
            chunk = stream.read(min(BODY_CHUNK, limit + 1 - size))
        except Exception as exc:  # noqa: BLE001 - a server's framing error (gunicorn's InvalidChunkSize...)
            raise _unreadable(exc) from None
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    raw = b"".join(chunks)
    request.environ["beatsync.body"] = raw
    return raw


def _unreadable(exc: Exception) -> Exception:
    """What a failed read of the body is answered with: the HTTP errors as they are (413, a client
    gone: 400), any other (a malformed chunk under gunicorn, a connection reset) 400 ``malformed_body``."""
    from werkzeug.exceptions import HTTPException

    if isinstance(exc, (BeatsyncError, HTTPException)):
        return exc
    return HttpError(400, "malformed_body", f"the body could not be read: {type(exc).__name__}: {str(exc)[:200]}")


def json_body(request) -> Any:
    ctype = (request.mimetype or "").lower()
    if ctype != "application/json":
        raise HttpError(415, "unsupported_media_type", f"send application/json, not {ctype or 'no content type'}")
    raw = read_body(request, MAX_JSON_BYTES)
    try:
        doc = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise HttpError(400, "too_deeply_nested", f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise HttpError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
    if _depth(doc) > MAX_JSON_DEPTH:
        raise HttpError(400, "too_deeply_nested", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return doc


def _no_constant(name: str):
    """NaN, Infinity and -Infinity are not JSON (RFC 8259); Python's parser accepts them."""
    raise ValueError(f"{name} is not a JSON number")


def _depth(doc: Any) -> int:
    """Nesting depth, without recursion (a hostile document must not exhaust the stack)."""
    deepest, stack = 0, [(doc, 1)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, d)
            if deepest > MAX_JSON_DEPTH:
                return deepest
            stack.extend((child, d + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def _idempotency_key(request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    return key.strip() if key is not None else None


def _int_arg(request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"{name} must be an integer", code="invalid_query") from None
    if not lo <= value <= hi:
        raise InvalidRequest(f"{name} must be between {lo} and {hi}", code="invalid_query")
    return value


def _enum_arg(request, name: str, allowed: tuple[str, ...]) -> str | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw not in allowed:
        raise InvalidRequest(f"{name} must be one of {', '.join(allowed)}", code="invalid_query")
    return raw


# -- handlers ------------------------------------------------------------------------------------

def root(request) -> Reply:
    """Service info, as the seed's ``/``: ``degraded`` (still 200) when a check of /health fails; the
    version is the installed package's."""
    doc = check(get_container())
    return Reply(200, {"status": "ok" if doc["status"] == "healthy" else "degraded", "service": "beat-sync",
                       "version": __version__, "docs": "/openapi.json"})


def health(request) -> Reply:
    doc = check(get_container())
    return Reply(503 if doc["status"] == "unhealthy" else 200, doc)


def openapi_doc(request) -> Reply:
    return Reply(200, openapi())


def _docs_response(status: int, body: bytes | str, ctype: str, cache: str, csp: str = docs.CSP):
    from flask import Response

    resp = Response(body, status=status, content_type=ctype)
    resp.headers["Cache-Control"] = cache
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Content-Security-Policy"] = csp
    return resp


def docs_page(request):
    """Swagger UI over /openapi.json, from the pinned swagger-ui-py wheel (no CDN)."""
    if docs.static_dir() is None:
        raise HttpError(404, "docs_not_installed", "API documentation needs the swagger-ui-py package; "
                        "the document itself is at /openapi.json")
    return _docs_response(200, docs.PAGE, "text/html; charset=utf-8", "no-cache")


def docs_init(request):
    return _docs_response(200, docs.INIT_JS, "text/javascript; charset=utf-8", "no-cache")


def docs_asset(request, name: str):
    folder = docs.static_dir()
    if folder is None or name not in docs.ASSETS:
        raise HttpError(404, "route_not_found", f"no documentation file {name[:100]}")
    # the files are those of one pinned package version: a day of caching is safe
    return _docs_response(200, (folder / name).read_bytes(), docs.ASSETS[name], "public, max-age=86400")


def redoc_page(request):
    """ReDoc over /openapi.json, from the bundle vendored in beatsync/http/redoc (no CDN)."""
    return _docs_response(200, docs.REDOC_PAGE, "text/html; charset=utf-8", "no-cache")


def redoc_asset(request, name: str):
    if name not in docs.REDOC_ASSETS:
        raise HttpError(404, "route_not_found", f"no documentation file {name[:100]}")
    return _docs_response(200, (docs.REDOC_DIR / name).read_bytes(), docs.REDOC_ASSETS[name], "public, max-age=86400")


def check_callback_topic(c, body: Any) -> None:
    """Refuse a create request whose ``callback_topic`` is not one of ``BEATSYNC_EVENT_TOPICS``:
    the service's accounts may publish there only (terraform/pubsub.tf), so its events would
    never arrive. (Checked here, before the service's own checks, for each route that creates a
    job from a request: the create API, the workflow console's submit and the Pub/Sub intake.)"""
    topic = body.get("callback_topic") if isinstance(body, dict) else None
    if isinstance(topic, str) and topic and not c.settings.allows_event_topic(topic):
        raise InvalidRequest(f"callback_topic must be one of the service's event topics: "
                             f"{', '.join(c.settings.event_topic_list)}", code="callback_topic_not_allowed",
                             details={"allowed": list(c.settings.event_topic_list)})


def post_create(request) -> Reply:
    c = get_container()
    body = json_body(request)
    check_callback_topic(c, body)
    job, _ = service.submit_create(c, body, caller(request), _idempotency_key(request))
    body = service.accepted_view(c, job)
    return Reply(202, body, {"Location": body["status_url"]})


def _is_upload(request) -> bool:
    return (request.mimetype or "").lower() == "multipart/form-data"


def post_analyze(request) -> Reply:
    c = get_container()
    owner, key = caller(request), _idempotency_key(request)
    if _is_upload(request):
        service.admit_upload(c, owner)  # quota and disk before a byte of the body is read
        with _parse_upload(request, c.settings.max_input_bytes) as (form_fields, upload):
            if upload is None:
                raise InvalidRequest("multipart requests carry the song as audio_file", code="missing_audio_file")
            form = {k: form_fields[k] for k in ("method", "fps") if form_fields.get(k)}
            if "fps" in form:
                if not re.fullmatch(r"[0-9]{1,4}", form["fps"]):  # ASCII digits only ("²".isdigit() is true)
                    raise InvalidRequest("fps must be an integer", code="invalid_request")
                form["fps"] = int(form["fps"])
            job, _ = service.submit_analyze(c, form, owner, key, upload=upload)
    else:
        job, _ = service.submit_analyze(c, json_body(request), owner, key)
    job = service.wait_until_ended(c, job.job_id, c.settings.sync_wait)
    if job.status == "failed" and job.error is not None:
        raise HttpError(422, job.error.code, job.error.message, {"job_id": job.job_id})
    body = service.analyze_view(c, job)
    return Reply(200 if job.status == "completed" else 202, body, {"Location": body["status_url"]})


class _UploadSink:
    """Where the multipart parser writes a file part: a temporary file on disk, hashed as it is
    written, refused (413 ``too_large``) once the request's files pass ``limit`` bytes."""

    def __init__(self, total: list[int], limit: int):
        import hashlib
        import tempfile

        self.file = tempfile.NamedTemporaryFile(prefix="beatsync-upload-")
        self.sha, self.size, self.total, self.limit = hashlib.sha256(), 0, total, limit

    def write(self, data: bytes) -> int:
        self.size += len(data)
        self.total[0] += len(data)
        if self.total[0] > self.limit:
            from ..errors import TooLarge

            raise TooLarge(f"the upload is over the limit of {self.limit} bytes")
        self.sha.update(data)
        return self.file.write(data)

    def __getattr__(self, name):
        return getattr(self.file, name)


class _parse_upload:
    """``with _parse_upload(request, limit) as (form, upload)``: the multipart body parsed as it
    streams (the file part to disk in pieces, never whole in memory); ``upload`` is the
    ``field`` part (``audio_file``) as ``(filename, service.StagedUpload)``, or None. The files are removed on exit."""

    def __init__(self, request, limit: int, field: str = "audio_file"):
        self.request, self.limit, self.field, self.sinks = request, limit, field, []

    def __enter__(self):
        from werkzeug.exceptions import RequestEntityTooLarge
        from werkzeug.formparser import FormDataParser

        total = [0]

        def factory(total_content_length=None, content_type=None, filename=None, content_length=None):
            sink = _UploadSink(total, self.limit)
            self.sinks.append(sink)
            return sink

        parser = FormDataParser(stream_factory=factory, max_form_memory_size=MULTIPART_OVERHEAD,
                                max_content_length=self.limit + MULTIPART_OVERHEAD, silent=False,
                                max_form_parts=MAX_FORM_PARTS)
        try:
            _, form, files = parser.parse_from_environ(self.request.environ)
        except RequestEntityTooLarge:
            raise HttpError(413, "body_too_large", f"uploads are limited to {self.limit} bytes") from None
        except ValueError as exc:
            raise HttpError(400, "malformed_multipart", f"the multipart body cannot be parsed: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - the body's framing (gunicorn), a client gone
            raise _unreadable(exc) from None
        part = files.get(self.field)
        if part is None:
            return form, None
        sink = part.stream
        sink.flush()
        return form, (part.filename or "upload", service.StagedUpload(sink.name, sink.size, sink.sha.hexdigest()))

    def __exit__(self, *exc):
        for sink in self.sinks:
            try:
                sink.file.close()  # a NamedTemporaryFile: closing removes it
            except OSError:
                pass
        return False


def get_analyze(request, job_id: str) -> Reply:
    return Reply(200, service.get_job(get_container(), job_id, caller(request), "analyze"))


def get_create(request, job_id: str) -> Reply:
    return Reply(200, service.get_job(get_container(), job_id, caller(request), "create"))


def delete_create(request, job_id: str) -> Reply:
    return Reply(200, service.cancel(get_container(), job_id, caller(request)))


def list_jobs(request) -> Reply:
    status = _enum_arg(request, "status", ("queued", "processing", "completed", "failed", "cancelled"))
    type_ = _enum_arg(request, "type", ("create", "analyze")) or _enum_arg(request, "job_type", ("create", "analyze"))
    limit = _int_arg(request, "limit", 20, 1, 100)
    offset = _int_arg(request, "offset", 0, 0, 100_000)
    c, principal = get_container(), caller(request)
    user = listed_user(request, principal, c.settings)
    return Reply(200, service.list_jobs(c, principal, status, type_, limit, offset, user_id=user))


def job_logs(request, job_id: str) -> Reply:
    return Reply(200, service.job_logs(get_container(), job_id, caller(request)))


def presets(request) -> Reply:
    return Reply(200, service.presets())


def transitions(request) -> Reply:
    return Reply(200, service.transitions())


# -- uploads and the studio page (a reference client of the public API: http/studio_page.py) ------

def post_upload(request) -> Reply:
    """One media file (multipart ``file``) for a later create or analyze request: 201 ``Upload``."""
    c = get_container()
    owner = caller(request)
    if (request.mimetype or "").lower() != "multipart/form-data":
        raise HttpError(415, "unsupported_media_type", "send the file as multipart/form-data, field file",
                        {"field": "file"})
    service.admit_file_upload(c, owner)  # quota and disk before a byte of the body is read
    with _parse_upload(request, c.settings.max_input_bytes, field="file") as (_, upload):
        if upload is None:
            raise InvalidRequest("send the file as the multipart field file", code="missing_file",
                                 details={"field": "file"})
        filename, staged = upload
        with open(staged.path, "rb") as fh:  # staged on disk as it arrived; stored from there in pieces
            return Reply(201, service.submit_upload(c, owner, filename, fh, staged.size))


def studio_file(request, name: str = "index.html"):
    """The studio's static files (``BEATSYNC_STUDIO``; on for ``beatsync serve``, off where deployed)."""
    settings = get_container().settings
    if not settings.studio:
        raise HttpError(404, "studio_disabled", "the studio page is off on this service (BEATSYNC_STUDIO=1 turns it on)")
    body, ctype = studio_page.read(name)
    return _docs_response(200, body, ctype, "no-cache", studio_page.csp(settings))


def pubsub_push(request) -> Reply:
    """Pub/Sub push delivery of a create request (see :mod:`beatsync.jobs.intake`): 2xx acknowledges."""
    c = get_container()
    s = c.settings
    if not (s.pubsub_push_audience.strip() and s.pubsub_push_service_account.strip()):
        raise HttpError(404, "route_not_found", "the Pub/Sub intake is not configured on this service")
    verify_push(request, s)
    body = json_body(request)
    refused = _push_topic_refused(c, body)
    if refused is not None:
        return Reply(200, refused)
    status, body = intake.handle_push(c, body)
    return Reply(status, body)


def _push_topic_refused(c, body: Any) -> dict | None:
    """A push message whose create request names a ``callback_topic`` the service may not publish
    to can never succeed: acknowledged and dead-lettered with the reason, as the intake does with
    any such message (None: the intake answers the message)."""
    from ..contracts import api
    from ..jobs import intake, service

    try:
        push = service.parse_request("pubsub_push", api.PubSubPush, body)
        request = intake.decode(push.message)
    except BeatsyncError:
        return None  # not an envelope, or not JSON: the intake answers it
    message_id = push.message.messageId or push.message.message_id
    if not message_id:
        return None
    try:
        check_callback_topic(c, request)
    except InvalidRequest as exc:
        dead = intake.dead_letter(c, push, message_id, exc)
        return api.PubSubPushResult(acknowledged=True, dead_lettered=dead, error={
            "code": exc.code, "message": exc.message, "details": None}).model_dump(mode="json")
    return None


def admin_stats(request) -> Reply:
    """Daily analytics; admin callers only."""
    c = get_container()
    if not is_admin(caller(request), c.settings):
        raise Forbidden("the analytics are for admin callers (BEATSYNC_ADMIN_CALLERS)")
    return Reply(200, service.stats(c, request.args.get("from"), request.args.get("to")))


def step_analyze(request) -> Reply:
    """The workflow's analyze step; with ``compose_early_start`` it also starts the compose execution."""
    req = service.parse_request("step_request", StepRequest, json_body(request))
    c = get_container()
    return Reply(200, dict(steps.run_analyze(c, req.job_id, start_compose=c.settings.compose_early_start)))


def _control(request) -> dict:
    """A control call's body: a ``job_id`` (checked as in a step request) and the call's own fields."""
    body = json_body(request)
    service.parse_request("step_request", StepRequest,
                          {"job_id": body.get("job_id") if isinstance(body, dict) else None})
    return body


def control_begin(request) -> Reply:
    return Reply(200, steps.begin(get_container(), _control(request)["job_id"]))


def control_state(request) -> Reply:
    return Reply(200, steps.state(get_container(), _control(request)["job_id"]))


def _poll_seconds(body: dict) -> float | None:
    """The workflow's poll interval (an execution argument may set it), kept to 1..300."""
    poll = body.get("poll_seconds")
    return None if isinstance(poll, bool) or not isinstance(poll, (int, float)) else min(max(float(poll), 1.0), 300.0)


def control_compose_start(request) -> Reply:
    body = _control(request)
    attempt = body.get("attempt", 1)
    if isinstance(attempt, bool) or not isinstance(attempt, int) or not 1 <= attempt <= 100:
        raise InvalidRequest("attempt: expected an integer from 1 to 100", code="invalid_request")
    return Reply(200, steps.compose_start(get_container(), body["job_id"], attempt, _poll_seconds(body)))


def control_compose_poll(request) -> Reply:
    body = _control(request)
    return Reply(200, steps.compose_poll(get_container(), body["job_id"], body.get("handle"), _poll_seconds(body)))


def control_compose_stop(request) -> Reply:
    body = _control(request)
    return Reply(200, steps.compose_stop(get_container(), body["job_id"], body.get("handle")))


def control_compose_merge(request) -> Reply:
    return Reply(200, steps.compose_merge(get_container(), _control(request)["job_id"]))


def control_end(request) -> Reply:
    body = _control(request)
    status = body.get("status")
    if status not in ("failed", "cancelled"):
        raise InvalidRequest("status must be failed or cancelled", code="invalid_request")
    code = str(body.get("code") or "workflow_failed")
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", code):
        code = "workflow_failed"
    return Reply(200, steps.end(get_container(), body["job_id"], status, code, str(body.get("message") or "")))


#: the oldest threshold a sweep accepts (30 days: a job document lives longer, its webhook would not)
MAX_SWEEP_AGE = 30 * 86400


def control_sweep(request) -> Reply:
    """The scheduled sweep (Cloud Scheduler, OIDC): finish the ends a killed instance left pending,
    those older than ``older_than_seconds`` (default ``BEATSYNC_END_PENDING_AGE``)."""
    c = get_container()
    body = json_body(request) if request.content_length or request.mimetype else {}
    age = body.get("older_than_seconds", c.settings.end_pending_age) if isinstance(body, dict) else None
    if isinstance(age, bool) or not isinstance(age, (int, float)) or not 0 <= age <= MAX_SWEEP_AGE:
        raise InvalidRequest(f"send {{older_than_seconds: 0 to {MAX_SWEEP_AGE}}}", code="invalid_request")
    return Reply(200, {"older_than_seconds": age, **sweep_pending_ends(c, float(age))})


def control_submit(request) -> Reply:
    """A workflow execution started with a full create request (the Workflows console): create the
    job without starting another execution; the execution id makes a retried call idempotent."""
    body = json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("request"), dict):
        raise InvalidRequest("send {request: <create request>, execution_id}", code="invalid_request")
    c = get_container()
    key = str(body.get("execution_id") or "")[:255] or None
    check_callback_topic(c, body["request"])
    job, _ = service.submit_create(c, body["request"], "workflows-console", key, start=False)
    return Reply(200, {"job_id": job.job_id, "status": job.status})


def files(request, key: str):
    """Local signed download links (``LocalBlobStore.signed_url``)."""
    c = get_container()
    if c.settings.blob_store != "local":
        raise HttpError(404, "route_not_found", "no such route")
    if not check_link(c.settings.secret("signing_secret"), key, request.args.get("expires"),
                      request.args.get("signature")):
        raise HttpError(403, "invalid_signature", "the link is invalid or has expired")
    try:
        path = c.blobs.path(key)
    except ValueError:
        raise HttpError(404, "blob_not_found", "no such file") from None
    if not path.is_file():
        raise HttpError(404, "blob_not_found", "no such file")
    from flask import send_file

    audit("output.download", key=key)
    return send_file(path, conditional=True, max_age=0)


# -- routing -------------------------------------------------------------------------------------

JOB = r"(?P<job_id>[^/]+)"
ROUTES: list[tuple[str, str, str, Callable]] = [
    # group, method, path pattern, handler
    ("meta", "GET", r"/", root),
    ("meta", "GET", r"/health", health),
    ("meta", "GET", r"/openapi\.json", openapi_doc),
    ("docs", "GET", r"/docs", docs_page),
    ("docs", "GET", r"/docs/init\.js", docs_init),
    ("docs", "GET", r"/docs/static/(?P<name>[^/]+)", docs_asset),
    ("docs", "GET", r"/redoc", redoc_page),
    ("docs", "GET", r"/redoc/static/(?P<name>[^/]+)", redoc_asset),
    ("submit", "POST", rf"{API}/analyze", post_analyze),
    ("submit", "POST", rf"{API}/create", post_create),
    ("submit", "POST", rf"{API}/uploads", post_upload),
    ("status", "GET", rf"{API}/analyze/{JOB}", get_analyze),
    ("status", "GET", rf"{API}/create/{JOB}", get_create),
    ("status", "DELETE", rf"{API}/create/{JOB}", delete_create),
    ("status", "GET", rf"{API}/jobs", list_jobs),
    ("status", "GET", rf"{API}/jobs/{JOB}/logs", job_logs),
    ("status", "GET", rf"{API}/presets", presets),
    ("status", "GET", rf"{API}/transitions", transitions),
    ("status", "GET", rf"{API}/admin/stats", admin_stats),
    ("pubsub", "POST", rf"{API}/pubsub/push", pubsub_push),
    ("analyze", "POST", r"/internal/analyze", step_analyze),
    ("control", "POST", r"/internal/submit", control_submit),
    ("control", "POST", r"/internal/begin", control_begin),
    ("control", "POST", r"/internal/state", control_state),
    ("control", "POST", r"/internal/compose/start", control_compose_start),
    ("control", "POST", r"/internal/compose/poll", control_compose_poll),
    ("control", "POST", r"/internal/compose/stop", control_compose_stop),
    ("control", "POST", r"/internal/compose/merge", control_compose_merge),
    ("control", "POST", r"/internal/end", control_end),
    ("control", "POST", r"/internal/sweep", control_sweep),
    ("files", "GET", r"/files/(?P<key>.+)", files),
    ("studio", "GET", r"/studio", studio_file),
    ("studio", "GET", r"/studio/(?P<name>[^/]+)", studio_file),
]
GROUPS = ("meta", "docs", "submit", "status", "analyze", "control", "files", "pubsub", "studio")
#: what `beatsync serve` answers: the public API and its download links (the internal step and
#: control routes are for a remote orchestrator and stay off the local server)
SERVE_GROUPS = ("meta", "docs", "submit", "status", "files", "pubsub", "studio")
_COMPILED = [(g, m, re.compile(p + r"/?\Z"), h) for g, m, p, h in ROUTES]


def _json_response(status: int, body: Any, headers: dict | None = None):
    from flask import Response

    resp = Response(json.dumps(body, separators=(",", ":")), status=status, mimetype="application/json")
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def _settings():
    try:
        return get_container().settings
    except Exception:  # noqa: BLE001 - bad settings: the route itself answers with the error
        return None


def dispatch(request, groups: tuple[str, ...] = GROUPS):
    """Answer ``request`` (a Flask/Werkzeug request) with the routes of ``groups``; CORS preflights
    and headers for the public routes (:mod:`beatsync.http.cors`), never for ``/internal/``. Once
    answered, what is left of the body is never read into memory (:func:`_seal`)."""
    try:
        return _dispatch(request, groups)
    finally:
        _seal(request)


def _seal(request) -> None:
    """No more of this request's body is read after its answer: functions-framework's after-request
    hook reads whatever is left of it with ``request.get_data()`` (whole, into memory: a refused
    1 GiB body would be buffered after its 413), so the body stream is swapped for an empty one.
    (gunicorn then skips the unread rest of a kept-alive request's body, keeping none of it.)"""
    try:
        request.stream = io.BytesIO()  # Werkzeug's cached property: what get_data() reads
    except (AttributeError, TypeError):
        pass


def _dispatch(request, groups: tuple[str, ...]):
    origin = request.headers.get("Origin")
    public = not (request.path or "/").startswith("/internal/")
    if origin and public and request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
        methods = [m for g, m, p, _ in _COMPILED if g in groups and p.match(request.path or "/")]
        if methods:
            return _preflight(origin, methods)
    resp = _route(request, groups)
    if origin and public:
        settings = _settings()
        if settings is not None:
            for k, v in response_headers(settings, origin).items():
                resp.headers[k] = v
    return resp


def _preflight(origin: str, methods: list[str]):
    from flask import Response

    settings = _settings()
    headers = preflight_headers(settings, origin, methods) if settings is not None else None
    if headers is None:
        return _json_response(403, _error_body("cors_origin_not_allowed",
                                               f"cross-origin requests from {origin[:200]} are not allowed"))
    resp = Response(status=204)
    for k, v in headers.items():
        resp.headers[k] = v
    return resp


def _route(request, groups: tuple[str, ...]):
    path = request.path or "/"
    allowed = []
    for group, method, pattern, handler in _COMPILED:
        if group not in groups:
            continue
        m = pattern.match(path)
        if m is None:
            continue
        if method != request.method and not (method == "GET" and request.method == "HEAD"):
            allowed.append(method)
            continue
        try:
            if group in ("submit", "status"):
                caller(request)  # every API route needs an identity (401 before any work)
            reply = handler(request, **m.groupdict())
            if not isinstance(reply, Reply):
                return reply  # a file response
            return _json_response(reply.status, reply.body, reply.headers)
        except BeatsyncError as exc:
            if exc.http_status >= 500:
                log.warning("%s %s: %s %s", request.method, path, exc, exc.details or "")
            headers = {"Retry-After": str(exc.details.get("retry_after", 5))} if exc.http_status in (429, 503) else None
            return _json_response(exc.http_status, {"error": _error_doc(exc)}, headers)
        except Exception as exc:  # noqa: BLE001 - a bug: log it, answer a clean 500
            from werkzeug.exceptions import HTTPException

            if isinstance(exc, HTTPException):  # e.g. RequestEntityTooLarge from multipart parsing
                code = "body_too_large" if exc.code == 413 else "bad_request"
                return _json_response(exc.code or 400, _error_body(code, exc.description or str(exc)))
            log.exception("%s %s failed", request.method, path)
            return _json_response(500, _error_body("internal_error", "internal error"))
    if allowed:
        return _json_response(405, _error_body("method_not_allowed", f"{request.method} is not allowed here"),
                              {"Allow": ", ".join(sorted(set(allowed)))})
    return _json_response(404, _error_body("route_not_found", f"no route {path}"))


def _error_doc(exc: BeatsyncError) -> dict:
    if exc.public_message is not None:  # the operator's business: the details stay in the log
        return {"code": exc.code, "message": exc.public_message, "details": None}
    details = {k: v for k, v in exc.details.items() if k != "retry_after"} if exc.details else {}
    return {"code": exc.code, "message": scrub(exc.message),
            "details": json.loads(json.dumps(details, default=str)) if details else None}


def _error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message, "details": None}}


_PROTOCOL_CODES = {400: "bad_request", 408: "request_timeout", 413: "body_too_large", 414: "uri_too_long",
                   431: "headers_too_large", 501: "method_not_implemented", 505: "http_version_not_supported"}


_UPLOAD_PATH = re.compile(rf"{API}/(analyze|uploads)/?\Z")


def body_policy(method: str, path: str, content_type: str) -> tuple[int, bool]:
    """``(the most bytes this request's body may have, whether its caller must be admitted before
    the body is read)``, from its head only: a multipart POST to the analyze or uploads route is an upload
    (``max_input_bytes`` and its framing; admitted first: :func:`admit`); every other body is JSON
    (``MAX_JSON_BYTES``). ``beatsync serve``'s server applies it before reading a body."""
    if method == "POST" and _UPLOAD_PATH.match(path or "") and \
            content_type.split(";", 1)[0].strip().lower() == "multipart/form-data":
        settings = _settings()
        if settings is not None:
            return settings.max_input_bytes + MULTIPART_OVERHEAD, True
    return MAX_JSON_BYTES, False


def admit(environ: dict) -> tuple[int, dict[str, str], bytes] | None:
    """Whether an upload's body may be read, from its head: the caller's identity (401/403), the
    caller's quota and the free disk (429/503), as the upload route checks them. None: read it;
    else ``(status, headers, body)``, the JSON answer to give instead (nothing of the body is read)."""
    from werkzeug.wrappers import Request

    request = Request(environ)
    try:
        c = get_container()
        owner = caller(request)
        if request.path.rstrip("/").endswith("/uploads"):
            service.admit_file_upload(c, owner)
        else:
            service.admit_upload(c, owner)
        return None
    except BeatsyncError as exc:
        headers = {"Retry-After": str(exc.details.get("retry_after", 5))} if exc.http_status in (429, 503) else {}
        origin = request.headers.get("Origin")
        settings = _settings()
        if origin and settings is not None:
            headers.update(response_headers(settings, origin))
        body = json.dumps({"error": _error_doc(exc)}, separators=(",", ":")).encode()
        return exc.http_status, headers, body


def create_flask_app(groups: tuple[str, ...] = SERVE_GROUPS):
    """A Flask app answering every path through :func:`dispatch` (``beatsync serve``, tests)."""
    from flask import Flask, request

    app = Flask("beatsync")

    from werkzeug.exceptions import HTTPException

    @app.errorhandler(HTTPException)
    def _http_error(exc):  # what Flask's routing answers before dispatch (a path it cannot route...)
        if exc.code is None or exc.code < 400:
            return exc.get_response()  # a redirect (merged slashes)
        codes = {404: "route_not_found", 405: "method_not_allowed", 413: "body_too_large"}
        return _json_response(exc.code, _error_body(codes.get(exc.code, _PROTOCOL_CODES.get(exc.code, "bad_request")),
                                                    exc.name))

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
    @app.route("/<path:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
    def _all(path):
        return dispatch(request, groups)

    # Werkzeug's path converter does not match every path (a newline in it, say): those reach
    # dispatch too, and get the JSON 404 rather than Flask's HTML page
    app.register_error_handler(404, lambda exc: dispatch(request, groups))

    return app
