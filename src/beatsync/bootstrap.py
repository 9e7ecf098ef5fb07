"""The composition root: the only place that turns settings into adapters.

Nothing here contacts a service: cloud clients are built by the adapters on first use.
"""

from __future__ import annotations

from dataclasses import dataclass

from .ports import BlobStore, JobStore
from .settings import Settings


def blob_store(settings: Settings) -> BlobStore:
    if settings.blob_store == "gcs":
        from .adapters.gcs import GcsBlobStore

        return GcsBlobStore(settings.bucket, project=settings.project or None, endpoint=settings.gcs_endpoint or None)
    from .adapters.local_fs import LocalBlobStore

    return LocalBlobStore(settings.data_dir / "blobs")


def job_store(settings: Settings) -> JobStore:
    if settings.job_store == "firestore":
        from .adapters.firestore_jobs import FirestoreJobStore

        return FirestoreJobStore(project=settings.project or None, collection=settings.firestore_collection)
    from .adapters.sqlite_jobs import SqliteJobStore

    return SqliteJobStore(settings.data_dir / "jobs.db")


def cache_store(settings: Settings) -> BlobStore:
    """Where the CLI keeps beat maps: the user's cache folder (the service uses its blob store,
    under the same ``cache/beat_maps/`` keys)."""
    from .adapters.local_fs import LocalBlobStore

    return LocalBlobStore(settings.cache_dir)


@dataclass(frozen=True)
class Container:
    settings: Settings
    blobs: BlobStore
    jobs: JobStore


def bootstrap(settings: Settings | None = None, **overrides) -> Container:
    """Adapters for ``settings`` (default: ``Settings.from_env(**overrides)``)."""
    settings = settings or Settings.from_env(**overrides)
    return Container(settings=settings, blobs=blob_store(settings), jobs=job_store(settings))
