"""Property test: no input answers 500. Hypothesis drives every public route (and unknown ones) with
arbitrary methods, paths, query strings, headers, JSON (and non-JSON) bodies and multipart parts, over
the real HTTP layer and the embedded stores; every answer must be 2xx/3xx/4xx, and every error answer
the JSON error format."""

from __future__ import annotations

import io
import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from beatsync.bootstrap import bootstrap
from beatsync.http import create_flask_app, set_container
from beatsync.settings import Settings
from tests.suites.service import RecordingOrchestrator

API = "/api/v1/beat-sync"
KEY = "test-key-1"
MAX_EXAMPLES = 800

SAFE_URL = "https://93.184.215.14/a.mp4"
JOB_IDS: list[str] = []

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=False,
                      allow_infinity=False), st.text(max_size=40))
json_doc = st.recursive(json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                             st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                        max_leaves=20)
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255, blacklist_characters="\x7f"), max_size=60)
url = st.one_of(st.just(SAFE_URL), st.text(max_size=60),
                st.builds(lambda p: "https://93.184.215.14/" + p, st.text(max_size=30)),
                st.builds(lambda h: f"http://{h}/a.mp3", st.text(max_size=20)),
                st.sampled_from(["http://127.0.0.1/x", "gs://b/k", "https://93.184.215.14/\u00e9t\u00e9.mp3",
                                 "http://[::1/", "https://93.184.215.14:99999/", "http://xn--/"]))
number = st.one_of(st.integers(-10**6, 10**6), st.floats(), st.text(max_size=5), st.none(), st.booleans())
config = st.fixed_dictionaries({}, optional={
    "output_resolution": st.one_of(st.text(max_size=12), st.lists(st.integers(-10, 10**5), max_size=3),
                                   st.builds(lambda w, h: f"{w}x{h}", st.integers(0, 99999), st.integers(0, 99999)),
                                   st.tuples(st.integers(0, 9000), st.integers(0, 9000)).map(list)),
    "output_fps": number, "strength_threshold": number, "transition_duration": number, "min_shot_duration": number,
    "transition_style": st.sampled_from(["cut", "fade", "wipe", ""]), "sync_mode": st.text(max_size=12),
    "fit": st.sampled_from(["fill", "letterbox", "x"]), "section_aware": st.one_of(st.booleans(), st.text(max_size=3)),
})
create_body = st.fixed_dictionaries({"audio_url": url, "video_urls": st.lists(url, min_size=0, max_size=3)}, optional={
    "config": st.one_of(config, json_doc), "preset": st.sampled_from(["music_video", "fast_cuts", "disco", None]),
    "preview_only": st.one_of(st.booleans(), json_leaf), "preview_duration": number, "webhook_url": url,
    "method": st.sampled_from(["librosa", "madmom", "hybrid", "x", None]), "extra": json_doc})
analyze_body = st.fixed_dictionaries({"audio_url": url}, optional={"fps": number, "method": st.text(max_size=8)})
special = st.sampled_from([
    b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 5000 + b"1" + b"}" * 5000, b"NaN", b"[Infinity]",
    b'{"audio_url": "https://93.184.215.14/a.mp3", "video_urls": ["https://93.184.215.14/v.mp4"], '
    b'"preview_only": true, "preview_duration": NaN}',
    b'{"audio_url": "https://93.184.215.14/a.mp3", "video_urls": ["https://93.184.215.14/v.mp4"], '
    b'"config": {"strength_threshold": NaN, "transition_duration": -Infinity}}',
    b"\xff\xfe\x00", b"", b"null", b'"x"', b"1e999999", b'{"audio_url": "\\ud800"}'])
body = st.one_of(json_doc.map(lambda d: json.dumps(d).encode()), create_body.map(lambda d: json.dumps(d).encode()),
                 analyze_body.map(lambda d: json.dumps(d).encode()), special, st.binary(max_size=200))
part_value = st.one_of(st.text(max_size=10), st.sampled_from(["\u00b2", "30", "٣٠", "-1", "99999999999", " 30"]))
multipart = st.fixed_dictionaries({}, optional={
    "audio_file": st.tuples(st.text(max_size=20), st.binary(max_size=300)), "fps": part_value,
    "file": st.tuples(st.text(max_size=20), st.binary(max_size=300)),
    "method": part_value, "other": part_value})

job_id = st.one_of(st.sampled_from(["known"]), st.text(min_size=1, max_size=40))
ROUTES = [("GET", "/"), ("GET", "/health"), ("GET", "/openapi.json"), ("POST", f"{API}/create"),
          ("POST", f"{API}/analyze"), ("GET", f"{API}/create/{{id}}"), ("DELETE", f"{API}/create/{{id}}"),
          ("GET", f"{API}/analyze/{{id}}"), ("GET", f"{API}/jobs"), ("GET", f"{API}/jobs/{{id}}/logs"),
          ("GET", f"{API}/presets"), ("GET", f"{API}/transitions"), ("GET", "/files/{id}"),
          ("POST", "/internal/analyze"), ("PUT", f"{API}/create"), ("PATCH", "/{id}"), ("POST", f"{API}/uploads"),
          ("GET", "/studio/{id}")]
request_st = st.fixed_dictionaries({
    "route": st.sampled_from(ROUTES + [("POST", f"{API}/create"), ("POST", f"{API}/analyze")] * 4),
    "method": st.one_of(st.none(), st.none(), st.sampled_from(["GET", "POST", "DELETE", "HEAD", "OPTIONS", "PUT"])),
    "id": job_id, "query": st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=4),
    "headers": st.dictionaries(st.sampled_from(["Idempotency-Key", "X-Any", "Accept", "If-None-Match", "Range",
                                                "X-Forwarded-For"]), header_text, max_size=3),
    "auth": st.sampled_from([f"Bearer {KEY}"] * 6 + [None, "Bearer nope", "Basic x", "Bearer a.b.c", "Bearer "]),
    "ctype": st.sampled_from(["application/json"] * 4 + ["multipart/form-data"] * 2 + [
        "application/json; charset=latin-1", "text/plain", None, "application/x-www-form-urlencoded"]),
    "body": body, "multipart": multipart})


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    data = tmp_path_factory.mktemp("props") / "data"
    settings_ = Settings.from_env({}, data_dir=data, api_keys=KEY, sync_wait=0.0, max_active_jobs=100000,
                                  max_submissions_per_minute=100000, max_input_bytes=100_000)
    container = bootstrap(settings_, orchestrator=RecordingOrchestrator())
    set_container(container)
    app = create_flask_app()
    app.testing = False
    c = app.test_client()
    r = c.post(f"{API}/create", json={"audio_url": SAFE_URL, "video_urls": [SAFE_URL]},
               headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 202, r.data
    JOB_IDS.append(r.get_json()["job_id"])
    yield c
    set_container(None)


def _case(route, body=b"", ctype="application/json", multipart=None):
    return {"route": route, "method": None, "id": "known", "query": {}, "headers": {}, "auth": f"Bearer {KEY}",
            "ctype": "multipart/form-data" if multipart else ctype, "body": body, "multipart": multipart or {}}


CREATE = ("POST", f"{API}/create")
GOOD = {"audio_url": SAFE_URL, "video_urls": [SAFE_URL]}


@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(req=request_st)
# the cases of issue 17, finding 6: each answered 500 before
@example(req=_case(CREATE, b"[" * 100_000 + b"]" * 100_000))
@example(req=_case(CREATE, json.dumps({**GOOD, "preview_only": True, "preview_duration": float("nan")}).encode()))
@example(req=_case(CREATE, json.dumps({**GOOD, "config": {"strength_threshold": float("nan")}}).encode()))
@example(req=_case(CREATE, json.dumps({**GOOD, "config": {"transition_duration": float("inf")}}).encode()))
@example(req=_case(("POST", f"{API}/analyze"), multipart={"audio_file": ("a.mp3", b"x" * 10), "fps": "\u00b2"}))
@example(req=_case(("POST", f"{API}/uploads"), multipart={"file": ("\u00e9\x00/../a.mp4", b"\x00\x00\x00\x18ftypisom")}))
def test_no_input_is_answered_with_a_500(client, req):
    method = req["method"] or req["route"][0]
    ident = JOB_IDS[0] if req["id"] == "known" else req["id"]
    path = req["route"][1].replace("{id}", quote(ident, safe=""))
    headers = dict(req["headers"])
    if req["auth"]:
        headers["Authorization"] = req["auth"]
    kwargs = {}
    if req["ctype"] == "multipart/form-data" and method in ("POST", "PUT"):
        data = {}
        for k, v in req["multipart"].items():
            data[k] = (io.BytesIO(v[1]), v[0]) if k in ("audio_file", "file") else v
        kwargs["data"] = data
        kwargs["content_type"] = "multipart/form-data"
    elif method not in ("GET", "HEAD"):
        kwargs["data"] = req["body"]
        if req["ctype"]:
            headers["Content-Type"] = req["ctype"]
    resp = client.open(path, method=method, query_string=req["query"], headers=headers, **kwargs)
    assert resp.status_code < 500 or resp.status_code == 503, (resp.status_code, resp.data[:500])
    if resp.status_code >= 400 and method != "HEAD":
        doc = json.loads(resp.data)
        assert set(doc) == {"error"} and set(doc["error"]) == {"code", "message", "details"}, doc
        assert isinstance(doc["error"]["code"], str) and isinstance(doc["error"]["message"], str)
