"""The SSRF-safe fetcher: what it refuses without a connection, and what it does over real HTTP."""

from __future__ import annotations

import pytest

import threading
import time

from beatsync.fetch import (FetchCancelled, FetchFailed, Policy, TooLarge, UrlNotAllowed, ascii_host, check_url,
                            download)
from tests.servers import media_server

REFUSED = [
    "http://127.0.0.1/x", "http://localhost/x", "http://[::1]/x", "http://169.254.169.254/computeMetadata/v1/",
    "http://metadata.google.internal/computeMetadata/v1/", "http://10.0.0.5/a.mp4", "http://172.16.3.4/a",
    "http://192.168.1.1/a", "http://[fc00::1]/a", "http://[fd12:3456::1]/a", "http://[::ffff:127.0.0.1]/a",
    "http://[::ffff:7f00:1]/a", "http://0x7f000001/a", "http://2130706433/a", "http://017700000001/a",
    "http://127.1/a", "http://0177.0.0.1/a", "http://0.0.0.0/a", "http://[64:ff9b::7f00:1]/a", "http://100.64.0.1/a",
    "http://224.0.0.1/a", "ftp://example.com/a", "file:///etc/passwd", "gopher://x/", "http://user:pw@example.com/",
    "http:///nohost", "http://printer.internal/a", "http://x.localhost/a",
]


@pytest.mark.parametrize("url", REFUSED)
def test_internal_and_odd_urls_are_refused_before_any_connection(url):
    with pytest.raises(UrlNotAllowed) as info:
        check_url(url, Policy())
    assert info.value.code == "url_not_allowed" and info.value.http_status == 400


def test_public_addresses_pass_and_the_checked_address_is_kept():
    t = check_url("https://93.184.215.14:8443/song.mp3?x=1", Policy())
    assert (t.scheme, t.host, t.port, t.path, t.address) == ("https", "93.184.215.14", 8443, "/song.mp3?x=1",
                                                            "93.184.215.14")


def test_allowlist_permits_exactly_the_listed_host_and_port():
    assert check_url("http://127.0.0.1:9999/a", Policy(allowed_hosts=("127.0.0.1:9999",))).address == "127.0.0.1"
    with pytest.raises(UrlNotAllowed):
        check_url("http://127.0.0.1:9998/a", Policy(allowed_hosts=("127.0.0.1:9999",)))
    assert check_url("http://localhost:1/a", Policy(allowed_hosts=("localhost",))).host == "localhost"


@pytest.fixture
def server(tmp_path):
    (tmp_path / "song.bin").write_bytes(b"s" * 5000)
    s = media_server(tmp_path)
    yield s
    s.close()


def test_download_streams_a_file(server, tmp_path):
    n = download(f"{server.url}/song.bin", tmp_path / "out", Policy(allowed_hosts=(server.host,)))
    assert n == 5000 and (tmp_path / "out").read_bytes() == b"s" * 5000


@pytest.mark.parametrize("path, code, cls", [
    ("/missing.mp4", "source_not_found", FetchFailed),
    ("/short", "fetch_incomplete", FetchFailed),      # fewer bytes than Content-Length
    ("/huge", "too_large", TooLarge),                 # Content-Length over the limit: refused unread
])
def test_download_errors_have_codes(server, tmp_path, path, code, cls):
    with pytest.raises(cls) as info:
        download(f"{server.url}{path}", tmp_path / "out", Policy(allowed_hosts=(server.host,), max_bytes=10_000))
    assert info.value.code == code
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.part").exists()


def test_reading_stops_at_the_size_limit(server, tmp_path):
    with pytest.raises(TooLarge):
        download(f"{server.url}/song.bin", tmp_path / "out", Policy(allowed_hosts=(server.host,), max_bytes=1000))


def test_a_sender_that_never_finishes_times_out(server, tmp_path):
    with pytest.raises(FetchFailed) as info:
        download(f"{server.url}/slow", tmp_path / "out", Policy(allowed_hosts=(server.host,), timeout=1.5))
    assert info.value.code == "fetch_timeout"


def test_a_redirect_to_an_unlisted_internal_address_is_refused(server, tmp_path):
    canary = media_server(tmp_path)
    try:
        url = f"{server.url}/redirect?to=http://127.0.0.1:{canary.port}/song.bin"
        with pytest.raises(UrlNotAllowed):
            download(url, tmp_path / "out", Policy(allowed_hosts=(server.host,)))
        assert canary.hits == []
        # the same redirect is followed when the target is allowed too
        download(url, tmp_path / "out", Policy(allowed_hosts=(server.host, canary.host)))
        assert canary.hits == ["/song.bin"]
    finally:
        canary.close()


@pytest.mark.parametrize("path", ["/slow-headers", "/slow"])
def test_one_deadline_covers_status_line_headers_and_body(server, tmp_path, path):
    """A source that dribbles its headers (or its body) one byte at a time is dropped at the overall
    deadline, not after a per-read timeout that every byte resets."""
    t = time.monotonic()
    with pytest.raises(FetchFailed) as info:
        download(f"{server.url}{path}", tmp_path / "out", Policy(allowed_hosts=(server.host,), timeout=1.5))
    assert info.value.code == "fetch_timeout"
    assert time.monotonic() - t < 20  # the deadline (1.5 s), not the dribble (3 min): wide margin on a busy machine
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.part").exists()


@pytest.mark.parametrize("path", ["/slow-headers", "/slow"])
def test_a_cancelled_fetch_is_abandoned_within_a_second_or_two(server, tmp_path, path):
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    t = time.monotonic()
    with pytest.raises(FetchCancelled):
        download(f"{server.url}{path}", tmp_path / "out", Policy(allowed_hosts=(server.host,), timeout=60),
                 should_stop=stop.is_set)
    assert time.monotonic() - t < 20  # not the 60 s timeout: wide margin on a busy machine


def test_a_connect_that_never_completes_is_bounded_by_the_deadline(tmp_path):
    """A listening socket whose backlog is full: the SYN is never answered."""
    import socket

    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):  # fill the accept queue so that further connects hang
            f = socket.socket()
            f.setblocking(False)
            f.connect_ex(("127.0.0.1", port))
            fillers.append(f)
        t = time.monotonic()
        with pytest.raises((FetchFailed, FetchCancelled)) as info:
            download(f"http://127.0.0.1:{port}/a", tmp_path / "out",
                     Policy(allowed_hosts=(f"127.0.0.1:{port}",), timeout=1.0))
        assert info.value.code == "fetch_timeout"
        assert time.monotonic() - t < 20  # the 1 s deadline, not the kernel's SYN retries (~2 min)
    finally:
        for f in fillers:
            f.close()
        lsock.close()


def test_non_ascii_urls_are_encoded_for_the_request_line():
    t = check_url("https://93.184.215.14/musique/\u00e9t\u00e9\u00a02.mp3?titre=caf\u00e9&x=%41", Policy())
    assert t.path == "/musique/%C3%A9t%C3%A9%C2%A02.mp3?titre=caf%C3%A9&x=%41"
    assert ascii_host("b\u00fccher.example") == "xn--bcher-kva.example"
    with pytest.raises(UrlNotAllowed):  # resolves nowhere offline, but fails as a refusal, not an encoding error
        check_url("http://b\u00fccher.invalid/a", Policy())
    with pytest.raises(UrlNotAllowed):  # not a valid IDNA label
        check_url("http://" + "\u00e9" * 70 + ".example/a", Policy())
    with pytest.raises(UrlNotAllowed):  # a lone surrogate cannot be encoded
        check_url("https://93.184.215.14/\ud800", Policy())


def test_a_file_with_a_non_ascii_name_is_downloaded(server, tmp_path):
    (server_root := tmp_path / "\u00e9t\u00e9.bin").write_bytes(b"e" * 100)
    assert server_root.exists()
    n = download(f"{server.url}/\u00e9t\u00e9.bin", tmp_path / "out", Policy(allowed_hosts=(server.host,)))
    assert n == 100
