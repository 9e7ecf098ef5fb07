"""Counts the billable calls every Python process of a test makes to the Google Cloud services, at
the client libraries (below the adapters, so nothing in src/ changes): Firestore document reads,
writes and deletes (the GAPIC client's RPCs), Cloud Storage requests and bytes (the JSON API over
HTTP, by operation class), Cloud Tasks tasks created and Pub/Sub messages published.

A process loads it when this folder is on its PYTHONPATH (Python imports ``sitecustomize`` at
start-up) and ``BEATSYNC_COUNT_DIR`` is set: the analyze service, the compose task processes it
starts and the test itself (``install()``) then append one JSON line per call to
``$BEATSYNC_COUNT_DIR/{pid}.jsonl``. A line is written at the call, so a process stopped by a
signal loses nothing. The libraries are patched when they are first imported (a meta-path hook),
so a process that never uses them imports nothing more. ``tests/integration/test_cost_counts.py``
reads the lines; ``benchmarks/cost_model.py`` holds the counts they must match.
"""

from __future__ import annotations

import importlib.abc
import json
import os
import sys
import threading
import time
from urllib.parse import unquote, urlsplit

_LOCK = threading.Lock()
_ROLE = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"


def record(kind: str, n: int = 1, **extra) -> None:
    folder = os.environ.get("BEATSYNC_COUNT_DIR")
    if not folder or n == 0:
        return
    line = json.dumps({"kind": kind, "n": n, "pid": os.getpid(), "role": _role(), "t": time.time(),
                       "where": _where(), **extra})
    with _LOCK, open(os.path.join(folder, f"{os.getpid()}.jsonl"), "a") as f:
        f.write(line + "\n")


def _role() -> str:
    if "CLOUD_RUN_TASK_INDEX" in os.environ or "compose-job" in sys.argv:
        return "compose-task"
    if "functions-framework" in _ROLE or "functions_framework" in _ROLE:
        return "analyze-service"
    return _ROLE


def _where() -> list[str]:
    """The beatsync functions on the stack (innermost first, adapters left out): which code made the call."""
    out, f = [], sys._getframe(2)
    while f is not None and len(out) < 6:
        name = f.f_code.co_filename.replace(os.sep, "/")
        if "/beatsync/" in name and "/beatsync/adapters/" not in name:
            out.append(name.rsplit("/beatsync/", 1)[1] + ":" + f.f_code.co_name)
        f = f.f_back
    return out


# -- Firestore: billed per document read, written or deleted ------------------------------------------

def _get(request, kwargs, name):
    if request is None:
        return kwargs.get(name)
    if isinstance(request, dict):
        return request.get(name)
    return getattr(request, name, None)


def _patch_firestore(module) -> None:
    cls = module.FirestoreClient

    def commit(self, request=None, **kwargs):
        writes = list(_get(request, kwargs, "writes") or [])
        deletes = sum(1 for w in writes if getattr(w, "delete", ""))
        record("firestore.write", len(writes) - deletes)
        record("firestore.delete", deletes)
        return orig_commit(self, request, **kwargs)

    def batch_get_documents(self, request=None, **kwargs):
        # every requested document is a read, found or not
        record("firestore.read", len(list(_get(request, kwargs, "documents") or [])), rpc="get")
        return orig_get(self, request, **kwargs)

    def run_query(self, request=None, **kwargs):
        found = 0
        try:
            for resp in orig_query(self, request, **kwargs):
                if getattr(getattr(resp, "document", None), "name", ""):
                    found += 1
                yield resp
        finally:
            record("firestore.read", max(found, 1), rpc="query")  # a query costs at least one read

    def run_aggregation_query(self, request=None, **kwargs):
        record("firestore.read", 1, rpc="count")  # one read per 1,000 index entries counted (at least one)
        return orig_count(self, request, **kwargs)

    orig_commit, orig_get, orig_query, orig_count = (cls.commit, cls.batch_get_documents, cls.run_query,
                                                     cls.run_aggregation_query)
    cls.commit, cls.batch_get_documents, cls.run_query = commit, batch_get_documents, run_query
    cls.run_aggregation_query = run_aggregation_query


# -- Cloud Storage: the JSON API, by operation class --------------------------------------------------

def gcs_class(method: str, path: str) -> str:
    """Class A (writes, listings), class B (reads of an object or its metadata) or free (deletes), as
    Cloud Storage bills the JSON API's operations."""
    method = method.upper()
    if method == "DELETE":
        return "free"
    if method in ("POST", "PUT", "PATCH"):
        return "A"
    return "A" if path.rstrip("/").endswith("/o") else "B"  # GET .../o is a listing


def _patch_http(module) -> None:
    cls = module.AuthorizedSession
    orig = cls.request

    def request(self, method, url, data=None, headers=None, *args, **kwargs):
        resp = orig(self, method, url, data, headers, *args, **kwargs)
        parts = urlsplit(url)
        path = unquote(parts.path)
        if "/storage/v1/b" in path and not (method.upper() == "POST" and path.rstrip("/").endswith("/storage/v1/b")):
            sent = len(data) if isinstance(data, (bytes, bytearray)) else 0
            got = int(resp.headers.get("Content-Length") or 0) if method.upper() == "GET" else 0
            obj = path.split("/o/", 1)[1] if "/o/" in path else ""
            if not obj and "name=" in parts.query:
                obj = next((unquote(q[5:]) for q in parts.query.split("&") if q.startswith("name=")), "")
            record("gcs." + gcs_class(method, path), 1, method=method.upper(), object=obj,
                   status=resp.status_code, bytes_up=sent, bytes_down=got)
        return resp

    cls.request = request


# -- Cloud Tasks and Pub/Sub ------------------------------------------------------------------------

def _patch_tasks(module) -> None:
    cls = module.CloudTasksClient
    orig = cls.create_task

    def create_task(self, *args, **kwargs):
        record("tasks.create", 1)
        return orig(self, *args, **kwargs)

    cls.create_task = create_task


def _patch_pubsub(module) -> None:
    cls = module.Client
    orig = cls.publish

    def publish(self, topic, data, *args, **kwargs):
        record("pubsub.publish", 1, bytes=len(data))
        return orig(self, topic, data, *args, **kwargs)

    cls.publish = publish


PATCHES = {
    "google.cloud.firestore_v1.services.firestore.client": _patch_firestore,
    "google.auth.transport.requests": _patch_http,
    "google.cloud.tasks_v2.services.cloud_tasks.client": _patch_tasks,
    "google.cloud.pubsub_v1.publisher.client": _patch_pubsub,
}


class _Hook(importlib.abc.MetaPathFinder):
    """Patches a module of PATCHES right after it is first executed."""

    def find_spec(self, name, path, target=None):
        if name not in PATCHES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                loader_exec = spec.loader.exec_module

                def exec_module(module, _exec=loader_exec, _patch=PATCHES[name]):
                    _exec(module)
                    _patch(module)

                spec.loader.exec_module = exec_module
                return spec
        return None


def install() -> None:
    """Count in this process too (a test that imported the libraries already patches them now)."""
    if any(isinstance(f, _Hook) for f in sys.meta_path):
        return
    for name, patch in PATCHES.items():
        if name in sys.modules:
            patch(sys.modules[name])
    sys.meta_path.insert(0, _Hook())


if os.environ.get("BEATSYNC_COUNT_DIR"):
    install()
