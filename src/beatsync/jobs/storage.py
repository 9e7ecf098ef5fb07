"""Local storage bounds: inputs removed when a job ends, a retention sweep, a free-space guard.

The bucket has lifecycle rules (terraform/storage.tf: ``temp/`` 7 days, ``inputs/`` 30 days,
``outputs/`` to NEARLINE after 7); a local folder has nothing like them, so:

- :func:`remove_inputs`: when a job ends, its fetched inputs (``inputs/audio/{id}/``,
  ``inputs/video/{id}/``), its upload (unless another unfinished job uses the same one) and its
  work folder are removed (any blob store);
- :func:`sweep`: with the local blob store, deletes ``temp/`` objects and work folders older than
  ``retention_temp_days``, ``inputs/`` not used by an unfinished job older than
  ``retention_inputs_days``, ``outputs/`` older than ``retention_outputs_days``, and stray
  ``.tmp-*`` / ``.part`` files; ``beatsync serve`` runs it at start and every ``sweep_interval``;
- :func:`check_free_space`: a new job is refused with 503 and Retry-After while the data folder's
  disk has less than ``min_free_bytes`` free, before anything is written.

Import-light.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .. import keys
from ..errors import InsufficientStorage, JobNotFound  # noqa: F401 - InsufficientStorage: re-export

if TYPE_CHECKING:
    from ..container import Container
    from .model import Job

log = logging.getLogger("beatsync.storage")

DAY = 86400.0
STRAY_AGE = 3600.0  # a .tmp-/.part file this old belongs to no write in progress


def work_root() -> Path:
    return Path(tempfile.gettempdir()) / "beatsync-work"


def check_free_space(c: "Container") -> None:
    """Refuse new work (503, Retry-After) while free space is under ``min_free_bytes``."""
    s = c.settings
    if s.blob_store != "local" or s.min_free_bytes <= 0:
        return
    path = s.data_dir if s.data_dir.exists() else s.data_dir.parent
    try:
        free = shutil.disk_usage(path).free
    except OSError:
        return
    if free < s.min_free_bytes:
        log.warning("refusing new jobs: %d bytes free, the floor is %d", free, s.min_free_bytes)
        raise InsufficientStorage("the server is short of disk space; try again later",
                                  details={"retry_after": 300})


def _upload_in_use(c: "Container", key: str, job_id: str | None) -> bool:
    return any(key in keys.uploads_of(j.request) and j.job_id != job_id for j in c.jobs.active())


def remove_upload(c: "Container", key: str, job_id: str | None = None) -> None:
    """Delete an uploaded input unless an unfinished job (other than ``job_id``) still needs it."""
    try:
        if not _upload_in_use(c, key, job_id):
            c.blobs.delete(key)
    except Exception:  # noqa: BLE001 - the sweep catches what is left
        log.exception("could not remove upload %s", key)


def remove_inputs(c: "Container", job: "Job") -> None:
    """An ended job's inputs, its parallel render's leftovers (``temp/{id}/``: a failed or cancelled
    render's plan and segments) and its work folder (outputs stay, under the retention rule)."""
    try:
        for prefix in (*keys.input_prefixes(job.job_id), keys.temp(job.job_id)):
            for key in c.blobs.list(prefix):
                c.blobs.delete(key)
    except Exception:  # noqa: BLE001 - the job's outcome stands; the sweep catches what is left
        log.exception("job %s: could not remove its inputs", job.job_id)
    for key in sorted(keys.uploads_of(job.request)):
        remove_upload(c, key, job.job_id)
    shutil.rmtree(work_root() / job.job_id, ignore_errors=True)


def sweep(c: "Container", now: float | None = None) -> dict:
    """Apply the retention settings to the local blob store and the work folders; return counts."""
    s = c.settings
    now = time.time() if now is None else now
    counts = {"temp": 0, "inputs": 0, "outputs": 0, "work": 0, "stray": 0}
    active = c.jobs.active(limit=100000)
    active_ids = {j.job_id for j in active}
    in_use = {key for j in active for key in keys.uploads_of(j.request)}
    work = work_root()
    if work.is_dir():
        for d in work.iterdir():
            if d.name in active_ids:
                continue
            try:
                age = now - d.stat().st_mtime
            except OSError:
                continue
            if _ended(c, d.name) or age > s.retention_temp_days * DAY:
                shutil.rmtree(d, ignore_errors=True)
                counts["work"] += 1
    if s.blob_store != "local":
        return counts  # the bucket's lifecycle rules do the rest
    root = Path(c.blobs.root)
    if not root.is_dir():
        return counts
    limits = {keys.TEMP: s.retention_temp_days * DAY, keys.INPUTS: s.retention_inputs_days * DAY,
              keys.OUTPUTS: s.retention_outputs_days * DAY}
    for path in list(root.rglob("*")):
        if not path.is_file():
            continue
        try:
            age = now - path.stat().st_mtime
        except OSError:
            continue
        rel = path.relative_to(root).as_posix()
        if path.name.startswith(".tmp-") or path.name.endswith(".part"):
            if age > STRAY_AGE:
                path.unlink(missing_ok=True)
                counts["stray"] += 1
            continue
        parts = rel.split("/")
        top = parts[0]
        if top not in limits:
            continue
        limit = limits[top]
        if top == keys.INPUTS and len(parts) >= 3:
            owner_id = keys.input_owner(rel)
            if rel in in_use or owner_id in active_ids:
                continue
            if keys.is_upload(rel):
                limit = min(limit, STRAY_AGE)  # no unfinished job uses it (a new one is a moment old)
            elif owner_id is not None and _ended(c, owner_id):
                limit = 0.0  # the inputs of an ended job
        if top == keys.OUTPUTS and len(parts) >= 2 and parts[1] in active_ids:
            continue
        if age > limit:
            path.unlink(missing_ok=True)
            counts[top] += 1
    for d in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if d.relative_to(root).parts[0] in limits:
            try:
                d.rmdir()  # only empty ones
            except OSError:
                pass
    if any(counts.values()):
        log.info("retention sweep: %s", counts)
    return counts


def _ended(c: "Container", job_id: str) -> bool:
    try:
        return c.jobs.get(job_id).terminal
    except (JobNotFound, Exception):  # noqa: BLE001 - not this store's job (another server's?), or unsure: keep
        return False


def sweep_forever(c: "Container") -> None:
    """The serve process's sweeper thread."""
    while True:
        try:
            sweep(c)
        except Exception:  # noqa: BLE001 - keep sweeping
            log.exception("retention sweep")
        time.sleep(max(1.0, c.settings.sweep_interval))
