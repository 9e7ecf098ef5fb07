import time
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from beatsync.adapters.local_fs import LocalBlobStore
from beatsync.signing import check_link
from tests.suites.blob_store import *  # noqa: F401,F403  (the BlobStore interface suite)

SECRET = b"s" * 32


@pytest.fixture
def blobs(tmp_path):
    return LocalBlobStore(tmp_path / "blobs", base_url="http://127.0.0.1:8080", secret=SECRET)


@pytest.fixture
def fetch_signed(blobs):
    """What the local server's /files/ route does with a link."""
    def fetch(url):
        parts = urlsplit(url)
        key, q = unquote(parts.path.removeprefix("/files/")), parse_qs(parts.query)
        if not check_link(SECRET, key, q["expires"][0], q["signature"][0]):
            raise PermissionError(url)
        return blobs.get_bytes(key)

    return fetch


def test_links_expire_and_cannot_be_moved_to_another_key(blobs):
    url = blobs.signed_url("outputs/a/output.mp4", 60)
    q = parse_qs(urlsplit(url).query)
    assert check_link(SECRET, "outputs/a/output.mp4", q["expires"][0], q["signature"][0])
    assert not check_link(SECRET, "outputs/b/output.mp4", q["expires"][0], q["signature"][0])
    assert not check_link(SECRET, "outputs/a/output.mp4", str(int(q["expires"][0]) + 1), q["signature"][0])
    assert not check_link(SECRET, "outputs/a/output.mp4", q["expires"][0], q["signature"][0], now=time.time() + 61)
