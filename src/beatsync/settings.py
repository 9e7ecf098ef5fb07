"""Settings: explicit argument, then ``BEATSYNC_*`` environment variable, then local default.

Only :mod:`beatsync.bootstrap`-style composition code and CLIs read settings; the pure core
takes plain arguments.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "beatsync"


def _default_data_dir() -> Path:
    return Path.cwd() / ".beatsync"


@dataclass(frozen=True)
class Settings:
    #: local blob store / job database root (``BEATSYNC_DATA_DIR``)
    data_dir: Path
    #: caches that are safe to delete: beat maps (locally), numba JIT (``BEATSYNC_CACHE_DIR``)
    cache_dir: Path
    #: longest song accepted, in seconds (``BEATSYNC_MAX_AUDIO_DURATION``)
    max_audio_duration: float = 15 * 60.0
    #: default analysis method (``BEATSYNC_ANALYSIS_METHOD``): ``beatnet`` (BeatNet's CC BY 4.0 models)
    analysis_method: str = "beatnet"
    #: the operator acknowledges that madmom's models are licensed CC BY-NC-SA 4.0 (non-commercial):
    #: only then may the ``madmom`` and ``hybrid`` methods run (``BEATSYNC_ALLOW_NONCOMMERCIAL_MODELS=1``)
    allow_noncommercial_models: bool = False
    #: ``local`` (a folder under data_dir) or ``gcs`` (``BEATSYNC_BLOB_STORE``)
    blob_store: str = "local"
    #: GCS bucket for media when blob_store is gcs (``BEATSYNC_BUCKET``)
    bucket: str = ""
    #: ``sqlite`` (data_dir/jobs.db) or ``firestore`` (``BEATSYNC_JOB_STORE``)
    job_store: str = "sqlite"
    #: Firestore collection for jobs (``BEATSYNC_FIRESTORE_COLLECTION``)
    firestore_collection: str = "beatsync_jobs"
    #: days a job document is kept in Firestore (its TTL policy; ``BEATSYNC_JOB_TTL_DAYS``)
    job_ttl_days: int = 90
    #: service account whose OIDC token webhook tasks carry, for receivers that require one
    #: (``BEATSYNC_TASKS_SERVICE_ACCOUNT``; empty: none)
    tasks_service_account: str = ""
    #: Google Cloud project; empty = the client's default (``BEATSYNC_PROJECT``)
    project: str = ""
    #: fake-gcs-server URL for local runs and tests (``BEATSYNC_GCS_ENDPOINT``)
    gcs_endpoint: str = ""
    #: ``local`` (worker threads in this process) or ``workflows`` (``BEATSYNC_ORCHESTRATOR``)
    orchestrator: str = "local"
    #: Cloud Workflows workflow id and region (``BEATSYNC_WORKFLOW``, ``BEATSYNC_REGION``)
    workflow: str = "beat-sync"
    #: workflows-emulator URL for local runs and tests (``BEATSYNC_WORKFLOWS_ENDPOINT``)
    workflows_endpoint: str = ""
    region: str = "asia-southeast1"
    #: how the workflow's compose attempts run: ``process`` (a child process) or ``cloud_run_job``
    #: (an execution of the Cloud Run job ``compose_job``) (``BEATSYNC_COMPOSE_RUNNER``, ``BEATSYNC_COMPOSE_JOB``)
    compose_runner: str = "process"
    compose_job: str = "beat-sync-compose"
    #: the compose step as parallel tasks: the fewest tasks whose render is predicted to take at most
    #: ``render_target_seconds`` (wall s of one 4 vCPU task), at most one task per ``render_task_seconds`` of
    #: output (the floor of a segment's length) and at most ``render_max_tasks``
    #: (``BEATSYNC_RENDER_TARGET_SECONDS``, ``BEATSYNC_RENDER_TASK_SECONDS``, ``BEATSYNC_RENDER_MAX_TASKS``);
    #: the process runner retries a failed task ``compose_task_retries`` times, as the Cloud Run job's max_retries does
    #: (``BEATSYNC_COMPOSE_TASK_RETRIES``), and runs at most as many tasks at once as there are cores
    render_target_seconds: float = 10.0
    #: the deployed workflow's analyze step starts the compose execution as soon as the inputs are
    #: fetched, before the plan: its tasks start and fetch the clips while the song and the clips are
    #: analysed (``BEATSYNC_COMPOSE_EARLY_START``; docs/parallel-render.md). The local orchestrator,
    #: whose steps share one machine's cores, composes after the analysis either way.
    compose_early_start: bool = True
    render_task_seconds: float = 30.0
    render_max_tasks: int = 8
    compose_task_retries: int = 2
    #: ``local`` (a durable SQLite retry queue) or ``cloud_tasks`` (``BEATSYNC_NOTIFIER``)
    notifier: str = "local"
    #: Cloud Tasks queue for webhooks (``BEATSYNC_TASKS_QUEUE``) and an emulator host:port
    tasks_queue: str = "beat-sync-webhooks"
    tasks_emulator_host: str = ""
    #: HMAC key for webhook signatures (``BEATSYNC_WEBHOOK_SECRET``); default: generated, kept in data_dir
    webhook_secret: str = ""
    #: HMAC key for local signed download links (``BEATSYNC_SIGNING_SECRET``); default: generated
    signing_secret: str = ""
    #: base URL of this server, for local signed links (``BEATSYNC_PUBLIC_URL``)
    public_url: str = "http://127.0.0.1:8080"
    #: hosts (``host`` or ``host:port``) that input and webhook URLs may use even when they resolve
    #: to private addresses (``BEATSYNC_ALLOWED_HOSTS``, comma-separated)
    allowed_hosts: str = ""
    #: largest input file accepted, bytes (``BEATSYNC_MAX_INPUT_BYTES``)
    max_input_bytes: int = 500 * 1024 * 1024
    #: largest clip frame accepted, pixels (``BEATSYNC_MAX_CLIP_PIXELS``; default 4096x2304), checked
    #: from the header before any frame is decoded
    max_clip_pixels: int = 4096 * 2304
    #: what planning may spend on one clip's motion and shot analysis, in 1920x1080-frame units
    #: (``BEATSYNC_CLIP_ANALYSIS_BUDGET``): at most budget / (0.15 + 0.85 x pixels / 1920x1080) frames
    #: are decoded (600 1080p frames, 169 4K ones, 3,997 tiny ones); a clip with more is sampled
    #: (beatsync.render.motion). The analysis is cached by clip content hash and budget.
    clip_analysis_budget: float = 600.0
    #: most clips in one create request (``BEATSYNC_MAX_CLIPS``)
    max_clips: int = 20
    #: seconds an input download may take in all: connect, headers and body (``BEATSYNC_FETCH_TIMEOUT``)
    fetch_timeout: float = 120.0
    #: seconds one webhook attempt may take in all (``BEATSYNC_WEBHOOK_TIMEOUT``), and attempts run at
    #: once by the local notifier, at most one per destination (``BEATSYNC_WEBHOOK_CONCURRENCY``)
    webhook_timeout: float = 10.0
    webhook_concurrency: int = 4
    #: lifetime of output URLs, seconds (``BEATSYNC_URL_TTL``)
    url_ttl: int = 24 * 3600
    #: how long POST /analyze waits for a result before answering with a job (``BEATSYNC_SYNC_WAIT``)
    sync_wait: float = 20.0
    #: API keys callers send as ``Authorization: Bearer KEY`` (``BEATSYNC_API_KEYS``, comma-separated);
    #: empty: open (local use)
    api_keys: str = ""
    #: accept Google-signed ID tokens whose audience is one of these (``BEATSYNC_ID_TOKEN_AUDIENCES``,
    #: comma-separated: the functions' URLs), from the emails of ``allowed_callers`` only; empty: ID
    #: tokens are not accepted
    id_token_audiences: str = ""
    #: where Google's token-signing certificates are fetched (``BEATSYNC_ID_TOKEN_CERTS_URL``)
    id_token_certs_url: str = "https://www.googleapis.com/oauth2/v1/certs"
    #: the ID-token emails that may call (``BEATSYNC_ALLOWED_CALLERS``, comma-separated); empty: every
    #: ID token is refused, whatever its audience (identity fails closed)
    allowed_callers: str = ""
    #: callers that act for their own end users and may name one (``X-Beatsync-User-Id``):
    #: token emails (or ``google:EMAIL``) and ``key-<16 hex>`` key ids (``BEATSYNC_TRUSTED_CALLERS``)
    trusted_callers: str = ""
    #: refuse the API routes (503 ``auth_not_configured``) when neither API keys nor ID-token
    #: audiences are set, instead of running open (``BEATSYNC_REQUIRE_AUTH``; on by default where
    #: the platform sets ``K_SERVICE``: Cloud Run and Cloud Functions)
    require_auth: bool = False
    #: per caller: submissions per minute and unfinished jobs at once (``BEATSYNC_MAX_SUBMISSIONS_PER_MINUTE``,
    #: ``BEATSYNC_MAX_ACTIVE_JOBS``); over either, 429 with Retry-After
    max_submissions_per_minute: int = 30
    max_active_jobs: int = 10
    #: per caller with all its end users together (a trusted caller naming ``X-Beatsync-User-Id``s
    #: shares these among them, beside each user's own limits above): submissions per minute and
    #: unfinished jobs at once (``BEATSYNC_CALLER_MAX_SUBMISSIONS_PER_MINUTE``,
    #: ``BEATSYNC_CALLER_MAX_ACTIVE_JOBS``); over either, 429 with Retry-After
    caller_max_submissions_per_minute: int = 60
    caller_max_active_jobs: int = 20
    #: jobs run at once by the local orchestrator (``BEATSYNC_WORKERS``)
    workers: int = 1
    #: ``beatsync serve``'s HTTP server (beatsync/http/server.py, docs/security.md): application threads
    #: (``BEATSYNC_HTTP_THREADS``), open connections at most (``BEATSYNC_HTTP_CONNECTION_LIMIT``; at the
    #: limit the connections that waited longest for their request head are closed), seconds for a
    #: request's head from the connection or its first byte (``BEATSYNC_HTTP_HEADER_TIMEOUT``), for its
    #: body from the end of the head (``BEATSYNC_HTTP_BODY_TIMEOUT``), and an idle kept-alive
    #: connection's life (``BEATSYNC_HTTP_IDLE_TIMEOUT``); all overall deadlines, not per read
    http_threads: int = 8
    http_connection_limit: int = 2048
    http_header_timeout: float = 10.0
    http_body_timeout: float = 300.0
    http_idle_timeout: float = 30.0
    #: browser origins allowed to call the API (``BEATSYNC_CORS_ORIGINS``, comma-separated, e.g.
    #: ``https://app.example.com``; ``*``: any origin, never with credentials); empty: no cross-origin access
    cors_origins: str = ""
    #: ``true``: answer listed origins with ``Access-Control-Allow-Credentials`` (``BEATSYNC_CORS_CREDENTIALS``;
    #: refused together with ``*``). Bearer tokens need no credentials mode; cookies would.
    cors_credentials: str = "false"
    #: a local job's time budget: the fetches' timeouts, plus this many seconds per second of output
    #: at 1920x1080@30 (scaled by pixels and frame rate), plus the analysis (``BEATSYNC_JOB_BUDGET_FACTOR``)
    job_budget_factor: float = 10.0
    #: local storage retention in days, mirroring the bucket's lifecycle rules (terraform/storage.tf):
    #: ``temp/`` and work folders (``BEATSYNC_RETENTION_TEMP_DAYS``), ``inputs/`` of jobs no longer
    #: running (``BEATSYNC_RETENTION_INPUTS_DAYS``), ``outputs/`` (``BEATSYNC_RETENTION_OUTPUTS_DAYS``;
    #: the bucket moves them to NEARLINE after 7 days, a local disk deletes them after this many)
    retention_temp_days: float = 7.0
    retention_inputs_days: float = 30.0
    retention_outputs_days: float = 30.0
    #: seconds between retention sweeps of ``beatsync serve`` (``BEATSYNC_SWEEP_INTERVAL``)
    sweep_interval: float = 3600.0
    #: ``POST /internal/sweep`` (the cloud's scheduled sweep) finishes the ends left pending by a killed
    #: instance once they are this many seconds old, unless its body names another age
    #: (``BEATSYNC_END_PENDING_AGE``): longer than any end's follow-up takes in the process that ended it
    end_pending_age: float = 600.0
    #: new jobs are refused (503, Retry-After) while the data folder's disk has less free space than
    #: this, in bytes (``BEATSYNC_MIN_FREE_BYTES``; local blob store only)
    min_free_bytes: int = 1024 ** 3
    #: where job events for a create request's ``callback_topic`` go (``BEATSYNC_EVENT_PUBLISHER``):
    #: ``none`` (callback_topic is refused), ``memory`` (kept in this process) or ``pubsub``
    event_publisher: str = "none"
    #: the topics a create request's ``callback_topic`` may name (``BEATSYNC_EVENT_TOPICS``,
    #: comma-separated topic ids of ``BEATSYNC_PROJECT`` or ``projects/P/topics/T``): the topics this
    #: service's accounts may publish to (terraform/pubsub.tf grants publish on the events topic
    #: only). Any other is refused at submit (400 ``callback_topic_not_allowed``). Empty: any topic
    #: of the project (a local run, the emulator)
    event_topics: str = ""
    #: Pub/Sub push intake: the audience of the push subscription's OIDC token and the push service
    #: account's email (``BEATSYNC_PUBSUB_PUSH_AUDIENCE``, ``BEATSYNC_PUBSUB_PUSH_SERVICE_ACCOUNT``);
    #: the push route answers 404 until both are set
    pubsub_push_audience: str = ""
    pubsub_push_service_account: str = ""
    #: topic that intake messages which can never succeed are published to, with the reason
    #: (``BEATSYNC_PUBSUB_DEAD_LETTER_TOPIC``; empty: they are only logged)
    pubsub_dead_letter_topic: str = ""
    #: serve the studio page at ``/studio`` (``BEATSYNC_STUDIO``; on by default, off by default where the
    #: platform sets ``K_SERVICE``: the deployed functions)
    studio: bool = True
    #: Firestore collection of the daily analytics (``BEATSYNC_ANALYTICS_COLLECTION``)
    analytics_collection: str = "beat_sync_analytics"
    #: callers (``google:EMAIL`` or ``key-...`` as in job owners) allowed to read the analytics
    #: (``BEATSYNC_ADMIN_CALLERS``, comma-separated); without authentication the one local caller is admin
    admin_callers: str = ""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> "Settings":
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            "data_dir": _default_data_dir(),
            "cache_dir": _default_cache_dir(),
        }
        for f in fields(cls):
            key = "BEATSYNC_" + f.name.upper()
            if key in env and env[key] != "":
                values[f.name] = env[key]
        for name, value in overrides.items():
            if value is not None:
                values[name] = value
        if "require_auth" not in values and env.get("K_SERVICE"):
            values["require_auth"] = True  # deployed: never open by omission
        if "studio" not in values and env.get("K_SERVICE"):
            values["studio"] = False  # deployed: the page is opt-in
        if isinstance(values.get("require_auth"), str):
            values["require_auth"] = values["require_auth"].strip().lower() in ("1", "true", "yes", "on")
        values["data_dir"] = Path(values["data_dir"]).expanduser()
        values["cache_dir"] = Path(values["cache_dir"]).expanduser()
        for f in fields(cls):
            if f.name in values and f.type == "bool" and isinstance(values[f.name], str):
                flag = values[f.name].strip().lower()
                if flag not in ("1", "true", "yes", "0", "false", "no"):
                    from .errors import Misconfigured

                    raise Misconfigured(f"BEATSYNC_{f.name.upper()} must be 1 or 0, not {values[f.name]!r}",
                                        code="invalid_setting")
                values[f.name] = flag in ("1", "true", "yes")
            if f.name in values and f.type in ("float", "int") and not isinstance(values[f.name], (int, float)):
                try:
                    values[f.name] = (float if f.type == "float" else int)(values[f.name])
                except ValueError:
                    from .errors import Misconfigured

                    raise Misconfigured(f"BEATSYNC_{f.name.upper()} must be a number, not {values[f.name]!r}",
                                        code="invalid_setting") from None
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        from .errors import Misconfigured as InvalidSetting

        if self.blob_store not in ("local", "gcs"):
            raise InvalidSetting(f"BEATSYNC_BLOB_STORE must be local or gcs, not {self.blob_store!r}", code="invalid_setting")
        if self.blob_store == "gcs" and not self.bucket:
            raise InvalidSetting("BEATSYNC_BUCKET is required when BEATSYNC_BLOB_STORE=gcs", code="invalid_setting")
        for name, allowed in (("orchestrator", ("local", "workflows")), ("notifier", ("local", "cloud_tasks")),
                              ("compose_runner", ("process", "cloud_run_job")),
                              ("event_publisher", ("none", "memory", "pubsub"))):
            if getattr(self, name) not in allowed:
                raise InvalidSetting(f"BEATSYNC_{name.upper()} must be one of {', '.join(allowed)}, not "
                                     f"{getattr(self, name)!r}", code="invalid_setting")
        for name in ("max_input_bytes", "max_clips", "url_ttl", "workers", "fetch_timeout",
                     "max_submissions_per_minute", "max_active_jobs", "caller_max_submissions_per_minute",
                     "caller_max_active_jobs", "max_clip_pixels", "render_task_seconds", "render_target_seconds",
                     "render_max_tasks", "webhook_timeout", "webhook_concurrency", "job_budget_factor",
                     "http_threads", "http_connection_limit", "http_header_timeout", "http_body_timeout",
                     "http_idle_timeout", "clip_analysis_budget"):
            if getattr(self, name) <= 0:
                raise InvalidSetting(f"BEATSYNC_{name.upper()} must be positive", code="invalid_setting")
        if self.cors_credentials not in ("true", "false"):
            raise InvalidSetting("BEATSYNC_CORS_CREDENTIALS must be true or false", code="invalid_setting")
        for origin in self.cors_origin_list:
            if origin != "*" and not re.fullmatch(r"https?://[a-z0-9.-]+(:[0-9]{1,5})?", origin):
                raise InvalidSetting(f"BEATSYNC_CORS_ORIGINS: {origin!r} is not an origin (scheme://host[:port], "
                                     "no path) or *", code="invalid_setting")
        if "*" in self.cors_origin_list and self.cors_credentials == "true":
            raise InvalidSetting("BEATSYNC_CORS_CREDENTIALS=true cannot be combined with the origin *",
                                 code="invalid_setting")
        if self.pubsub_dead_letter_topic and self.event_publisher == "none":
            raise InvalidSetting("BEATSYNC_PUBSUB_DEAD_LETTER_TOPIC needs BEATSYNC_EVENT_PUBLISHER=pubsub (or memory)",
                                 code="invalid_setting")
        if self.event_topics.strip() and self.event_publisher == "none":
            raise InvalidSetting("BEATSYNC_EVENT_TOPICS needs BEATSYNC_EVENT_PUBLISHER=pubsub (or memory)",
                                 code="invalid_setting")
        for topic in (t.strip() for t in self.event_topics.split(",")):
            if topic and not (re.fullmatch(r"projects/[^/]+/topics/[^/]+", topic) or ("/" not in topic and self.project)):
                raise InvalidSetting(f"BEATSYNC_EVENT_TOPICS: {topic!r} is not projects/P/topics/T (or a topic id "
                                     "with BEATSYNC_PROJECT set)", code="invalid_setting")
        from .analysis.methods import check_method
        from .errors import InvalidRequest

        try:
            check_method(self.analysis_method, self.allow_noncommercial_models)  # the default must be allowed too
        except InvalidRequest as exc:
            raise InvalidSetting(f"BEATSYNC_ANALYSIS_METHOD: {exc.message}", code="invalid_setting") from None
        for name in ("retention_temp_days", "retention_inputs_days", "retention_outputs_days", "min_free_bytes",
                     "end_pending_age"):
            if getattr(self, name) < 0:
                raise InvalidSetting(f"BEATSYNC_{name.upper()} must not be negative", code="invalid_setting")
        if self.compose_task_retries < 0:
            raise InvalidSetting("BEATSYNC_COMPOSE_TASK_RETRIES must not be negative", code="invalid_setting")
        if self.job_store not in ("sqlite", "firestore"):
            raise InvalidSetting(f"BEATSYNC_JOB_STORE must be sqlite or firestore, not {self.job_store!r}",
                                 code="invalid_setting")

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        return tuple(o.strip().lower().rstrip("/") for o in self.cors_origins.split(",") if o.strip())

    @property
    def allowed_host_list(self) -> tuple[str, ...]:
        return tuple(h.strip().lower() for h in self.allowed_hosts.split(",") if h.strip())

    @property
    def event_topic_list(self) -> tuple[str, ...]:
        """``BEATSYNC_EVENT_TOPICS`` as full topic names (``projects/P/topics/T``)."""
        return tuple(self.topic_name(t.strip()) for t in self.event_topics.split(",") if t.strip())

    def topic_name(self, topic: str) -> str:
        """``projects/P/topics/T`` of a topic id of this project or a full topic name."""
        return topic if topic.startswith("projects/") else f"projects/{self.project}/topics/{topic}"

    def allows_event_topic(self, topic: str) -> bool:
        """Whether a create request's ``callback_topic`` is one the service may publish to."""
        allowed = self.event_topic_list
        return not allowed or self.topic_name(topic) in allowed

    def secret(self, name: str) -> bytes:
        """``webhook_secret`` / ``signing_secret``, or a random key generated once and kept in
        ``data_dir/secrets/NAME`` (mode 0600) so links and signatures survive restarts."""
        value = getattr(self, name)
        if value:
            return value.encode()
        import secrets

        path = self.data_dir / "secrets" / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
            try:
                os.link(tmp, path)  # first writer wins
            except FileExistsError:
                pass
            tmp.unlink(missing_ok=True)
        return path.read_text().strip().encode()
