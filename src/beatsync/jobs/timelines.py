"""A create job's timelines for an editor: ``edit.otio`` always, and the formats its request's
``timelines`` asks for (``edit.xml``, ``edit.fcpxml``, ``edit.edl``), written by both the single-task
compose and the merge of a parallel one; each an output with its signed URL in the result's
``timeline_urls``. Their media are the caller's URLs and file names."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Mapping

from .. import keys
from ..contracts.edit import TIMELINE_EXTENSIONS

if TYPE_CHECKING:
    from ..container import Container

CONTENT_TYPES = {"otio": "application/json", "fcp_xml": "application/xml", "fcpxml": "application/xml",
                 "edl": "text/plain"}


def formats(request: Mapping[str, Any]) -> list[str]:
    """``otio`` first, then each other format the request asks for, once."""
    out = ["otio"]
    for f in request.get("timelines") or []:
        if f not in out:
            out.append(f)
    return out


def local_paths(work: str, fmts: list[str]) -> list[str]:
    return [os.path.join(work, "edit" + TIMELINE_EXTENSIONS[f]) for f in fmts]


def publish(c: "Container", job_id: str, fmts: list[str], paths: list[str], notes: list[str] | tuple[str, ...]
            ) -> dict:
    """Upload the written timelines; the result's fields: ``otio_key``, ``timeline_keys`` (format -> key)
    and the warnings to add (what a format could not keep)."""
    out = {}
    for fmt, path in zip(fmts, paths):
        key = keys.timeline(job_id, TIMELINE_EXTENSIONS[fmt])
        c.blobs.put_file(key, path, CONTENT_TYPES[fmt])
        out[fmt] = key
    return {"otio_key": out["otio"], "timeline_keys": out,
            "timeline_warnings": [{"code": "timeline_simplified", "message": n} for n in notes]}
