"""A job's life after submission, in one place: starting to process, ending (completed, failed,
cancelled), clean-up of what a job that did not complete leaves (outputs, a parallel render's
``temp/`` objects, inputs, the work folder), the audit lines and the job events (webhook, Pub/Sub).

The steps (:mod:`~beatsync.jobs.steps`, :mod:`~beatsync.jobs.parallel`) and the service
(:mod:`~beatsync.jobs.service`) call down into this module; it calls none of them. Import-light.

Ending a job, :func:`end_job`, in this order:

1. a job that will not complete loses its partial outputs and ``temp/`` objects first, so that no
   reader sees an ended job with half its outputs (unless ``result.json`` is there: a finished render
   may still complete it).
2. the transition (once: the job store refuses a second end). Who wins it decides the outcome; from
   then on every worker sees the job ended and stops (a render polls within a second).
3. whatever was written meanwhile goes: the outputs of a job that did not complete (also when this
   caller lost the race: what it uploaded for nothing), the ``temp/`` objects of any ended job. A
   worker that uploads after this finds the job ended when it tries to end it, and this step runs
   again for it; the bucket's lifecycle rules and the local sweep catch a worker that died.
4. metrics, inputs and work folder removed, the job's log, the daily analytics count (once per
   job), the webhook queued, the event published. None of these can change the outcome; a failure
   is logged on the job.
5. the job's ``end_pending`` flag, set by the transition in the same write, is cleared, and then the
   ``job.end`` audit line is written (the log-based metrics count it): after the flag, so that an
   end finished again after a crash writes the line once, not once per attempt (a SIGKILL between
   a line and the flag gave two in the soak test). A process
   that dies between 2 and 5 leaves the flag: :func:`finish_end` does steps 3-4 again, at start-up
   of a local service for every such job (:func:`finish_pending_ends`), and in the cloud from a
   scheduled sweep (:func:`sweep_pending_ends`: Cloud Scheduler calls ``POST /internal/sweep``) for
   the jobs that ended longer ago than an age threshold. Not from a step or a read that finds the
   job ended: the process that ended it may still be finishing. The webhook and the event keep their
   id (one per job and status), so a receiver sees a re-sent event, not a second.

Every step is idempotent: an end retried after a crash completes what the first one left.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

from .. import keys
from ..contracts import api
from ..errors import BeatsyncError, RenderFailed, StoreUnavailable, scrub
from ..joblog import audit
from ..signing import sign_event
from .model import IllegalTransition, Job, now
from .storage import remove_inputs, work_root
from .views import error_view, view

if TYPE_CHECKING:
    from ..container import Container

log = logging.getLogger("beatsync.jobs")

CANCELLED = {"code": "cancelled", "message": "cancelled by the caller"}
#: seconds between cancel-flag reads while a step works
CANCEL_POLL = 1.0

__all__ = ["ANALYSIS_BUDGET", "CANCELLED", "CANCEL_POLL", "CLIP_UNIT_SECONDS", "analysis_budget", "audit", "cancel", "cancelled", "end", "end_job", "fail", "finish_end",
           "finish_pending_ends", "new_event", "sweep_pending_ends",
           "publish_event", "remove_outputs", "remove_temp", "settle", "start_processing", "state", "step_outcome",
           "clip_analysis_seconds", "time_budget", "workdir"]


# -- work folder and blob clean-up ----------------------------------------------------------------

def workdir(job_id: str) -> str:
    """This machine's work folder for a job (created); removed when the job ends."""
    path = work_root() / job_id
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def remove_workdir(job_id: str) -> None:
    shutil.rmtree(work_root() / job_id, ignore_errors=True)


def remove_outputs(c: "Container", job_id: str) -> None:
    """Every ``outputs/{id}/`` object (a job that did not complete keeps none)."""
    for key in c.blobs.list(keys.outputs(job_id)):
        c.blobs.delete(key)


def remove_temp(c: "Container", job_id: str) -> None:
    """A parallel render's plan, segments and progress objects (``temp/{id}/``)."""
    for key in c.blobs.list(keys.temp(job_id)):
        c.blobs.delete(key)


def _clean_up(c: "Container", job: Job) -> None:
    try:
        if job.status != "completed":
            remove_outputs(c, job.job_id)
        remove_temp(c, job.job_id)
    except Exception as exc:  # noqa: BLE001 - the job's outcome stands; the retention rules catch the rest
        log.warning("job %s: clean-up incomplete: %s", job.job_id, exc)
        c.jobs.add_log(job.job_id, f"clean-up incomplete: {exc}", "warning")


def _remove_partial(c: "Container", job_id: str) -> None:
    """Before a job that will not complete is seen ended: its partial outputs and ``temp/`` objects go,
    so no reader ever sees an ended job with half its outputs. Skipped once ``result.json`` is there:
    a finished render may still complete the job (if it loses, :func:`_clean_up` removes them)."""
    try:
        if not c.blobs.exists(keys.result(job_id)):
            remove_outputs(c, job_id)
            remove_temp(c, job_id)
    except Exception as exc:  # noqa: BLE001 - the end goes ahead; the clean-up after it retries
        log.warning("job %s: partial outputs not removed before its end: %s", job_id, exc)


# -- events ---------------------------------------------------------------------------------------

#: event ids are derived from the job and its status: a re-sent event (an end finished again after a
#: crash) carries the same id, which the notifiers and receivers deduplicate on
_EVENT_IDS = uuid.UUID("6f1c2a4e-8d0b-4c57-9a4e-2b7f3c1d5e90")


def new_event(c: "Container", job: Job) -> dict:
    """The event document of the job's current status (webhook body and Pub/Sub message)."""
    return api.WebhookEvent(id=uuid.uuid5(_EVENT_IDS, f"{job.job_id}:{job.status}").hex,
                            event=f"beat_sync.job.{job.status}", created_at=now(),
                            job_id=job.job_id, status=job.status, data=view(c, job)).model_dump(mode="json")


def publish_event(c: "Container", job: Job) -> None:
    """Publish the job's event document (the webhook's, signed the same way) to the create request's
    ``callback_topic``: ordering key = job id; attributes ``event``, ``job_id``, ``job_type``,
    ``status``, ``event_id`` for subscription filters, and ``signature`` (``t=...,v1=...`` over
    the message data, as ``X-Beatsync-Signature``)."""
    topic = job.request.get("callback_topic")
    if not topic:
        return
    try:
        event = new_event(c, job)
        data = json.dumps(event, separators=(",", ":")).encode()
        attributes = {"event": event["event"], "event_id": event["id"], "job_id": job.job_id, "job_type": job.type,
                      "status": job.status, "signature": sign_event(c.settings.secret("webhook_secret"), data)}
        if c.events is None:
            raise RuntimeError("this service publishes no events (BEATSYNC_EVENT_PUBLISHER=none)")
        c.events.publish(topic, data, attributes, ordering_key=job.job_id)
    except Exception as exc:  # noqa: BLE001 - the job's outcome stands; the log says why
        log.warning("event for %s not published: %s", job.job_id, exc)
        c.jobs.add_log(job.job_id, f"{job.status} event could not be published to {topic}: {exc}", "error")


def _notify(c: "Container", job: Job) -> None:
    url = job.request.get("webhook_url")
    if url:
        try:
            c.notifier.notify(url, new_event(c, job))
        except Exception as exc:  # noqa: BLE001 - the job's outcome stands; the log says why
            c.jobs.add_log(job.job_id, f"webhook could not be queued: {exc}", "error")
    publish_event(c, job)


def _count(c: "Container", job: Job) -> None:
    """Add an ended job to the daily analytics (once per job: the store keys it on the job id)."""
    try:
        c.analytics.record(job)
    except Exception as exc:  # noqa: BLE001 - analytics never change a job's outcome
        log.warning("analytics not recorded for %s: %s", job.job_id, exc)
        c.jobs.add_log(job.job_id, f"analytics not recorded: {exc}", "warning")


# -- the life ---------------------------------------------------------------------------------------

def start_processing(c: "Container", job_id: str, step: str) -> Job:
    """queued -> processing (the ``processing`` event is published)."""
    job = c.jobs.transition(job_id, "processing", step=step)
    publish_event(c, job)
    return job


def end_job(c: "Container", job_id: str, status: str, *, result: dict | None = None,
            error: dict | None = None) -> Job:
    """Move the job to a terminal status (once) and do what follows an end (module docstring)."""
    if status != "completed":
        _remove_partial(c, job_id)
    try:
        job = c.jobs.transition(job_id, status, result=result, error=error, step=status)
    except IllegalTransition:
        job = c.jobs.get(job_id)  # someone else ended it first; keep their outcome
        _clean_up(c, job)  # what this caller uploaded for a lost outcome goes
        _count(c, job)  # a no-op if they counted it (an end retried after a crash did not)
        return job
    return _after_end(c, job)


def _after_end(c: "Container", job: Job) -> Job:
    """What follows a job's end (module docstring, steps 3-5); safe to run again."""
    _clean_up(c, job)
    job_id, status, error = job.job_id, job.status, job.error
    started = job.started_at or job.completed_at
    job = c.jobs.record_metrics(job_id, {"processing_time_ms": int((job.completed_at - started).total_seconds() * 1000)})
    metrics = job.metrics.model_dump()
    remove_inputs(c, job)  # outputs stay (retention); inputs and the work folder go now
    c.jobs.add_log(job_id, f"job {status}" + (f": [{error.code}] {error.message}" if error else ""),
                   "error" if status == "failed" else "info")
    c.jobs.add_log(job_id, "metrics: " + ", ".join(f"{k}={v}" for k, v in metrics.items() if v is not None))
    _count(c, job)
    _notify(c, job)
    done = c.jobs.end_done(job_id)
    audit("job.end", job_id=job_id, owner=job.owner, type=job.type, job_type=job.type, status=status,
          code=error.code if error else None,
          processing_time_seconds=round(metrics["processing_time_ms"] / 1000.0, 3), metrics=metrics)
    return done


def finish_end(c: "Container", job: Job) -> Job:
    """Finish what follows the end of ``job`` if a process died before it did (``end_pending``)."""
    if not (job.terminal and job.end_pending):
        return job
    c.jobs.add_log(job.job_id, "finishing the job's end (the process that ended it stopped first)", "warning")
    return _after_end(c, job)


def finish_pending_ends(c: "Container", limit: int = 500) -> int:
    """:func:`finish_end` for every ended job left pending (start-up of a local service); the count."""
    return sweep_pending_ends(c, older_than=0.0, limit=limit, budget=None)["finished"]


#: seconds one sweep may spend finishing ends; the rest wait for the next sweep (``left``)
SWEEP_BUDGET = 120.0


def sweep_pending_ends(c: "Container", older_than: float, limit: int = 500,
                       budget: float | None = SWEEP_BUDGET) -> dict:
    """:func:`finish_end` for the ended jobs left pending whose end is more than ``older_than``
    seconds old (a younger one may still be finishing in the process that ended it), within
    ``budget`` seconds. Each job is read again first: one finished meanwhile is left alone. Returns
    ``{"finished", "younger", "failed", "left"}`` counts (``left``: over the budget, for next time)."""
    started, cutoff = time.monotonic(), now() - timedelta(seconds=older_than)
    counts = {"finished": 0, "younger": 0, "failed": 0, "left": 0}
    for job in c.jobs.pending_ends(limit):
        if job.completed_at is not None and job.completed_at > cutoff:
            counts["younger"] += 1
            continue
        if budget is not None and time.monotonic() - started > budget:
            counts["left"] += 1
            continue
        try:
            job = c.jobs.get(job.job_id)
            if job.end_pending:
                finish_end(c, job)
                counts["finished"] += 1
        except Exception as exc:  # noqa: BLE001 - one job's trouble does not keep the others pending
            counts["failed"] += 1
            log.warning("could not finish the end of %s: %s", job.job_id, exc)
    if any(counts.values()):
        audit("jobs.sweep_pending_ends", older_than_seconds=older_than, **counts)
    return counts


def end(c: "Container", job_id: str, status: str, code: str, message: str) -> Job:
    """End a job that will not complete (a cancel, or an orchestrator giving up: unreachable step,
    crashed too often, deadline) with ``{code, message}``; ignored once the job has ended."""
    job = c.jobs.get(job_id)
    if job.terminal:
        return job
    c.jobs.add_log(job_id, f"ending the job {status}: [{code}] {message}", "error" if status == "failed" else "info")
    return end_job(c, job_id, status, error={"code": code, "message": message[:2000]})


def cancel(c: "Container", job_id: str, owner: str) -> Job:
    """Cancel a job: set the flag the running step polls, stop the orchestration, and end the job
    ``cancelled`` now, removing partial outputs. Whatever compute is still running (a render, an
    analysis in flight, a Cloud Run job execution) sees the flag or the ended job within a second
    and stops without writing anything that stays; so even an orchestration stopped between two
    steps cannot leave the job processing. Returns the job as it ended (perhaps otherwise, first)."""
    job = c.jobs.request_cancel(job_id)
    audit("job.cancel", owner=owner, job_id=job_id)
    c.jobs.add_log(job_id, "cancel requested")
    try:
        c.orchestrator.cancel(job)
    except Exception as exc:  # noqa: BLE001 - the flag is set and the job ends below either way
        c.jobs.add_log(job_id, f"orchestrator cancel failed: {exc}", "warning")
    return end(c, job_id, "cancelled", CANCELLED["code"], CANCELLED["message"])


def cancelled(c: "Container", job_id: str) -> Job:
    """A step saw the cancel flag: the job ends cancelled and leaves nothing behind."""
    return end_job(c, job_id, "cancelled", error=dict(CANCELLED))


def as_sent(job: Job, message: str) -> str:
    """``message`` with the job's input files named as the caller sent them: the local copy
    ``audio.txt`` (or ``clip_2.mp4``) becomes the URL it was fetched from (its query string, which may
    hold a credential, left out), an upload's stored name its file name."""
    import re
    from urllib.parse import urlsplit, urlunsplit

    def shown(url: str) -> str:
        parts = urlsplit(url)
        return urlunsplit(parts._replace(query="", fragment="")) + ("?…" if parts.query else "")

    req = job.request or {}
    audio_key, clip_keys = keys.inputs(job.job_id, req)
    sent = {audio_key: shown(req["audio_url"]) if req.get("audio_url") else req.get("upload_name") or "the upload"}
    sent.update({key: shown(url) for key, url in zip(clip_keys, req.get("video_urls") or [])})
    for key, name in sent.items():
        local = key.rsplit("/", 1)[-1]
        message = re.sub(rf"(?<![\w.-]){re.escape(local)}(?![\w.-])", lambda m: name, message)
    return message


def fail(c: "Container", job: Job, exc: BaseException) -> Job:
    """End the job failed with the error's code and a message fit for the caller: no server paths,
    the inputs named as the caller sent them (:func:`as_sent`); a bug's traceback goes to the server
    log only, never to the job."""
    if isinstance(exc, BeatsyncError):
        error = {"code": exc.code, "message": as_sent(job, scrub(exc.message))[:2000]}
        field = keys.input_field(str(exc.details.get("source") or ""))
        if field:
            error["field"] = field
    else:
        error = {"code": "internal_error", "message": "internal error (the server log has the details)"}
    return end_job(c, job.job_id, "failed", error=error)


# -- step outcomes (the steps and the parallel tasks answer these) ---------------------------------

#: errors worth retrying: the caller (workflow, local orchestrator) tries the step again
TRANSIENT = (StoreUnavailable, ConnectionError, TimeoutError)



class StepOutcome(dict):
    """``{"job_id", "step", "status", "done", "cancel_requested", "progress", "current_step", "error"}``
    (schemas/step_response.schema.json)."""


def step_outcome(job: Job, step: str, done: bool) -> StepOutcome:
    return StepOutcome(job_id=job.job_id, step=step, status=job.status, done=done or job.terminal,
                       cancel_requested=job.cancel_requested, progress=job.progress, current_step=job.current_step,
                       error=error_view(job, public=False))


def settle(c: "Container", job: Job, step: str, exc: Exception) -> StepOutcome:
    """An error inside a step: transient ones (a store unavailable: 5xx codes) propagate so that the
    caller retries the step; permanent ones (bad media, a refused URL) and bugs end the job failed
    with a code (a bug's trace goes to the job's log)."""
    transient = isinstance(exc, TRANSIENT) or (
        isinstance(exc, BeatsyncError) and exc.http_status >= 500 and not isinstance(exc, RenderFailed)
        and exc.code != "internal_error")
    if transient:
        raise exc
    if not isinstance(exc, BeatsyncError):
        log.exception("%s step failed for %s", step, job.job_id)
    remove_workdir(job.job_id)
    return step_outcome(fail(c, job, exc), step, True)


def state(c: "Container", job_id: str) -> dict:
    """What an orchestrator's control call is answered (``schemas/step_response.schema.json`` fields)."""
    job = c.jobs.get(job_id)
    return {"job_id": job_id, "status": job.status, "cancel_requested": job.cancel_requested,
            "progress": job.progress, "current_step": job.current_step, "error": error_view(job, public=False)}


# -- time budgets --------------------------------------------------------------------------------

ANALYSIS_BUDGET = 300.0  # seconds: decode and beat-track the longest accepted song on a busy machine
#: seconds one unit of a clip's analysis budget (a 1920x1080 frame decoded and scored) may take on a
#: busy machine: about 4x the 4.5 ms measured on a quiet core (docs/editing.md)
CLIP_UNIT_SECONDS = 0.02


def clip_analysis_seconds(c: "Container") -> float:
    """The most one clip's planning analysis may take: its budget (``clip_analysis_budget``) in seconds."""
    return c.settings.clip_analysis_budget * CLIP_UNIT_SECONDS


def analysis_budget(c: "Container", job: Job) -> float:
    """Seconds the analyze step may take on ``job``: every fetch's timeout and the analysis (the
    song's, and for a create job each clip's :func:`clip_analysis_seconds`)."""
    clips = len(job.request.get("video_urls") or [])
    budget = c.settings.fetch_timeout * (1 + clips) + ANALYSIS_BUDGET
    if job.type == "create":
        budget += clips * clip_analysis_seconds(c)
    return budget


def time_budget(c: "Container", job: Job) -> float:
    """Seconds a local worker may spend on ``job``: :func:`analysis_budget`, and for a create job
    ``job_budget_factor`` seconds per second of output at 1080p30, scaled by pixels and fps (the
    output's length is the preview's, or at most the longest accepted song)."""
    s = c.settings
    budget = analysis_budget(c, job)
    if job.type == "create":
        cfg = job.request.get("edit_config") or {}
        seconds = cfg.get("preview_duration", 30) if cfg.get("preview_only") else s.max_audio_duration
        w, _, h = str(cfg.get("output_resolution", "1920x1080")).partition("x")
        scale = max(0.25, int(w) * int(h) / (1920 * 1080)) * max(0.5, cfg.get("output_fps", 30) / 30)
        budget += s.job_budget_factor * seconds * scale
    return budget
