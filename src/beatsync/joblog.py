"""Structured log lines: one JSON object per line on stderr, the format Cloud Run and Cloud Functions
turn into a Cloud Logging entry (``severity``, ``message``, the rest as ``jsonPayload``).

Every line about a job carries the job id twice: as ``jsonPayload.job_id`` and in the special
field ``logging.googleapis.com/labels``, which Cloud Logging moves into the entry's indexed
``labels``; so one query (``labels.job_id="..."``) follows a job across the functions, the analyze
service and the compose job (docs/operations.md).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import Any

LABELS = "logging.googleapis.com/labels"
SEVERITY = {"debug": "DEBUG", "info": "INFO", "warning": "WARNING", "error": "ERROR"}


class _Stderr(logging.StreamHandler):
    def emit(self, record):
        self.stream = sys.stderr  # the current stderr (redirected streams included)
        super().emit(record)


def _logger() -> logging.Logger:
    logger = logging.getLogger("beatsync.audit")
    if not logger.handlers:  # one JSON object per line on stderr, whatever the root logging setup
        handler = _Stderr(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


def line(message: str, level: str = "info", **fields: Any) -> dict:
    """The structured entry :func:`emit` writes (without writing it)."""
    doc: dict[str, Any] = {"severity": SEVERITY.get(level, "INFO"), "message": message,
                           "time": datetime.now(timezone.utc).isoformat(), **fields}
    if fields.get("job_id"):
        doc[LABELS] = {"job_id": str(fields["job_id"])}
    return doc


def emit(message: str, level: str = "info", **fields: Any) -> None:
    _logger().info(json.dumps(line(message, level, **fields), default=str))


def job_line(job_id: str, message: str, level: str = "info") -> None:
    """A line of a job's own log (``JobStore.add_log``), mirrored to the process's log."""
    emit(message, level, job_id=job_id, log="job")


def audit(action: str, **fields: Any) -> None:
    """One structured JSON line per job creation, cancel, output access and job end. Cloud Run and
    Cloud Functions turn a JSON line into ``jsonPayload`` (the job id also into the entry's labels);
    the log-based metrics of terraform/monitoring.tf and terraform/metrics.tf count
    ``audit = "job.end"`` lines. (Used through :mod:`beatsync.jobs.lifecycle`, which re-exports it.)"""
    emit(action, audit=action, **fields)
