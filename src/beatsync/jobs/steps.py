"""The work of a job, as two idempotent steps the orchestrators call by job id.

- :func:`run_analyze`: fetch the inputs into the blob store (``inputs/...``), check them, analyse
  the song (beat map cached under ``cache/beat_maps/``, copied to ``outputs/{id}/beat_map.json``).
  An analyze job ends here, completed.
- :func:`run_compose`: plan and render, upload ``outputs/{id}/{output|preview}.mp4``,
  ``thumbnail.jpg``, ``edl.json``, ``edit.otio``, then ``result.json`` last (the completion marker), and complete.

Both may be called again for the same job (a retry after a crash or a 503): finished work is
reused, an ended job is left alone. Both watch the cancel flag. Permanent problems (bad media, a
refused URL) end the job ``failed`` with the error's code; transient ones (a store briefly
unavailable) propagate so that the caller retries.

Heavy libraries are imported inside the functions that need them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from typing import TYPE_CHECKING, Callable

from ..errors import BeatsyncError, StoreUnavailable
from .model import Job

if TYPE_CHECKING:
    from ..container import Container

log = logging.getLogger("beatsync.jobs")

#: errors worth retrying: the caller (workflow, local orchestrator) tries the step again
TRANSIENT = (StoreUnavailable, ConnectionError, TimeoutError)
REPORT_EVERY = 1.0   # seconds between progress writes
CANCEL_POLL = 1.0    # seconds between cancel-flag reads while rendering


class StepOutcome(dict):
    """``{"job_id", "step", "status", "done", "cancel_requested", "progress", "current_step", "error"}``
    (schemas/step_response.schema.json)."""


def _outcome(job: Job, step: str, done: bool) -> StepOutcome:
    return StepOutcome(job_id=job.job_id, step=step, status=job.status, done=done or job.terminal,
                       cancel_requested=job.cancel_requested, progress=job.progress, current_step=job.current_step,
                       error={**job.error.model_dump(), "details": None} if job.error else None)


def end_job(c: "Container", job_id: str, status: str, *, result: dict | None = None,
            error: dict | None = None) -> Job:
    """Move the job to a terminal status (once), record its processing time, count it in the daily
    analytics, queue its webhook and publish its event."""
    from .model import IllegalTransition

    try:
        job = c.jobs.transition(job_id, status, result=result, error=error, step=status)
    except IllegalTransition:
        job = c.jobs.get(job_id)  # someone else ended it first; keep their outcome
        _count(c, job)  # a no-op if they counted it (an end retried after a crash did not)
        return job
    started = job.started_at or job.completed_at
    job = c.jobs.record_metrics(job_id, {"processing_time_ms": int((job.completed_at - started).total_seconds() * 1000)})
    metrics = job.metrics.model_dump()
    from .storage import remove_inputs

    remove_inputs(c, job)  # outputs stay (retention); inputs and the work folder go now
    c.jobs.add_log(job_id, f"job {status}" + (f": [{error['code']}] {error['message']}" if error else ""),
                   "error" if status == "failed" else "info")
    c.jobs.add_log(job_id, "metrics: " + ", ".join(f"{k}={v}" for k, v in metrics.items() if v is not None))
    from .service import audit

    audit("job.end", job_id=job_id, owner=job.owner, type=job.type, job_type=job.type, status=status,
          code=error["code"] if error else None,
          processing_time_seconds=round(metrics["processing_time_ms"] / 1000.0, 3), metrics=metrics)
    _count(c, job)
    url = job.request.get("webhook_url")
    if url:
        from .service import new_event

        try:
            c.notifier.notify(url, new_event(c, job))
        except Exception as exc:  # noqa: BLE001 - the job's outcome stands; the log says why
            c.jobs.add_log(job_id, f"webhook could not be queued: {exc}", "error")
    publish_event(c, job)
    return job


def _count(c: "Container", job: Job) -> None:
    """Add an ended job to the daily analytics (once per job: the store keys it on the job id)."""
    try:
        c.analytics.record(job)
    except Exception as exc:  # noqa: BLE001 - analytics never change a job's outcome
        log.warning("analytics not recorded for %s: %s", job.job_id, exc)
        c.jobs.add_log(job.job_id, f"analytics not recorded: {exc}", "warning")


def publish_event(c: "Container", job: Job) -> None:
    """Publish the job's event document (the webhook's, signed the same way) to the create request's
    ``callback_topic``: ordering key = job id; attributes ``event``, ``job_id``, ``job_type``,
    ``status``, ``event_id`` for subscription filters, and ``signature`` (``t=...,v1=...`` over
    the message data, as ``X-Beatsync-Signature``)."""
    topic = job.request.get("callback_topic")
    if not topic:
        return
    import json as _json

    from ..signing import sign_event
    from .service import new_event

    try:
        event = new_event(c, job)
        data = _json.dumps(event, separators=(",", ":")).encode()
        attributes = {"event": event["event"], "event_id": event["id"], "job_id": job.job_id, "job_type": job.type,
                      "status": job.status, "signature": sign_event(c.settings.secret("webhook_secret"), data)}
        if c.events is None:
            raise RuntimeError("this service publishes no events (BEATSYNC_EVENT_PUBLISHER=none)")
        c.events.publish(topic, data, attributes, ordering_key=job.job_id)
    except Exception as exc:  # noqa: BLE001 - the job's outcome stands; the log says why
        log.warning("event for %s not published: %s", job.job_id, exc)
        c.jobs.add_log(job.job_id, f"{job.status} event could not be published to {topic}: {exc}", "error")


def _fail(c: "Container", job: Job, exc: BaseException) -> Job:
    """End the job failed with the error's code and a message fit for the caller: no server paths;
    a bug's traceback goes to the server log only (``_settle`` logged it), never to the job."""
    from ..errors import scrub

    if isinstance(exc, BeatsyncError):
        error = {"code": exc.code, "message": scrub(exc.message)[:2000]}
    else:
        error = {"code": "internal_error", "message": "internal error (the server log has the details)"}
    return end_job(c, job.job_id, "failed", error=error)


def _settle(c: "Container", job: Job, step: str, exc: Exception) -> StepOutcome:
    """An error inside a step: transient ones (a store unavailable: 5xx codes) propagate so that the
    caller retries the step; permanent ones (bad media, a refused URL) and bugs end the job failed
    with a code (a bug's trace goes to the job's log)."""
    transient = isinstance(exc, TRANSIENT) or (
        isinstance(exc, BeatsyncError) and exc.http_status >= 500 and exc.code != "internal_error")
    if transient:
        raise exc
    if not isinstance(exc, BeatsyncError):
        log.exception("%s step failed for %s", step, job.job_id)
    shutil.rmtree(_workdir(c, job.job_id), ignore_errors=True)
    return _outcome(_fail(c, job, exc), step, True)


def _begin(c: "Container", job_id: str, step: str) -> Job:
    job = c.jobs.get(job_id)
    if job.terminal:
        return job
    if job.cancel_requested:
        return end_job(c, job_id, "cancelled", error={"code": "cancelled", "message": "cancelled by the caller"})
    if job.status == "queued":
        job = c.jobs.transition(job_id, "processing", step=step)
        publish_event(c, job)
    c.jobs.add_log(job_id, f"{step} started (attempt {job.attempts})")
    return job


class _Reporter:
    """Throttled progress writes and cancel-flag reads for one job."""

    def __init__(self, c: "Container", job_id: str):
        self.c, self.job_id = c, job_id
        self._last_report = self._last_poll = 0.0
        self._last_step = ""
        self._cancelled = False

    def __call__(self, pct: float, step: str) -> None:
        t = time.monotonic()
        # a new step is always written (a status read sees every step); progress within one step
        # at most every REPORT_EVERY seconds
        if step != self._last_step or t - self._last_report >= REPORT_EVERY or pct >= 100:
            self._last_report, self._last_step = t, step
            job = self.c.jobs.report(self.job_id, pct, step)
            self._cancelled = self._cancelled or job.cancel_requested

    def should_stop(self) -> bool:
        t = time.monotonic()
        if not self._cancelled and t - self._last_poll >= CANCEL_POLL:
            self._last_poll = t
            job = self.c.jobs.get(self.job_id)
            self._cancelled = job.cancel_requested or job.terminal  # cancelled, or ended by the orchestrator
        return self._cancelled


def _scaled(report: Callable[[float, str], None], lo: float, hi: float):
    return lambda pct, step: report(lo + (hi - lo) * pct / 100.0, step)


def _workdir(c: "Container", job_id: str) -> str:
    path = os.path.join(tempfile.gettempdir(), "beatsync-work", job_id)
    os.makedirs(path, exist_ok=True)
    return path


def _input_keys(job: Job) -> tuple[str, list[str]]:
    from .service import _ext

    req = job.request
    if req.get("audio_key"):
        audio = req["audio_key"]
    else:
        audio = f"inputs/audio/{job.job_id}/audio{_ext(_url_path(req['audio_url']))}"
    clips = [f"inputs/video/{job.job_id}/clip_{i}{_ext(_url_path(u))}" for i, u in enumerate(req.get("video_urls") or [])]
    return audio, clips


def _url_path(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).path if url else ""


def _fetch(c: "Container", url: str, key: str, local: str, should_stop=None) -> None:
    """Bring ``url`` into the blob store at ``key`` (skipped if there) and into ``local``; a fetch is
    abandoned (FetchCancelled) within a second or so of ``should_stop()`` turning true."""
    if os.path.exists(local):
        return
    if c.blobs.exists(key):
        c.blobs.get_file(key, local)
        return
    if url.startswith("gs://"):
        src = url[5:].partition("/")[2]
        size = c.blobs.size(src)
        if size > c.settings.max_input_bytes:
            from ..fetch import TooLarge

            raise TooLarge(f"{url} is {size} bytes; the limit is {c.settings.max_input_bytes}")
        c.blobs.get_file(src, local)
    else:
        from ..fetch import download

        download(url, local, c.fetch_policy, should_stop=should_stop)
    c.blobs.put_file(key, local)


def _local_inputs(c: "Container", job: Job, report, with_clips: bool,
                  should_stop: Callable[[], bool] | None = None) -> tuple[str, list[str]]:
    work = _workdir(c, job.job_id)
    audio_key, clip_keys = _input_keys(job)
    req = job.request
    audio = os.path.join(work, os.path.basename(audio_key))
    if req.get("audio_key"):
        if not os.path.exists(audio):
            c.blobs.get_file(audio_key, audio)
    else:
        _fetch(c, req["audio_url"], audio_key, audio, should_stop)
    clips = []
    if with_clips:
        for i, (url, key) in enumerate(zip(req["video_urls"], clip_keys)):
            report(10.0 * (i + 1) / (len(clip_keys) + 1), "downloading")
            local = os.path.join(work, os.path.basename(key))
            _fetch(c, url, key, local, should_stop)
            clips.append(local)
    return audio, clips


def run_analyze(c: "Container", job_id: str) -> StepOutcome:
    job = _begin(c, job_id, "downloading")
    if job.terminal:
        return _outcome(job, "analyze", True)
    report = _Reporter(c, job_id)
    try:
        beat_map_key = f"outputs/{job_id}/beat_map.json"
        from .parallel import make_plan, plan_key

        if (job.type == "create" and c.blobs.exists(beat_map_key) and c.blobs.exists(plan_key(job_id))
                and os.path.isdir(_workdir(c, job_id))):
            # a retried call after the analysis finished: only the local copies may be missing
            _local_inputs(c, job, report, with_clips=True, should_stop=report.should_stop)
            return _outcome(c.jobs.get(job_id), "analyze", True)
        report(0.0, "downloading")
        t0 = time.monotonic()
        audio, clips = _local_inputs(c, job, report, with_clips=job.type == "create", should_stop=report.should_stop)
        c.jobs.record_metrics(job_id, {"download_time_ms": _ms(t0),
                                       "bytes_in": sum(os.path.getsize(p) for p in [audio, *clips])})
        if report.should_stop():
            return _outcome(_cancelled(c, job_id), "analyze", True)
        from ..analysis import analyze

        if clips:
            from ..render.probe import probe_clip

            report(10.0, "checking")
            for clip in clips:
                probe_clip(clip, max_pixels=c.settings.max_clip_pixels)  # no video stream, corrupt, too large...
        report(12.0 if job.type == "create" else 10.0, "analyzing")
        fps = job.request["edit_config"]["output_fps"] if job.type == "create" else job.request["fps"]
        t0, cache = time.monotonic(), _CacheProbe(c.blobs)
        beat_map = analyze(audio, job.request["method"], fps=fps, max_duration=c.settings.max_audio_duration,
                           cache=cache, allow_noncommercial=c.settings.allow_noncommercial_models)
        encoded = beat_map.to_json().encode()
        c.blobs.put_bytes(beat_map_key, encoded, "application/json")
        c.jobs.record_metrics(job_id, {"analysis_time_ms": _ms(t0), "beat_map_cached": not cache.wrote,
                                       **({"bytes_out": len(encoded)} if job.type == "analyze" else {})})
        if job.type == "create":  # the edit, planned once for every compose task (temp/{id}/plan.json)
            make_plan(c, job, clips, beat_map, report=_scaled(report, 20.0, 25.0))
        if c.jobs.get(job_id).terminal:  # cancelled (or ended by the orchestrator) meanwhile: leave nothing
            return _outcome(_cancelled(c, job_id), "analyze", True)
        c.jobs.add_log(job_id, f"analysed: {beat_map.tempo:.1f} BPM, {len(beat_map.beats)} beats, "
                               f"{len(beat_map.sections)} sections ({beat_map.detection_method})")
        if job.type == "analyze":
            job = end_job(c, job_id, "completed", result={"beat_map_key": beat_map_key,
                                                          "audio_hash": beat_map.audio_hash})
            shutil.rmtree(_workdir(c, job_id), ignore_errors=True)
            return _outcome(job, "analyze", True)
        job = c.jobs.report(job_id, 25.0, "analyzed")
        return _outcome(job, "analyze", True)
    except Exception as exc:  # noqa: BLE001 - sorted by _settle
        if _stopped(exc):
            return _outcome(_cancelled(c, job_id), "analyze", True)
        return _settle(c, job, "analyze", exc)


def _stopped(exc: BaseException) -> bool:
    from ..fetch import FetchCancelled

    return isinstance(exc, FetchCancelled)


def _ms(since: float) -> int:
    return int((time.monotonic() - since) * 1000)


class _CacheProbe:
    """The blob store, noting whether the analysis wrote a beat map to the cache (it does only on a miss)."""

    def __init__(self, store):
        self.store, self.wrote = store, False

    def __getattr__(self, name):
        return getattr(self.store, name)

    def put_bytes(self, key, data, content_type="application/octet-stream"):
        self.wrote = self.wrote or key.startswith("cache/")
        return self.store.put_bytes(key, data, content_type)


def _cancelled(c: "Container", job_id: str) -> Job:
    from .parallel import remove_temp

    for key in c.blobs.list(f"outputs/{job_id}/"):
        c.blobs.delete(key)
    remove_temp(c, job_id)
    shutil.rmtree(_workdir(c, job_id), ignore_errors=True)
    return end_job(c, job_id, "cancelled", error={"code": "cancelled", "message": "cancelled by the caller"})


def run_compose(c: "Container", job_id: str, parallel: bool = True) -> StepOutcome:
    """Compose on this machine. With ``parallel`` and a plan of several tasks, the tasks run as local
    processes (:func:`beatsync.jobs.parallel.run_local`) and are merged; else one render."""
    job = _begin(c, job_id, "composing")
    if job.terminal:
        return _outcome(job, "compose", True)
    if job.type != "create":
        return _outcome(job, "compose", True)
    started = time.monotonic()
    result_key = f"outputs/{job_id}/result.json"
    if c.blobs.exists(result_key):  # rendered and uploaded by an attempt that died before completing
        result = json.loads(c.blobs.get_bytes(result_key))
        return _outcome(end_job(c, job_id, "completed", result=result), "compose", True)
    if parallel:
        from .parallel import load_plan, run_local

        try:
            plan = load_plan(c, job_id)
            if plan is not None and plan["tasks"] > 1:
                run_local(c, job_id, plan)
                return _outcome(c.jobs.get(job_id), "compose", True)
        except Exception as exc:  # noqa: BLE001 - sorted by _settle
            return _settle(c, job, "compose", exc)
    report = _Reporter(c, job_id)
    try:
        from ..contracts import EditConfig
        from ..render.encode import RenderCancelled
        from ..render.pipeline import make_video

        # inputs missing from this worker (a fresh compose container) are fetched again: part of
        # composing, so progress stays where the analysis left it
        audio, clips = _local_inputs(c, job, lambda pct, step: report(25.0, "preparing"), with_clips=True,
                                     should_stop=report.should_stop)
        config = EditConfig.model_validate(job.request["edit_config"])
        work = _workdir(c, job_id)
        name = ("preview" if config.preview_only else "output") + "." + config.output_format
        out = os.path.join(work, "render", name)
        try:
            made = make_video(audio, clips, out, config, method=job.request["method"], cache=c.blobs,
                              max_audio_duration=c.settings.max_audio_duration,
                              max_clip_pixels=c.settings.max_clip_pixels,
                              song_url=job.request["audio_url"], clip_urls=list(job.request["video_urls"]),
                              progress=_scaled(report, 25.0, 97.0), should_stop=report.should_stop)
        except RenderCancelled:
            return _outcome(_cancelled(c, job_id), "compose", True)
        if report.should_stop():
            return _outcome(_cancelled(c, job_id), "compose", True)
        report(97.0, "uploading")
        prefix = f"outputs/{job_id}/"
        c.blobs.put_file(prefix + "thumbnail.jpg", made.thumbnail, "image/jpeg")
        c.blobs.put_file(prefix + "edl.json", made.edl_path, "application/json")
        c.blobs.put_file(prefix + "edit.otio", made.otio_path, "application/json")
        c.blobs.put_file(prefix + "beat_map.json", made.beat_map_path, "application/json")
        c.blobs.put_file(prefix + name, made.video, f"video/{config.output_format}")
        elapsed = time.monotonic() - started
        result = {"output_key": prefix + name, "thumbnail_key": prefix + "thumbnail.jpg",
                  "beat_map_key": prefix + "beat_map.json", "edl_key": prefix + "edl.json",
                  "otio_key": prefix + "edit.otio", "warnings": made.edl.model_dump(mode="json")["warnings"],
                  "preview": config.preview_only, "duration": round(made.duration, 3), "file_size": made.file_size,
                  "total_cuts": len(made.edl.cut_frames), "processing_time": round(elapsed, 3)}
        c.blobs.put_bytes(result_key, json.dumps(result).encode(), "application/json")
        c.jobs.record_metrics(job_id, {"composition_time_ms": _ms(started), "bytes_out": sum(
            os.path.getsize(p) for p in (made.thumbnail, made.edl_path, made.beat_map_path, made.video))})
        c.jobs.add_log(job_id, f"rendered {made.duration:.1f} s, {len(made.edl.shots)} shots, "
                               f"{made.file_size} bytes in {elapsed:.1f} s")
        job = end_job(c, job_id, "completed", result=result)
        if job.status != "completed":  # cancelled at the last moment: no output stays behind
            for key in c.blobs.list(prefix):
                c.blobs.delete(key)
        shutil.rmtree(work, ignore_errors=True)
        return _outcome(job, "compose", True)
    except Exception as exc:  # noqa: BLE001 - sorted by _settle
        if _stopped(exc):
            return _outcome(_cancelled(c, job_id), "compose", True)
        return _settle(c, job, "compose", exc)


ANALYSIS_BUDGET = 300.0  # seconds: decode and beat-track the longest accepted song on a busy machine


def time_budget(c: "Container", job: Job) -> float:
    """Seconds a local worker may spend on ``job``: every fetch's timeout, the analysis, and
    ``job_budget_factor`` seconds per second of output at 1080p30, scaled by pixels and fps (the
    output's length is the preview's, or at most the longest accepted song)."""
    s = c.settings
    fetches = 1 + len(job.request.get("video_urls") or [])
    budget = s.fetch_timeout * fetches + ANALYSIS_BUDGET
    if job.type == "create":
        cfg = job.request.get("edit_config") or {}
        seconds = cfg.get("preview_duration", 30) if cfg.get("preview_only") else s.max_audio_duration
        w, _, h = str(cfg.get("output_resolution", "1920x1080")).partition("x")
        scale = max(0.25, int(w) * int(h) / (1920 * 1080)) * max(0.5, cfg.get("output_fps", 30) / 30)
        budget += s.job_budget_factor * seconds * scale
    return budget


def run_job(c: "Container", job_id: str) -> Job:
    """Both steps in order (the local orchestrator; Cloud Workflows calls them one by one)."""
    outcome = run_analyze(c, job_id)
    if outcome["status"] == "processing":
        run_compose(c, job_id)
    return c.jobs.get(job_id)


# -- control operations for an orchestrator that runs the steps remotely (Cloud Workflows) --------

def state(c: "Container", job_id: str) -> dict:
    job = c.jobs.get(job_id)
    return {"job_id": job_id, "status": job.status, "cancel_requested": job.cancel_requested,
            "progress": job.progress, "current_step": job.current_step,
            "error": {**job.error.model_dump(), "details": None} if job.error else None}


def begin(c: "Container", job_id: str) -> dict:
    """The workflow starts: queued -> processing (or cancelled if the caller already cancelled)."""
    job = c.jobs.get(job_id)
    if not job.terminal:
        if job.cancel_requested:
            end_job(c, job_id, "cancelled", error={"code": "cancelled", "message": "cancelled by the caller"})
        elif job.status == "queued":
            publish_event(c, c.jobs.transition(job_id, "processing", step="starting"))
        c.jobs.add_log(job_id, "workflow: started")
    return state(c, job_id)


def compose_start(c: "Container", job_id: str, attempt: int = 1) -> dict:
    job = c.jobs.get(job_id)
    if job.terminal:
        return {**state(c, job_id), "handle": None}
    from .parallel import planned_tasks

    tasks = planned_tasks(c, job_id)
    handle = c.runner.start(job_id, tasks=tasks)
    c.jobs.add_log(job_id, f"workflow: compose attempt {attempt} started ({handle})"
                           + (f", {tasks} tasks" if tasks > 1 else ""))
    return {**state(c, job_id), "handle": handle, "tasks": tasks}


def compose_poll(c: "Container", job_id: str, handle: str | None) -> dict:
    from .parallel import progress

    runner = c.runner.state(handle) if handle else "unknown"
    pct = progress(c, job_id)  # a parallel render: the sum over its tasks
    if pct is not None and runner == "running":
        c.jobs.report(job_id, pct, "rendering")
    return {**state(c, job_id), "runner": runner}


def compose_merge(c: "Container", job_id: str) -> dict:
    """After the compose execution ended: join a parallel render's segments if every one is there
    (``merged``), else report the ``missing`` ones; a no-op for a one-task render or an ended job."""
    from .parallel import run_merge

    return run_merge(c, job_id)


def compose_stop(c: "Container", job_id: str, handle: str | None) -> dict:
    if handle:
        c.runner.stop(handle)
        c.jobs.add_log(job_id, f"workflow: compose stopped ({handle})")
    return state(c, job_id)


def end(c: "Container", job_id: str, status: str, code: str, message: str) -> dict:
    """End a job that will not complete (a cancel, or an orchestrator giving up: unreachable step,
    crashed too often, deadline); ignored once the job has ended. Partial outputs are removed
    before the job is seen ended (unless a finished render is about to complete it) and again
    after, so none stays behind a job that did not complete."""
    job = c.jobs.get(job_id)
    if not job.terminal:
        c.jobs.add_log(job_id, f"ending the job {status}: [{code}] {message}", "error" if status == "failed" else "info")
        prefix = f"outputs/{job_id}/"
        if not c.blobs.exists(prefix + "result.json"):
            for key in c.blobs.list(prefix):
                c.blobs.delete(key)
        job = end_job(c, job_id, status, error={"code": code, "message": message[:2000]})
        if job.status != "completed":
            for key in c.blobs.list(prefix):
                c.blobs.delete(key)
        from .parallel import remove_temp

        remove_temp(c, job_id)
    return state(c, job_id)
