"""Identity on every API route (API keys, Google-signed ID tokens verified against certificates
served over HTTP), jobs that belong to their caller, quotas with 429 + Retry-After, audit lines."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from http.server import BaseHTTPRequestHandler

import functions_framework
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

from beatsync.bootstrap import bootstrap
from beatsync.http import set_container
from beatsync.settings import Settings
from tests.conftest import ROOT
from tests.servers import Server
from tests.suites.service import RecordingOrchestrator

API = "/api/v1/beat-sync"
AUDIENCE = "https://beat-sync-submit-abc.a.run.app"
BODY = {"audio_url": "https://93.184.215.14/song.mp3", "video_urls": ["https://93.184.215.14/a.mp4"]}


def _key_and_cert():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-google")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return pem, cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def google():
    """Google's certificate endpoint, played by a local server with our own signing key."""
    pem, cert = _key_and_cert()
    impostor_pem, _ = _key_and_cert()

    class Certs(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):  # noqa: N802
            body = json.dumps({"k1": cert}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = Server(Certs)

    def token(email="app@platform.iam.gserviceaccount.com", aud=AUDIENCE, exp_in=600, signer_pem=pem,
              iss="https://accounts.google.com"):
        now = int(time.time())
        payload = {"iss": iss, "aud": aud, "email": email, "email_verified": True, "sub": "1", "iat": now - 5,
                   "exp": now + exp_in}
        return jwt.encode(crypt.RSASigner.from_string(signer_pem, "k1"), payload).decode()

    server.token = token
    server.impostor_pem = impostor_pem
    yield server
    server.close()


def _clients():
    def make(name):
        return functions_framework.create_app(target=name, source=str(ROOT / "functions" / name / "main.py")).test_client()

    return make("submit"), make("status")


@pytest.fixture
def setup(tmp_path, google):
    def build(**settings):
        c = bootstrap(Settings.from_env({}, data_dir=tmp_path / "data", **settings), orchestrator=RecordingOrchestrator())
        set_container(c)
        return c

    yield build
    set_container(None)


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def test_api_keys_guard_every_api_route_and_jobs_belong_to_their_key(setup):
    setup(api_keys="key-alice,key-bob")
    submit, status = _clients()
    assert status.get("/health").status_code == 200 and status.get("/").status_code == 200  # open
    for path in (f"{API}/jobs", f"{API}/presets", f"{API}/transitions", f"{API}/create/{'a' * 32}"):
        r = status.get(path)
        assert (r.status_code, r.json["error"]["code"]) == (401, "unauthenticated"), path
    assert submit.post(f"{API}/create", json=BODY).status_code == 401
    assert submit.post(f"{API}/create", json=BODY, headers=auth("key-mallory")).status_code == 401
    r = submit.post(f"{API}/create", json=BODY, headers=auth("key-alice"))
    assert r.status_code == 202
    job_id = r.json["job_id"]
    assert status.get(f"{API}/create/{job_id}", headers=auth("key-alice")).status_code == 200
    for call in (lambda h: status.get(f"{API}/create/{job_id}", headers=h),
                 lambda h: status.delete(f"{API}/create/{job_id}", headers=h),
                 lambda h: status.get(f"{API}/jobs/{job_id}/logs", headers=h)):
        assert call(auth("key-bob")).status_code == 404
    assert status.get(f"{API}/jobs", headers=auth("key-bob")).json["total"] == 0
    assert status.get(f"{API}/jobs", headers=auth("key-alice")).json["total"] == 1


def test_google_id_tokens_are_verified(setup, google):
    c = setup(id_token_audiences=AUDIENCE, id_token_certs_url=google.url + "/certs",
              allowed_callers="app@platform.iam.gserviceaccount.com,x@y.iam.gserviceaccount.com")
    submit, status = _clients()
    r = submit.post(f"{API}/create", json=BODY, headers=auth(google.token()))
    assert r.status_code == 202, r.json
    assert c.jobs.get(r.json["job_id"]).owner == "google:app@platform.iam.gserviceaccount.com"
    bad = {
        "expired": google.token(exp_in=-3600),
        "wrong audience": google.token(aud="https://elsewhere.example"),
        "forged": google.token(signer_pem=google.impostor_pem),
        "wrong issuer": google.token(iss="https://evil.example"),
        "garbage": "a.b.c",
    }
    for why, token in bad.items():
        r = status.get(f"{API}/jobs", headers=auth(token))
        assert r.status_code == 401, why
    other = status.get(f"{API}/create/{r.json and ''}", headers=auth(google.token(email="x@y.iam.gserviceaccount.com")))
    assert other.status_code == 404


def test_allowed_callers_narrow_the_token_holders(setup, google):
    setup(id_token_audiences=AUDIENCE, id_token_certs_url=google.url + "/certs",
          allowed_callers="app@platform.iam.gserviceaccount.com")
    _, status = _clients()
    assert status.get(f"{API}/jobs", headers=auth(google.token())).status_code == 200
    r = status.get(f"{API}/jobs", headers=auth(google.token(email="intruder@else.iam.gserviceaccount.com")))
    assert (r.status_code, r.json["error"]["code"]) == (403, "forbidden")


def test_identity_fails_closed_a_strangers_valid_token_is_refused(setup, google):
    """Finding 4 of issue 21: an ID token correctly signed (by the key Google's certificate endpoint
    serves), for the right audience, from an email nobody listed, is refused; with no email listed
    every ID token is refused, whatever audience the service was told; and Terraform with its
    default variables sets no audience at all."""
    stranger = google.token(email="attacker@evil-project.iam.gserviceaccount.com")  # valid in every other way
    # the service as Terraform configured it before: the audience set, no caller listed
    c = setup(id_token_audiences=AUDIENCE, id_token_certs_url=google.url + "/certs")
    submit, status = _clients()
    for r in (status.get(f"{API}/jobs", headers=auth(stranger)),
              submit.post(f"{API}/create", json=BODY, headers=auth(stranger)),
              status.get(f"{API}/jobs", headers=auth(google.token()))):  # nobody is listed: nobody
        assert (r.status_code, r.json["error"]["code"]) == (401, "unauthenticated"), r.json
    assert c.jobs.list("google:attacker@evil-project.iam.gserviceaccount.com")[1] == 0
    # callers listed: those only
    setup(id_token_audiences=AUDIENCE, id_token_certs_url=google.url + "/certs",
          allowed_callers="app@platform.iam.gserviceaccount.com")
    submit, status = _clients()
    r = submit.post(f"{API}/create", json=BODY, headers=auth(stranger))
    assert (r.status_code, r.json["error"]["code"]) == (403, "forbidden")
    assert status.get(f"{API}/jobs", headers=auth(google.token())).status_code == 200
    # Terraform's default variables: no ID-token callers, so no audience; the functions' identity
    # settings as deployed refuse the stranger's token (it is no API key either)
    from tests.deploy import local, resolve, variables

    values = {f"var.{k}": v.get("default") for k, v in variables().items()} | {"local.api_url": AUDIENCE}
    env = {k: resolve(v, values) for k, v in local("identity_env").items()}
    assert env["BEATSYNC_ID_TOKEN_AUDIENCES"] == "" and env["BEATSYNC_ALLOWED_CALLERS"] == ""
    deployed = Settings.from_env({**env, "BEATSYNC_API_KEYS": "the-platform-key", "K_SERVICE": "beat-sync-status",
                                  "BEATSYNC_ID_TOKEN_CERTS_URL": google.url + "/certs"})
    setup(**{f.name: getattr(deployed, f.name) for f in dataclasses.fields(deployed) if f.name != "data_dir"})
    submit, status = _clients()
    r = submit.post(f"{API}/create", json=BODY, headers=auth(stranger))
    assert (r.status_code, r.json["error"]["code"]) == (401, "unauthenticated")
    assert status.get(f"{API}/jobs", headers=auth("the-platform-key")).status_code == 200


def test_quotas_answer_429_with_retry_after(setup):
    setup(max_active_jobs=3, max_submissions_per_minute=100)
    submit, status = _clients()
    codes = [submit.post(f"{API}/create", json=BODY).status_code for _ in range(4)]
    assert codes == [202, 202, 202, 429]
    r = submit.post(f"{API}/create", json=BODY)
    assert r.json["error"]["code"] == "too_many_active_jobs" and int(r.headers["Retry-After"]) > 0
    job_id = status.get(f"{API}/jobs").json["jobs"][0]["job_id"]
    status.delete(f"{API}/create/{job_id}")  # a finished job frees a slot
    assert submit.post(f"{API}/create", json=BODY).status_code == 202


def test_an_idempotent_replay_is_answered_before_the_quotas(setup):
    setup(max_active_jobs=2, max_submissions_per_minute=3)
    submit, _ = _clients()
    first = submit.post(f"{API}/create", json=BODY, headers={"Idempotency-Key": "k1"})
    submit.post(f"{API}/create", json=BODY)
    assert submit.post(f"{API}/create", json=BODY).status_code == 429  # at the active-job limit
    for _ in range(3):  # replays of the first job: its answer, not 429, however often
        r = submit.post(f"{API}/create", json=BODY, headers={"Idempotency-Key": "k1"})
        assert r.status_code == 202 and r.json["job_id"] == first.json["job_id"]
    r = submit.post(f"{API}/create", json={**BODY, "preview_only": True}, headers={"Idempotency-Key": "k1"})
    assert r.status_code == 409 and r.json["error"]["code"] == "idempotency_conflict"


def test_submission_rate_is_limited_per_caller(setup):
    setup(max_active_jobs=100, max_submissions_per_minute=3, api_keys="a,b")
    submit, _ = _clients()
    codes = [submit.post(f"{API}/create", json=BODY, headers=auth("a")).status_code for _ in range(4)]
    assert codes == [202, 202, 202, 429]
    r = submit.post(f"{API}/create", json=BODY, headers=auth("a"))
    assert r.json["error"]["code"] == "rate_limited" and 1 <= int(r.headers["Retry-After"]) <= 61
    assert submit.post(f"{API}/create", json=BODY, headers=auth("b")).status_code == 202  # per caller


def test_creation_cancel_and_output_access_are_audited(setup, capfd):
    setup()
    submit, status = _clients()
    job_id = submit.post(f"{API}/create", json=BODY).json["job_id"]
    status.delete(f"{API}/create/{job_id}")
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    actions = [(e["audit"], e.get("job_id")) for e in lines if "audit" in e]
    assert ("job.create", job_id) in actions and ("job.cancel", job_id) in actions and ("job.end", job_id) in actions
    assert all(e["owner"] == "anonymous" for e in lines if e.get("audit") in ("job.create", "job.cancel"))


def test_a_deployed_function_without_identity_fails_closed(setup, capfd):
    setup(require_auth=True)
    submit, status = _clients()
    assert status.get("/health").status_code == 200  # the meta routes stay open
    for r in (submit.post(f"{API}/create", json=BODY), status.get(f"{API}/jobs"), status.get(f"{API}/presets")):
        assert (r.status_code, r.json["error"]["code"]) == (503, "auth_not_configured")
    assert '"severity": "CRITICAL"' in capfd.readouterr().err
    # where the platform sets K_SERVICE (Cloud Run, Cloud Functions), that is the default
    assert Settings.from_env({"K_SERVICE": "beat-sync-submit"}).require_auth is True
    assert Settings.from_env({"K_SERVICE": "x", "BEATSYNC_REQUIRE_AUTH": "false"}).require_auth is False
    assert Settings.from_env({}).require_auth is False  # beatsync serve: open, with its warning


def test_two_tokens_do_not_share_quota_or_jobs(setup, google):
    setup(id_token_audiences=AUDIENCE, id_token_certs_url=google.url + "/certs", max_active_jobs=2,
          max_submissions_per_minute=100, allowed_callers="a@p.iam.gserviceaccount.com,b@p.iam.gserviceaccount.com")
    submit, status = _clients()
    a, b = auth(google.token(email="a@p.iam.gserviceaccount.com")), auth(google.token(email="b@p.iam.gserviceaccount.com"))
    assert [submit.post(f"{API}/create", json=BODY, headers=a).status_code for _ in range(3)] == [202, 202, 429]
    assert submit.post(f"{API}/create", json=BODY, headers=b).status_code == 202
    assert status.get(f"{API}/jobs", headers=a).json["total"] == 2
    assert status.get(f"{API}/jobs", headers=b).json["total"] == 1


def test_a_trusted_caller_names_its_end_users(setup, google):
    app, other = "app@p.iam.gserviceaccount.com", "other@p.iam.gserviceaccount.com"
    setup(id_token_audiences=AUDIENCE, id_token_certs_url=google.url + "/certs", trusted_callers=f"{app},{other}",
          max_active_jobs=1, max_submissions_per_minute=100,
          allowed_callers=f"{app},{other},c@p.iam.gserviceaccount.com")
    submit, status = _clients()

    def h(email, user=None):
        return {**auth(google.token(email=email)), **({"X-Beatsync-User-Id": user} if user else {})}

    r = submit.post(f"{API}/create", json=BODY, headers=h(app, "u1"))
    assert r.status_code == 202
    job_u1 = r.json["job_id"]
    # per-user quota within the caller: u1 is at its limit, u2 is not
    assert submit.post(f"{API}/create", json=BODY, headers=h(app, "u1")).status_code == 429
    assert submit.post(f"{API}/create", json=BODY, headers=h(app, "u2")).status_code == 202
    # per-user lists
    assert [j["job_id"] for j in status.get(f"{API}/jobs", headers=h(app, "u1")).json["jobs"]] == [job_u1]
    assert status.get(f"{API}/jobs", headers=h(app, "u2")).json["total"] == 1
    assert status.get(f"{API}/create/{job_u1}", headers=h(app, "u2")).status_code == 404
    # the caller itself reaches its users' jobs; another caller, even naming the same user, never
    assert status.get(f"{API}/create/{job_u1}", headers=h(app)).status_code == 200
    assert status.get(f"{API}/create/{job_u1}", headers=h(other, "u1")).status_code == 404
    assert status.get(f"{API}/jobs", headers=h(other, "u1")).json["total"] == 0
    assert status.get(f"{API}/create/{job_u1}", headers=h(other)).status_code == 404
    # an untrusted caller may not name users; a malformed user id is refused
    r = status.get(f"{API}/jobs", headers=h("c@p.iam.gserviceaccount.com", "u1"))
    assert (r.status_code, r.json["error"]["code"]) == (403, "user_not_allowed")
    r = status.get(f"{API}/jobs", headers=h(app, "a/b"))
    assert (r.status_code, r.json["error"]["code"]) == (400, "invalid_user_id")


def test_fifty_concurrent_creates_by_one_key_never_exceed_its_limit(setup):
    """Finding 7 of issue 21: 50 concurrent creates by one key were 15 accepted against a limit of 10."""
    import threading

    setup(api_keys="the-key", max_active_jobs=10, max_submissions_per_minute=1000)
    codes: list[int] = []
    start = threading.Barrier(50)

    def create():
        submit, _ = _clients()
        start.wait(10)
        codes.append(submit.post(f"{API}/create", json=BODY, headers=auth("the-key")).status_code)

    threads = [threading.Thread(target=create) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(codes) == [202] * 10 + [429] * 40, codes
    _, status = _clients()
    assert status.get(f"{API}/jobs?status=queued", headers=auth("the-key")).json["total"] == 10


def test_a_trusted_callers_end_users_share_its_quota_and_it_lists_their_jobs(setup):
    """Finding 5 of issue 21: 14 creates under 14 X-Beatsync-User-Id values were all accepted (the
    per-user limit is 10), and the trusted caller's own GET /jobs listed none of its users' jobs."""
    setup(api_keys="app-key,other-key", trusted_callers=_key_id("app-key"), max_active_jobs=10,
          max_submissions_per_minute=1000, caller_max_active_jobs=12)
    submit, status = _clients()

    def h(key, user=None):
        return {**auth(key), **({"X-Beatsync-User-Id": user} if user else {})}

    answers = [submit.post(f"{API}/create", json=BODY, headers=h("app-key", f"u{i}")) for i in range(14)]
    assert [r.status_code for r in answers] == [202] * 12 + [429] * 2
    refused = answers[-1]
    assert refused.json["error"]["code"] == "too_many_active_jobs" and refused.json["error"]["details"] == {
        "limit": 12, "scope": "caller"} and int(refused.headers["Retry-After"]) > 0
    assert submit.post(f"{API}/create", json=BODY, headers=h("other-key")).status_code == 202  # others unaffected
    # the caller lists its users' jobs (each names its user), and one user's with ?user_id=
    listed = status.get(f"{API}/jobs?limit=100", headers=h("app-key")).json
    assert listed["total"] == 12 and {j["user_id"] for j in listed["jobs"]} == {f"u{i}" for i in range(12)}
    one = status.get(f"{API}/jobs?user_id=u3", headers=h("app-key")).json
    assert one["total"] == 1 and one["jobs"][0]["job_id"] == answers[3].json["job_id"]
    assert status.get(f"{API}/jobs?user_id=u3", headers=h("app-key", "u3")).json["total"] == 1  # the user itself
    for headers, query, expected in ((h("app-key", "u4"), "user_id=u3", (403, "user_not_allowed")),
                                     (h("other-key"), "user_id=u3", (403, "user_not_allowed")),
                                     (h("app-key"), "user_id=a/b", (400, "invalid_user_id"))):
        r = status.get(f"{API}/jobs?{query}", headers=headers)
        assert (r.status_code, r.json["error"]["code"]) == expected, query
    assert status.get(f"{API}/jobs", headers=h("other-key")).json["total"] == 1
    # a job that ends frees a place in the caller's total
    assert status.delete(f"{API}/create/{answers[0].json['job_id']}", headers=h("app-key")).status_code == 200
    assert submit.post(f"{API}/create", json=BODY, headers=h("app-key", "u13")).status_code == 202


def _key_id(key: str) -> str:
    import hashlib

    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def test_a_stalled_certificate_server_costs_one_deadline_and_a_503(setup, google, monkeypatch):
    """Google's certificates come within one overall deadline: a server that sends its headers and
    then one byte every 0.2 s (never finishing within a per-read timeout) gets a 503 with a retry hint."""
    from beatsync.http import auth as auth_module

    class Drip(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                for _ in range(200):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass

    drip = Server(Drip)
    monkeypatch.setattr(auth_module, "CERTS_DEADLINE", 1.0)
    try:
        setup(id_token_audiences=AUDIENCE, id_token_certs_url=drip.url + "/certs",
              allowed_callers="app@platform.iam.gserviceaccount.com")
        _, status = _clients()
        t0 = time.monotonic()
        r = status.get(f"{API}/jobs", headers=auth(google.token()))
        assert (r.status_code, r.json["error"]["code"]) == (503, "auth_unavailable"), r.json
        assert time.monotonic() - t0 < 15  # the 1 s deadline, not the 40 s dribble
        assert int(r.headers["Retry-After"]) > 0
    finally:
        drip.close()
