"""HTTP contract of ``/api/v1/beat-sync/...`` (mirrors the request and response files in ``schemas/``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from ._base import Model
from .beat_map import BeatMap, Method  # Method: the one list of analysis methods
from .edit import EditWarning, Fit, OutputFormat, PresetName, SyncMode, TimelineFormat, TransitionStyle

Status = Literal["queued", "processing", "completed", "failed", "cancelled"]
#: ``current_step``: the seed's step names while processing, the status otherwise
Step = Literal["queued", "downloading", "analyzing", "composing", "uploading", "completed", "failed", "cancelled"]
STEP_DOC = ("The seed's step names while processing (downloading, analyzing, composing, uploading); "
            "the status otherwise.")
DETAIL_DOC = "The project's finer step (e.g. checking, render, motion); current_step is its seed-level name."
Url = Field(min_length=1, max_length=4096, pattern=r"^(https?|gs|upload)://")
UrlStr = Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^(https?|gs|upload)://")]


class AnalyzeRequest(Model):
    """POST /analyze as JSON (an upload sends the same fields as form fields beside ``audio_file``)."""

    audio_url: str = Url
    method: Method | None = Field(None, description="Beat tracker; default: the service's setting (beatnet). madmom and hybrid run non-commercial models: refused unless the operator allows them.")
    fps: int = Field(30, ge=15, le=60, description="Video frame rate used for beat frame numbers.")


Resolution = (Annotated[str, Field(pattern=r"^[1-9][0-9]{1,3}x[1-9][0-9]{1,3}$")]
              | Annotated[list[Annotated[int, Field(ge=16, le=4096)]], Field(min_length=2, max_length=2)])


class CreateConfig(Model):
    """Overrides of the preset (or of the defaults); omitted fields keep the preset's values."""

    sync_mode: SyncMode | None = None
    strength_threshold: float | None = Field(None, ge=0, le=1)
    transition_style: TransitionStyle | None = None
    transition_duration: float | None = Field(None, ge=0, le=2)
    output_resolution: Resolution | None = Field(
        None, description="'WxH' or [width, height] (as in the seed API); within the x-output-size rule.")
    output_fps: int | None = Field(None, ge=15, le=60)
    output_format: OutputFormat | None = None
    fit: Fit | None = None
    min_shot_duration: float | None = Field(None, ge=0.1, le=10)
    section_aware: bool | None = None
    punch: bool | None = None


    @field_validator("output_resolution")
    @classmethod
    def _output_size(cls, value):
        return _check_output_size(value)


def _check_output_size(value):
    from .schemas import output_size_problem, output_size_rule

    problem = output_size_problem(value, output_size_rule()) if value is not None else None
    if problem:
        raise ValueError(problem)
    return value


class CreateRequest(Model):
    audio_url: str = Url
    video_urls: list[UrlStr] = Field(min_length=1, max_length=20)
    config: CreateConfig | None = None
    preset: PresetName | None = None
    preview_only: bool = False
    preview_duration: float = Field(30, ge=5, le=120)
    timelines: list[TimelineFormat] = Field(
        default_factory=list, max_length=4,
        description="Timelines for an editor, besides edit.otio (always written): each one an output with its "
                    "signed URL in the result's timeline_urls.")
    webhook_url: str | None = Field(None, min_length=1, max_length=4096, pattern=r"^https?://")
    method: Method | None = None
    callback_topic: str | None = Field(
        None, min_length=1, max_length=255, pattern=r"^(projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/topics/)?[A-Za-z][A-Za-z0-9._~%+-]{2,254}$",
        description="Pub/Sub topic (a name in the service's project, or projects/P/topics/T) that receives the "
                    "job's events: processing, completed, failed, cancelled.")


class ApiError(Model):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    message: str
    details: dict[str, Any] | None = None


class ErrorResponse(Model):
    error: ApiError


class Upload(Model):
    """201 answer of POST /uploads: a stored media file of the caller's, named by upload_url in a create or analyze request in place of a URL."""

    upload_url: str = Field(pattern=r"^upload://[0-9a-f]{64}\.[a-z0-9]{1,5}$", description="Put this in audio_url or video_urls; only the caller that uploaded the file may use it. Kept until a job that used it ends, or about an hour unused.")
    filename: str = Field(description="The name the file was uploaded with.")
    size: int = Field(ge=1, description="Bytes.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class JobAccepted(Model):
    """202 answer of POST /create (and of POST /analyze when the result is not ready in time)."""

    job_id: str
    type: Literal["create", "analyze"]
    status: Status
    progress: float = Field(ge=0, le=100)
    current_step: Step = Field(description=STEP_DOC)
    estimated_duration: float = Field(ge=0, description="Seconds until the job should be done.")
    queue_position: int = Field(ge=0, description="Jobs ahead of this one (0: running or next).")
    status_url: str
    created_at: datetime
    updated_at: datetime


class VideoResult(Model):
    output_url: str
    preview_url: str | None = None
    thumbnail_url: str
    beat_map_url: str
    edl_url: str
    otio_url: str | None = Field(None, description="edit.otio: the cut as an OpenTimelineIO timeline (null for jobs rendered before it existed).")
    timeline_urls: dict[TimelineFormat, str] = Field(
        default_factory=dict, description="Each timeline written (edit.otio, and those the request's timelines asked "
                                          "for): its signed URL, by format.")
    duration: float = Field(ge=0)
    file_size: int = Field(ge=0)
    total_cuts: int = Field(ge=0)
    warnings: list[EditWarning]
    processing_time: float = Field(ge=0)
    expires_at: datetime


class JobMetrics(Model):
    """What one job cost (the seed's ``metrics``, plus bytes and the beat-map cache); a field is
    null until the step that measures it has run."""

    download_time_ms: int | None = Field(None, ge=0, description="Fetching the inputs.")
    analysis_time_ms: int | None = Field(None, ge=0, description="Beat analysis (near 0 on a cache hit).")
    composition_time_ms: int | None = Field(None, ge=0, description="Planning, rendering and uploading.")
    processing_time_ms: int | None = Field(None, ge=0, description="From start of processing to the end.")
    bytes_in: int | None = Field(None, ge=0, description="Bytes of the song and clips fetched.")
    bytes_out: int | None = Field(None, ge=0, description="Bytes of the outputs written.")
    beat_map_cached: bool | None = Field(None, description="The beat map came from the cache.")
    clip_analysis_time_ms: int | None = Field(None, ge=0, description="Probing and analysing the clips for planning "
                                              "(motion, own shots; alongside the beat analysis).")
    clip_analysis_frames: int | None = Field(None, ge=0, description="Frames decoded for that analysis (0: every "
                                             "clip's analysis came from the cache).")


class CreateStatus(Model):
    """GET /create/{job_id}. When completed, the result fields are present at the top level (as the
    seed's VideoResultResponse) and again under ``result`` (as the seed's YAML)."""

    job_id: str
    status: Status
    progress: float = Field(ge=0, le=100)
    current_step: Step = Field(description=STEP_DOC)
    step_detail: str = Field(description=DETAIL_DOC)
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    error: ApiError | None = None
    cancel_requested: bool = False
    output_url: str | None = None
    preview_url: str | None = None
    thumbnail_url: str | None = None
    duration: float | None = Field(None, ge=0)
    file_size: int | None = Field(None, ge=0)
    total_cuts: int | None = Field(None, ge=0)
    warnings: list[EditWarning] = Field(
        default_factory=list, description="Where the request could not be honoured as asked (from the EDL); empty until completed.")
    beat_map: BeatMap | None = None
    processing_time_seconds: float | None = Field(None, ge=0)
    expires_at: datetime | None = None
    result: VideoResult | None = None
    metrics: JobMetrics = Field(default_factory=JobMetrics)


class AnalyzeStatus(Model):
    """POST /analyze (200 when finished in time, else 202) and GET /analyze/{job_id}."""

    job_id: str
    status: Status
    progress: float = Field(ge=0, le=100)
    current_step: Step = Field(description=STEP_DOC)
    step_detail: str = Field(description=DETAIL_DOC)
    created_at: datetime
    updated_at: datetime
    beat_map: BeatMap | None = None
    error: ApiError | None = None
    status_url: str
    metrics: JobMetrics = Field(default_factory=JobMetrics)


class CancelResponse(Model):
    success: bool
    message: str
    job_id: str
    status: Status


class JobSummary(Model):
    job_id: str
    type: Literal["create", "analyze"]
    status: Status
    progress: float = Field(ge=0, le=100)
    current_step: Step = Field(description=STEP_DOC)
    step_detail: str = Field(description=DETAIL_DOC)
    audio_url: str | None = None
    video_count: int = Field(ge=0)
    created_at: datetime
    completed_at: datetime | None = None
    output_url: str | None = Field(None, description="Signed link to the video of a completed create job (as in "
                                                     "its status); null otherwise.")
    error: ApiError | None = None
    user_id: str | None = Field(None, description="The end user the job is for (X-Beatsync-User-Id of a trusted "
                                                  "caller); null for the caller's own jobs.")


class JobList(Model):
    jobs: list[JobSummary]
    total: int = Field(ge=0)
    limit: int = Field(ge=1, le=100)
    offset: int = Field(ge=0)
    has_more: bool


class LogEntry(Model):
    time: str
    level: Literal["debug", "info", "warning", "error"]
    message: str


class JobLogs(Model):
    job_id: str
    logs: list[LogEntry]


class PresetConfig(Model):
    sync_mode: SyncMode
    strength_threshold: float = Field(ge=0, le=1)
    transition_style: TransitionStyle
    transition_duration: float = Field(ge=0, le=2)
    output_resolution: str
    output_fps: int = Field(ge=15, le=60)
    output_format: OutputFormat
    fit: Fit
    min_shot_duration: float
    section_aware: bool
    punch: bool


class PresetInfo(Model):
    name: str
    description: str
    config: PresetConfig


class PresetList(Model):
    presets: list[PresetInfo]


class TransitionInfo(Model):
    name: TransitionStyle
    description: str
    supports_duration: bool
    min_duration: float = Field(ge=0)
    max_duration: float = Field(ge=0)


class TransitionList(Model):
    transitions: list[TransitionInfo]


CheckState = Literal["ok", "error", "absent"]


class HealthChecks(Model):
    storage: CheckState
    job_store: CheckState
    ffmpeg: CheckState
    librosa: CheckState
    madmom: CheckState


class Health(Model):
    status: Literal["healthy", "degraded", "unhealthy"]
    service: Literal["beat-sync"]
    version: str
    checks: HealthChecks
    details: dict[str, str]


class ServiceInfo(Model):
    status: Literal["ok", "degraded"]
    service: Literal["beat-sync"]
    version: str
    docs: str


class WebhookEvent(Model):
    """POSTed to ``webhook_url`` with an ``X-Beatsync-Signature`` header (see the README), and
    published to a create request's ``callback_topic`` with the signature as a message attribute
    (there ``processing`` too)."""

    id: str = Field(pattern=r"^[0-9a-f]{32}$")
    event: Literal["beat_sync.job.processing", "beat_sync.job.completed", "beat_sync.job.failed",
                   "beat_sync.job.cancelled"]
    created_at: datetime
    job_id: str
    status: Literal["processing", "completed", "failed", "cancelled"]
    data: CreateStatus | AnalyzeStatus


class StepRequest(Model):
    """Body of the internal step calls (POST /internal/analyze, /internal/compose)."""

    job_id: str = Field(pattern=r"^[0-9a-f]{32}$")


class StepResponse(Model):
    job_id: str
    step: Literal["analyze", "compose"]
    status: Status
    done: bool = Field(description="True when this step's work is finished (or the job ended).")
    cancel_requested: bool
    progress: float = Field(ge=0, le=100)
    current_step: str
    error: ApiError | None = None


class DailyStats(Model):
    """One UTC day of ended jobs (the seed's ``beat_sync_analytics/daily_stats/{date}``); a job is
    counted once, on the day it ended."""

    date: str = Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
    total_jobs: int = Field(ge=0)
    completed_jobs: int = Field(ge=0)
    failed_jobs: int = Field(ge=0)
    cancelled_jobs: int = Field(ge=0)
    total_processing_seconds: float = Field(ge=0)
    total_output_bytes: int = Field(ge=0)
    cache_hits: int = Field(ge=0, description="Jobs whose beat map came from the cache.")


class StatsResponse(Model):
    """GET /admin/stats and ``beatsync stats``: the days from ``from_date`` to ``to_date`` (both
    included, days without ended jobs left out) and their sum."""

    from_date: str = Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
    to_date: str = Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
    days: list[DailyStats]
    totals: DailyStats


class PubSubMessage(Model):
    model_config = {**Model.model_config, "extra": "ignore"}

    data: str = Field("", max_length=1 << 20, description="Base64 of the message body (a create request).")
    attributes: dict[str, str] | None = None
    messageId: str | None = Field(None, max_length=255)  # noqa: N815 - Pub/Sub's spelling
    message_id: str | None = Field(None, max_length=255)
    publishTime: str | None = None  # noqa: N815
    publish_time: str | None = None
    orderingKey: str | None = None  # noqa: N815
    ordering_key: str | None = None


class PubSubPush(Model):
    """The body Pub/Sub POSTs to a push endpoint."""

    model_config = {**Model.model_config, "extra": "ignore"}

    message: PubSubMessage
    subscription: str = Field(min_length=1, max_length=512)
    deliveryAttempt: int | None = Field(None, ge=0)  # noqa: N815


class PubSubPushResult(Model):
    """The push route's answer (2xx acknowledges the message)."""

    acknowledged: bool
    job_id: str | None = None
    created: bool = Field(False, description="False when the message was seen before (a redelivery).")
    dead_lettered: bool = Field(False, description="The message can never succeed; it was sent to the dead-letter topic.")
    error: ApiError | None = None
