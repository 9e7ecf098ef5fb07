"""The API from a browser: CORS (origins a setting, preflights, never credentials with a wildcard),
the human-readable documentation at /docs (served from the pinned package, no CDN) and the seed's
step names."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from beatsync.bootstrap import bootstrap
from beatsync.errors import Misconfigured
from beatsync.http import create_flask_app, set_container
from beatsync.jobs.model import SEED_STEPS, Job, seed_step
from beatsync.settings import Settings
from tests.conftest import ROOT
from tests.suites.service import RecordingOrchestrator

API = "/api/v1/beat-sync"
APP = "https://app.example.com"


@pytest.fixture
def serve(tmp_path):
    """A test client of `beatsync serve`'s app over a container with the given settings."""

    def make(**settings):
        set_container(bootstrap(Settings.from_env({}, data_dir=tmp_path / "data", **settings),
                                orchestrator=RecordingOrchestrator()))
        return create_flask_app().test_client()

    yield make
    set_container(None)


def _preflight(client, path, origin=APP, method="POST"):
    return client.options(path, headers={"Origin": origin, "Access-Control-Request-Method": method,
                                         "Access-Control-Request-Headers": "authorization, content-type"})


# -- CORS -----------------------------------------------------------------------------------------

def test_no_origins_configured_means_no_cross_origin_access(serve):
    client = serve()
    r = _preflight(client, f"{API}/create")
    assert r.status_code == 403 and r.json["error"]["code"] == "cors_origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in r.headers
    r = client.get(f"{API}/presets", headers={"Origin": APP})
    assert r.status_code == 200 and not any(h.lower().startswith("access-control-") for h in r.headers.keys())


def test_a_listed_origin_gets_preflights_and_headers_on_every_answer(serve):
    client = serve(cors_origins=f"{APP}, https://other.example.com:8443")
    r = _preflight(client, f"{API}/create")
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == APP
    assert r.headers["Access-Control-Allow-Methods"] == "OPTIONS, POST"
    assert {h.strip().lower() for h in r.headers["Access-Control-Allow-Headers"].split(",")} >= {
        "authorization", "content-type", "idempotency-key"}
    assert int(r.headers["Access-Control-Max-Age"]) > 0 and "Origin" in r.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in r.headers  # bearer tokens need no credentials mode
    r = _preflight(client, f"{API}/create/{'a' * 32}", method="DELETE")
    assert r.status_code == 204 and r.headers["Access-Control-Allow-Methods"] == "DELETE, GET, HEAD, OPTIONS"
    # answers, errors included, carry the origin so that a browser script can read them
    for r in (client.get(f"{API}/presets", headers={"Origin": APP}),
              client.get(f"{API}/create/{'a' * 32}", headers={"Origin": APP}),
              client.post(f"{API}/create", data="x", headers={"Origin": APP, "Content-Type": "text/plain"})):
        assert r.headers["Access-Control-Allow-Origin"] == APP, r.status_code
        assert "Location" in r.headers["Access-Control-Expose-Headers"] and r.headers["Vary"] == "Origin"
    assert client.get(f"{API}/create/{'a' * 32}", headers={"Origin": APP}).status_code == 404
    # another origin: refused preflight, no header on answers
    assert _preflight(client, f"{API}/create", origin="https://evil.example.com").status_code == 403
    r = client.get(f"{API}/presets", headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in r.headers and r.headers["Vary"] == "Origin"
    # an unknown path is not answered as a preflight
    assert _preflight(client, "/nowhere").status_code == 404


def test_credentials_only_for_listed_origins_never_with_the_wildcard(serve, tmp_path):
    client = serve(cors_origins=APP, cors_credentials="true")
    r = _preflight(client, f"{API}/jobs", method="GET")
    assert r.headers["Access-Control-Allow-Origin"] == APP and r.headers["Access-Control-Allow-Credentials"] == "true"
    client = serve(cors_origins="*")
    r = _preflight(client, f"{API}/jobs", origin="https://anyone.example.org", method="GET")
    assert r.status_code == 204 and r.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in r.headers
    r = client.get(f"{API}/jobs", headers={"Origin": "https://anyone.example.org"})
    assert r.headers["Access-Control-Allow-Origin"] == "*" and "Access-Control-Allow-Credentials" not in r.headers
    # a listed origin beside the wildcard still never gets credentials with *
    with pytest.raises(Misconfigured, match="cannot be combined"):
        Settings.from_env({}, data_dir=tmp_path, cors_origins=f"*,{APP}", cors_credentials="true")
    for bad in ("app.example.com", "https://app.example.com/path", "ftp://x.example.com"):
        with pytest.raises(Misconfigured, match="not an origin"):
            Settings.from_env({}, data_dir=tmp_path, cors_origins=bad)
    with pytest.raises(Misconfigured, match="true or false"):
        Settings.from_env({}, data_dir=tmp_path, cors_credentials="yes")


def test_internal_routes_never_get_cors(serve):
    client = serve(cors_origins="*")
    internal = create_flask_app(("meta", "analyze", "control")).test_client()  # the analyze service's routes
    r = _preflight(internal, "/internal/analyze")
    assert r.status_code == 405 and "Access-Control-Allow-Origin" not in r.headers
    r = internal.post("/internal/analyze", json={"job_id": "x"}, headers={"Origin": APP})
    assert r.status_code == 400 and "Access-Control-Allow-Origin" not in r.headers
    assert client.get("/health", headers={"Origin": APP}).headers["Access-Control-Allow-Origin"] == "*"


def test_the_auth_check_comes_after_the_preflight(serve):
    client = serve(cors_origins=APP, api_keys="k1")
    assert _preflight(client, f"{API}/create").status_code == 204  # a preflight carries no Authorization
    r = client.post(f"{API}/create", json={}, headers={"Origin": APP})
    assert r.status_code == 401 and r.headers["Access-Control-Allow-Origin"] == APP


def test_the_status_function_answers_cors_from_its_environment(tmp_path, monkeypatch):
    import functions_framework

    monkeypatch.setenv("BEATSYNC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BEATSYNC_CORS_ORIGINS", APP)
    set_container(None)
    try:
        app = functions_framework.create_app(target="status", source=str(ROOT / "functions/status/main.py"))
        r = _preflight(app.test_client(), f"{API}/jobs", method="GET")
        assert r.status_code == 204 and r.headers["Access-Control-Allow-Origin"] == APP
    finally:
        set_container(None)


# -- /docs ----------------------------------------------------------------------------------------

def _wheel_static() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("swagger_ui")
    return Path(list(spec.submodule_search_locations)[0]) / "static"


def test_docs_page_serves_swagger_ui_from_the_pinned_package(serve):
    from importlib.metadata import version

    from beatsync.contracts.schemas import DOCS_ASSETS
    from beatsync.http.docs import ASSETS

    pins = (ROOT / "pyproject.toml").read_text() + (ROOT / "functions/status/requirements.txt").read_text()
    assert pins.count(f"swagger-ui-py=={version('swagger-ui-py')}") == 2
    client = serve()
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    # every file the page loads is served here: no CDN, no inline script (the CSP allows none)
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/docs/") for s in sources), sources
    assert not re.search(r"<script>[^<]", html)
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert set(ASSETS) == set(DOCS_ASSETS)
    for src in sources:
        r = client.get(src)
        assert r.status_code == 200, src
        if src.startswith("/docs/static/"):
            name = src.rsplit("/", 1)[1]
            assert hashlib.sha256(r.data).digest() == hashlib.sha256((_wheel_static() / name).read_bytes()).digest()
            assert r.mimetype == ASSETS[name].split(";")[0]
    assert b"SwaggerUIBundle" in client.get("/docs/static/swagger-ui-bundle.js").data
    init = client.get("/docs/init.js").get_data(as_text=True)
    assert 'url: "/openapi.json"' in init
    # only the listed files: no path tricks into the package or elsewhere
    for bad in ("LICENSE", "..%2F__init__.py", "swagger-editor-bundle.js"):
        assert client.get(f"/docs/static/{bad}").status_code == 404
    assert client.get("/docs/static/../../etc/passwd").status_code == 404


def test_redoc_is_served_like_docs_from_the_vendored_bundle(serve):
    """/redoc (the seed's FastAPI serves one): ReDoc's pinned bundle from the package, no CDN, no inline
    script, the same Content-Security-Policy as /docs, its licences beside it."""
    from beatsync.contracts.schemas import REDOC_ASSETS, openapi
    from beatsync.http.docs import REDOC_DIR

    client = serve()
    page = client.get("/redoc")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert page.headers["Content-Security-Policy"] == client.get("/docs").headers["Content-Security-Policy"]
    html = page.get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources == ["/redoc/static/redoc.standalone.js"] and not re.search(r"<script>[^<]", html)
    assert '<redoc spec-url="/openapi.json"' in html
    bundle = client.get(sources[0])
    assert bundle.status_code == 200 and bundle.mimetype == "text/javascript"
    # the bundle pinned in redoc/README.md (npm redoc 2.5.4), unchanged
    pinned = re.search(r"sha256 is `([0-9a-f]{64})`", (REDOC_DIR / "README.md").read_text()).group(1)
    assert hashlib.sha256(bundle.data).hexdigest() == pinned
    assert "MIT License" in client.get("/redoc/static/LICENSE").get_data(as_text=True)
    assert set(openapi()["paths"]["/redoc/static/{name}"]["get"]["parameters"][0]["schema"]["enum"]) == set(
        REDOC_ASSETS) == {p.name for p in REDOC_DIR.iterdir()} - {"README.md"}
    for bad in ("README.md", "..%2F..%2Fdocs.py", "redoc.js"):
        assert client.get(f"/redoc/static/{bad}").status_code == 404
    assert client.get("/redoc/static/../../app.py").status_code == 404


def test_docs_list_the_security_scheme_and_the_signed_file_links(serve):
    doc = serve().get("/openapi.json").json
    scheme = doc["components"]["securitySchemes"]["bearer"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    assert "API key" in scheme["bearerFormat"] and "ID token" in scheme["bearerFormat"]
    files = doc["paths"]["/files/{key}"]["get"]
    assert files["security"] == [] and {p["name"] for p in files["parameters"]} == {"key", "expires", "signature"}
    assert "video/mp4" in files["responses"]["200"]["content"]
    summary = doc["components"]["schemas"]["JobSummary"]["properties"]
    assert "output_url" in summary and "completed" in summary["current_step"]["enum"]


def test_docs_without_the_package_say_so(serve, monkeypatch):
    from beatsync.http import docs

    client = serve()
    monkeypatch.setattr(docs, "static_dir", lambda: None)
    r = client.get("/docs")
    assert r.status_code == 404 and r.json["error"]["code"] == "docs_not_installed"


# -- the seed's step names --------------------------------------------------------------------------

def _job(status: str, step: str, progress: float = 50.0) -> Job:
    from beatsync.jobs.model import new_job

    return new_job("create", {"audio_url": "https://x/a.mp3"}, "o").model_copy(
        update={"status": status, "current_step": step, "progress": progress})


def test_every_step_name_the_code_writes_has_a_seed_name():
    src = ROOT / "src" / "beatsync"
    text = "\n".join(p.read_text() for p in src.rglob("*.py"))
    written = set(re.findall(r'(?:report|progress|_begin)\(.*,\s*"([a-z_ ]+)"\)', text))
    written |= set(re.findall(r'step="([a-z_]+)"', text))
    written -= {"processing"}  # transitioned(step=...) to a status names the status
    assert {"downloading", "checking", "analyzing", "analyzed", "preparing", "render", "uploading"} <= written
    assert written <= set(SEED_STEPS), written - set(SEED_STEPS)
    assert set(SEED_STEPS.values()) == {"downloading", "analyzing", "composing", "uploading"}


@pytest.mark.parametrize("status, step, progress, expected", [
    ("queued", "queued", 0, "queued"),
    ("processing", "starting", 0, "downloading"),
    ("processing", "checking", 10, "downloading"),
    ("processing", "analyzing", 12, "analyzing"),
    ("processing", "render", 60, "composing"),
    ("processing", "uploading", 97, "uploading"),
    ("processing", "something new", 5, "downloading"),
    ("processing", "something new", 20, "analyzing"),
    ("processing", "something new", 50, "composing"),
    ("processing", "something new", 99, "uploading"),
    ("completed", "completed", 100, "completed"),
    ("failed", "render", 40, "failed"),
])
def test_seed_step(status, step, progress, expected):
    assert seed_step(_job(status, step, progress)) == expected


def test_paths_flask_cannot_route_still_get_the_json_error(serve):
    client = serve()  # found by the fuzz test: a newline in a path got Flask's HTML 404
    for path in ("/docs/static/%0Aab", f"{API}/create/%0A"):
        r = client.get(path)
        assert r.status_code == 404 and r.mimetype == "application/json" and r.json["error"]["code"], path


def test_the_end_user_header_is_allowed_when_trusted_callers_may_send_it(serve):
    """Issue 21, finding 7: a trusted caller's page sends ``X-Beatsync-User-Id``; the preflight
    must allow it when the feature is on (and only then)."""
    def allowed(client):
        r = _preflight(client, f"{API}/create")
        assert r.status_code == 204
        return {h.strip().lower() for h in r.headers["Access-Control-Allow-Headers"].split(",")}

    assert "x-beatsync-user-id" in allowed(serve(cors_origins=APP, api_keys="k1", trusted_callers="key-0123456789abcdef"))
    assert "x-beatsync-user-id" not in allowed(serve(cors_origins=APP, api_keys="k1"))
