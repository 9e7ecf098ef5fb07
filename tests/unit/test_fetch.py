"""The SSRF-safe fetcher: what it refuses without a connection, and what it does over real HTTP."""

from __future__ import annotations

import pytest

from beatsync.fetch import FetchFailed, Policy, TooLarge, UrlNotAllowed, check_url, download
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
