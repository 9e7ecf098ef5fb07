"""The JSON Schema files of ``schemas/`` at run time: request validation and the OpenAPI document.

The files are found at ``$BEATSYNC_SCHEMAS_DIR``, else ``beatsync/_schemas`` (images and source
archives copy them there), else the repository's ``schemas/`` (a checkout / editable install).
"""

from __future__ import annotations

import copy
import functools
import json
import os
from pathlib import Path
from typing import Any

from .. import __version__


@functools.lru_cache(maxsize=1)
def schemas_dir() -> Path:
    here = Path(__file__).resolve().parent.parent
    for candidate in (os.environ.get("BEATSYNC_SCHEMAS_DIR"), here / "_schemas", here.parents[1] / "schemas"):
        if candidate and (Path(candidate) / "job.schema.json").is_file():
            return Path(candidate)
    raise FileNotFoundError("schemas/ not found; set BEATSYNC_SCHEMAS_DIR")


@functools.lru_cache(maxsize=None)
def load(name: str) -> dict:
    """``load("create_request")`` -> the parsed ``schemas/create_request.schema.json``."""
    return json.loads((schemas_dir() / f"{name}.schema.json").read_text())


@functools.lru_cache(maxsize=None)
def validator(name: str):
    """A Draft 2020-12 validator for one schema file; references to other files resolve."""
    import jsonschema
    from referencing import Registry, Resource

    def retrieve(uri: str):
        return Resource.from_contents(load(uri.rsplit("/", 1)[-1].removesuffix(".schema.json")))

    return jsonschema.Draft202012Validator(load(name), registry=Registry(retrieve=retrieve))


def validation_errors(name: str, document: Any, limit: int = 10) -> list[dict]:
    """``[{"path": "config.output_fps", "message": ...}]`` for ``document``, at most ``limit``."""
    out = []
    for err in sorted(validator(name).iter_errors(document), key=lambda e: list(map(str, e.path))):
        out.append({"path": ".".join(str(p) for p in err.absolute_path) or "$", "message": err.message[:300]})
        if len(out) >= limit:
            break
    return out


# -- OpenAPI -------------------------------------------------------------------------------------

API = "/api/v1/beat-sync"


def _hoist(name: str, components: dict) -> str:
    """Put schema file ``name`` (and its $defs) into ``components``; return its component name."""
    doc = copy.deepcopy(load(name))
    title = doc["title"]
    defs = doc.pop("$defs", {})
    for key in ("$schema", "$id"):
        doc.pop(key, None)

    def rewrite(node):
        if isinstance(node, dict):
            if "$ref" in node:
                ref = node["$ref"]
                if ref.startswith("#/$defs/"):
                    node["$ref"] = "#/components/schemas/" + ref.rsplit("/", 1)[-1]
                elif ref.endswith(".schema.json"):
                    node["$ref"] = "#/components/schemas/" + _hoist(ref.removesuffix(".schema.json"), components)
            for v in node.values():
                rewrite(v)
        elif isinstance(node, list):
            for v in node:
                rewrite(v)

    rewrite(doc)
    rewrite(defs)
    for key, value in [*defs.items(), (title, doc)]:
        if key in components and components[key] != value:
            raise ValueError(f"two different schemas are both called {key}")
        components[key] = value
    return title


def _json(ref: str) -> dict:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}


@functools.lru_cache(maxsize=1)
def openapi() -> dict:
    """The OpenAPI 3.1 document of the public API, built from the schema files."""
    comps: dict[str, Any] = {}
    n = {name: _hoist(name, comps) for name in (
        "service_info", "health", "analyze_request", "analyze_status", "create_request", "job_accepted",
        "create_status", "cancel_response", "job_list", "job_logs", "presets", "transitions", "error",
        "webhook_event", "daily_stats", "pubsub_push", "pubsub_push_result")}
    err = {"description": "Error", "content": _json(n["error"])}

    def errors(*codes: int) -> dict:
        return {str(c): err for c in codes}

    job_id = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}
    idem = {"name": "Idempotency-Key", "in": "header", "required": False,
            "description": "Same key and body: the same job is returned; same key, other body: 409.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255}}
    upload = {"type": "object", "required": ["audio_file"], "properties": {
        "audio_file": {"type": "string", "contentMediaType": "application/octet-stream"},
        "method": {"type": "string", "enum": ["librosa", "madmom", "hybrid"]},
        "fps": {"type": "string", "pattern": "^[0-9]{1,3}$"}}}
    paths = {
        "/": {"get": {"operationId": "root", "summary": "Service info",
                      "responses": {"200": {"description": "OK", "content": _json(n["service_info"])}}}},
        "/health": {"get": {"operationId": "health", "summary": "Health with real dependency checks",
                            "responses": {"200": {"description": "Healthy or degraded", "content": _json(n["health"])},
                                          "503": {"description": "Unhealthy", "content": _json(n["health"])}}}},
        f"{API}/analyze": {"post": {
            "operationId": "analyze", "summary": "Beat map of a song (URL or upload)", "parameters": [idem],
            "requestBody": {"required": True, "content": {**_json(n["analyze_request"]),
                                                          "multipart/form-data": {"schema": upload}}},
            "responses": {"200": {"description": "Finished in time: the beat map", "content": _json(n["analyze_status"])},
                          "202": {"description": "Running: poll the job", "content": _json(n["analyze_status"])},
                          **errors(400, 404, 409, 413, 415, 422, 429, 503)}}},
        f"{API}/analyze/{{job_id}}": {"get": {
            "operationId": "getAnalysis", "parameters": [job_id],
            "responses": {"200": {"description": "The analysis job", "content": _json(n["analyze_status"])},
                          **errors(404, 503)}}},
        f"{API}/create": {"post": {
            "operationId": "createVideo", "summary": "Cut a music video (a job)", "parameters": [idem],
            "requestBody": {"required": True, "content": _json(n["create_request"])},
            "responses": {"202": {"description": "Queued", "content": _json(n["job_accepted"])},
                          **errors(400, 409, 413, 415, 422, 429, 503)}}},
        f"{API}/create/{{job_id}}": {
            "get": {"operationId": "getVideo", "parameters": [job_id],
                    "responses": {"200": {"description": "The job; result fields when completed",
                                          "content": _json(n["create_status"])}, **errors(404, 503)}},
            "delete": {"operationId": "cancelVideo", "parameters": [job_id],
                       "responses": {"200": {"description": "Cancelled or cancelling",
                                             "content": _json(n["cancel_response"])}, **errors(404, 409, 503)}}},
        f"{API}/jobs": {"get": {
            "operationId": "listJobs", "parameters": [
                {"name": "status", "in": "query", "schema": {"type": "string", "enum": [
                    "queued", "processing", "completed", "failed", "cancelled"]}},
                {"name": "type", "in": "query", "schema": {"type": "string", "enum": ["create", "analyze"]}},
                {"name": "job_type", "in": "query", "description": "Alias of type (the seed's name).",
                 "schema": {"type": "string", "enum": ["create", "analyze"]}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
                {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 100000, "default": 0}}],
            "responses": {"200": {"description": "A page of the caller's jobs", "content": _json(n["job_list"])},
                          **errors(400, 503)}}},
        f"{API}/jobs/{{job_id}}/logs": {"get": {
            "operationId": "jobLogs", "parameters": [job_id],
            "responses": {"200": {"description": "Processing log", "content": _json(n["job_logs"])}, **errors(404, 503)}}},
        f"{API}/presets": {"get": {"operationId": "presets", "responses": {
            "200": {"description": "Presets", "content": _json(n["presets"])}}}},
        f"{API}/transitions": {"get": {"operationId": "transitions", "responses": {
            "200": {"description": "Transitions", "content": _json(n["transitions"])}}}},
        f"{API}/admin/stats": {"get": {
            "operationId": "dailyStats", "summary": "Daily analytics of ended jobs (admin callers only)",
            "parameters": [
                {"name": "from", "in": "query", "description": "First day, YYYY-MM-DD (default: 29 days before to).",
                 "schema": {"type": "string", "format": "date"}},
                {"name": "to", "in": "query", "description": "Last day, YYYY-MM-DD (default: today, UTC).",
                 "schema": {"type": "string", "format": "date"}}],
            "responses": {"200": {"description": "The days and their totals", "content": _json(n["daily_stats"])},
                          **errors(400, 401, 403, 503)}}},
        f"{API}/pubsub/push": {"post": {
            "operationId": "pubsubPush",
            "summary": "Pub/Sub push delivery of a create request (OIDC token of the push service account)",
            "description": "2xx acknowledges the message: a job was made (or found: a redelivery), or the "
                           "message can never succeed and went to the dead-letter topic. 429/5xx: Pub/Sub "
                           "redelivers. 404 while the intake is not configured.",
            "requestBody": {"required": True, "content": _json(n["pubsub_push"])},
            "responses": {"200": {"description": "Acknowledged", "content": _json(n["pubsub_push_result"])},
                          **errors(400, 401, 403, 404, 409, 413, 415, 429, 503)}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "beatsync API", "version": __version__,
                 "description": "Songs and clips in, music videos cut on the beat out."},
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": paths,
        "webhooks": {"jobEnded": {"post": {
            "summary": "A job ended (signed with X-Beatsync-Signature)",
            "requestBody": {"content": _json(n["webhook_event"])},
            "responses": {"200": {"description": "Received"}}}}},
        "components": {"schemas": comps},
    }
