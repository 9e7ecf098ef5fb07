"""The documents a job is shown as: the accepted answer, the analyze and create statuses (with
signed output links), and a job's error. Import-light; used by the service (status routes) and by
:mod:`beatsync.jobs.lifecycle` (the webhook and Pub/Sub event carry the status document).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ..contracts import BeatMap, api
from ..errors import BeatsyncError, scrub
from ..joblog import audit
from .model import Job, now, seed_step

if TYPE_CHECKING:
    from ..container import Container

API = "/api/v1/beat-sync"
#: seconds of work per second of output video at 1080p on 2 cores (benchmarks/render_speed.py)
RENDER_SECONDS_PER_SECOND = 1.0
ASSUMED_SONG_SECONDS = 180.0
ANALYSIS_SECONDS = 15.0


def error_view(job: Job, public: bool = True) -> dict | None:
    """A job's error as every answer shows it (``details``: the ``field`` of the input it concerns, or
    null); ``public``: server paths scrubbed from the message (what callers see; the step answers to an
    orchestrator keep it whole)."""
    if not job.error:
        return None
    e = job.error
    return {"code": e.code, "message": scrub(e.message) if public else e.message,
            "details": {"field": e.field} if e.field else None}


_error = error_view


def estimate_seconds(job: Job) -> float:
    if job.type == "analyze":
        return ANALYSIS_SECONDS
    cfg = job.request.get("edit_config", {})
    seconds = cfg.get("preview_duration", 30) if cfg.get("preview_only") else ASSUMED_SONG_SECONDS
    return round(ANALYSIS_SECONDS + RENDER_SECONDS_PER_SECOND * seconds, 1)


def accepted_view(c: "Container", job: Job) -> dict:
    """``queue_position`` and ``estimated_duration`` count only the caller's own unfinished jobs
    submitted earlier: the local workers take callers in turn, so other callers' backlogs do not
    stand in front of this job (and stay private)."""
    active = [j for st in ("processing", "queued") for j in c.jobs.list(job.owner, status=st, limit=100)[0]]
    ahead = [j for j in active if j.created_at < job.created_at and j.job_id != job.job_id]
    waiting = sum(estimate_seconds(j) for j in ahead) / max(1, c.settings.workers)
    doc = api.JobAccepted(
        job_id=job.job_id, type=job.type, status=job.status, progress=job.progress, current_step=seed_step(job),
        estimated_duration=round(estimate_seconds(job) + waiting, 1), queue_position=len(ahead),
        status_url=f"{API}/{job.type}/{job.job_id}", created_at=job.created_at, updated_at=job.updated_at)
    return doc.model_dump(mode="json")


def _beat_map(c: "Container", key: str | None):
    if not key:
        return None
    try:
        return BeatMap.model_validate_json(c.blobs.get_bytes(key))
    except BeatsyncError:
        return None


def analyze_view(c: "Container", job: Job) -> dict:
    bm = _beat_map(c, (job.result or {}).get("beat_map_key")) if job.status == "completed" else None
    return api.AnalyzeStatus(
        job_id=job.job_id, status=job.status, progress=job.progress, current_step=seed_step(job),
        step_detail=job.current_step, created_at=job.created_at, updated_at=job.updated_at, beat_map=bm, error=_error(job),
        status_url=f"{API}/analyze/{job.job_id}", metrics=job.metrics).model_dump(mode="json")


def create_view(c: "Container", job: Job) -> dict:
    doc: dict[str, Any] = dict(
        job_id=job.job_id, status=job.status, progress=job.progress, current_step=seed_step(job),
        step_detail=job.current_step, created_at=job.created_at, updated_at=job.updated_at, started_at=job.started_at,
        completed_at=job.completed_at, error=_error(job), cancel_requested=job.cancel_requested,
        metrics=job.metrics)
    if job.status == "completed" and job.result:
        r, ttl = job.result, c.settings.url_ttl
        urls = {name: c.blobs.signed_url(r[key], ttl) for name, key in (
            ("output_url", "output_key"), ("thumbnail_url", "thumbnail_key"), ("beat_map_url", "beat_map_key"),
            ("edl_url", "edl_key"), ("otio_url", "otio_key")) if r.get(key)}
        timeline_keys = r.get("timeline_keys") or ({"otio": r["otio_key"]} if r.get("otio_key") else {})
        urls["timeline_urls"] = {fmt: c.blobs.signed_url(key, ttl) for fmt, key in timeline_keys.items()}
        expires = now() + timedelta(seconds=ttl)
        warnings = r.get("warnings", [])
        result = {**urls, "preview_url": urls["output_url"] if r.get("preview") else None,
                  "duration": r["duration"], "file_size": r["file_size"], "total_cuts": r["total_cuts"],
                  "warnings": warnings, "processing_time": r["processing_time"], "expires_at": expires}
        doc.update(output_url=urls["output_url"], preview_url=result["preview_url"], thumbnail_url=urls["thumbnail_url"],
                   duration=r["duration"], file_size=r["file_size"], total_cuts=r["total_cuts"], warnings=warnings,
                   beat_map=_beat_map(c, r["beat_map_key"]), processing_time_seconds=r["processing_time"],
                   expires_at=expires, result=result)
        audit("output.url", owner=job.owner, job_id=job.job_id)
    return api.CreateStatus(**doc).model_dump(mode="json")


def view(c: "Container", job: Job) -> dict:
    return create_view(c, job) if job.type == "create" else analyze_view(c, job)
