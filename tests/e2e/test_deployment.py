"""The deployment rehearsal: the product as terraform/ describes it, on loopback.

terraform/ is read with python-hcl2 (tests/deploy.py) for each component's environment variables,
service account and mounted secrets, and for the URL map's route table. Each component runs as its
own process with exactly that environment (references resolved to the rehearsal's values): the
submit and status functions and the analyze service under functions-framework, compose attempts as
`beatsync compose-job` processes (the process runner, given the compose job's environment), the
workflow in workflows-emulator with the workflow's own environment. A path router built from the
URL map is the one base URL. Firestore emulator, fake-gcs-server and gcloud-tasks-emulator stand
in for the managed services; a local server plays Google's certificate endpoint for ID tokens
signed by a test key. Substitutions, each because the stand-in needs it: emulator endpoints, the
certificate URL, ``BEATSYNC_COMPOSE_RUNNER=process`` (no Cloud Run here), and the workflow's
``BEATSYNC_AUTH_MODE=none`` (workflows-emulator cannot mint OIDC tokens) and 1 s polls.

The seed's client code runs against the router: Option 2 (Google ID tokens) and Option 1
(direct HTTP calls: refused without an identity; with an API key set on its HTTP client, served).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest

from beatsync.signing import SIGNATURE_HEADER, verify_event
from tests.conftest import ROOT
from tests import seed_client
from tests.deploy import components, function_groups, openapi_operations, route, route_table, serves, variables
from tests.deploy import resolve as _resolve
from tests.emulators import (  # noqa: F401
    _emulator_tool, _wait_http, fake_gcs, firestore_emulator, free_port, stop_process, tasks_emulator)
from tests.servers import Server, media_server, wait_for, webhook_receiver

PROJECT = "demo-beatsync"  # the tasks emulator's queue lives in this project
API = "/api/v1/beat-sync"
WEBHOOK_SECRET = "rehearsal-webhook-secret"
API_KEY = "rehearsal-api-key-0123456789"
APP = "main-app@platform.iam.gserviceaccount.com"      # trusted: acts for its end users
OTHER = "reports@platform.iam.gserviceaccount.com"     # another Option 2 caller




class Google:
    """Google's token side: a certificate endpoint over HTTP and ID tokens signed by its key."""

    def __init__(self):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rehearsal-google")])
        now = dt.datetime.now(dt.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(1).not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
        self.pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()
        body = json.dumps({"rehearsal": cert.public_bytes(serialization.Encoding.PEM).decode()}).encode()
        self.fetches = []
        fetches = self.fetches

        class Certs(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):  # noqa: N802
                fetches.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = Server(Certs)
        self.certs_url = self.server.url + "/oauth2/v1/certs"

    def token(self, email: str, audience: str) -> str:
        from google.auth import crypt, jwt

        now = int(time.time())
        return jwt.encode(crypt.RSASigner.from_string(self.pem, "rehearsal"), {
            "iss": "https://accounts.google.com", "aud": audience, "email": email, "email_verified": True,
            "sub": email, "iat": now - 5, "exp": now + 900}).decode()


class Router:
    """The load balancer's URL map on loopback: each request goes to the function the route table
    names, unchanged (method, path, query, headers, body)."""

    def __init__(self, ports: dict[str, int]):
        table = route_table()
        self.hits: list[tuple[str, str, str, int]] = []
        router = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _forward(self):
                path = self.path.split("?", 1)[0]
                fn = route(path, table)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn = http.client.HTTPConnection("127.0.0.1", ports[fn], timeout=120)
                try:
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                finally:
                    conn.close()
                router.hits.append((self.command, path, fn, resp.status))
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length", "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = _forward

        self.server = Server(Handler)
        self.url = self.server.url


def _start(name, cmd, env, tmp: Path, url: str | None):
    base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "PYTHONPATH", "XDG_CACHE_HOME") if k in os.environ}
    log = tmp / f"{name}.log"
    proc = subprocess.Popen(cmd, env={**base, **env}, stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                            start_new_session=True, cwd=str(tmp))
    if url:
        _wait_http(url, 90, proc)
    return proc


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, firestore_emulator, fake_gcs, tasks_emulator):  # noqa: F811
    t0 = time.monotonic()
    tmp = tmp_path_factory.mktemp("deploy")
    media_dir = tmp / "media"
    media_dir.mkdir()
    for name in ("lets_go_fishin_excerpt.opus", "bottles.mp4", "cars.mp4", "people.mp4"):
        shutil.copy(ROOT / "examples" / name, media_dir / name)
    media, receiver, google = media_server(media_dir), webhook_receiver(), Google()
    tasks_host, queue_path = tasks_emulator
    defaults = {k: v.get("default") for k, v in variables().items()}
    ports = {n: free_port() for n in ("submit", "status", "analyze", "workflow")}
    router = Router({n: ports[n] for n in ("submit", "status")})
    bucket = f"rehearsal-{uuid.uuid4().hex[:8]}"
    values = {f"var.{k}": v for k, v in defaults.items()}
    values.update({
        "var.project_id": PROJECT, "var.bucket_name": bucket, "var.domain": router.url.removeprefix("http://"),
        "var.allowed_hosts": [media.host, receiver.host], "var.analysis_method": "librosa",
        "var.id_token_callers": [APP, OTHER], "var.trusted_callers": [APP],
        "local.api_url": router.url,  # the public URL: https://DOMAIN in the cloud
        "local.workflow_name": defaults["name_prefix"], "local.compose_name": f"{defaults['name_prefix']}-compose",
        "google_storage_bucket.media.name": bucket,
        "google_cloud_tasks_queue.webhooks.name": queue_path.rsplit("/", 1)[1],
        'google_service_account.this["tasks"].email': f"beat-sync-tasks@{PROJECT}.iam.gserviceaccount.com",
        "google_cloud_run_v2_service.analyze.uri": f"http://127.0.0.1:{ports['analyze']}",
        # the Pub/Sub intake's identity (its push is rehearsed on the emulator in test_pubsub_emulator.py)
        "local.pubsub_push_audience": f"{router.url}/api/v1/beat-sync/pubsub/push",
        "google_service_account.pubsub_push.email": f"beat-sync-pubsub-push@{PROJECT}.iam.gserviceaccount.com",
        "google_pubsub_topic.dead_letter.id": f"projects/{PROJECT}/topics/beat-sync-requests-dead-letter",
        "google_pubsub_topic.events.id": f"projects/{PROJECT}/topics/{defaults['name_prefix']}-events",
    })
    secrets = {"secret:webhook": ("BEATSYNC_WEBHOOK_SECRET", WEBHOOK_SECRET),
               "secret:api_keys": ("BEATSYNC_API_KEYS", API_KEY)}
    emulated = {"FIRESTORE_EMULATOR_HOST": firestore_emulator, "BEATSYNC_GCS_ENDPOINT": fake_gcs,
                "BEATSYNC_TASKS_EMULATOR_HOST": tasks_host, "BEATSYNC_ID_TOKEN_CERTS_URL": google.certs_url}
    comps = components()
    envs = {}
    for name, comp in comps.items():
        env = {k: _resolve(v, values) for k, v in comp["env"].items()}
        if name != "workflow":
            env.update(dict(secrets[s] for s in comp["secrets"]))
            env.update(emulated, K_SERVICE=f"beat-sync-{name}", BEATSYNC_DATA_DIR=str(tmp / "data" / name))
            if env.get("BEATSYNC_ORCHESTRATOR") == "workflows":
                env["BEATSYNC_WORKFLOWS_ENDPOINT"] = f"http://127.0.0.1:{ports['workflow']}"
        envs[name] = env
    # compose attempts are processes started by the analyze service, so they inherit its
    # environment: the rehearsal holds only while that is the compose job's environment
    assert {k: v for k, v in envs["compose"].items() if k not in ("K_SERVICE", "BEATSYNC_DATA_DIR")} == \
        {k: v for k, v in envs["analyze"].items() if k not in ("K_SERVICE", "BEATSYNC_DATA_DIR")}
    assert envs["compose"]["BEATSYNC_COMPOSE_RUNNER"] == "cloud_run_job"
    envs["analyze"]["BEATSYNC_COMPOSE_RUNNER"] = "process"
    envs["workflow"].update(BEATSYNC_AUTH_MODE="none", BEATSYNC_POLL_SECONDS="1")

    from beatsync.adapters.gcs import GcsBlobStore

    blobs = GcsBlobStore(bucket, project=PROJECT, endpoint=fake_gcs)
    blobs.bucket.client.create_bucket(bucket)
    ff = str(ROOT / ".venv" / "bin" / "functions-framework")
    procs = [_start("workflow", [_emulator_tool("workflows-emulator"), "--source", str(ROOT / "workflows" / "beat_sync.yaml"),
                                 "serve", "--port", str(ports["workflow"])], envs["workflow"], tmp, None)]
    for name in ("submit", "status", "analyze"):
        procs.append(_start(name, [ff, "--source", str(ROOT / "functions" / name / "main.py"), "--target", name,
                                   "--port", str(ports[name])], envs[name], tmp, f"http://127.0.0.1:{ports[name]}/"))
    wait_for(lambda: b"Uvicorn running" in (tmp / "workflow.log").read_bytes(), timeout=60)

    class Deployment:
        pass

    d = Deployment()
    d.router, d.google, d.media, d.receiver, d.blobs, d.tmp, d.envs = router, google, media, receiver, blobs, tmp, envs
    d.values, d.ff = values, ff
    d.started_in = time.monotonic() - t0
    yield d
    for p in procs:
        stop_process(p)
    for s in (router.server, google.server, media, receiver):
        s.close()


@pytest.fixture
def as_caller(deployment, monkeypatch):
    """Point the seed's client code at the one base URL; ``as_caller(email)`` picks the token's holder."""
    monkeypatch.setattr(seed_client, "BEAT_SYNC_SERVICE_URL", deployment.router.url)

    def use(email):
        monkeypatch.setattr(seed_client.google.oauth2.id_token, "fetch_id_token",
                            lambda request, audience: deployment.google.token(email, audience))

    use(APP)
    return use


def _body(d, long=False, webhook=True):
    m = d.media.url
    b = {"audio_url": f"{m}/lets_go_fishin_excerpt.opus",
         "video_urls": [f"{m}/bottles.mp4", f"{m}/cars.mp4", f"{m}/people.mp4"]}
    if webhook:
        b["webhook_url"] = f"{d.receiver.url}/hook/{uuid.uuid4().hex}"
    if long:
        b.update(preset="cinematic", config={"output_resolution": [1920, 1080]})
    else:
        b.update(preset="fast_cuts", preview_only=True, preview_duration=8, config={"output_resolution": [640, 360]})
    return b


def _webhook(d, job_id, timeout=90):
    e = wait_for(lambda: next((e for e in list(d.receiver.received) if e["json"]["job_id"] == job_id), None),
                 timeout=timeout, interval=0.2)
    assert verify_event(WEBHOOK_SECRET.encode(), e["body"], e["headers"][SIGNATURE_HEADER])
    return e["json"]


def test_every_public_route_is_served_through_the_one_url(deployment, as_caller):
    token = deployment.google.token(APP, deployment.router.url)
    for method, path in openapi_operations() + [("GET", "/openapi.json")]:
        fn = route(path)
        assert serves(function_groups(fn), method, path), (method, path, fn)
        kwargs = {"json": {}} if method == "POST" else {}
        r = httpx.request(method, deployment.router.url + path, headers={"Authorization": f"Bearer {token}"},
                          timeout=30, **kwargs)
        code = r.json().get("error", {}).get("code") if r.headers.get("content-type") == "application/json" else None
        assert code not in ("route_not_found", "method_not_allowed"), (method, path, fn, r.status_code, r.text)
    # no identity: refused, never anonymous (the deployed functions fail closed)
    r = httpx.get(f"{deployment.router.url}{API}/jobs", timeout=10)
    assert (r.status_code, r.json()["error"]["code"]) == (401, "unauthenticated")
    assert deployment.google.fetches  # the functions fetched the token certificates over HTTP


def test_option_2_creates_polls_downloads_and_gets_a_signed_webhook(deployment, as_caller):
    d = deployment
    job = asyncio.run(seed_client.call_beat_sync_service("POST", f"{API}/create", _body(d)))
    assert job["status"] == "queued"

    def done():
        s = asyncio.run(seed_client.call_beat_sync_service("GET", f"{API}/create/{job['job_id']}"))
        assert s["status"] in ("queued", "processing", "completed"), s
        return s if s["status"] == "completed" else None

    status = wait_for(done, timeout=240, interval=1)
    video = httpx.get(status["output_url"], timeout=30)
    assert video.status_code == 200 and len(video.content) == status["file_size"] and video.content[4:8] == b"ftyp"
    event = _webhook(d, job["job_id"])
    assert event["event"] == "beat_sync.job.completed" and event["data"]["output_url"]
    logs = asyncio.run(seed_client.call_beat_sync_service("GET", f"{API}/jobs/{job['job_id']}/logs"))["logs"]
    assert any("rendered" in e["message"] for e in logs) and any("workflow: started" in e["message"] for e in logs)
    assert asyncio.run(seed_client.call_beat_sync_service("GET", f"{API}/presets"))["presets"]
    assert asyncio.run(seed_client.call_beat_sync_service("GET", f"{API}/transitions"))["transitions"]


def test_option_1_needs_an_identity_and_with_an_api_key_cancels_mid_render(deployment, as_caller, monkeypatch):
    d = deployment
    body = _body(d)
    audio, clips = body["audio_url"], body["video_urls"]
    with pytest.raises(httpx.HTTPStatusError) as refused:  # unchanged: no Authorization, no service
        asyncio.run(seed_client.create_beat_synced_video(audio, clips, {"output_resolution": [640, 360]}))
    assert refused.value.response.status_code == 401

    class KeyedClient(httpx.AsyncClient):  # the platform's HTTP client, configured with its API key
        def __init__(self, **kw):
            super().__init__(headers={"Authorization": f"Bearer {API_KEY}"}, **kw)

    monkeypatch.setattr(httpx, "AsyncClient", KeyedClient)
    job = asyncio.run(seed_client.create_beat_synced_video(audio, clips, {"output_resolution": [1920, 1080],
                                                              "transition_style": "fade"}))
    wait_for(lambda: asyncio.run(seed_client.check_video_status(job["job_id"]))["progress"] > 40, timeout=240, interval=0.5)
    r = httpx.delete(f"{d.router.url}{API}/create/{job['job_id']}", headers={"Authorization": f"Bearer {API_KEY}"},
                     timeout=30)
    assert r.status_code == 200 and r.json()["success"], r.text
    # ends cancelled, not completed (how fast: benchmarks/cancel_latency.py); a wide bound on a busy machine
    wait_for(lambda: asyncio.run(seed_client.check_video_status(job["job_id"]))["status"] == "cancelled", timeout=120)
    time.sleep(2)  # the stopped render must leave nothing behind
    assert d.blobs.list(f"outputs/{job['job_id']}/") == []


def test_each_caller_and_each_user_sees_only_its_own_jobs(deployment, as_caller):
    d = deployment

    def create_and_cancel(user=None):
        h = {"X-Beatsync-User-Id": user} if user else None
        job = asyncio.run(seed_client.call_beat_sync_service("POST", f"{API}/create", _body(d, webhook=False), h))
        asyncio.run(seed_client.call_beat_sync_service("DELETE", f"{API}/create/{job['job_id']}", None, h))
        return job["job_id"]

    def listed(user=None):
        h = {"X-Beatsync-User-Id": user} if user else None
        return {j["job_id"] for j in asyncio.run(seed_client.call_beat_sync_service("GET", f"{API}/jobs?limit=100", None, h))["jobs"]}

    u1 = create_and_cancel("u1")
    assert listed("u1") == {u1} and listed("u2") == set()
    assert u1 in listed()  # the trusted caller's own list holds its users' jobs
    one = asyncio.run(seed_client.call_beat_sync_service("GET", f"{API}/jobs?user_id=u1"))["jobs"]
    assert [(j["job_id"], j["user_id"]) for j in one] == [(u1, "u1")]
    asyncio.run(seed_client.call_beat_sync_service("GET", f"{API}/create/{u1}"))  # but the caller reaches its users' jobs
    as_caller(OTHER)
    mine = create_and_cancel()
    assert listed() == {mine}
    with pytest.raises(httpx.HTTPStatusError) as other:
        asyncio.run(seed_client.call_beat_sync_service("GET", f"{API}/create/{u1}"))
    assert other.value.response.status_code == 404
    with pytest.raises(httpx.HTTPStatusError) as naming:  # not trusted: may not name users
        asyncio.run(seed_client.call_beat_sync_service("GET", f"{API}/jobs", None, {"X-Beatsync-User-Id": "u1"}))
    assert naming.value.response.status_code == 403
    keyed = httpx.get(f"{d.router.url}{API}/jobs?limit=100", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)
    assert not {j["job_id"] for j in keyed.json()["jobs"]} & {u1, mine}


STRANGER = "attacker@evil-project.iam.gserviceaccount.com"  # any service account of any project


def test_a_strangers_valid_token_is_refused_as_deployed(deployment):
    """Finding 4 of issue 21: a token correctly signed (by the key the certificate endpoint serves),
    for the deployment's audience, from an email not in id_token_callers, is refused by every public
    function; and a deployment with Terraform's default variables (no id_token_callers) refuses every
    ID token, a listed caller's included, while its API keys still work."""
    d = deployment
    token = d.google.token(STRANGER, d.router.url)
    for method, path, body in (("POST", f"{API}/create", _body(d)), ("GET", f"{API}/jobs", None),
                               ("GET", f"{API}/presets", None)):
        r = httpx.request(method, d.router.url + path, json=body, headers={"Authorization": f"Bearer {token}"},
                          timeout=30)
        assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden"), (path, r.text)
    # the status function as Terraform's default variables configure it
    values = {**d.values, "var.id_token_callers": [], "var.trusted_callers": []}
    env = {k: _resolve(v, values) for k, v in components()["status"]["env"].items()}
    assert env["BEATSYNC_ID_TOKEN_AUDIENCES"] == "" and env["BEATSYNC_ALLOWED_CALLERS"] == ""
    port = free_port()
    env = {**d.envs["status"], **env, "BEATSYNC_DATA_DIR": str(d.tmp / "data" / "status-defaults")}
    proc = _start("status-defaults", [d.ff, "--source", str(ROOT / "functions" / "status" / "main.py"), "--target",
                                      "status", "--port", str(port)], env, d.tmp, f"http://127.0.0.1:{port}/")
    try:
        for email in (STRANGER, APP):
            r = httpx.get(f"http://127.0.0.1:{port}{API}/jobs", timeout=30,
                          headers={"Authorization": f"Bearer {d.google.token(email, d.router.url)}"})
            assert (r.status_code, r.json()["error"]["code"]) == (401, "unauthenticated"), (email, r.text)
        r = httpx.get(f"http://127.0.0.1:{port}{API}/jobs", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30)
        assert r.status_code == 200, r.text
    finally:
        stop_process(proc)


def test_the_scheduled_sweep_finishes_ends_a_killed_instance_left_pending(deployment):
    """The Cloud Scheduler job as Terraform describes it (method, URI, body) posts to the analyze service
    running with its Terraform environment: a job whose end was cut short an hour ago (the terminal
    write only, as a killed instance leaves it, in the Firestore emulator) is finished - its signed
    webhook delivered through the tasks emulator - and one that ended just now is left to its process."""
    from beatsync.adapters.firestore_jobs import FirestoreJobStore
    from beatsync.jobs.model import JobError, new_job, now
    from tests.deploy import resources

    d = deployment
    env = d.envs["analyze"]
    store = FirestoreJobStore(project=PROJECT, collection=env.get("BEATSYNC_FIRESTORE_COLLECTION", "beatsync_jobs"))

    def ended(ago: float):
        job = new_job("create", {**_body(d), "edit_config": {}}, owner=f"google:{APP}")
        t = now() - dt.timedelta(seconds=ago)
        job = job.model_copy(update={"status": "failed", "current_step": "failed", "started_at": t, "completed_at": t,
                                     "end_pending": True, "attempts": 1,
                                     "error": JobError(code="internal_error", message="the instance was killed")})
        store.create(job)
        return job.job_id

    old, young = ended(3600), ended(0)
    sweep = resources("google_cloud_scheduler_job")["end_pending_sweep"]
    http = sweep["http_target"][0]
    m = re.fullmatch(r"\$\{base64encode\(jsonencode\(\{older_than_seconds = (var\.\w+)\}\)\)\}", http["body"])
    assert m, http["body"]
    body = json.dumps({"older_than_seconds": d.values[m.group(1)]})  # what jsonencode gives (base64 on the wire)
    url = _resolve(http["uri"], d.values)  # the analyze service's URL, as the workflow calls it
    r = httpx.request(http["http_method"], url, content=body, headers=http["headers"], timeout=120)
    assert r.status_code == 200 and r.json()["finished"] >= 1 and r.json()["failed"] == 0, r.text
    assert r.json()["older_than_seconds"] == d.values[m.group(1)]
    assert not store.get(old).end_pending
    assert store.get(young).end_pending  # younger than the threshold: its own process may be finishing it
    event = _webhook(d, old)
    assert event["event"] == "beat_sync.job.failed" and event["data"]["error"]["code"] == "internal_error"
    store.end_done(young)  # (its process would have)
