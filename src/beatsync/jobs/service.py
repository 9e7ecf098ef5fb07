"""The service functions behind the HTTP routes: submit, status, cancel, list, logs, catalogues.

Import-light (no numpy / librosa / av): the submit and status functions run this.
Every function takes the :class:`~beatsync.container.Container` and plain values; the HTTP layer
parses requests and maps :class:`~beatsync.errors.BeatsyncError` to responses.
"""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from .. import keys
from ..analysis.methods import check_method
from ..contracts import api
from ..contracts.edit import TRANSITIONS, timeline_rate_problem
from ..contracts.schemas import validation_errors
from ..editing.presets import PRESETS, resolve_config
from ..errors import (BeatsyncError, Forbidden, IdempotencyConflict, InvalidRequest, JobAlreadyEnded,  # noqa: F401
                      RateLimited, StoreUnavailable, scrub)
from ..fetch import TooLarge, UrlNotAllowed, check_url
from ..ports import JobNotFound
from . import lifecycle, uploads
from .lifecycle import audit
from .model import USER_SEPARATOR, Job, Quota, caller_of, check_quota, new_job, now, request_hash, seed_step, user_of
from .storage import check_free_space, remove_upload
# the status documents live below the service (a job's end sends them too); re-exported here
from .views import (API, ANALYSIS_SECONDS, ASSUMED_SONG_SECONDS, RENDER_SECONDS_PER_SECOND,  # noqa: F401
                    _error, accepted_view, analyze_view, create_view, estimate_seconds, view)

if TYPE_CHECKING:
    from ..container import Container


def admit_upload(c: "Container", owner: str) -> None:
    """An upload's checks made before its body is read: the free disk and the caller's quota (429,
    503); the submission checks them again once the file is staged."""
    check_free_space(c)
    check_limits(c, owner)


def admit_file_upload(c: "Container", owner: str) -> None:
    """``POST /uploads``' checks made before its body is read: the free disk and the caller's
    count of held uploads (429 ``too_many_uploads``); :func:`submit_upload` checks them again."""
    check_free_space(c)
    uploads.check_held(c, owner)


@dataclass(frozen=True)
class StagedUpload:
    """An uploaded file written to a temporary file as it arrived (``path``), with its size and
    SHA-256: the upload is never whole in memory."""

    path: str
    size: int
    sha256: str


def quota(settings) -> Quota:
    """The limits of a new job (``BEATSYNC_MAX_*`` per owner, ``BEATSYNC_CALLER_MAX_*`` per caller with
    all its end users together)."""
    return Quota(active=settings.max_active_jobs, per_minute=settings.max_submissions_per_minute,
                 caller_active=settings.caller_max_active_jobs,
                 caller_per_minute=settings.caller_max_submissions_per_minute)


def check_limits(c: "Container", owner: str) -> None:
    """An early, cheap look at the quotas: the unfinished jobs and the last minute's submissions of the
    owner and of its caller with all its end users, so that a flood at its limit is refused before it
    contends for the store (and an upload before its body is read). Not the arbiter: the job store checks every limit, the
    submissions per minute included, atomically as it stores the job."""
    q, at = quota(c.settings), now()
    for scope, who, users in (("owner", owner, False), ("caller", caller_of(owner), True)):
        active = sum(c.jobs.list(who, status=st, limit=1, with_users=users)[1] for st in ("queued", "processing"))
        per_minute = q.per_minute if scope == "owner" else q.caller_per_minute
        recent = [j.created_at for j in c.jobs.list(who, limit=min(per_minute, 100), with_users=users)[0]]
        check_quota(q, scope, active, recent, at)


# -- helpers ---------------------------------------------------------------------------------------

def parse_request(schema: str, model, body: Any):
    """``body`` checked against ``schemas/{schema}.schema.json`` (every failing path in the 400's
    details), then parsed into ``model``."""
    errors = validation_errors(schema, body, keywords=True)
    if errors:
        sized = [e for e in errors if e["keyword"] == "x-output-size"]
        first = sized[0] if sized else errors[0]
        errors = [{k: v for k, v in e.items() if k != "keyword"} for e in errors]  # path, message (, allowed)
        raise InvalidRequest(f"invalid request: {first['path']}: {first['message']}",
                             code="output_size_not_allowed" if sized else "invalid_request",
                             details={"errors": errors})
    try:
        return model.model_validate(body)
    except ValidationError as exc:  # the schema and the model agree (drift-tested); this is a safety net
        errors = [{"path": ".".join(map(str, e["loc"])) or "$", "message": e["msg"][:300]} for e in exc.errors()[:10]]
        raise InvalidRequest(f"invalid request: {errors[0]['path']}: {errors[0]['message']}",
                             code="invalid_request", details={"errors": errors}) from None


def check_input_url(c: "Container", url: str, owner: str | None = None) -> str | None:
    """Refuse URLs the fetcher would refuse (see :mod:`beatsync.fetch`); ``gs://`` only inside
    the service's own bucket; ``upload://`` only for a file ``owner`` uploaded (its key is returned)."""
    if url.startswith(keys.UPLOAD_SCHEME):
        key = keys.upload_key(owner or "", url)
        if key is None:
            raise InvalidRequest(f"{url[:120]} is not an upload reference: upload://SHA256.EXT, as POST /uploads "
                                 "answers", code="upload_not_found")
        if not c.blobs.exists(key):
            raise InvalidRequest(f"no upload {url[:120]} of yours: upload the file again (an upload is kept until "
                                 "a job that used it ends, or an hour unused)", code="upload_not_found")
        return key
    if url.startswith("gs://"):
        bucket, _, key = url[5:].partition("/")
        if c.settings.blob_store != "gcs" or bucket != c.settings.bucket or not key:
            raise UrlNotAllowed(f"gs:// URLs must point into the service's bucket ({c.settings.bucket or 'none'})")
        try:
            c.blobs.check_key(key)
        except ValueError:
            raise UrlNotAllowed(f"invalid object name in {url!r}") from None
        return
    check_url(url, c.fetch_policy)


def check_callback_topic(c: "Container", topic: str) -> None:
    """A callback topic is honoured only when this service publishes events, and only in its own
    project (its account may publish nowhere else)."""
    if c.settings.event_publisher == "none":
        raise InvalidRequest("this service publishes no events (BEATSYNC_EVENT_PUBLISHER=none); drop callback_topic",
                             code="callback_topic_unsupported")
    if topic.startswith("projects/") and c.settings.project and topic.split("/")[1] != c.settings.project:
        raise InvalidRequest(f"callback_topic must be a topic of project {c.settings.project}",
                             code="callback_topic_not_allowed")


def _owned(c: "Container", job_id: str, owner: str, type: str | None = None) -> Job:
    """The job if it belongs to ``owner`` (and is of ``type``); else 404, never 403 (no probing).
    A trusted caller speaking for itself also reaches its end users' jobs (``CALLER/user:USER``)."""
    try:
        job = c.jobs.get(job_id)
    except JobNotFound:
        raise JobNotFound(f"no job {job_id}") from None
    if not _owns(owner, job.owner) or (type is not None and job.type != type):
        raise JobNotFound(f"no job {job_id}")
    return job


def _owns(principal: str, owner: str) -> bool:
    """A principal sees its own jobs; a caller speaking for itself also its end users' jobs
    (``CALLER/user:USER``, see :mod:`beatsync.http.auth`); never another caller's."""
    return owner == principal or (user_of(principal) is None and caller_of(owner) == principal)


def _start(c: "Container", job: Job) -> Job:
    """Hand a new job to the orchestrator; if that fails the job ends failed (never stuck queued)."""
    try:
        handle = c.orchestrator.start(job)
    except Exception as exc:  # noqa: BLE001 - any failure to start must end the job
        c.jobs.add_log(job.job_id, f"orchestrator failed to start: {exc}", "error")
        try:
            failed = c.jobs.transition(job.job_id, "failed", error={"code": "orchestrator_unavailable",
                                                                    "message": "the job could not be started"})
            c.analytics.record(failed)
            c.jobs.end_done(job.job_id)  # the caller is answered here; no webhook for a job never started
        except Exception:  # noqa: BLE001 - the caller is told to try again either way
            pass
        raise StoreUnavailable("the job could not be started; try again", code="orchestrator_unavailable") from None
    if handle:
        job = c.jobs.set_execution(job.job_id, handle)
        c.jobs.add_log(job.job_id, f"orchestrator handle: {handle}")
    return job


def _submit(c: "Container", type: str, request: dict, owner: str, idempotency_key: str | None,
            start: bool = True, limits: bool = True) -> tuple[Job, bool]:
    if idempotency_key is not None and not (0 < len(idempotency_key) <= 255):
        raise InvalidRequest("Idempotency-Key must be 1 to 255 characters", code="invalid_idempotency_key")
    job = new_job(type, request, owner=owner, idempotency_key=idempotency_key)
    if idempotency_key is not None:  # a replay is answered before the quotas: it adds no work
        existing = c.jobs.find_idempotent(owner, idempotency_key)
        if existing is not None:
            if existing.request_hash != job.request_hash:
                raise IdempotencyConflict("this Idempotency-Key was used with a different request",
                                          details={"job_id": existing.job_id})
            return existing, False
    check_free_space(c)
    if limits:
        check_limits(c, owner)  # refused early, cheaply: most of a flood never contends for the store
    stored, created = c.jobs.create(job, quota=quota(c.settings) if limits else None)  # the arbiter: atomic
    if not created:
        if stored.request_hash != job.request_hash:
            raise IdempotencyConflict("this Idempotency-Key was used with a different request",
                                      details={"job_id": stored.job_id})
        return stored, False
    c.jobs.add_log(stored.job_id, f"{type} job submitted by {owner}")
    audit("job.create", owner=owner, job_id=stored.job_id, type=type)
    return (_start(c, stored) if start else stored), True


# -- submit ----------------------------------------------------------------------------------------

def submit_create(c: "Container", body: Any, owner: str, idempotency_key: str | None = None, *,
                  start: bool = True, limits: bool = True) -> tuple[Job, bool]:
    """Validate a create request, store the job, start it (unless ``start`` is false: a workflow
    execution started from the console creates its own job). Returns ``(job, created)``.
    ``limits``: apply the per-caller quotas (the Pub/Sub intake does not: see jobs/intake.py)."""
    req = parse_request("create_request", api.CreateRequest, body)
    if len(req.video_urls) > c.settings.max_clips:
        raise InvalidRequest(f"{len(req.video_urls)} clips; at most {c.settings.max_clips}", code="too_many_clips")
    overrides = req.config.model_dump(exclude_none=True) if req.config else {}
    if isinstance(overrides.get("output_resolution"), list):
        w, h = overrides["output_resolution"]
        overrides["output_resolution"] = f"{w}x{h}"
    overrides.update(preview_only=req.preview_only, preview_duration=req.preview_duration)
    config = resolve_config(req.preset, overrides)
    for fmt in req.timelines:
        problem = timeline_rate_problem(fmt, config.output_fps)
        if problem:
            raise InvalidRequest(f"invalid request: timelines: {problem}", code="timeline_rate")
    upload_keys = _check_inputs(c, owner, [("audio_url", req.audio_url),
                                           *((f"video_urls.{i}", u) for i, u in enumerate(req.video_urls))])
    if req.webhook_url:
        check_url(req.webhook_url, c.fetch_policy)
    if req.callback_topic:
        check_callback_topic(c, req.callback_topic)
    request = {**req.model_dump(mode="json"), "edit_config": config.model_dump(mode="json"),
               "method": _method(c, req.method)}
    if upload_keys:
        request["upload_keys"] = upload_keys
    return _submit(c, "create", request, owner, idempotency_key, start, limits)


def submit_analyze(c: "Container", body: Any, owner: str, idempotency_key: str | None = None,
                   upload: tuple[str, "bytes | StagedUpload"] | None = None) -> tuple[Job, bool]:
    """An analyze job for ``body["audio_url"]`` or an uploaded file ``(filename, bytes)`` or
    ``(filename, StagedUpload)`` (a file on disk: the HTTP route streams uploads there)."""
    if upload is not None:
        filename, data = upload
        staged = isinstance(data, StagedUpload)
        size = data.size if staged else len(data)
        if not size:
            raise InvalidRequest("audio_file is empty", code="empty_upload")
        if size > c.settings.max_input_bytes:
            raise TooLarge(f"audio_file is {size} bytes; the limit is {c.settings.max_input_bytes}")
        digest = data.sha256 if staged else hashlib.sha256(data).hexdigest()
        key = keys.upload(digest, filename)
        req = parse_request("analyze_request", api.AnalyzeRequest, {**body, "audio_url": "https://upload.invalid/"})
        method = _method(c, req.method)  # refused before anything is stored
        request = {"audio_url": None, "audio_key": key, "upload_name": filename[:200], "upload_sha256": digest,
                   "method": method, "fps": req.fps}
        check_free_space(c)  # before anything is written
        wrote = not c.blobs.exists(key)
        if wrote:
            if staged:
                c.blobs.put_file(key, data.path)  # copied in pieces (GCS: an upload from the file)
            else:
                c.blobs.put_bytes(key, data)
        try:
            return _submit(c, "analyze", request, owner, idempotency_key)
        except BaseException:  # refused (quota, conflict...): the upload does not stay behind
            if wrote:
                remove_upload(c, key)
            raise
    else:
        req = parse_request("analyze_request", api.AnalyzeRequest, body)
        upload_keys = _check_inputs(c, owner, [("audio_url", req.audio_url)])
        request = {"audio_url": req.audio_url, "audio_key": None, "method": _method(c, req.method), "fps": req.fps}
        if upload_keys:
            request["upload_keys"] = upload_keys
    return _submit(c, "analyze", request, owner, idempotency_key)


def _check_inputs(c: "Container", owner: str, fields: list[tuple[str, str]]) -> dict[str, str]:
    """Check each input URL (an error's details name its ``field``); the keys of ``upload://`` ones."""
    found = {}
    for field, url in fields:
        try:
            key = check_input_url(c, url, owner)
        except BeatsyncError as exc:
            exc.details = {**exc.details, "field": field}
            raise
        if key is not None:
            found[url] = key
    return found


def submit_upload(c: "Container", owner: str, filename: str, stream, declared_size: int | None = None) -> dict:
    """``POST /uploads``: store one media file for ``owner``; its ``upload://`` reference goes in a
    create or analyze request in place of a URL (:mod:`beatsync.jobs.uploads`)."""
    check_free_space(c)
    return uploads.store(c, owner, filename, stream, declared_size)


def _method(c: "Container", requested: str | None) -> str:
    """The analysis method a job will run; 400 ``noncommercial_model`` at submission for madmom's
    models unless the operator allowed them."""
    method = requested or c.settings.analysis_method
    check_method(method, c.settings.allow_noncommercial_models)
    return method


def wait_until_ended(c: "Container", job_id: str, timeout: float, interval: float = 0.2) -> Job:
    deadline = time.monotonic() + timeout
    job = c.jobs.get(job_id)
    while not job.terminal and time.monotonic() < deadline:
        time.sleep(interval)
        job = c.jobs.get(job_id)
    return job


# -- status, cancel, list, logs ---------------------------------------------------------------------

def get_job(c: "Container", job_id: str, owner: str, type: str) -> dict:
    return view(c, _owned(c, job_id, owner, type))


def cancel(c: "Container", job_id: str, owner: str) -> dict:
    """The caller's cancel (its own, unfinished job: :func:`beatsync.jobs.lifecycle.cancel`)."""
    job = _owned(c, job_id, owner)
    if job.terminal:
        raise JobAlreadyEnded(f"job {job_id} already ended {job.status}", details={"status": job.status})
    status = lifecycle.cancel(c, job_id, owner).status
    message = "job cancelled" if status == "cancelled" else f"the job ended {status} before it could be cancelled"
    return api.CancelResponse(success=status == "cancelled", message=message, job_id=job_id,
                              status=status).model_dump(mode="json")


#: signing threads for a page of completed jobs (IAM signBlob on Cloud Run is one call per URL)
SIGN_WORKERS = 8


def _output_urls(c: "Container", jobs: list[Job]) -> dict[str, str]:
    """Signed ``output_url`` of each completed create job of a list page, as its status gives it."""
    keys = {j.job_id: j.result["output_key"] for j in jobs
            if j.type == "create" and j.status == "completed" and j.result and j.result.get("output_key")}
    if not keys:
        return {}
    ttl = c.settings.url_ttl
    if len(keys) == 1:
        urls = {job_id: c.blobs.signed_url(key, ttl) for job_id, key in keys.items()}
    else:
        with ThreadPoolExecutor(max_workers=min(SIGN_WORKERS, len(keys))) as pool:
            urls = dict(zip(keys, pool.map(lambda k: c.blobs.signed_url(k, ttl), keys.values())))
    for j in jobs:
        if j.job_id in urls:
            audit("output.url", owner=j.owner, job_id=j.job_id)
    return urls


def list_jobs(c: "Container", owner: str, status: str | None, type: str | None, limit: int, offset: int,
              user_id: str | None = None) -> dict:
    """A page of the principal's jobs. A caller speaking for itself lists its own jobs and its end
    users' (each summary names its ``user_id``), or one user's with ``user_id``; an end user its own."""
    if user_id is not None:
        if user_of(owner) is not None and user_of(owner) != user_id:
            raise Forbidden("a request for an end user lists that user's jobs only", code="user_not_allowed")
        owner = f"{caller_of(owner)}{USER_SEPARATOR}{user_id}"
    jobs, total = c.jobs.list(owner, status=status, type=type, limit=limit, offset=offset,
                              with_users=user_of(owner) is None)
    urls = _output_urls(c, jobs)
    summaries = []
    for j in jobs:
        req = j.request
        summaries.append(api.JobSummary(
            job_id=j.job_id, type=j.type, status=j.status, progress=j.progress, current_step=seed_step(j),
            step_detail=j.current_step, audio_url=req.get("audio_url"), video_count=len(req.get("video_urls") or []),
            created_at=j.created_at, completed_at=j.completed_at, output_url=urls.get(j.job_id), error=_error(j),
            user_id=user_of(j.owner)))
    return api.JobList(jobs=summaries, total=total, limit=limit, offset=offset,
                       has_more=offset + len(jobs) < total).model_dump(mode="json")


def job_logs(c: "Container", job_id: str, owner: str) -> dict:
    _owned(c, job_id, owner)
    logs = [{**entry, "message": scrub(entry["message"])} for entry in c.jobs.logs(job_id)]
    return api.JobLogs(job_id=job_id, logs=logs).model_dump(mode="json")


def stats(c: "Container", first: str | None = None, last: str | None = None) -> dict:
    """The daily analytics from ``first`` to ``last`` (``YYYY-MM-DD``; default: the 30 days up to
    today, UTC), at most 366 days, and their totals."""
    counters = [k for k in api.DailyStats.model_fields if k != "date"]

    def parse(value: str | None, name: str, default: date) -> date:
        if value in (None, ""):
            return default
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise InvalidRequest(f"{name} must be a date YYYY-MM-DD", code="invalid_query") from None

    end = parse(last, "to", now().date())
    start = parse(first, "from", end - timedelta(days=29))
    if start > end:
        raise InvalidRequest("from is after to", code="invalid_query")
    if (end - start).days > 365:
        raise InvalidRequest("at most 366 days at once", code="invalid_query")
    days = c.analytics.days(start.isoformat(), end.isoformat())
    totals = {k: sum(d[k] for d in days) for k in counters}
    totals["total_processing_seconds"] = round(totals["total_processing_seconds"], 3)
    return api.StatsResponse(from_date=start.isoformat(), to_date=end.isoformat(), days=days,
                             totals={"date": end.isoformat(), **totals}).model_dump(mode="json")


def presets() -> dict:
    return api.PresetList(presets=[
        {"name": name, "description": p["description"],
         "config": resolve_config(name).model_dump(exclude={"preview_only", "preview_duration"})}
        for name, p in PRESETS.items()]).model_dump(mode="json")


TRANSITION_INFO = {
    "cut": ("Hard cut between clips on the beat.", False),
    "fade": ("Crossfade centred on the beat.", True),
    "zoom": ("The outgoing shot zooms in and hands over on the beat.", True),
    "flash": ("A white flash peaking on the beat.", True),
    "glitch": ("RGB split and slice displacement around the cut.", True),
    "slide": ("The new shot pushes the old one out sideways.", True),
}


def transitions() -> dict:
    assert tuple(TRANSITION_INFO) == TRANSITIONS, "schemas/edit_config.schema.json#/$defs/TransitionStyle"
    return api.TransitionList(transitions=[
        {"name": name, "description": desc, "supports_duration": dur, "min_duration": 0.05 if dur else 0.0,
         "max_duration": 2.0 if dur else 0.0} for name, (desc, dur) in TRANSITION_INFO.items()]).model_dump(mode="json")


__all__ = ["IdempotencyConflict", "JobAlreadyEnded", "accepted_view", "analyze_view", "cancel", "create_view",
           "get_job", "job_logs", "list_jobs", "presets", "request_hash", "submit_analyze", "submit_create",
           "transitions", "wait_until_ended"]
