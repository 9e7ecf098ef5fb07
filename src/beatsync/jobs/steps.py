"""The work of a job, as two idempotent steps the orchestrators call by job id.

- :func:`run_analyze`: fetch the inputs into the blob store (``inputs/...``), check them, analyse
  the song (beat map cached under ``cache/beat_maps/``, copied to ``outputs/{id}/beat_map.json``).
  An analyze job ends here, completed.
- :func:`run_compose`: plan and render, upload ``outputs/{id}/{output|preview}.mp4``,
  ``thumbnail.jpg``, ``edl.json``, ``edit.otio`` (and the timelines asked for), then ``result.json`` last
  (the completion marker), and complete.

Both may be called again for the same job (a retry after a crash or a 503): finished work is
reused, an ended job is left alone. Both watch the cancel flag. Permanent problems (bad media, a
refused URL) end the job ``failed`` with the error's code; transient ones (a store briefly
unavailable) propagate so that the caller retries.

Heavy libraries are imported inside the functions that need them.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from typing import TYPE_CHECKING, Callable

from .. import keys
from .. import analysis  # light: the analysis libraries load when analyze() runs
from ..contracts import BeatMap, EditConfig
from ..errors import RenderCancelled
from ..fetch import FetchCancelled
from . import lifecycle
from . import parallel as _parallel
from . import timelines as _timelines
from .inputs import local_inputs
# the job's end and its events live in lifecycle; the names stay importable from here
from .lifecycle import (ANALYSIS_BUDGET, CANCEL_POLL, CLIP_UNIT_SECONDS, TRANSIENT, StepOutcome,  # noqa: F401
                        clip_analysis_seconds, end_job, publish_event, settle as _settle, state,
                        step_outcome as _outcome, time_budget)
from .model import Job

if TYPE_CHECKING:
    from ..container import Container

log = logging.getLogger("beatsync.jobs")

REPORT_EVERY = 1.0   # seconds between progress writes


def _begin(c: "Container", job_id: str, step: str) -> Job:
    job = c.jobs.get(job_id)
    if job.terminal:
        return job
    if job.cancel_requested:
        return lifecycle.cancelled(c, job_id)
    if job.status == "queued":
        job = lifecycle.start_processing(c, job_id, step)
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


def run_analyze(c: "Container", job_id: str, start_compose: bool = False) -> StepOutcome:
    """The analyze step: the inputs fetched and checked, the song's beat map, and for a create job the
    clips' analysis and the plan. ``start_compose`` (the deployed workflow, ``compose_early_start``):
    once the inputs are here, the compose execution is started (:func:`beatsync.jobs.parallel.start_early`),
    so its tasks start and fetch the clips while the song and the clips are analysed; it is stopped
    if this step ends the job."""
    job = _begin(c, job_id, "downloading")
    if job.terminal:
        return _outcome(job, "analyze", True)
    report = _Reporter(c, job_id)
    clip_work = early = None
    try:
        beat_map_key = keys.beat_map(job_id)
        if (job.type == "create" and c.blobs.exists(beat_map_key) and c.blobs.exists(keys.plan(job_id))
                and os.path.isdir(lifecycle.workdir(job_id))):
            # a retried call after the analysis finished: only the local copies may be missing
            local_inputs(c, job, report, with_clips=True, should_stop=report.should_stop)
            return _outcome(c.jobs.get(job_id), "analyze", True)
        report(0.0, "downloading")
        t0 = time.monotonic()
        audio, clips = local_inputs(c, job, report, with_clips=job.type == "create", should_stop=report.should_stop)
        c.jobs.record_metrics(job_id, {"download_time_ms": _ms(t0),
                                       "bytes_in": sum(os.path.getsize(p) for p in [audio, *clips])})
        if report.should_stop():
            return _outcome(lifecycle.cancelled(c, job_id), "analyze", True)
        if clips:
            from ..render.probe import probe_clip  # heavy (av): the render modules only where a step runs

            report(10.0, "checking")
            for clip in clips:
                probe_clip(clip, max_pixels=c.settings.max_clip_pixels)  # no video stream, corrupt, too large...
            if start_compose:
                early = _start_early(c, job, audio)
        report(12.0 if job.type == "create" else 10.0, "analyzing")
        fps = job.request["edit_config"]["output_fps"] if job.type == "create" else job.request["fps"]
        if clips:  # the clips' motion and shots need no beat map: analysed while the song is
            from ..render.pipeline import start_clip_analysis

            clip_work = start_clip_analysis(clips, max_clip_pixels=c.settings.max_clip_pixels,
                                            budget=c.settings.clip_analysis_budget, cache=c.blobs)
        t0, cache = time.monotonic(), _CacheProbe(c.blobs)
        beat_map = analysis.analyze(audio, job.request["method"], fps=fps, max_duration=c.settings.max_audio_duration,
                           cache=cache, allow_noncommercial=c.settings.allow_noncommercial_models)
        encoded = beat_map.to_json().encode()
        c.blobs.put_bytes(beat_map_key, encoded, "application/json")
        c.jobs.record_metrics(job_id, {"analysis_time_ms": _ms(t0), "beat_map_cached": not cache.wrote,
                                       **({"bytes_out": len(encoded)} if job.type == "analyze" else {})})
        if job.type == "create":  # the edit, planned once for every compose task (temp/{id}/plan.json)
            analysed = clip_work.result()
            c.jobs.record_metrics(job_id, {"clip_analysis_time_ms": int(clip_work.seconds * 1000),
                                           "clip_analysis_frames": sum(a.frames for a in analysed[1])})
            plan = _parallel.make_plan(c, job, clips, beat_map, report=_scaled(report, 20.0, 25.0),
                                       analysed=analysed, tasks=early["tasks"] if early else None)
            # the song's window encoded once for the merge, while the tasks render (off its critical path)
            if not _parallel.encode_audio(c, job_id, audio, plan, should_stop=report.should_stop):
                return _outcome(lifecycle.cancelled(c, job_id), "analyze", True)
        if c.jobs.get(job_id).terminal:  # cancelled (or ended by the orchestrator) meanwhile: leave nothing
            return _outcome(lifecycle.cancelled(c, job_id), "analyze", True)
        c.jobs.add_log(job_id, f"analysed: {beat_map.tempo:.1f} BPM, {len(beat_map.beats)} beats, "
                               f"{len(beat_map.sections)} sections ({beat_map.detection_method})")
        if job.type == "analyze":
            job = end_job(c, job_id, "completed", result={"beat_map_key": beat_map_key,
                                                          "audio_hash": beat_map.audio_hash})
            return _outcome(job, "analyze", True)
        job = c.jobs.report(job_id, 25.0, "analyzed")
        return _outcome(job, "analyze", True)
    except Exception as exc:  # noqa: BLE001 - sorted by _settle
        if _stopped(exc):
            return _outcome(lifecycle.cancelled(c, job_id), "analyze", True)
        return _settle(c, job, "analyze", exc)
    finally:
        if clip_work is not None:
            clip_work.stop()  # unused after an error or a cancel: its threads stop decoding (a no-op when done)
        if early is not None:
            _stop_early_if_ended(c, job_id, early)


def _start_early(c: "Container", job: Job, song: str) -> dict | None:
    """The compose execution started before the plan; a failure to start it (the Cloud Run Admin API
    refusing or unreachable) is logged, not the job's: the workflow's first attempt starts it instead."""
    try:
        return _parallel.start_early(c, job, song)
    except Exception as exc:  # noqa: BLE001 - an optimisation must not fail the job
        log.warning("job %s: compose not started early: %s", job.job_id, exc)
        c.jobs.add_log(job.job_id, f"compose not started early ({type(exc).__name__}): started after the plan",
                       "warning")
        return None


def _stop_early_if_ended(c: "Container", job_id: str, early: dict) -> None:
    """The compose execution started before the plan stops when the analyze step ended the job without
    completing it (its tasks would also see the end within a second or so and exit); what a task wrote
    meanwhile goes."""
    try:
        job = c.jobs.get(job_id)
        if job.terminal and job.status != "completed":
            _parallel.stop_early(c, job_id, early)
            _clear_after_stop(c, job_id, early["handle"])
    except Exception as exc:  # noqa: BLE001 - the step's outcome stands; the tasks stop by themselves
        log.warning("job %s: the early compose execution was not stopped: %s", job_id, exc)


STOP_WAIT = 15.0  # seconds a stop waits for the execution's tasks to exit before clearing temp/


def _clear_after_stop(c: "Container", job_id: str, handle: str) -> None:
    """After a stop: once the execution has exited (a Cloud Run cancel is asynchronous; at most
    STOP_WAIT s), the ``temp/`` objects of a job that ended without completing go, a task's last
    progress write included (the bucket's lifecycle rule removes anything later)."""
    deadline = time.monotonic() + STOP_WAIT
    while c.runner.state(handle) == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
    job = c.jobs.get(job_id)
    if job.terminal and job.status != "completed":
        lifecycle.remove_temp(c, job_id)


def _stopped(exc: BaseException) -> bool:
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
        self.wrote = self.wrote or keys.is_cache(key)
        return self.store.put_bytes(key, data, content_type)


def run_compose(c: "Container", job_id: str, parallel: bool = True) -> StepOutcome:
    """Compose on this machine. With ``parallel`` and a plan of several tasks, the tasks run as local
    processes (:func:`beatsync.jobs.parallel.run_local`) and are merged; else one render."""
    job = _begin(c, job_id, "composing")
    if job.terminal:
        return _outcome(job, "compose", True)
    if job.type != "create":
        return _outcome(job, "compose", True)
    started = time.monotonic()
    result_key = keys.result(job_id)
    if c.blobs.exists(result_key):  # rendered and uploaded by an attempt that died before completing
        result = json.loads(c.blobs.get_bytes(result_key))
        return _outcome(end_job(c, job_id, "completed", result=result), "compose", True)
    if parallel:
        try:
            plan = _parallel.load_plan(c, job_id)
            if plan is not None and plan["tasks"] > 1:
                _parallel.run_local(c, job_id, plan)
                return _outcome(c.jobs.get(job_id), "compose", True)
        except Exception as exc:  # noqa: BLE001 - sorted by _settle
            return _settle(c, job, "compose", exc)
    report = _Reporter(c, job_id)
    try:
        from ..render.pipeline import make_video, render_edit  # heavy (av, numpy, opencv)
        from ..render.probe import probe_clip

        plan = _parallel.load_plan(c, job_id)
        if plan is None and not parallel:
            # a task started before the plan (the deployed workflow): the inputs come while the analysis runs
            audio_key, clip_keys = keys.inputs(job_id, job.request)
            work = lifecycle.workdir(job_id)
            early, plan = _parallel.wait_if_started_early(c, job, {k: os.path.join(work, os.path.basename(k))
                                                                   for k in (audio_key, *clip_keys)})
            if early and plan is None:
                return _outcome(c.jobs.get(job_id), "compose", True)  # ended while this task waited
        # inputs missing from this worker (a fresh compose container) are fetched again: part of
        # composing, so progress stays where the analysis left it
        audio, clips = local_inputs(c, job, lambda pct, step: report(25.0, "preparing"), with_clips=True,
                                     should_stop=report.should_stop)
        config = EditConfig.model_validate(job.request["edit_config"])
        work = lifecycle.workdir(job_id)
        name = ("preview" if config.preview_only else "output") + "." + config.output_format
        out = os.path.join(work, "render", name)
        fmts = _timelines.formats(job.request)
        extra = _timelines.local_paths(os.path.join(work, "render"), fmts)[1:]  # edit.otio: the side file
        urls = {"song_url": job.request["audio_url"], "clip_urls": list(job.request["video_urls"]), "timelines": extra}
        try:
            if plan is not None:  # the edit the analyze step planned: render it, do not plan it again
                beat_map = BeatMap.model_validate_json(c.blobs.get_bytes(keys.beat_map(job_id)))
                probes = [probe_clip(p, max_pixels=c.settings.max_clip_pixels) for p in clips]
                made = render_edit(_parallel.planned_edl(plan), beat_map, probes, audio, out, **urls,
                                   progress=_scaled(report, 25.0, 97.0), should_stop=report.should_stop)
            else:  # no plan (a job from before plans were stored): analyse (cached) and plan here
                made = make_video(audio, clips, out, config, method=job.request["method"], cache=c.blobs,
                                  max_audio_duration=c.settings.max_audio_duration,
                                  max_clip_pixels=c.settings.max_clip_pixels,
                                  clip_budget=c.settings.clip_analysis_budget, **urls,
                                  progress=_scaled(report, 25.0, 97.0), should_stop=report.should_stop)
        except RenderCancelled:
            return _outcome(lifecycle.cancelled(c, job_id), "compose", True)
        if report.should_stop():
            return _outcome(lifecycle.cancelled(c, job_id), "compose", True)
        report(97.0, "uploading")
        prefix = keys.outputs(job_id)
        c.blobs.put_file(prefix + "thumbnail.jpg", made.thumbnail, "image/jpeg")
        c.blobs.put_file(prefix + "edl.json", made.edl_path, "application/json")
        timelines = _timelines.publish(c, job_id, fmts, [made.otio_path, *made.timelines], made.timeline_warnings)
        c.blobs.put_file(prefix + "beat_map.json", made.beat_map_path, "application/json")
        c.blobs.put_file(prefix + name, made.video, f"video/{config.output_format}")
        elapsed = time.monotonic() - started
        result = {"output_key": prefix + name, "thumbnail_key": prefix + "thumbnail.jpg",
                  "beat_map_key": prefix + "beat_map.json", "edl_key": prefix + "edl.json",
                  "otio_key": timelines["otio_key"], "timeline_keys": timelines["timeline_keys"],
                  "warnings": made.edl.model_dump(mode="json")["warnings"] + timelines["timeline_warnings"],
                  "preview": config.preview_only, "duration": round(made.duration, 3), "file_size": made.file_size,
                  "total_cuts": len(made.edl.cut_frames), "processing_time": round(elapsed, 3)}
        c.blobs.put_bytes(result_key, json.dumps(result).encode(), "application/json")
        c.jobs.record_metrics(job_id, {"composition_time_ms": _ms(started), "bytes_out": sum(
            os.path.getsize(p) for p in (made.thumbnail, made.edl_path, made.otio_path, made.beat_map_path, made.video,
                                         *made.timelines))})
        c.jobs.add_log(job_id, f"rendered {made.duration:.1f} s, {len(made.edl.shots)} shots, "
                               f"{made.file_size} bytes in {elapsed:.1f} s")
        # cancelled at the last moment: end_job removes the outputs (and the work folder either way)
        return _outcome(end_job(c, job_id, "completed", result=result), "compose", True)
    except Exception as exc:  # noqa: BLE001 - sorted by _settle
        if _stopped(exc):
            return _outcome(lifecycle.cancelled(c, job_id), "compose", True)
        return _settle(c, job, "compose", exc)


def run_job(c: "Container", job_id: str) -> Job:
    """Both steps in order (the local orchestrator; Cloud Workflows calls them one by one)."""
    outcome = run_analyze(c, job_id)
    if outcome["status"] == "processing":
        run_compose(c, job_id)
    return c.jobs.get(job_id)


# -- control operations for an orchestrator that runs the steps remotely (Cloud Workflows) --------

def begin(c: "Container", job_id: str) -> dict:
    """The workflow starts: queued -> processing (or cancelled if the caller already cancelled)."""
    job = c.jobs.get(job_id)
    if not job.terminal:
        if job.cancel_requested:
            lifecycle.cancelled(c, job_id)
        elif job.status == "queued":
            lifecycle.start_processing(c, job_id, "starting")
        c.jobs.add_log(job_id, "workflow: started")
    return state(c, job_id)


def compose_start(c: "Container", job_id: str, attempt: int = 1, poll_seconds: float | None = None) -> dict:
    """Start compose attempt ``attempt``; the first adopts an execution the analyze step started before
    the plan, whose tasks are already rendering: then ``next_poll_seconds`` (with ``poll_seconds``) says
    when the slowest should be done, as :func:`compose_poll` does."""
    job = c.jobs.get(job_id)
    if job.terminal:
        return {**state(c, job_id), "handle": None}
    tasks = _parallel.planned_tasks(c, job_id)
    early = _parallel.early_execution(c, job_id) if attempt == 1 else None
    if early is not None and c.runner.state(early["handle"]) != "running" and not _parallel.segments_ready(c, job_id):
        c.jobs.add_log(job_id, f"workflow: the execution started before the plan ({early['handle']}) ended "
                               "unfinished: compose attempt 1 starts another", "warning")
        early = None
    if early is not None:  # started by the analyze step, still rendering (or done: the merge follows)
        c.jobs.add_log(job_id, f"workflow: compose attempt 1 is the execution started before the plan "
                               f"({early['handle']}), {early['tasks']} task{'s' * (early['tasks'] > 1)}")
        out = {**state(c, job_id), "handle": early["handle"], "tasks": early["tasks"]}
        if poll_seconds is not None:
            out["next_poll_seconds"] = _next_poll(c, job_id, None, poll_seconds)
        return out
    handle = c.runner.start(job_id, tasks=tasks)
    c.jobs.add_log(job_id, f"workflow: compose attempt {attempt} started ({handle})"
                           + (f", {tasks} tasks" if tasks > 1 else ""))
    return {**state(c, job_id), "handle": handle, "tasks": tasks}


MIN_POLL_SECONDS = 1  # the soonest the workflow is asked to poll again (whole seconds: sys.sleep's unit)


def compose_poll(c: "Container", job_id: str, handle: str | None, poll_seconds: float | None = None) -> dict:
    """The compose execution's state, and for a parallel render: the progress summed over its tasks,
    ``segments_ready`` (every segment written: merge now, without waiting for the execution to
    report its end) and ``next_poll_seconds`` (when the slowest task should be done, at least
    MIN_POLL_SECONDS, at most ``poll_seconds``)."""
    runner = c.runner.state(handle) if handle else "unknown"
    plan = _parallel.load_plan(c, job_id)
    pct = _parallel.progress(c, job_id, plan)  # a parallel render: the sum over its tasks
    if pct is not None and runner == "running":
        c.jobs.report(job_id, pct, "rendering")
    ready = _parallel.segments_ready(c, job_id, plan)
    out = {**state(c, job_id), "runner": runner, "segments_ready": ready}
    if poll_seconds is not None:
        out["next_poll_seconds"] = (max(MIN_POLL_SECONDS, math.ceil(poll_seconds)) if ready
                                    else _next_poll(c, job_id, plan, poll_seconds))
    return out


def _next_poll(c: "Container", job_id: str, plan: dict | None, poll_seconds: float) -> int:
    """Seconds until the slowest task should be done (its rate so far), at least MIN_POLL_SECONDS, at
    most ``poll_seconds``; ``poll_seconds`` while any task has given no estimate."""
    left = _parallel.remaining_seconds(c, job_id, plan)
    wait = poll_seconds if left is None else min(poll_seconds, max(MIN_POLL_SECONDS, left + 0.5))
    return max(MIN_POLL_SECONDS, math.ceil(wait))


def compose_merge(c: "Container", job_id: str) -> dict:
    """After the compose execution ended: join a parallel render's segments if every one is there
    (``merged``), else report the ``missing`` ones; a no-op for a one-task render or an ended job."""
    return _parallel.run_merge(c, job_id)


def compose_stop(c: "Container", job_id: str, handle: str | None) -> dict:
    """Stop a compose execution (deadline, cancel, a job ended by someone else). A job that *completed*
    was completed by that very execution, which is finishing its job's end (webhook, event, metrics)
    and exits by itself: it is left to finish, since killing it there would lose the webhook."""
    if handle:
        if c.jobs.get(job_id).status == "completed":
            c.jobs.add_log(job_id, f"workflow: compose left to finish ({handle})")
        else:
            c.runner.stop(handle)
            c.jobs.add_log(job_id, f"workflow: compose stopped ({handle})")
            _clear_after_stop(c, job_id, handle)  # ended before the stop: a task may have written since
    return state(c, job_id)


def end(c: "Container", job_id: str, status: str, code: str, message: str) -> dict:
    """End a job that will not complete (:func:`beatsync.jobs.lifecycle.end`): the control call's answer."""
    lifecycle.end(c, job_id, status, code, message)
    return state(c, job_id)
