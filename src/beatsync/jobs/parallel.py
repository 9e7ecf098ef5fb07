"""The compose step as parallel tasks (one Cloud Run job execution with N tasks, or N local processes).

Blob keys, all under ``temp/{job_id}/`` (the bucket's lifecycle rule deletes what a crash leaves):

- ``plan.json``: the EDL, per-shot work estimates and the segments, made once by the analyze step
  (so every task renders the same plan) with ``tasks`` = the fewest whose render is predicted to take
  at most ``render_target_seconds``, at most one per ``render_task_seconds`` of output and at most
  ``render_max_tasks`` (:func:`beatsync.render.segments.task_count`);
- ``execution.json``: the compose execution the analyze step started *before* planning (the deployed
  workflow, ``compose_early_start``): its handle and task count, chosen the same way from the song's
  declared length. Its tasks start, fetch the clips and wait for ``plan.json`` (:func:`wait_for_plan`)
  while the song and the clips are analysed; the plan is then split into exactly that many segments,
  and the workflow's first compose attempt adopts the execution instead of starting one;
- ``audio.{m4a|webm}``: the song's window, encoded once by the analyze step right after the plan
  (:func:`encode_audio`; a plan of several tasks only) for the merge to copy;
- ``seg-{N}-{i}.{mp4|webm}`` (the segment's video), ``seg-{N}-{i}.jpg`` (its best thumbnail
  candidate) and ``seg-{N}-{i}.json`` (written last: the segment's completion marker), for task
  ``i`` of ``N``; ``progress-{N}-{i}.json``: frames rendered so far.

A task (:func:`run_task`) renders its segment and exits; one whose marker exists returns at once, so a
retried execution renders only the missing segments. :func:`run_merge` runs only when every marker is
present, joins the segments and the song's audio by stream copy, uploads the outputs and
``result.json`` last, completes the job and deletes ``temp/{job_id}/``; called again after that it finds
``result.json`` and renders nothing. The job's progress is the sum over the tasks (:func:`progress`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from typing import TYPE_CHECKING, Callable

from .. import keys
from ..contracts import BeatMap, EditConfig, EditDecisionList
from ..errors import RenderCancelled, SegmentsMissing
from ..ports import BlobNotFound
from . import lifecycle
from .inputs import fetch, input_keys, local_inputs
from .lifecycle import CANCEL_POLL, end_job, remove_temp, settle, state  # noqa: F401 - remove_temp: re-export

if TYPE_CHECKING:
    from ..container import Container
    from .model import Job

TASK_REPORT_EVERY = 2.0  # seconds between a task's progress writes (GCS: one write per second per object)
STALE_REPORT = 3 * TASK_REPORT_EVERY  # an unfinished task silent for longer gives no time estimate
LOCAL_POLL = 0.5


plan_key = keys.plan
_seg_key = keys.segment
_progress_key = keys.task_progress


def make_plan(c: "Container", job: "Job", clips: list[str], beat_map, report=None, analysed=None,
              tasks: int | None = None) -> dict:
    """Plan the edit once and store it with its segments (the analyze step, create jobs). ``analysed``:
    the clips' probes and analyses if already made (:func:`beatsync.render.pipeline.analyse_clips`);
    ``tasks``: the task count of an execution already started (:func:`start_early`), else chosen here."""
    from ..render.pipeline import plan_edit  # heavy (numpy): the render modules only where a step runs
    from ..render.segments import segments_json, shot_costs, split, task_count

    config = EditConfig.model_validate(job.request["edit_config"])
    edl, probes = plan_edit(beat_map, clips, config, max_clip_pixels=c.settings.max_clip_pixels, progress=report,
                            analysed=analysed)
    costs = shot_costs(edl, probes)
    wanted = tasks or task_count(edl.total_frames / edl.fps, c.settings.render_task_seconds,
                                 c.settings.render_max_tasks, c.settings.render_target_seconds,
                                 pixels_per_second=edl.width * edl.height * edl.fps)
    segments = split(edl, costs, wanted, probes)
    # an execution already started keeps its count (a task past the last segment has nothing to do)
    plan = {"edl": edl.model_dump(mode="json"), "costs": costs, "tasks": tasks or len(segments),
            "segments": segments_json(segments), "created": time.time(),
            "clip_rates": [p.fps for p in probes]}  # the timelines' in-points (render/timelines.py)
    c.blobs.put_bytes(plan_key(job.job_id), json.dumps(plan).encode(), "application/json")
    return plan


def early_tasks(c: "Container", job: "Job", song: str) -> int | None:
    """The task count :func:`make_plan` would choose, from the song's declared length and the edit
    config (the output is the whole song, or the preview); None when the song declares no length."""
    from ..analysis.decode import declared_duration
    from ..render.segments import task_count

    seconds = declared_duration(song)
    if seconds is None:
        return None
    config = EditConfig.model_validate(job.request["edit_config"])
    seconds = min(seconds, c.settings.max_audio_duration)
    if config.preview_only:
        seconds = min(seconds, config.preview_duration)
    w, h = config.size
    return task_count(seconds, c.settings.render_task_seconds, c.settings.render_max_tasks,
                      c.settings.render_target_seconds, pixels_per_second=w * h * config.output_fps)


def early_execution(c: "Container", job_id: str) -> dict | None:
    """The execution :func:`start_early` started for ``job_id`` (``handle``, ``tasks``), if any."""
    try:
        return json.loads(c.blobs.get_bytes(keys.compose_execution(job_id)))
    except (BlobNotFound, ValueError):
        return None


def start_early(c: "Container", job: "Job", song: str) -> dict | None:
    """Start the compose execution before the plan exists (once: a retried analyze call finds it)."""
    started = early_execution(c, job.job_id)
    if started is not None:
        return started
    tasks = early_tasks(c, job, song)
    if tasks is None:
        c.jobs.add_log(job.job_id, "compose not started early: the song declares no length")
        return None
    handle = c.runner.start(job.job_id, tasks=tasks)
    started = {"handle": handle, "tasks": tasks, "started": time.time()}
    try:
        c.blobs.put_bytes(keys.compose_execution(job.job_id), json.dumps(started).encode(), "application/json")
        c.jobs.add_log(job.job_id, f"compose started before the plan ({handle}), {tasks} task{'s' * (tasks > 1)}")
    except BaseException:
        c.runner.stop(handle)  # not recorded: nothing could adopt or stop it later
        raise
    return started


def stop_early(c: "Container", job_id: str, started: dict) -> None:
    """Stop the execution :func:`start_early` started (the analysis failed or was cancelled)."""
    c.runner.stop(started["handle"])
    c.jobs.add_log(job_id, f"compose stopped before the plan ({started['handle']})")


PLAN_POLL = 0.5  # seconds between a waiting task's looks for the plan


def plan_wait_seconds(c: "Container", job: "Job") -> float:
    """How long a task started before the plan waits for it: what the analyze step may take."""
    return lifecycle.analysis_budget(c, job)


def wait_if_started_early(c: "Container", job: "Job",
                          prefetch: dict[str, str] | None = None) -> tuple[bool, dict | None]:
    """``(started early, plan)`` for a task that found no plan: if its execution was started before the
    plan (:func:`start_early`), the plan waited for (None: the job ended meanwhile), with ``prefetch``
    (blob key -> local path) downloaded while waiting."""
    if early_execution(c, job.job_id) is None:
        return False, None
    return True, wait_for_plan(c, job, prefetch)


def wait_for_plan(c: "Container", job: "Job", prefetch: dict[str, str] | None = None) -> dict | None:
    """Wait for ``plan.json`` (None if the job ends meanwhile), reading the cancel flag every
    :data:`CANCEL_POLL` seconds, within :func:`plan_wait_seconds` (then :class:`SegmentsMissing`: the
    task is retried). ``prefetch``: blob key -> local path of inputs to download while waiting."""
    deadline = time.monotonic() + plan_wait_seconds(c, job)
    todo = [(key, local) for key, local in (prefetch or {}).items() if not os.path.exists(local)]
    last_poll = time.monotonic()
    while True:
        plan = load_plan(c, job.job_id)
        if plan is not None:
            return plan
        if todo:  # one input per look: the plan and the cancel flag stay watched
            _prefetch(c, *todo.pop(0))
        now = time.monotonic()
        if now - last_poll >= CANCEL_POLL:
            last_poll = now
            if _ended_while_waiting(c, job.job_id):
                return None
        if now > deadline:
            raise SegmentsMissing(f"job {job.job_id}: no render plan after {plan_wait_seconds(c, job):.0f} s")
        if not todo:
            time.sleep(PLAN_POLL)


def _prefetch(c: "Container", key: str, local: str) -> None:
    """An input the analyze step stored, brought here whole or not at all (a retried task skips it)."""
    if c.blobs.exists(key):
        c.blobs.get_file(key, local + ".part")
        os.replace(local + ".part", local)


def _ended_while_waiting(c: "Container", job_id: str) -> bool:
    job = c.jobs.get(job_id)
    return job.terminal or job.cancel_requested
def encode_audio(c: "Container", job_id: str, song: str, plan: dict,
                 should_stop: Callable[[], bool] | None = None) -> bool:
    """The song's window encoded once, right after the plan (the analyze step), into
    ``temp/{job_id}/audio.{m4a|webm}``: the merge copies its packets instead of encoding them on the
    critical path (:func:`run_merge`). Only for a plan of several tasks (a one-task render encodes its
    audio as it renders). False if ``should_stop()`` turned true meanwhile (nothing written)."""
    if plan["tasks"] <= 1:
        return True
    from ..render.encode import AUDIO_FILE_EXT, encode_audio as encode  # heavy (av)

    edl = planned_edl(plan)
    ext = AUDIO_FILE_EXT[edl.output_format]
    local = os.path.join(lifecycle.workdir(job_id), f"encoded-audio.{ext}")
    try:
        encode(edl, song, local, should_stop=should_stop)
    except RenderCancelled:
        return False
    try:
        c.blobs.put_file(keys.song_audio(job_id, ext), local, f"audio/{'mp4' if ext == 'm4a' else ext}")
    finally:
        os.unlink(local)
    return True


def load_plan(c: "Container", job_id: str) -> dict | None:
    try:
        return json.loads(c.blobs.get_bytes(plan_key(job_id)))
    except BlobNotFound:
        return None


def planned_tasks(c: "Container", job_id: str) -> int:
    plan = load_plan(c, job_id)
    return int(plan["tasks"]) if plan else 1


def planned_edl(plan: dict) -> EditDecisionList:
    """The edit decision list the analyze step planned."""
    return EditDecisionList.model_validate(plan["edl"])


def _segments(plan: dict, count: int):
    from ..render.segments import segments_from_json, split

    if count == plan["tasks"]:
        return segments_from_json(plan["segments"])
    return split(planned_edl(plan), plan["costs"], count)  # an execution started with another count


def _task_reports(c: "Container", job_id: str, plan: dict) -> list[dict]:
    reports = []
    for key in c.blobs.list(keys.task_progress_prefix(job_id, plan["tasks"])):
        try:
            reports.append(json.loads(c.blobs.get_bytes(key)))
        except (BlobNotFound, ValueError):
            continue
    return reports


def progress(c: "Container", job_id: str, plan: dict | None = None) -> float | None:
    """The job's compose progress (25-97 %) from the tasks' frame counts; None for a one-task render."""
    plan = plan or load_plan(c, job_id)
    if not plan or plan["tasks"] <= 1:
        return None
    done = sum(float(r.get("frames", 0.0)) for r in _task_reports(c, job_id, plan))
    total = plan["edl"]["total_frames"]
    return 25.0 + 72.0 * min(1.0, done / total)


def remaining_seconds(c: "Container", job_id: str, plan: dict | None = None,
                      now: float | None = None) -> float | None:
    """Seconds until the slowest task of a parallel render is done, from each task's own rate
    (frames rendered since it started); None while any task has not reported yet, or for a
    one-task render. The workflow polls again after about this long (never later than its poll
    interval), so a finished render waits about a second for its merge, not half an interval."""
    plan = plan or load_plan(c, job_id)
    if not plan or plan["tasks"] <= 1:
        return None
    reports = [r for r in _task_reports(c, job_id, plan) if "started" in r and "at" in r and "total" in r]
    if len(reports) < len(plan["segments"]):  # every task with a segment has reported
        return None
    now = time.time() if now is None else now
    if any(now - float(r["at"]) > STALE_REPORT for r in reports if float(r["frames"]) < float(r["total"])):
        return None  # a task stopped reporting (died, or its retry is starting): no estimate
    worst = 0.0
    for r in reports:
        left = float(r["total"]) - float(r["frames"])
        if left <= 0:
            continue
        elapsed = float(r["at"]) - float(r["started"])
        if r["frames"] <= 0 or elapsed <= 0:
            return None
        worst = max(worst, left * elapsed / float(r["frames"]) - (now - float(r["at"])))
    return max(0.0, worst)


def segments_ready(c: "Container", job_id: str, plan: dict | None = None) -> bool:
    """Every segment of a parallel render is written (its marker, written last, is there): the merge
    can run, whether or not the execution has reported its end yet."""
    plan = plan or load_plan(c, job_id)
    if not plan or plan["tasks"] <= 1:
        return False
    count = plan["tasks"]
    return all(c.blobs.exists(_seg_key(job_id, count, s.index, "json")) for s in _segments(plan, count))


class _TaskReporter:
    """A task's progress (its own object, throttled) and the job's cancel flag (polled)."""

    def __init__(self, c: "Container", job_id: str, count: int, index: int, frames: int):
        self.c, self.job_id, self.key, self.frames = c, job_id, _progress_key(job_id, count, index), frames
        self.poll_every = CANCEL_POLL
        self._last_report = self._last_poll = 0.0
        self.cancelled = False
        self.started = time.time()  # wall clock: read by another machine (remaining_seconds)

    def __call__(self, pct: float, step: str) -> None:
        t = time.monotonic()
        if t - self._last_report >= TASK_REPORT_EVERY or pct >= 100:
            self._last_report = t
            report = {"frames": self.frames * pct / 100.0, "total": self.frames, "started": self.started,
                      "at": time.time()}
            self.c.blobs.put_bytes(self.key, json.dumps(report).encode(), "application/json")

    def should_stop(self) -> bool:
        t = time.monotonic()
        if not self.cancelled and t - self._last_poll >= self.poll_every:
            self._last_poll = t
            job = self.c.jobs.get(self.job_id)
            self.cancelled = job.cancel_requested or job.terminal
        return self.cancelled


def run_task(c: "Container", job_id: str, index: int, count: int) -> dict:
    """Task ``index`` of ``count``: render that segment's video into ``temp/{job_id}/``."""
    job = c.jobs.get(job_id)
    if job.terminal:
        return state(c, job_id)
    if job.cancel_requested:
        lifecycle.cancelled(c, job_id)
        return state(c, job_id)
    work = None
    try:
        _, clip_keys = input_keys(job)
        work = os.path.join(lifecycle.workdir(job_id), f"task-{count}-{index}")
        os.makedirs(work, exist_ok=True)
        plan = load_plan(c, job_id)
        if plan is None:
            early, plan = wait_if_started_early(c, job, {k: os.path.join(work, os.path.basename(k))
                                                         for k in clip_keys})
            if early and plan is None:  # the job ended (cancelled, failed) while this task waited
                return state(c, job_id)
            if plan is None:
                raise SegmentsMissing(f"job {job_id} has no render plan (temp/{job_id}/plan.json)")
        segments = _segments(plan, count)
        if index >= len(segments):
            return state(c, job_id)
        seg = segments[index]
        marker = _seg_key(job_id, count, index, "json")
        if c.blobs.exists(marker):
            c.jobs.add_log(job_id, f"compose task {index + 1}/{count}: segment already rendered")
            return state(c, job_id)
        from ..render.probe import probe_clip
        from ..render.segments import render_segment

        edl = planned_edl(plan)
        # the clips this segment shows (the shot before it too: a transition at its start shows it)
        used = {s.clip for s in edl.shots if s.end_frame >= seg.start and s.start_frame < seg.end}
        probes = []
        for i, (url, key) in enumerate(zip(job.request["video_urls"], clip_keys)):
            if i not in used:
                probes.append(None)
                with contextlib.suppress(FileNotFoundError):  # fetched while waiting: not needed here
                    os.remove(os.path.join(work, os.path.basename(key)))
                continue
            local = os.path.join(work, os.path.basename(key))
            fetch(c, url, key, local, uploads=job.request.get("upload_keys"))
            probes.append(probe_clip(local, max_pixels=c.settings.max_clip_pixels))
        attempt = os.environ.get("CLOUD_RUN_TASK_ATTEMPT", "0")
        c.jobs.add_log(job_id, f"compose task {index + 1}/{count} started: frames {seg.start}-{seg.end} "
                               f"(attempt {attempt}, pid {os.getpid()})")
        report = _TaskReporter(c, job_id, count, index, seg.frames)
        video = os.path.join(work, f"segment.{edl.output_format}")
        thumb = os.path.join(work, "thumbnail.jpg")
        started, cpu = time.monotonic(), time.process_time()
        try:
            r = render_segment(edl, probes, seg, video, thumbnail_path=thumb, progress=report,
                               should_stop=report.should_stop)
        except RenderCancelled:
            lifecycle.cancelled(c, job_id)
            return state(c, job_id)
        keys = [_seg_key(job_id, count, index, edl.output_format)]
        c.blobs.put_file(keys[0], video, f"video/{edl.output_format}")
        if r.thumbnail_score >= 0:
            keys.append(_seg_key(job_id, count, index, "jpg"))
            c.blobs.put_file(keys[-1], thumb, "image/jpeg")
        manifest = {"index": index, "start": seg.start, "end": seg.end, "frames": r.frames,
                    "thumbnail_score": r.thumbnail_score, "decoded_frames": r.decoded_frames,
                    "cpu_s": round(time.process_time() - cpu, 3), "wall_s": round(time.monotonic() - started, 3)}
        report(100.0, "render")  # before the marker: a merge it lets run deletes temp/, progress included
        c.blobs.put_bytes(marker, json.dumps(manifest).encode(), "application/json")
        c.jobs.add_log(job_id, f"compose task {index + 1}/{count} rendered frames {seg.start}-{seg.end} in "
                               f"{manifest['wall_s']:.1f} s")
        if c.jobs.get(job_id).terminal and c.jobs.get(job_id).status != "completed":
            remove_temp(c, job_id)  # ended while uploading: what this task wrote goes too
        return state(c, job_id)
    except Exception as exc:  # noqa: BLE001 - sorted by settle: transient errors propagate (task retried)
        return settle(c, job, "compose", exc)
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)


def run_merge(c: "Container", job_id: str) -> dict:
    """Join the segments once every one is present; ``{..state, "merged": bool, "missing": [...]}``."""
    job = c.jobs.get(job_id)
    if job.terminal:
        return {**state(c, job_id), "merged": job.status == "completed", "missing": []}
    result_key = keys.result(job_id)
    if c.blobs.exists(result_key):  # merged by an attempt that died before completing: nothing to redo
        result = json.loads(c.blobs.get_bytes(result_key))
        end_job(c, job_id, "completed", result=result)  # removes temp/{id}/
        return {**state(c, job_id), "merged": True, "missing": []}
    plan = load_plan(c, job_id)
    if plan is None or plan["tasks"] <= 1:
        return {**state(c, job_id), "merged": False, "missing": []}
    count = plan["tasks"]
    segments = _segments(plan, count)
    missing = [s.index for s in segments if not c.blobs.exists(_seg_key(job_id, count, s.index, "json"))]
    if missing:
        c.jobs.add_log(job_id, f"merge: segments {missing} of {count} missing; not merging")
        return {**state(c, job_id), "merged": False, "missing": missing}
    if job.cancel_requested:
        lifecycle.cancelled(c, job_id)
        return {**state(c, job_id), "merged": False, "missing": []}
    try:
        from ..render.segments import merge

        c.jobs.report(job_id, 97.0, "merging")
        started = time.monotonic()
        from ..render.encode import AUDIO_FILE_EXT

        edl = planned_edl(plan)
        work = os.path.join(lifecycle.workdir(job_id), "merge")
        os.makedirs(work, exist_ok=True)
        ext = AUDIO_FILE_EXT[edl.output_format]
        song, encoded = None, os.path.join(work, f"audio.{ext}")
        try:  # the song's window, encoded by the analyze step (encode_audio): copied, not encoded again
            c.blobs.get_file(keys.song_audio(job_id, ext), encoded)
        except BlobNotFound:
            encoded = None
            c.jobs.add_log(job_id, f"merge: no encoded audio ({keys.song_audio(job_id, ext)}: a plan made before "
                                   "it was stored); encoding the song's window here", "warning")
            song, _ = local_inputs(c, job, lambda pct, step: None, with_clips=False)
        parts, manifests = [], []
        for s in segments:
            local = os.path.join(work, f"seg-{s.index:03d}.{edl.output_format}")
            c.blobs.get_file(_seg_key(job_id, count, s.index, edl.output_format), local)
            parts.append((s, local))
            manifests.append(json.loads(c.blobs.get_bytes(_seg_key(job_id, count, s.index, "json"))))
        config = EditConfig.model_validate(job.request["edit_config"])
        name = ("preview" if config.preview_only else "output") + "." + config.output_format
        out = os.path.join(work, name)
        merged = merge(edl, song, parts, out, audio=encoded)
        best = max(manifests, key=lambda m: m["thumbnail_score"])
        thumb = os.path.join(work, "thumbnail.jpg")
        c.blobs.get_file(_seg_key(job_id, count, best["index"], "jpg"), thumb)
        edl_path = os.path.join(work, "edl.json")
        with open(edl_path, "w") as fh:
            fh.write(edl.to_json())
        prefix = keys.outputs(job_id)
        from ..render.pipeline import timeline_media, write_timelines  # opentimelineio
        from . import timelines as _timelines

        beat_map = BeatMap.model_validate_json(c.blobs.get_bytes(prefix + "beat_map.json"))
        fmts = _timelines.formats(job.request)
        paths = _timelines.local_paths(work, fmts)
        media = timeline_media(job.request["audio_url"], list(job.request["video_urls"]),
                               rates=plan.get("clip_rates"))  # a plan stored before them: none
        notes = write_timelines(edl, beat_map, media, paths, fmts)
        c.blobs.put_file(prefix + "thumbnail.jpg", thumb, "image/jpeg")
        c.blobs.put_file(prefix + "edl.json", edl_path, "application/json")
        timelines = _timelines.publish(c, job_id, fmts, paths, notes)
        c.blobs.put_file(prefix + name, out, f"video/{config.output_format}")
        elapsed = time.time() - plan["created"]
        result = {"output_key": prefix + name, "thumbnail_key": prefix + "thumbnail.jpg",
                  "beat_map_key": prefix + "beat_map.json", "edl_key": prefix + "edl.json",
                  "otio_key": timelines["otio_key"], "timeline_keys": timelines["timeline_keys"],
                  "warnings": edl.model_dump(mode="json")["warnings"] + timelines["timeline_warnings"],
                  "preview": config.preview_only, "duration": round(merged.duration, 3),
                  "file_size": merged.file_size, "total_cuts": len(edl.cut_frames),
                  "processing_time": round(elapsed, 3)}
        c.blobs.put_bytes(result_key, json.dumps(result).encode(), "application/json")
        # composition: from the plan (end of analysis) to the merged upload; bytes out: what the job publishes
        c.jobs.record_metrics(job_id, {"composition_time_ms": int((time.time() - plan["created"]) * 1000),
                                       "bytes_out": sum(os.path.getsize(p) for p in (thumb, edl_path, *paths, out))
                                       + len(c.blobs.get_bytes(prefix + "beat_map.json"))})
        c.jobs.add_log(job_id, f"rendered {merged.duration:.1f} s, {len(edl.shots)} shots, {merged.file_size} bytes "
                               f"in {elapsed:.1f} s ({count} tasks, joined in {time.monotonic() - started:.1f} s)")
        # cancelled at the last moment: end_job removes the outputs; temp/ and the work folder go either way
        job = end_job(c, job_id, "completed", result=result)
        return {**state(c, job_id), "merged": job.status == "completed", "missing": []}
    except Exception as exc:  # noqa: BLE001 - sorted by settle
        return {**settle(c, job, "compose", exc), "merged": False, "missing": []}


def run_local(c: "Container", job_id: str, plan: dict) -> dict:
    """One machine: the plan's tasks as processes through the compose runner, waited for (progress
    summed, cancel flag watched), then the merge. Missing segments raise :class:`SegmentsMissing`
    (transient: the orchestrator retries the step, and only the missing segments render)."""
    handle = c.runner.start(job_id, tasks=plan["tasks"])
    c.jobs.add_log(job_id, f"compose: {plan['tasks']} tasks started ({handle})")
    try:
        while c.runner.state(handle) == "running":
            time.sleep(LOCAL_POLL)
            job = c.jobs.get(job_id)
            if job.terminal or job.cancel_requested:
                c.runner.stop(handle)
                if not job.terminal:
                    lifecycle.cancelled(c, job_id)
                remove_temp(c, job_id)
                return state(c, job_id)
            pct = progress(c, job_id, plan)
            if pct is not None:
                c.jobs.report(job_id, pct, "rendering")
    finally:
        if c.runner.state(handle) == "running":
            c.runner.stop(handle)
    out = run_merge(c, job_id)
    if not out["merged"] and out["status"] == "processing":
        raise SegmentsMissing(f"segments {out['missing']} were not rendered")
    return out
