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


def test_a_delete_leaves_no_empty_folders(blobs):
    """Issue 21, finding 7: a job's emptied input folders were left behind (136 after a hostile run)."""
    blobs.put_bytes("inputs/audio/job1/audio.mp3", b"a")
    blobs.put_bytes("inputs/video/job1/clip_0.mp4", b"v")
    blobs.put_bytes("inputs/video/job2/clip_0.mp4", b"w")
    blobs.delete("inputs/audio/job1/audio.mp3")
    blobs.delete("inputs/video/job1/clip_0.mp4")
    dirs = sorted(p.relative_to(blobs.root).as_posix() for p in blobs.root.rglob("*") if p.is_dir())
    assert dirs == ["inputs", "inputs/video", "inputs/video/job2"]
    blobs.delete("inputs/video/job2/clip_0.mp4")
    assert blobs.root.is_dir() and not any(blobs.root.iterdir())
    blobs.put_bytes("inputs/video/job2/clip_0.mp4", b"w")  # folders made again as needed
    assert blobs.get_bytes("inputs/video/job2/clip_0.mp4") == b"w"


def test_listing_while_deletes_remove_emptied_folders(blobs):
    """A delete removes the folders it empties; a list walking the tree meanwhile skips a folder that
    vanished under it (rglob raised FileNotFoundError: a job's end failed that way once)."""
    import threading

    stop, errors = threading.Event(), []

    def churn():
        i = 0
        while not stop.is_set():
            key = f"outputs/j{i % 50}/a/b/c{i}.bin"
            blobs.put_bytes(key, b"x")
            blobs.delete(key)
            i += 1

    t = threading.Thread(target=churn, daemon=True)
    t.start()
    try:
        for _ in range(300):
            try:
                blobs.list("outputs/")
                blobs.list("")
            except OSError as exc:
                errors.append(exc)
    finally:
        stop.set()
        t.join(10)
    assert errors == []
    assert blobs.list("outputs/j1/") == []
