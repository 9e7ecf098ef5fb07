"""The JSON Schema files of ``schemas/`` at run time: request validation and the OpenAPI document.

The files are found at ``$BEATSYNC_SCHEMAS_DIR``, else ``beatsync/_schemas`` (images and source
archives copy them there), else the repository's ``schemas/`` (a checkout / editable install).
"""

from __future__ import annotations

import copy
import functools
import json
import os
import typing
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


OUTPUT_SIZE = "x-output-size"


def output_size_problem(value: Any, rule: dict) -> str | None:
    """Why ``value`` ("WxH" or [w, h]) breaks the output-size rule of the schemas
    (``x-output-size``: ``min_side``, ``max_long_side``, ``max_short_side``, ``max_aspect_ratio``),
    or None. Other shapes are left to the other keywords."""
    if isinstance(value, str):
        w, sep, h = value.partition("x")
        if not (sep and w.isascii() and w.isdigit() and h.isascii() and h.isdigit()):
            return None
        size = (int(w), int(h))
    elif isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value):
        size = (value[0], value[1])
    else:
        return None
    short, long = sorted(size)
    label = f"{size[0]}x{size[1]}"
    if short < rule["min_side"]:
        return f"output size {label}: each side must be at least {rule['min_side']} pixels"
    if long > rule["max_long_side"] or short > rule["max_short_side"]:
        return (f"output size {label} is above the limit of {rule['max_long_side']}x{rule['max_short_side']} "
                "(either orientation)")
    if long > rule["max_aspect_ratio"] * short:
        return f"output size {label}: the long side may be at most {rule['max_aspect_ratio']}x the short side"
    return None


def output_size_rule() -> dict:
    """The rule as edit_config.schema.json states it (the pydantic models apply the same one)."""
    return load("edit_config")["properties"]["output_resolution"][OUTPUT_SIZE]


@functools.lru_cache(maxsize=None)
def validator(name: str):
    """A Draft 2020-12 validator for one schema file, with the ``x-output-size`` keyword; references
    to other files resolve."""
    import jsonschema
    from referencing import Registry, Resource

    def retrieve(uri: str):
        return Resource.from_contents(load(uri.rsplit("/", 1)[-1].removesuffix(".schema.json")))

    def output_size(validator, rule, instance, schema):
        problem = output_size_problem(instance, rule)
        if problem:
            yield jsonschema.ValidationError(problem)

    cls = jsonschema.validators.extend(jsonschema.Draft202012Validator, {OUTPUT_SIZE: output_size})
    return cls(load(name), registry=Registry(retrieve=retrieve))


def _short(value: Any) -> str:
    """``value`` as a message quotes it: short strings in full, long ones cut, containers by size (a
    message never repeats a caller's whole list or document)."""
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, list):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, dict):
        return "an object"
    return json.dumps(value)


def _types(schema: dict) -> list[str]:
    t = schema.get("type")
    return [t] if isinstance(t, str) else list(t or [])


def _leaves(err) -> list:
    """The errors to report for ``err``: inside an ``anyOf``/``oneOf`` (most often "this, or null"), the
    errors of the branches whose type fits the value, so the message names the real rule (the allowed
    presets, the limit) instead of "not valid under any of the given schemas"."""
    if err.validator not in ("anyOf", "oneOf") or not err.context:
        return [err]
    branches: dict[int, list] = {}
    for sub in err.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    fitting = [subs for subs in branches.values()
               if not any(e.validator == "type" and not e.relative_path for e in subs)]
    if len(fitting) == 1:
        return [leaf for e in fitting[0] for leaf in _leaves(e)]
    return [err]


def describe(err) -> str:
    """One sentence for a schema error that states the rule and what was sent, never a cut-off copy of
    the value: ``21 given, at most 20``, ``'slowmo' is not one of music_video, fast_cuts, cinematic``."""
    v, rule, value = err.validator, err.validator_value, err.instance
    size = len(value) if isinstance(value, (str, list, dict)) else None
    if v == "enum":
        return f"{_short(value)} is not one of {', '.join(str(x) for x in rule)}"
    if v == "const":
        return f"{_short(value)} must be {json.dumps(rule)}"
    if v in ("maxItems", "maxLength", "maxProperties") and size is not None:
        unit = {"maxItems": "given", "maxLength": "characters", "maxProperties": "properties"}[v]
        return f"{size} {unit}, at most {rule}"
    if v in ("minItems", "minLength", "minProperties") and size is not None:
        unit = {"minItems": "given", "minLength": "characters", "minProperties": "properties"}[v]
        return f"{size} {unit}, at least {rule}"
    if v == "maximum":
        return f"{_short(value)} is above the maximum {rule}"
    if v == "minimum":
        return f"{_short(value)} is below the minimum {rule}"
    if v == "exclusiveMaximum":
        return f"{_short(value)} must be less than {rule}"
    if v == "exclusiveMinimum":
        return f"{_short(value)} must be greater than {rule}"
    if v == "type":
        return f"{_short(value)} is not of type {' or '.join(_types(err.schema)) or rule}"
    if v == "pattern":
        return f"{_short(value)} does not match {rule}"
    if v == "format":
        return f"{_short(value)} is not a valid {rule}"
    if v == "uniqueItems":
        return f"{_short(value)} has repeated items; each must be unique"
    if v in ("anyOf", "oneOf"):
        kinds = [t for e in err.context or () if e.validator == "type" and not e.relative_path
                 for t in _types(e.schema)]
        if kinds and len(kinds) == len({e.relative_schema_path[0] for e in err.context}):
            return f"{_short(value)} is not of type {' or '.join(dict.fromkeys(kinds))}"
        return f"{_short(value)} matches none of the allowed forms"
    return err.message[:300]


def validation_errors(name: str, document: Any, limit: int = 10, *, keywords: bool = False) -> list[dict]:
    """``[{"path": "config.output_fps", "message": ...}]`` for ``document``, at most ``limit``
    (with ``keywords``, each also names the failing schema keyword; an ``enum`` failure also lists
    the ``allowed`` values)."""
    out = []
    for top in sorted(validator(name).iter_errors(document), key=lambda e: list(map(str, e.path))):
        for err in _leaves(top):
            out.append({"path": ".".join(str(p) for p in err.absolute_path) or "$", "message": describe(err)})
            if err.validator == "enum":
                out[-1]["allowed"] = list(err.validator_value)
            if keywords:
                out[-1]["keyword"] = err.validator
            if len(out) >= limit:
                return out
    return out


# -- OpenAPI -------------------------------------------------------------------------------------

API = "/api/v1/beat-sync"
#: the Swagger UI files /docs serves (beatsync.http.docs.ASSETS)
DOCS_ASSETS = ["swagger-ui.css", "index.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js",
               "favicon-32x32.png", "favicon-16x16.png"]
#: the studio page's files (beatsync.http.studio_page.ASSETS)
STUDIO_FILES = ["index.html", "studio.css", "studio.js"]
#: the ReDoc files /redoc serves (beatsync.http.docs.REDOC_ASSETS)
REDOC_ASSETS = ["redoc.standalone.js", "LICENSE", "redoc.standalone.js.LICENSE.txt"]


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
                elif ".schema.json" in ref:  # another file, or one of its $defs ("file.schema.json#/$defs/X")
                    file, _, fragment = ref.partition("#")
                    title = _hoist(file.removesuffix(".schema.json"), components)
                    node["$ref"] = "#/components/schemas/" + (fragment.rsplit("/", 1)[-1] if fragment else title)
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
        "webhook_event", "daily_stats", "pubsub_push", "pubsub_push_result", "upload")}
    err = {"description": "Error", "content": _json(n["error"])}

    def errors(*codes: int) -> dict:
        return {str(c): err for c in codes}

    job_id = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}
    idem = {"name": "Idempotency-Key", "in": "header", "required": False,
            "description": "Same key and body: the same job is returned; same key, other body: 409.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255}}
    upload = {"type": "object", "required": ["audio_file"], "properties": {
        "audio_file": {"type": "string", "contentMediaType": "application/octet-stream"},
        "method": {"type": "string", "enum": list(typing.get_args(_method()))},
        "fps": {"type": "string", "pattern": "^[0-9]{1,3}$"}}}
    html = {"text/html": {"schema": {"type": "string"}}}
    js = {"text/javascript": {"schema": {"type": "string"}}}
    user = {"name": "X-Beatsync-User-Id", "in": "header", "required": False,
            "description": "A trusted caller (BEATSYNC_TRUSTED_CALLERS) names the end user the request is for: "
                           "quotas and job lists are then that user's, within the caller; other callers get 403.",
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._@+:-]{0,127}$"}}
    paths = {
        "/": {"get": {"operationId": "root", "summary": "Service info", "security": [],
                      "responses": {"200": {"description": "OK, or degraded while a check of /health fails",
                                            "content": _json(n["service_info"])}, **errors(500)}}},
        "/health": {"get": {"operationId": "health", "summary": "Health with real dependency checks", "security": [],
                            "responses": {"200": {"description": "Healthy or degraded", "content": _json(n["health"])},
                                          "503": {"description": "Unhealthy", "content": _json(n["health"])},
                                          **errors(500)}}},
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
        f"{API}/uploads": {"post": {
            "operationId": "upload", "summary": "Store a media file for a later create or analyze request",
            "description": "Answers an upload:// reference to put in audio_url or video_urls (only the caller that "
                           "uploaded the file may use it). Refused at once: an empty file, one over the input "
                           "limit, one that is no audio or video container (422 unsupported_media).",
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file"], "properties": {
                    "file": {"type": "string", "contentMediaType": "application/octet-stream"}}}}}},
            "responses": {"201": {"description": "Stored", "content": _json(n["upload"])},
                          **errors(400, 413, 415, 422, 429, 503)}}},
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
                {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 100000, "default": 0}},
                {"name": "user_id", "in": "query", "description": (
                    "A trusted caller (BEATSYNC_TRUSTED_CALLERS) lists one of its end users' jobs; without it, its "
                    "own jobs and all its end users' (each names its user_id). Other callers: 403 user_not_allowed."),
                 "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._@+:-]{0,127}$"}}],
            "summary": "The caller's jobs (a trusted caller's: with its end users')",
            "responses": {"200": {"description": "A page of the caller's jobs", "content": _json(n["job_list"])},
                          **errors(400, 403, 503)}}},
        f"{API}/jobs/{{job_id}}/logs": {"get": {
            "operationId": "jobLogs", "parameters": [job_id],
            "responses": {"200": {"description": "Processing log", "content": _json(n["job_logs"])}, **errors(404, 503)}}},
        f"{API}/presets": {"get": {"operationId": "presets", "responses": {
            "200": {"description": "Presets", "content": _json(n["presets"])}}}},
        f"{API}/transitions": {"get": {"operationId": "transitions", "responses": {
            "200": {"description": "Transitions", "content": _json(n["transitions"])}}}},
        "/openapi.json": {"get": {"operationId": "openapi", "summary": "This document", "security": [],
                                  "responses": {"200": {"description": "OpenAPI 3.1",
                                                        "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        "/docs": {"get": {"operationId": "docs", "summary": "This document, human-readable (Swagger UI)",
                          "security": [], "responses": {"200": {"description": "HTML page", "content": html},
                                                        **errors(404)}}},
        "/docs/init.js": {"get": {"operationId": "docsScript", "summary": "The page's initializer",
                                  "security": [], "responses": {"200": {"description": "Script", "content": js}}}},
        "/docs/static/{name}": {"get": {
            "operationId": "docsAsset", "summary": "Swagger UI files (from the pinned swagger-ui-py package)",
            "security": [], "parameters": [{"name": "name", "in": "path", "required": True,
                                            "schema": {"type": "string", "enum": DOCS_ASSETS}}],
            "responses": {"200": {"description": "The file", "content": {
                "text/css": {"schema": {"type": "string"}}, "text/javascript": {"schema": {"type": "string"}},
                "image/png": {"schema": {"type": "string", "contentMediaType": "image/png"}}}},
                **errors(404)}}},
        "/studio": {"get": {"operationId": "studio", "summary": "The studio page: a creator's client of this API",
                            "description": "Served by `beatsync serve`; elsewhere only with BEATSYNC_STUDIO=1 (404 "
                                           "studio_disabled otherwise).",
                            "security": [], "responses": {"200": {"description": "HTML page", "content": html},
                                                          **errors(404, 500)}}},
        "/studio/{name}": {"get": {
            "operationId": "studioFile", "summary": "The studio page's files", "security": [],
            "parameters": [{"name": "name", "in": "path", "required": True,
                            "schema": {"type": "string", "enum": STUDIO_FILES}}],
            "responses": {"200": {"description": "The file", "content": {
                **html, "text/css": {"schema": {"type": "string"}}, **js}}, **errors(404, 500)}}},
        "/redoc": {"get": {"operationId": "redoc", "summary": "This document, human-readable (ReDoc)",
                           "security": [], "responses": {"200": {"description": "HTML page", "content": html}}}},
        "/redoc/static/{name}": {"get": {
            "operationId": "redocAsset", "summary": "ReDoc's bundle and its licences (vendored, npm redoc 2.5.4)",
            "security": [], "parameters": [{"name": "name", "in": "path", "required": True,
                                            "schema": {"type": "string", "enum": REDOC_ASSETS}}],
            "responses": {"200": {"description": "The file", "content": {
                "text/javascript": {"schema": {"type": "string"}}, "text/plain": {"schema": {"type": "string"}}}},
                **errors(404)}}},
        "/files/{key}": {"get": {
            "operationId": "downloadFile", "security": [], "x-beatsync-local-only": True,
            "summary": "A signed download link (output_url, thumbnail_url, beat_map_url, edl_url)",
            "description": ("The links in a completed job's status. With local storage (`beatsync serve`) they "
                            "point here and carry `expires` and `signature` (HMAC-SHA256, the link is its own "
                            "credential: no Authorization header); on Google Cloud they are V4 signed URLs of "
                            "the media bucket (storage.googleapis.com) and this route does not exist (404)."),
            "parameters": [
                {"name": "key", "in": "path", "required": True, "description": "Object key, e.g. outputs/JOB/output.mp4",
                 "schema": {"type": "string"}},
                {"name": "expires", "in": "query", "required": True, "description": "Unix time the link expires",
                 "schema": {"type": "string"}},
                {"name": "signature", "in": "query", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "The file (Range requests answered with 206)", "content": {
                t: {"schema": {"type": "string", "contentMediaType": t}}
                for t in ("video/mp4", "video/webm", "image/jpeg", "application/json")}},
                **errors(403, 404, 500)}}},
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
    # every API route needs a caller: an ID token or an API key (401 without, 403 when not allowed,
    # 503 auth_not_configured on a deployment with no identity configured); 500 server_misconfigured
    # when the operator's settings are wrong (tests/unit/test_error_routes.py walks the routes)
    for path, item in paths.items():
        if path.startswith(API):
            for op in item.values():
                op["security"] = [{"bearer": []}]
                op["parameters"] = [*op.get("parameters", []), user]
                op["responses"] = {**op["responses"], **{k: v for k, v in errors(400, 401, 403, 500, 503).items()
                                                         if k not in op["responses"]}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "beatsync API", "version": __version__,
                 "description": "Songs and clips in, music videos cut on the beat out."},
        # no jsonSchemaDialect: OpenAPI 3.1's default dialect is JSON Schema 2020-12 (with OAS's
        # vocabulary), and Swagger UI refuses to render any other value
        "paths": paths,
        "webhooks": {"jobEnded": {"post": {
            "summary": "A job ended (signed with X-Beatsync-Signature)", "security": [],
            "requestBody": {"content": _json(n["webhook_event"])},
            "responses": {"200": {"description": "Received"}}}}},
        "security": [{"bearer": []}],
        "components": {"schemas": comps, "securitySchemes": {"bearer": {
            "type": "http", "scheme": "bearer", "bearerFormat": "API key or Google-signed ID token",
            "description": ("`Authorization: Bearer <token>` on every /api/v1/beat-sync route. The token is one "
                            "of the service's API keys (BEATSYNC_API_KEYS) or a Google-signed ID token whose "
                            "audience is the service's URL (BEATSYNC_ID_TOKEN_AUDIENCES; the seed's "
                            "service-to-service option). A service started with neither is open (local use) "
                            "and every caller is `anonymous`. Jobs belong to the caller that submitted them.")}}},
    }


def _method():
    from .beat_map import Method

    return Method
