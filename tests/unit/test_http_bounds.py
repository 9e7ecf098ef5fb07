"""Bodies bounded in the HTTP layer itself, whatever server runs it (issue 21, findings 1 and 3):
the deployed functions run under functions-framework (gunicorn), whose after-request hook reads
what is left of a body into memory, and whose chunked bodies arrive unbounded. Here the submit
function's own app gets bodies that never end, counted as they are read; and `beatsync serve`'s
request parser is fed hostile framing directly."""

from __future__ import annotations

import io

import functions_framework
import pytest

from beatsync.bootstrap import bootstrap
from beatsync.http import set_container
from beatsync.http.app import MAX_JSON_BYTES, MULTIPART_OVERHEAD, body_policy
from beatsync.http.server import MAX_CHUNK_LINE, StrictParser
from beatsync.settings import Settings
from tests.conftest import ROOT
from tests.suites.service import RecordingOrchestrator

API = "/api/v1/beat-sync"
KEY = "k1"


class Endless(io.RawIOBase):
    """A body that never ends: counts what is read, and fails the test past ``fail_at`` bytes."""

    def __init__(self, head: bytes = b"", fill: bytes = b" ", fail_at: int = 64 << 20):
        self.head, self.fill, self.read_bytes, self.fail_at = head, fill, 0, fail_at

    def readable(self):
        return True

    def readinto(self, b):
        if self.read_bytes > self.fail_at:
            raise AssertionError(f"read {self.read_bytes} bytes of an endless body")
        n = len(b)
        start = self.read_bytes
        data = (self.head[start:start + n] if start < len(self.head) else b"")
        data += self.fill * (n - len(data))
        b[:n] = data[:n]
        self.read_bytes += n
        return n


@pytest.fixture
def submit(tmp_path):
    def make(**settings):
        s = Settings.from_env({}, data_dir=tmp_path / "data", api_keys=KEY, min_free_bytes=0, **settings)
        c = bootstrap(s, orchestrator=RecordingOrchestrator())
        set_container(c)
        app = functions_framework.create_app(target="submit", source=str(ROOT / "functions/submit/main.py"))
        return c, app.test_client()

    yield make
    set_container(None)


class _Answer:
    def __init__(self, status: int, body: bytes):
        import json

        self.status_code, self.json = status, json.loads(body)


def _chunked(client, path, stream, ctype):
    """A chunked request whose body is ``stream`` (the server has removed the chunk framing, as
    gunicorn does: ``wsgi.input_terminated``, no ``CONTENT_LENGTH``), through the whole app."""
    from werkzeug.test import EnvironBuilder, run_wsgi_app

    environ = EnvironBuilder(path=path, method="POST", headers={
        "Authorization": f"Bearer {KEY}", "Content-Type": ctype, "Transfer-Encoding": "chunked"}).get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input"], environ["wsgi.input_terminated"] = stream, True
    app_iter, status, _ = run_wsgi_app(client.application, environ, buffered=True)
    return _Answer(int(status.split()[0]), b"".join(app_iter))


def test_an_endless_chunked_json_body_is_read_to_the_limit_only(submit):
    _, client = submit()
    body = Endless(b'{"audio_url": "', b"a")
    r = _chunked(client, f"{API}/create", body, "application/json")
    assert r.status_code == 413 and r.json["error"]["code"] == "body_too_large"
    # functions-framework's after-request hook read nothing more either
    assert body.read_bytes <= MAX_JSON_BYTES + 128 * 1024


def test_an_endless_upload_stops_at_max_input_bytes(submit):
    _, client = submit(max_input_bytes=2 << 20)
    head = (b'--bb\r\nContent-Disposition: form-data; name="audio_file"; filename="a.mp3"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n")
    body = Endless(head, b"\0")
    r = _chunked(client, f"{API}/analyze", body, "multipart/form-data; boundary=bb")
    assert r.status_code == 413, r.json
    assert body.read_bytes <= (2 << 20) + MULTIPART_OVERHEAD + 256 * 1024


def test_an_upload_over_quota_is_refused_before_a_byte_of_its_body(submit, media):
    c, client = submit(max_submissions_per_minute=1, allowed_hosts=media.host, sync_wait=0.1)
    first = client.post(f"{API}/analyze", json={"audio_url": f"{media.url}/song.wav"},
                        headers={"Authorization": f"Bearer {KEY}"})
    assert first.status_code in (200, 202), first.json
    body = Endless(b"--bb\r\n", b"\0")
    r = _chunked(client, f"{API}/analyze", body, "multipart/form-data; boundary=bb")
    assert r.status_code == 429 and r.json["error"]["code"] == "rate_limited"
    assert body.read_bytes == 0


def test_the_body_policy_is_the_json_limit_except_for_uploads(submit):
    c, _ = submit()
    assert body_policy("POST", f"{API}/create", "application/json") == (MAX_JSON_BYTES, False)
    assert body_policy("POST", f"{API}/create", "multipart/form-data; boundary=x") == (MAX_JSON_BYTES, False)
    assert body_policy("POST", f"{API}/analyze", "application/json") == (MAX_JSON_BYTES, False)
    assert body_policy("POST", f"{API}/analyze", "multipart/form-data; boundary=x") == (
        c.settings.max_input_bytes + MULTIPART_OVERHEAD, True)


# -- `beatsync serve`'s parser, fed directly ---------------------------------------------------------

class _Adj:
    max_request_header_size = 32 * 1024
    max_request_body_size = 1 << 30
    inbuf_overflow = 64 * 1024
    url_scheme = "http"


def parse(*pieces: bytes, policy=lambda m, p, c: (1000, False)) -> StrictParser:
    p = StrictParser(_Adj())
    p.policy = policy
    for piece in pieces:
        while piece and not p.completed:
            n = p.received(piece)
            if p.gate == "needed" and p.headers_finished and not p.completed:
                return p
            piece = piece[n:]
    return p


HEAD = b"POST /x HTTP/1.1\r\nHost: h\r\n"


@pytest.mark.parametrize("data,code", [
    (HEAD + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}", 400),
    (HEAD + b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (HEAD + b"Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n", 400),
    (HEAD + b"X-User: alice\nX-Evil: 1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\nHost: h\n\n", 400),
    (HEAD + b"X-A: 1\r\n folded\r\n\r\n", 400),
    (HEAD + b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n", 431),
    (b"POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (HEAD + b"Content-Length: 1001\r\n\r\n", 413),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n-5\r\n", 400),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\nffffffffff\r\nabcdef", 413),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n2;" + b"e" * (MAX_CHUNK_LINE + 1), 400),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}xx", 400),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"100\r\n" + b"a" * 256 + b"\r\n" * 4 * 4, None),
])
def test_hostile_framing_is_refused_with_a_status(data, code):
    p = parse(data)
    if code is None:
        assert p.error is None
        return
    assert p.completed and p.error is not None and p.error.code == code, (p.error and p.error.body)


def test_chunks_past_the_limit_are_refused_as_they_are_declared():
    p = parse(HEAD + b"Transfer-Encoding: chunked\r\n\r\n", b"300\r\n" + b"a" * 768 + b"\r\n", b"300\r\n")
    assert p.error is not None and p.error.code == 413


def test_an_upload_waits_for_admission_before_its_body():
    p = parse(HEAD + b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 5000\r\n\r\n" + b"x" * 100,
              policy=lambda m, path, c: (10_000, True))
    assert p.gate == "needed" and p.headers_finished and not p.completed and p.body_bytes_received == 0


def test_a_head_sent_a_byte_at_a_time_is_judged_as_a_whole():
    ok = HEAD + b"X-User: alice\r\nContent-Length: 2\r\n\r\n{}"
    p = parse(*[ok[i:i + 1] for i in range(len(ok))])
    assert p.error is None and p.completed
    bad = HEAD + b"X-User: alice\nX-Evil: 1\r\n\r\n"
    p = parse(*[bad[i:i + 1] for i in range(len(bad))])
    assert p.error is not None and p.error.code == 400
    cr = HEAD + b"X-User: alice\rX-Evil: 1\r\n\r\n"
    p = parse(*[cr[i:i + 2] for i in range(0, len(cr), 2)])
    assert p.error is not None and p.error.code == 400
