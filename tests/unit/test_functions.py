"""Each Cloud Function through functions-framework's own app and test client, and every response
checked against its schema file."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys

import functions_framework
import pytest

from beatsync.bootstrap import bootstrap
from beatsync.contracts.schemas import openapi, validator
from beatsync.http import set_container
from beatsync.settings import Settings
from tests.conftest import ROOT

from tests.suites.service import RecordingOrchestrator, create_body

API = "/api/v1/beat-sync"


def client(name: str):
    app = functions_framework.create_app(target=name, source=str(ROOT / "functions" / name / "main.py"))
    return app.test_client()


def valid(schema: str, doc) -> None:
    validator(schema).validate(doc)


@pytest.fixture
def container(tmp_path, media):
    c = bootstrap(Settings.from_env({}, data_dir=tmp_path / "data", allowed_hosts=media.host, sync_wait=0.2),
                  orchestrator=RecordingOrchestrator())
    set_container(c)
    yield c
    set_container(None)


def test_submit_create_answers_202_and_replays_idempotently(container, media):
    submit = client("submit")
    body = create_body(media)
    r = submit.post(f"{API}/create", json=body, headers={"Idempotency-Key": "abc"})
    assert r.status_code == 202, r.json
    valid("job_accepted", r.json)
    assert r.json["status"] == "queued" and r.headers["Location"] == f"{API}/create/{r.json['job_id']}"
    again = submit.post(f"{API}/create", json=body, headers={"Idempotency-Key": "abc"})
    assert again.status_code == 202 and again.json["job_id"] == r.json["job_id"]
    clash = submit.post(f"{API}/create", json={**body, "preset": "cinematic"}, headers={"Idempotency-Key": "abc"})
    assert clash.status_code == 409 and clash.json["error"]["code"] == "idempotency_conflict"
    valid("error", clash.json)
    assert container.orchestrator.started == [r.json["job_id"]]


@pytest.mark.parametrize("body, status, code", [
    ({"video_urls": ["http://x/a.mp4"]}, 400, "invalid_request"),
    ({"audio_url": "http://x/a.mp3", "video_urls": []}, 400, "invalid_request"),
    ({"audio_url": "http://x/a.mp3", "video_urls": ["http://x/v"] * 21}, 400, "invalid_request"),
    ({"audio_url": "http://x/a.mp3", "video_urls": ["http://x/v"], "preset": "disco"}, 400, "invalid_request"),
    ({"audio_url": "http://x/a.mp3", "video_urls": ["http://x/v"], "config": {"output_fps": 500}}, 400,
     "invalid_request"),
    ({"audio_url": "http://x/a.mp3", "video_urls": ["http://x/v"], "surprise": 1}, 400, "invalid_request"),
    ({"audio_url": "http://127.0.0.1/a.mp3", "video_urls": ["http://x/v"]}, 400, "url_not_allowed"),
    ({"audio_url": "http://169.254.169.254/a", "video_urls": ["http://x/v"]}, 400, "url_not_allowed"),
    ({"audio_url": "file:///etc/passwd", "video_urls": ["http://x/v"]}, 400, "invalid_request"),
    ([1, 2], 400, "invalid_request"),
])
def test_submit_refuses_bad_requests_with_codes(container, body, status, code):
    r = client("submit").post(f"{API}/create", json=body)
    assert (r.status_code, r.json["error"]["code"]) == (status, code), r.json
    valid("error", r.json)
    assert container.orchestrator.started == []


@pytest.mark.parametrize("extra, message, details", [
    # an unknown preset lists the presets (as the CLI does), from the schema's enum
    ({"preset": "slowmo"}, "invalid request: preset: 'slowmo' is not one of music_video, fast_cuts, cinematic",
     {"path": "preset", "allowed": ["music_video", "fast_cuts", "cinematic"]}),
    # a list over its limit: the count and the limit, never the list cut mid-URL
    ({"video_urls": [f"http://x/clip-{i:02d}-with-a-long-name.mp4" for i in range(21)]},
     "invalid request: video_urls: 21 given, at most 20", {"path": "video_urls"}),
    ({"video_urls": []}, "invalid request: video_urls: 0 given, at least 1", {"path": "video_urls"}),
    ({"audio_url": "http://x/" + "a" * 5000}, "invalid request: audio_url: 5009 characters, at most 4096",
     {"path": "audio_url"}),
    ({"config": {"output_fps": 500}}, "invalid request: config.output_fps: 500 is above the maximum 60",
     {"path": "config.output_fps"}),
    ({"config": {"transition_style": "wipe"}},
     "invalid request: config.transition_style: 'wipe' is not one of cut, fade, zoom, flash, glitch, slide",
     {"path": "config.transition_style"}),
    ({"config": 5}, "invalid request: config: 5 is not of type object or null", {"path": "config"}),
])
def test_schema_errors_state_the_rule_and_what_was_sent(container, extra, message, details):
    from beatsync.contracts.schemas import load

    r = client("submit").post(f"{API}/create", json={"audio_url": "http://x/a.mp3", "video_urls": ["http://x/v"],
                                                     **extra})
    assert r.status_code == 400 and r.json["error"]["message"] == message, r.json
    first = r.json["error"]["details"]["errors"][0]
    assert first == {**first, **details} and len(r.json["error"]["message"]) < 200
    valid("error", r.json)
    # the numbers come from the schema (one place per fact), not from the message code
    assert load("create_request")["properties"]["video_urls"]["maxItems"] == 20


def test_submit_refuses_malformed_oversized_and_non_json_bodies(container):
    submit = client("submit")
    r = submit.post(f"{API}/create", data="{nope", content_type="application/json")
    assert (r.status_code, r.json["error"]["code"]) == (400, "malformed_json")
    r = submit.post(f"{API}/create", data="audio_url=x", content_type="application/x-www-form-urlencoded")
    assert (r.status_code, r.json["error"]["code"]) == (415, "unsupported_media_type")
    r = submit.post(f"{API}/create", data=b"[" + b"1," * 600_000 + b"1]", content_type="application/json")
    assert (r.status_code, r.json["error"]["code"]) == (413, "body_too_large")
    assert submit.get(f"{API}/create").status_code == 405
    assert submit.get(f"{API}/jobs").status_code == 404  # not this function's route


def test_analyze_upload_is_answered_with_the_beat_map_when_quick(container, media):
    from beatsync.jobs import steps

    container.orchestrator.start = lambda job: steps.run_job(container, job.job_id) and None
    data = (media.root / "song.wav").read_bytes()
    r = client("submit").post(f"{API}/analyze", data={"audio_file": (io.BytesIO(data), "song.wav"),
                                                      "method": "librosa", "fps": "25"},
                              content_type="multipart/form-data")
    assert r.status_code == 200, r.json
    valid("analyze_status", r.json)
    assert r.json["status"] == "completed" and r.json["beat_map"]["fps"] == 25
    status = client("status").get(f"{API}/analyze/{r.json['job_id']}")
    assert status.status_code == 200 and status.json["beat_map"] == r.json["beat_map"]
    bad = client("submit").post(f"{API}/analyze", data={"audio_file": (io.BytesIO(b"not audio"), "x.mp3")},
                                content_type="multipart/form-data")
    assert bad.status_code == 422 and bad.json["error"]["code"] == "unsupported_media"


def test_analyze_answers_202_with_a_job_when_not_done_in_time(container, media):
    r = client("submit").post(f"{API}/analyze", json={"audio_url": f"{media.url}/song.wav"})
    assert r.status_code == 202 and r.json["status"] == "queued"
    valid("analyze_status", r.json)


def test_status_function_routes(container, media):
    submit, status = client("submit"), client("status")
    ids = [submit.post(f"{API}/create", json=create_body(media)).json["job_id"] for _ in range(3)]
    r = status.get(f"{API}/create/{ids[0]}")
    assert r.status_code == 200 and r.json["status"] == "queued" and r.json["output_url"] is None
    valid("create_status", r.json)
    assert status.get(f"{API}/create/{'0' * 32}").json["error"]["code"] == "job_not_found"
    assert status.get(f"{API}/analyze/{ids[0]}").status_code == 404  # a create job is not an analysis

    page = status.get(f"{API}/jobs?limit=2&offset=0&status=queued")
    assert page.status_code == 200 and page.json["total"] == 3 and page.json["has_more"] and len(page.json["jobs"]) == 2
    valid("job_list", page.json)
    assert status.get(f"{API}/jobs?limit=2&offset=2").json["has_more"] is False
    assert status.get(f"{API}/jobs?limit=101").json["error"]["code"] == "invalid_query"
    assert status.get(f"{API}/jobs?status=bogus").status_code == 400
    assert status.get(f"{API}/jobs?job_type=analyze").json["total"] == 0

    cancel = status.delete(f"{API}/create/{ids[1]}")
    assert cancel.status_code == 200 and cancel.json["status"] == "cancelled"
    valid("cancel_response", cancel.json)
    assert status.delete(f"{API}/create/{ids[1]}").json["error"]["code"] == "job_already_ended"

    logs = status.get(f"{API}/jobs/{ids[1]}/logs")
    assert logs.status_code == 200 and any("cancel" in e["message"] for e in logs.json["logs"])
    valid("job_logs", logs.json)

    for path, schema in (("presets", "presets"), ("transitions", "transitions")):
        r = status.get(f"{API}/{path}")
        assert r.status_code == 200
        valid(schema, r.json)
    assert {p["name"] for p in status.get(f"{API}/presets").json["presets"]} == {"music_video", "fast_cuts",
                                                                                 "cinematic"}


def test_health_root_and_openapi(container):
    status = client("status")
    r = status.get("/health")
    assert r.status_code == 200 and r.json["status"] == "healthy", r.json
    valid("health", r.json)
    assert r.json["checks"] == {"storage": "ok", "job_store": "ok", "ffmpeg": "ok", "librosa": "ok", "madmom": "ok"}
    valid("service_info", status.get("/").json)
    doc = status.get("/openapi.json").json
    assert doc == json.loads(json.dumps(openapi()))


def test_health_is_unhealthy_when_the_job_store_fails(container):
    class Broken:
        def list(self, *a, **k):
            raise OSError("disk gone")

    container._overrides["jobs"] = Broken()
    r = client("status").get("/health")
    assert r.status_code == 503 and r.json["checks"]["job_store"] == "error"


def test_root_says_degraded_when_a_check_fails_and_the_packages_version(container, monkeypatch):
    """The seed's ``/``: ``ok``, or ``degraded`` while a dependency check of /health fails."""
    from importlib.metadata import version

    from beatsync.http import health

    root = client("status").get("/")
    assert root.status_code == 200 and root.json["status"] == "ok"
    assert root.json["version"] == version("beatsync")
    monkeypatch.setattr(health, "_librosa", lambda: (_ for _ in ()).throw(ImportError("libsndfile missing")))
    degraded = client("status").get("/")
    assert degraded.status_code == 200 and degraded.json["status"] == "degraded"
    assert client("status").get("/health").json["status"] == "degraded"
    valid("service_info", degraded.json)


def test_internal_step_routes_run_the_steps(container, media):
    job_id = client("submit").post(f"{API}/create", json=create_body(media)).json["job_id"]
    r = client("analyze").post("/internal/analyze", json={"job_id": job_id})
    assert r.status_code == 200 and r.json["status"] == "processing"
    valid("step_response", r.json)
    assert client("analyze").post("/internal/analyze", json={"job_id": "x"}).status_code == 400
    # compose runs as the Cloud Run job, not behind an HTTP route: functions/compose/main.py is the
    # job's entry point (the container runs it with the execution's args `compose-job JOB_ID`)
    assert client("analyze").post("/internal/compose", json={"job_id": job_id}).status_code == 404
    import os

    env = {**os.environ, "BEATSYNC_DATA_DIR": str(container.settings.data_dir),
           "BEATSYNC_ALLOWED_HOSTS": container.settings.allowed_hosts}
    proc = subprocess.run([sys.executable, str(ROOT / "functions" / "compose" / "main.py"), "compose-job", job_id],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"compose {job_id}: completed" in proc.stdout
    assert container.jobs.get(job_id).status == "completed"


def test_openapi_document_is_consistent():
    doc = openapi()
    names = set(doc["components"]["schemas"])

    def refs(node):
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for v in node.values():
                yield from refs(v)
        elif isinstance(node, list):
            for v in node:
                yield from refs(v)

    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in names, ref
    documented = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    from beatsync.http.app import ROUTES

    served = {(method, re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern).replace("\\", ""))
              for group, method, pattern, _ in ROUTES if group in ("meta", "docs", "submit", "status", "files", "pubsub",
                                                                   "studio")}
    assert documented == served  # every public route, the docs and the signed file links included
    # the security scheme, required on the API routes and waived on the public ones
    assert doc["components"]["securitySchemes"]["bearer"] == {**doc["components"]["securitySchemes"]["bearer"],
                                                             "type": "http", "scheme": "bearer"}
    assert doc["security"] == [{"bearer": []}]
    for path, item in doc["paths"].items():
        for op in item.values():
            required = op.get("security", doc["security"]) == [{"bearer": []}]
            assert required == path.startswith(API), (path, op.get("security"))
            if path.startswith(API):
                assert "401" in op["responses"], path


def test_functions_start_without_heavy_libraries():
    for name in ("submit", "status"):
        code = (f"import sys, functions_framework; app = functions_framework.create_app(target={name!r}, "
                f"source={str(ROOT / 'functions' / name / 'main.py')!r}); "
                "print(','.join(m for m in ('numpy', 'librosa', 'madmom', 'av', 'scipy', 'google.cloud.firestore', "
                "'google.cloud.storage') if m in sys.modules))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        assert out == "", f"{name} imported {out}"


def test_noncommercial_method_is_a_400_over_http(container, media):
    data = (media.root / "song.wav").read_bytes()
    for kwargs in ({"json": {"audio_url": f"{media.url}/song.wav", "method": "hybrid"}},
                   {"data": {"audio_file": (io.BytesIO(data), "song.wav"), "method": "madmom"},
                    "content_type": "multipart/form-data"}):
        r = client("submit").post(f"{API}/analyze", **kwargs)
        assert r.status_code == 400 and r.json["error"]["code"] == "noncommercial_model", r.json
        valid("error", r.json)
    assert not container.blobs.list("inputs/")  # the refused upload was not stored
