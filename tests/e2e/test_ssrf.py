"""SSRF attempts against a running `beatsync serve`, with a canary listener on loopback: every attempt
is refused and the canary receives zero requests."""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.servers import API, Serve, media_server, wait_for


@pytest.fixture(scope="module")
def canary(tmp_path_factory):
    root = tmp_path_factory.mktemp("canary")
    (root / "x").write_bytes(b"secret")
    server = media_server(root)
    yield server
    server.close()


@pytest.fixture(scope="module")
def redirector(tmp_path_factory):
    from tests.media import make_media

    server = media_server(make_media(tmp_path_factory.mktemp("redirector")))
    yield server
    server.close()


@pytest.fixture(scope="module")
def serve(tmp_path_factory, redirector):
    s = Serve(tmp_path_factory.mktemp("serve") / "data", {
        "BEATSYNC_ALLOWED_HOSTS": redirector.host,  # a "public" host, allowed; the canary is not
        "BEATSYNC_ANALYSIS_METHOD": "librosa", "BEATSYNC_MAX_ACTIVE_JOBS": "1000", "BEATSYNC_CALLER_MAX_ACTIVE_JOBS": "1000", "BEATSYNC_CALLER_MAX_SUBMISSIONS_PER_MINUTE": "1000",
        "BEATSYNC_MAX_SUBMISSIONS_PER_MINUTE": "1000", "BEATSYNC_SYNC_WAIT": "5"})
    yield s
    s.stop()


def _targets(port: int) -> list[str]:
    hostname = socket.gethostname()
    names = [f"http://{h}:{port}/x" for h in (
        "127.0.0.1", "localhost", "[::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "0x7f000001", "2130706433",
        "017700000001", "127.1", "0177.0.0.1", "0.0.0.0", "127.0.0.2", "LOCALHOST", "localhost.")]
    try:
        if socket.getaddrinfo(hostname, port)[0][4][0].startswith("127."):
            names.append(f"http://{hostname}:{port}/x")  # a host name that resolves to loopback
    except OSError:
        pass
    return names + [
        "http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token",
        "http://metadata.google.internal/computeMetadata/v1/", "http://metadata/computeMetadata/v1/",
        "http://10.0.0.1/x", "http://172.16.0.1/x", "http://192.168.0.1/x", "http://[fc00::1]/x",
        "http://[fd00::1]/x", "http://[fe80::1]/x", "http://100.64.0.1/x",
    ]


def test_no_ssrf_attempt_reaches_the_canary(serve, canary, redirector):
    tried = refused = 0
    clip, song = f"{redirector.url}/a.mp4", f"{redirector.url}/song.wav"
    for url in _targets(canary.port):
        for body in ({"audio_url": url, "video_urls": [clip]}, {"audio_url": clip, "video_urls": [url]},
                     {"audio_url": clip, "video_urls": [clip], "webhook_url": url}):
            r = httpx.post(f"{serve.url}{API}/create", json=body, timeout=30)
            tried += 1
            ok = r.status_code == 400 and r.json()["error"]["code"] == "url_not_allowed"
            refused += ok
            if not ok:
                print("NOT REFUSED", body, r.status_code, r.text[:200])
        r = httpx.post(f"{serve.url}{API}/analyze", json={"audio_url": url}, timeout=30)
        tried += 1
        ok = r.status_code == 400 and r.json()["error"]["code"] == "url_not_allowed"
        refused += ok
        assert ok, (url, r.status_code, r.text[:300])
    # redirects from an allowed host to the canary: accepted at submit, refused when fetched
    bounce = f"{redirector.url}/redirect?to=http://127.0.0.1:{canary.port}/x"
    ids = []
    for body in ({"audio_url": bounce, "video_urls": [clip]}, {"audio_url": song, "video_urls": [bounce]}):
        ids.append(httpx.post(f"{serve.url}{API}/create", json=body, timeout=30).json()["job_id"])
    for job_id in ids:
        tried += 1
        job = wait_for(lambda: (lambda s: s if s["status"] in ("failed", "completed") else None)(serve.job(job_id)),
                       timeout=60, interval=0.2)
        ok = job["status"] == "failed" and job["error"]["code"] == "url_not_allowed"
        refused += ok
        assert ok, job["error"]
    print(f"\nSSRF attempts: {tried}, refused: {refused}, canary hits: {len(canary.hits)}")
    assert canary.hits == []
    assert refused == tried
