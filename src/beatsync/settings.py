"""Settings: explicit argument, then ``BEATSYNC_*`` environment variable, then local default.

Only :mod:`beatsync.bootstrap`-style composition code and CLIs read settings; the pure core
takes plain arguments.
"""

from __future__ import annotations

import os
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
    #: default analysis method (``BEATSYNC_ANALYSIS_METHOD``)
    analysis_method: str = "hybrid"
    #: ``local`` (a folder under data_dir) or ``gcs`` (``BEATSYNC_BLOB_STORE``)
    blob_store: str = "local"
    #: GCS bucket for media when blob_store is gcs (``BEATSYNC_BUCKET``)
    bucket: str = ""
    #: ``sqlite`` (data_dir/jobs.db) or ``firestore`` (``BEATSYNC_JOB_STORE``)
    job_store: str = "sqlite"
    #: Firestore collection for jobs (``BEATSYNC_FIRESTORE_COLLECTION``)
    firestore_collection: str = "beatsync_jobs"
    #: Google Cloud project; empty = the client's default (``BEATSYNC_PROJECT``)
    project: str = ""
    #: fake-gcs-server URL for local runs and tests (``BEATSYNC_GCS_ENDPOINT``)
    gcs_endpoint: str = ""

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
        values["data_dir"] = Path(values["data_dir"]).expanduser()
        values["cache_dir"] = Path(values["cache_dir"]).expanduser()
        if "max_audio_duration" in values:
            values["max_audio_duration"] = float(values["max_audio_duration"])
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        from .errors import InvalidRequest

        if self.blob_store not in ("local", "gcs"):
            raise InvalidRequest(f"BEATSYNC_BLOB_STORE must be local or gcs, not {self.blob_store!r}", code="invalid_setting")
        if self.blob_store == "gcs" and not self.bucket:
            raise InvalidRequest("BEATSYNC_BUCKET is required when BEATSYNC_BLOB_STORE=gcs", code="invalid_setting")
        if self.job_store not in ("sqlite", "firestore"):
            raise InvalidRequest(f"BEATSYNC_JOB_STORE must be sqlite or firestore, not {self.job_store!r}",
                                 code="invalid_setting")
