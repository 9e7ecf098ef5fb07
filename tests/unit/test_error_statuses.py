"""Errors that are not the caller's fault answer 5xx with a code (and Retry-After where a retry can
help), and a bad field in a control call is a 400, never an unmapped 500."""

from __future__ import annotations

import functions_framework
import pytest

from beatsync.bootstrap import bootstrap
from beatsync.http import set_container
from beatsync.settings import Settings
from tests.conftest import ROOT
from tests.servers import free_port
from tests.suites.service import RecordingOrchestrator

API = "/api/v1/beat-sync"


def client(name: str):
    return functions_framework.create_app(target=name, source=str(ROOT / "functions" / name / "main.py")).test_client()


@pytest.fixture(autouse=True)
def _no_container():
    set_container(None)
    yield
    set_container(None)


def test_a_misconfigured_server_is_a_500_that_names_no_setting(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("BEATSYNC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BEATSYNC_MAX_CLIPS", "twenty")
    r = client("status").get(f"{API}/presets")
    assert r.status_code == 500
    assert r.json["error"]["code"] == "invalid_setting"
    assert "BEATSYNC" not in r.get_data(as_text=True) and "twenty" not in r.get_data(as_text=True)
    assert "BEATSYNC_MAX_CLIPS" in caplog.text  # the operator reads the details in the log
    monkeypatch.setenv("BEATSYNC_MAX_CLIPS", "20")
    monkeypatch.setenv("BEATSYNC_BLOB_STORE", "s3")
    set_container(None)
    r = client("submit").post(f"{API}/create", json={"audio_url": "https://a.example/s.mp3", "video_urls": []})
    assert r.status_code == 500 and "s3" not in r.get_data(as_text=True)


def test_unreachable_token_certificates_are_a_503_with_retry_after(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}/certs"  # nothing listens there
    c = bootstrap(Settings.from_env({}, data_dir=tmp_path, id_token_audiences="https://x.example",
                                    allowed_callers="app@p.iam.gserviceaccount.com", id_token_certs_url=dead), orchestrator=RecordingOrchestrator())
    set_container(c)
    from google.auth import crypt, jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    token = jwt.encode(crypt.RSASigner.from_string(pem, "k1"), {"aud": "https://x.example", "sub": "1"}).decode()
    r = client("status").get(f"{API}/jobs", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 503 and r.json["error"]["code"] == "auth_unavailable"
    assert int(r.headers["Retry-After"]) > 0


@pytest.mark.parametrize("attempt", ["x", 1.5, True, 0, -3, None, [1], 10**9])
def test_a_bad_compose_attempt_is_a_400(tmp_path, attempt):
    c = bootstrap(Settings.from_env({}, data_dir=tmp_path), orchestrator=RecordingOrchestrator())
    set_container(c)
    r = client("analyze").post("/internal/compose/start", json={"job_id": "a" * 32, "attempt": attempt})
    assert r.status_code == 400, r.json
    assert r.json["error"]["code"] == "invalid_request"
