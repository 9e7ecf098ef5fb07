"""Issue 23 end to end: `beatsync make --timeline` and `beatsync timeline` as fresh processes, and a
create job asking for timelines through the HTTP API of `beatsync serve` (single-task and parallel
compose): each timeline an output with its signed URL, naming the caller's URLs, read back as the edit."""

from __future__ import annotations

import json
import shutil

import httpx
import pytest

from beatsync.contracts import BeatMap, EditDecisionList
from tests.conftest import ROOT
from tests.e2e.test_cli_make import CLIPS, SONG, beatsync
from tests.servers import Serve, media_server, wait_for
from tests.timelines import check_round_trip

SMALL = ["--resolution", "160x90", "--preview", "--preview-duration", "6", "--method", "librosa"]
API = "/api/v1/beat-sync"


def _rates(edl, names=None) -> list[float]:
    """The example clips' own frame rates, in the edit's order (the timelines count in-points with them)."""
    from beatsync.render.probe import probe_clip

    names = names or [c.name for c in sorted(edl.clips, key=lambda c: c.index)]
    return [probe_clip(str(ROOT / "examples" / n)).fps for n in names]


def _edit(folder, stem):
    return (EditDecisionList.model_validate_json((folder / f"{stem}.edl.json").read_text()),
            BeatMap.model_validate_json((folder / f"{stem}.beat_map.json").read_text()))


def test_make_writes_each_timeline_asked_for(tmp_path):
    out = tmp_path / "out"
    paths = [out / "cut.xml", out / "cut.fcpxml", tmp_path / "elsewhere" / "cut.edl"]
    proc = beatsync("make", SONG, *CLIPS, "-o", str(out / "v.mp4"), "--transition", "slide", *SMALL,
                    *[a for p in paths for a in ("--timeline", str(p))])
    assert proc.returncode == 0, proc.stderr
    edl, bm = _edit(out, "v.mp4")
    assert edl.song.start > 0  # a preview window, mid-song
    urls = [(ROOT / "examples" / c.name).as_uri() for c in sorted(edl.clips, key=lambda c: c.index)]
    for p in [out / "v.mp4.otio", *paths]:
        assert f"timeline: {p}" in proc.stdout or p.suffix == ".otio"
        check_round_trip(str(p), edl, bm, urls, (ROOT / "examples" / "lets_go_fishin_excerpt.opus").as_uri(),
                         [c.name for c in sorted(edl.clips, key=lambda c: c.index)], _rates(edl))
    slides = sum(s.transition.style == "slide" for s in edl.shots[1:])
    assert slides and f"warning: edl: {slides} slide transition(s) written as cuts" in proc.stderr
    assert "(timeline_simplified)" in proc.stderr


def test_a_timeline_extension_that_is_not_a_format_is_refused_before_anything_runs(tmp_path):
    proc = beatsync("make", SONG, *CLIPS, "-o", str(tmp_path / "v.mp4"), "--timeline", str(tmp_path / "cut.aaf"), *SMALL)
    assert proc.returncode == 2 and "code: invalid_timeline" in proc.stderr
    assert ".otio, .xml, .fcpxml, .edl" in proc.stderr and not list(tmp_path.iterdir())
    rate = beatsync("make", SONG, *CLIPS, "-o", str(tmp_path / "v.mp4"), "--timeline", str(tmp_path / "c.edl"),
                    "--fps", "20", *SMALL)
    assert rate.returncode == 2 and "code: timeline_rate" in rate.stderr and not list(tmp_path.iterdir())


def test_timeline_exports_an_existing_edit_without_rendering(tmp_path):
    out = tmp_path / "out"
    assert beatsync("make", SONG, *CLIPS, "-o", str(out / "v.mp4"), *SMALL).returncode == 0
    edl, bm = _edit(out, "v.mp4")
    (out / "v.mp4").unlink()  # nothing is rendered again: the video is not needed
    urls = [(ROOT / "examples" / c.name).as_uri() for c in sorted(edl.clips, key=lambda c: c.index)]
    song = (ROOT / "examples" / "lets_go_fishin_excerpt.opus").as_uri()
    for name in ("a.fcpxml", "a.xml", "a.edl", "a.otio"):
        proc = beatsync("timeline", str(out / "v.mp4.edl.json"), "-o", str(tmp_path / name))
        assert proc.returncode == 0, proc.stderr
        check_round_trip(str(tmp_path / name), edl, bm, urls, song, clip_rates=_rates(edl))
    assert not (out / "v.mp4").exists()
    # the media named on the command line instead (moved footage), in the edit's clip order
    moved = tmp_path / "moved"
    moved.mkdir()
    for c in CLIPS + [SONG]:
        shutil.copy(c, moved)
    ordered = [str(moved / c.name) for c in sorted(edl.clips, key=lambda c: c.index)]
    (out / "v.mp4.otio").unlink()
    refused = beatsync("timeline", str(out / "v.mp4.edl.json"), "-o", str(tmp_path / "b.xml"))
    assert refused.returncode == 2 and "give --song and --clip" in refused.stderr
    proc = beatsync("timeline", str(out / "v.mp4.edl.json"), "-o", str(tmp_path / "b.xml"), "--song",
                    str(moved / "lets_go_fishin_excerpt.opus"), *[a for c in ordered for a in ("--clip", c)])
    assert proc.returncode == 0, proc.stderr
    check_round_trip(str(tmp_path / "b.xml"), edl, bm, [f"file://{c}" for c in ordered],
                     (moved / "lets_go_fishin_excerpt.opus").as_uri(), clip_rates=_rates(edl))
    bad = beatsync("timeline", str(out / "v.mp4.edl.json"), "-o", str(tmp_path / "b.mov"))
    assert bad.returncode == 2 and "code: invalid_timeline" in bad.stderr


@pytest.fixture(scope="module")
def examples():
    server = media_server(ROOT / "examples")
    yield server
    server.close()


@pytest.mark.parametrize("task_seconds", ["600", "2"], ids=["single-task", "parallel"])
def test_a_job_publishes_the_timelines_it_asks_for(tmp_path, examples, task_seconds):
    serve = Serve(tmp_path / "data", {"BEATSYNC_ALLOWED_HOSTS": examples.host, "BEATSYNC_ANALYSIS_METHOD": "librosa",
                                      "BEATSYNC_RENDER_TASK_SECONDS": task_seconds,
                                      "BEATSYNC_RENDER_TARGET_SECONDS": "0.001"})
    try:
        names = ("bottles.mp4", "cars.mp4", "people.mp4")
        body = {"audio_url": f"{examples.url}/lets_go_fishin_excerpt.opus",
                "video_urls": [f"{examples.url}/{n}" for n in names], "preview_only": True, "preview_duration": 6,
                "timelines": ["fcpxml", "fcp_xml", "edl"],
                "config": {"output_resolution": [160, 90], "transition_style": "zoom", "transition_duration": 0.1}}
        r = httpx.post(f"{serve.url}{API}/create", json=body, timeout=30)
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        status = wait_for(lambda: (lambda s: s if s["status"] in ("completed", "failed") else None)(serve.job(job_id)),
                          timeout=300, interval=0.5)
        assert status["status"] == "completed", status
        result = status["result"]
        assert sorted(result["timeline_urls"]) == ["edl", "fcp_xml", "fcpxml", "otio"]
        assert result["timeline_urls"]["otio"] == result["otio_url"]
        logs = " ".join(e["message"] for e in httpx.get(f"{serve.url}{API}/jobs/{job_id}/logs", timeout=10).json()["logs"])
        assert ("tasks, joined" in logs) == (task_seconds == "2")  # the path this case is about
        edl = EditDecisionList.model_validate_json(httpx.get(result["edl_url"], timeout=10).content)
        bm = BeatMap.model_validate_json(httpx.get(result["beat_map_url"], timeout=10).content)
        zooms = sum(s.transition.style == "zoom" for s in edl.shots[1:])
        assert zooms and f"edl: {zooms} zoom transition(s) written as cuts (the format has no such transition)" in [
            w["message"] for w in result["warnings"] if w["code"] == "timeline_simplified"]
        for fmt, url in result["timeline_urls"].items():
            got = httpx.get(url, timeout=10)
            assert got.status_code == 200
            ext = {"otio": ".otio", "fcp_xml": ".xml", "fcpxml": ".fcpxml", "edl": ".edl"}[fmt]
            path = tmp_path / f"edit{ext}"
            path.write_bytes(got.content)
            # the caller's URLs and file names, for the editor to relink
            urls = [f"{examples.url}/{names[i]}" for i in range(3)]
            check_round_trip(str(path), edl, bm, urls, body["audio_url"], list(names), _rates(edl, names))
        # a job's downloaded outputs export again with `beatsync timeline` (edit.otio names the media)
        got = tmp_path / "downloaded"
        got.mkdir()
        for name, url in (("edl.json", result["edl_url"]), ("beat_map.json", result["beat_map_url"]),
                          ("edit.otio", result["otio_url"])):
            (got / name).write_bytes(httpx.get(url, timeout=10).content)
        proc = beatsync("timeline", str(got / "edl.json"), "-o", str(got / "again.fcpxml"))
        assert proc.returncode == 0, proc.stderr
        check_round_trip(str(got / "again.fcpxml"), edl, bm, urls, body["audio_url"], list(names), _rates(edl, names))
        outputs = sorted(p.name for p in (serve.data / "blobs" / "outputs" / job_id).iterdir())
        assert {"edit.otio", "edit.xml", "edit.fcpxml", "edit.edl"} <= set(outputs)
        refused = httpx.post(f"{serve.url}{API}/create", json={**body, "config": {"output_fps": 20}}, timeout=30)
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "timeline_rate"
        unknown = httpx.post(f"{serve.url}{API}/create", json={**body, "timelines": ["aaf"]}, timeout=30)
        assert unknown.status_code == 400 and "timelines" in unknown.json()["error"]["message"]
    finally:
        serve.stop()
    assert json.dumps(status)  # the status document is plain JSON
