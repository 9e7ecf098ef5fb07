"""The BlobStore interface suite: adapter test modules import it and provide ``blobs``."""

import pytest

from beatsync.ports import BlobNotFound


def test_put_get_overwrite_list_delete(blobs):
    blobs.put_bytes("a/b/c.json", b"1", "application/json")
    assert blobs.exists("a/b/c.json") and blobs.get_bytes("a/b/c.json") == b"1"
    blobs.put_bytes("a/b/c.json", b"2")
    assert blobs.get_bytes("a/b/c.json") == b"2"
    blobs.put_bytes("a/x.bin", bytes(range(256)) * 1000)
    assert blobs.get_bytes("a/x.bin") == bytes(range(256)) * 1000
    assert blobs.list("a/") == ["a/b/c.json", "a/x.bin"]
    assert blobs.list("a/b/") == ["a/b/c.json"]
    blobs.delete("a/b/c.json")
    blobs.delete("a/b/c.json")  # deleting a missing object is fine
    assert not blobs.exists("a/b/c.json")
    with pytest.raises(BlobNotFound):
        blobs.get_bytes("a/b/c.json")


def test_rejects_unsafe_keys(blobs):
    for bad in ("../x", "/abs", "a//b", "a/./b", ""):
        with pytest.raises(ValueError):
            blobs.put_bytes(bad, b"")


def test_beat_map_cache_through_the_store(blobs):
    import io

    from beatsync.analysis import analyze
    from beatsync.analysis.synth import click_track, encode_wav

    data = encode_wav(click_track(120.0, 6.0, 44100)[0], 44100)
    first = analyze(io.BytesIO(data), "librosa", cache=blobs)
    (key,) = blobs.list("cache/beat_maps/")
    assert key.startswith(f"cache/beat_maps/{first.audio_hash}/")
    again = analyze(io.BytesIO(data), "librosa", cache=blobs)
    assert again.beats == first.beats


def test_files_in_and_out_and_sizes(blobs, tmp_path):
    src = tmp_path / "in.bin"
    src.write_bytes(b"v" * 300_000)
    blobs.put_file("outputs/j/output.mp4", str(src), "video/mp4")
    assert blobs.size("outputs/j/output.mp4") == 300_000
    blobs.get_file("outputs/j/output.mp4", str(tmp_path / "out.bin"))
    assert (tmp_path / "out.bin").read_bytes() == src.read_bytes()
    with pytest.raises(BlobNotFound):
        blobs.size("outputs/j/none")
    with pytest.raises(BlobNotFound):
        blobs.get_file("outputs/j/none", str(tmp_path / "none.bin"))


def test_signed_urls_give_the_object(blobs, fetch_signed):
    blobs.put_bytes("outputs/j/thumb nail.jpg", b"\xff\xd8jpeg")
    url = blobs.signed_url("outputs/j/thumb nail.jpg", 600)
    assert url.startswith("http") and fetch_signed(url) == b"\xff\xd8jpeg"
