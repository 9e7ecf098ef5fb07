"""The composition root: the only place that turns settings into adapters.

Nothing here contacts a service: cloud clients are built by the adapters on first use.
"""

from __future__ import annotations

from .container import Container
from .ports import Analytics, BlobStore, EventPublisher, JobStore, Notifier, Orchestrator
from .settings import Settings


def blob_store(settings: Settings) -> BlobStore:
    if settings.blob_store == "gcs":
        from .adapters.gcs import GcsBlobStore

        return GcsBlobStore(settings.bucket, project=settings.project or None, endpoint=settings.gcs_endpoint or None)
    from .adapters.local_fs import LocalBlobStore

    return LocalBlobStore(settings.data_dir / "blobs", base_url=settings.public_url,
                          secret=settings.secret("signing_secret"))


def job_store(settings: Settings) -> JobStore:
    if settings.job_store == "firestore":
        from .adapters.firestore_jobs import FirestoreJobStore

        return FirestoreJobStore(project=settings.project or None, collection=settings.firestore_collection,
                                 ttl_days=settings.job_ttl_days)
    from .adapters.sqlite_jobs import SqliteJobStore

    return SqliteJobStore(settings.data_dir / "jobs.db")


def analytics(settings: Settings) -> Analytics:
    """Daily analytics beside the jobs: Firestore with a Firestore job store, else SQLite."""
    if settings.job_store == "firestore":
        from .adapters.analytics import FirestoreAnalytics

        return FirestoreAnalytics(project=settings.project or None, collection=settings.analytics_collection,
                                  ttl_days=settings.job_ttl_days)
    from .adapters.analytics import SqliteAnalytics

    return SqliteAnalytics(settings.data_dir / "analytics.db", ttl_days=settings.job_ttl_days)


def event_publisher(settings: Settings) -> EventPublisher | None:
    """None when the service publishes nothing (``BEATSYNC_EVENT_PUBLISHER=none``)."""
    if settings.event_publisher == "pubsub":
        from .adapters.pubsub import PubSubPublisher

        return PubSubPublisher(project=settings.project)
    if settings.event_publisher == "memory":
        from .adapters.pubsub import MemoryPublisher

        return MemoryPublisher()
    return None


def cache_store(settings: Settings) -> BlobStore:
    """Where the CLI keeps beat maps: the user's cache folder (the service uses its blob store,
    under the same ``cache/beat_maps/`` keys)."""
    from .adapters.local_fs import LocalBlobStore

    return LocalBlobStore(settings.cache_dir)


def fetch_policy(settings: Settings):
    from .fetch import Policy

    return Policy(allowed_hosts=settings.allowed_host_list, max_bytes=settings.max_input_bytes,
                  timeout=settings.fetch_timeout)


def notifier(settings: Settings, container: Container | None = None) -> Notifier:
    secret = settings.secret("webhook_secret")
    if settings.notifier == "cloud_tasks":
        from .adapters.cloud_tasks import CloudTasksNotifier

        return CloudTasksNotifier(project=settings.project, location=settings.region, queue=settings.tasks_queue,
                                  secret=secret, emulator_host=settings.tasks_emulator_host or None,
                                  service_account=settings.tasks_service_account or None)
    from .adapters.webhooks import LocalWebhookNotifier

    def outcome(job_id: str, state: str, attempts: int, detail: str) -> None:
        if container is not None:  # the caller sees the delivery's end in the job's log
            message = (f"webhook delivered ({detail}) after {attempts} attempt(s)" if state == "delivered" else
                       f"webhook dead after {attempts} attempt(s): {detail}")
            container.jobs.add_log(job_id, message, "info" if state == "delivered" else "error")

    return LocalWebhookNotifier(settings.data_dir / "webhooks.db", secret, fetch_policy(settings),
                                concurrency=settings.webhook_concurrency, timeout=settings.webhook_timeout,
                                on_outcome=outcome)


def orchestrator(settings: Settings, container: Container) -> Orchestrator:
    if settings.orchestrator == "workflows":
        from .adapters.workflows import WorkflowsOrchestrator

        return WorkflowsOrchestrator(project=settings.project, location=settings.region, workflow=settings.workflow,
                                     endpoint=settings.workflows_endpoint or None)
    from .adapters.local_orchestrator import LocalOrchestrator
    from .jobs.steps import TRANSIENT, end, run_job

    def give_up(job_id: str, exc: BaseException) -> None:
        # ends the job failed and removes any partial outputs
        end(container, job_id, "failed", getattr(exc, "code", "internal_error"), f"gave up after retries: {exc}")

    from .jobs import steps

    def over_budget(job_id: str, budget: float) -> None:
        end(container, job_id, "failed", "time_budget_exceeded",
            f"the job ran longer than its time budget of {budget:.0f} s")

    return LocalOrchestrator(lambda job_id: run_job(container, job_id), workers=settings.workers,
                             on_give_up=give_up, transient=TRANSIENT,
                             budget=lambda job_id: steps.time_budget(container, container.jobs.get(job_id)),
                             on_over_budget=over_budget)


def compose_runner(settings: Settings):
    if settings.compose_runner == "cloud_run_job":
        from .adapters.cloud_run_jobs import CloudRunJobRunner

        return CloudRunJobRunner(project=settings.project, region=settings.region, job=settings.compose_job)
    from .adapters.process_runner import ProcessComposeRunner

    return ProcessComposeRunner(settings.data_dir / "logs", max_retries=settings.compose_task_retries)


#: how each adapter of a :class:`Container` is built from its settings
BUILDERS = {
    "blobs": lambda c: blob_store(c.settings),
    "jobs": lambda c: job_store(c.settings),
    "notifier": lambda c: notifier(c.settings, c),
    "orchestrator": lambda c: orchestrator(c.settings, c),
    "analytics": lambda c: analytics(c.settings),
    "events": lambda c: event_publisher(c.settings),
    "runner": lambda c: compose_runner(c.settings),
    "fetch_policy": lambda c: fetch_policy(c.settings),
}


def build(name: str, container: Container):
    return BUILDERS[name](container)


def bootstrap(settings: Settings | None = None, *, blobs: BlobStore | None = None, jobs: JobStore | None = None,
              notifier: Notifier | None = None, orchestrator: Orchestrator | None = None,
              analytics: Analytics | None = None, events: EventPublisher | None = None, **overrides) -> Container:
    """The container for ``settings`` (default: ``Settings.from_env(**overrides)``); tests may pass
    any adapter (a fake, or a real one pointed at an emulator) in place of the configured one."""
    settings = settings or Settings.from_env(**overrides)
    given = {k: v for k, v in dict(blobs=blobs, jobs=jobs, notifier=notifier, orchestrator=orchestrator,
                                   analytics=analytics, events=events).items() if v is not None}
    return Container(settings=settings, _overrides=given, build=build)
