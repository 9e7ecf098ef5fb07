from __future__ import annotations

import json

import numpy as np
import pytest

from beatsync.adapters.local_fs import LocalBlobStore
from beatsync.analysis import analyze
from beatsync.analysis.synth import click_track, encode_wav
from beatsync.cli import main


@pytest.fixture
def song(tmp_path):
    y, _ = click_track(120.0, 10.0, 44100)
    p = tmp_path / "song.wav"
    p.write_bytes(encode_wav(y, 44100))
    return p


def test_cache_hit_is_identical_and_not_analysed_again(song, tmp_path, monkeypatch):
    import beatsync.analysis as analysis

    analysed = []
    real = analysis._analyze_bytes
    monkeypatch.setattr(analysis, "_analyze_bytes", lambda *a, **k: analysed.append(1) or real(*a, **k))
    store = LocalBlobStore(tmp_path / "blobs")
    first = analyze(song, "beatnet", cache=store)
    keys = store.list("cache/beat_maps/")
    assert len(keys) == 1 and keys[0].startswith(f"cache/beat_maps/{first.audio_hash}/")
    second = analyze(song, "beatnet", cache=store)
    assert len(analysed) == 1  # the hit read the cache instead of analysing (speed is not asserted in tests)
    assert second.model_dump(exclude={"processing_time_ms"}) == first.model_dump(exclude={"processing_time_ms"})
    # another method or fps is another entry
    analyze(song, "beatnet", fps=25, cache=store)
    assert len(store.list("cache/beat_maps/")) == 2


def test_corrupt_cache_entry_is_recomputed(song, tmp_path):
    store = LocalBlobStore(tmp_path / "blobs")
    bm = analyze(song, "librosa", cache=store)
    (key,) = store.list("cache/")
    store.put_bytes(key, b"{not json")
    again = analyze(song, "librosa", cache=store)
    assert again.beats == bm.beats
    assert json.loads(store.get_bytes(key))["audio_hash"] == bm.audio_hash


def test_cli_analyze_writes_json_and_plot(song, tmp_path, capsys):
    out_json, out_png = tmp_path / "bm.json", tmp_path / "bm.png"
    assert main(["analyze", str(song), "--method", "librosa", "--json", str(out_json), "--plot", str(out_png)]) == 0
    text = capsys.readouterr().out
    assert "BPM" in text and "4/4" in text
    data = json.loads(out_json.read_text())
    assert data["tempo"] == pytest.approx(120, rel=0.02) and data["beats"]
    from PIL import Image

    img = Image.open(out_png)
    assert img.size[0] > 800
    pixels = np.asarray(img.convert("RGB"))
    # red downbeat ticks are drawn
    red = (pixels[..., 0] > 180) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    assert red.sum() > 100


def test_cli_bad_file_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "song.mp3"
    bad.write_text("hello")
    assert main(["analyze", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "code: unsupported_media" in err and "Traceback" not in err


def test_cli_refuses_noncommercial_models_unless_acknowledged(song, monkeypatch, capsys):
    monkeypatch.delenv("BEATSYNC_ALLOW_NONCOMMERCIAL_MODELS", raising=False)
    assert main(["analyze", str(song), "--method", "madmom", "--no-cache"]) == 2
    assert "noncommercial_model" in capsys.readouterr().err
    monkeypatch.setenv("BEATSYNC_ALLOW_NONCOMMERCIAL_MODELS", "1")
    assert main(["analyze", str(song), "--method", "madmom", "--no-cache"]) == 0
