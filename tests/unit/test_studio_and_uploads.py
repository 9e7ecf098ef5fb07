"""The studio page's files (/studio: shipped in the package, the /docs policy, off where deployed, no
choice list written into its script) and the uploads it is built on (POST /uploads: upload:// references
only their uploader may use, refused at once when empty, too big or not media, removed with their job)."""

from __future__ import annotations

import io
import re
from types import SimpleNamespace

import pytest

from beatsync.bootstrap import bootstrap
from beatsync.contracts.schemas import STUDIO_FILES, load, validator
from beatsync.http import create_flask_app, set_container, studio_page
from beatsync.jobs.uploads import sniff
from beatsync.settings import Settings
from tests.conftest import ROOT
from tests.suites.service import RecordingOrchestrator

API = "/api/v1/beat-sync"


@pytest.fixture
def serve(tmp_path):
    """A test client of `beatsync serve`'s app over a container with the given settings."""
    made = []

    def make(env=None, **settings):
        c = bootstrap(Settings.from_env(env or {}, data_dir=tmp_path / "data", **settings),
                      orchestrator=RecordingOrchestrator())
        set_container(c)
        made.append(c)
        return create_flask_app().test_client()

    yield make
    set_container(None)


# -- the page ---------------------------------------------------------------------------------------

def test_the_studio_serves_its_own_files_under_the_docs_policy(serve):
    client = serve()
    page = client.get("/studio")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert {s for s in sources if s.startswith("/studio/")} == {"/studio/studio.css", "/studio/studio.js"}
    assert all(s.startswith(("/studio/", "/docs", "data:", "#")) for s in sources), sources  # no CDN
    assert not re.search(r"<script[^>]*>[^<]", html)  # no inline script
    assert not re.search(r"<[^>]+\son[a-z]+=", html)  # no inline handlers either
    policy = page.headers["Content-Security-Policy"]
    from beatsync.http.docs import CSP

    assert policy.startswith(CSP) and "media-src 'self' blob:" in policy and "'unsafe-eval'" not in policy
    assert set(studio_page.ASSETS) == set(STUDIO_FILES)
    for name in STUDIO_FILES:
        r = client.get(f"/studio/{name}")
        assert r.status_code == 200 and r.mimetype == studio_page.ASSETS[name].split(";")[0], name
        assert r.headers["Content-Security-Policy"] == policy and r.headers["X-Content-Type-Options"] == "nosniff"
    for bad in ("studio_page.py", "..%2Fapp.py", "../app.py", "LICENSE"):
        assert client.get(f"/studio/{bad}").status_code == 404, bad


def test_the_script_sets_text_only_and_takes_its_choices_from_the_api():
    js = (ROOT / "src/beatsync/http/studio/studio.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                 "localStorage", "document.cookie"):
        assert sink not in js, sink
    assert "sessionStorage" in js
    # the lists of choices are the API's: none of their values is written into the script
    edit = load("edit_config")["$defs"]
    values = {*edit["SyncMode"]["enum"], *edit["TransitionStyle"]["enum"], *edit["Fit"]["enum"],
              *edit["Preset"]["enum"], *load("edit_config")["properties"]["output_resolution"]["examples"]}
    literals = set(re.findall(r'"([^"\\]*)"', js))
    assert values - {"cut"} and not (values - {"cut"}) & literals, (values - {"cut"}) & literals  # "cut": an SVG class


def test_the_studio_is_off_where_deployed_unless_turned_on(serve):
    assert Settings.from_env({}).studio is True
    assert Settings.from_env({"K_SERVICE": "status"}).studio is False
    assert Settings.from_env({"K_SERVICE": "status", "BEATSYNC_STUDIO": "1"}).studio is True
    r = serve({"K_SERVICE": "status"}).get("/studio")
    assert r.status_code == 404 and r.json["error"]["code"] == "studio_disabled"
    assert serve({"BEATSYNC_STUDIO": "0"}).get("/studio/studio.js").status_code == 404
    assert serve({"K_SERVICE": "status", "BEATSYNC_STUDIO": "1", "BEATSYNC_API_KEYS": "k"}).get("/studio").status_code == 200


def test_with_a_bucket_the_policy_lets_the_page_play_its_signed_links():
    gcs = studio_page.csp(SimpleNamespace(blob_store="gcs", gcs_endpoint=""))
    assert "media-src 'self' blob: https://storage.googleapis.com" in gcs
    assert "connect-src 'self' https://storage.googleapis.com" in gcs and "script-src 'self';" in gcs
    assert studio_page.csp(SimpleNamespace(blob_store="local", gcs_endpoint="")) == studio_page.CSP


# -- uploads ----------------------------------------------------------------------------------------

def _upload(client, name, data, headers=None):
    return client.post(f"{API}/uploads", data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data",
                       headers=headers or {})


def test_sniff_knows_media_containers_by_their_first_bytes(media):
    for name in ("song.wav", "a.mp4"):
        assert sniff((media.root / name).read_bytes()[:64]) is not None, name
    assert sniff((ROOT / "examples/lets_go_fishin_excerpt.opus").read_bytes()[:64]) == "other"  # Ogg
    assert sniff(b"\x1a\x45\xdf\xa3" + b"\0" * 12) == "matroska"
    assert sniff(b"ID3\x04" + b"\0" * 12) == "other"
    for junk in (b"this is not a video", b"\x89PNG\r\n\x1a\n" + b"\0" * 8, b"\xff\xd8\xff\xe0" + b"\0" * 12,
                 b"%PDF-1.7" + b"\0" * 8, b"<html>" + b"\0" * 10):
        assert sniff(junk) is None, junk


def test_an_upload_is_answered_with_a_reference_or_refused_at_once(serve, media):
    client = serve(max_input_bytes=400_000)
    song = (media.root / "song.wav").read_bytes()
    r = _upload(client, "song.wav", song)
    assert r.status_code == 201, r.json
    validator("upload").validate(r.json)
    assert re.fullmatch(r"upload://[0-9a-f]{64}\.wav", r.json["upload_url"]) and r.json["size"] == len(song)
    assert _upload(client, "song.wav", song).json == r.json  # the same bytes: the same file
    bad = _upload(client, "bad.mp4", (media.root / "bad.mp4").read_bytes())
    assert (bad.status_code, bad.json["error"]["code"]) == (422, "unsupported_media")
    assert "bad.mp4" in bad.json["error"]["message"] and bad.json["error"]["details"] == {"field": "file"}
    assert _upload(client, "e.mp4", b"").json["error"]["code"] == "empty_upload"
    big = _upload(client, "big.wav", song[:44] + b"\0" * 500_000)
    assert (big.status_code, big.json["error"]["code"]) == (413, "too_large")
    assert client.post(f"{API}/uploads", json={"file": "x"}).status_code == 415
    r = client.post(f"{API}/uploads", data={"other": (io.BytesIO(song), "s.wav")}, content_type="multipart/form-data")
    assert (r.status_code, r.json["error"]["code"]) == (400, "missing_file")


def test_a_caller_holds_a_bounded_number_of_uploads(serve, media):
    client = serve(max_clips=1, max_active_jobs=1)  # (1 + 1) * 1 files
    song = (media.root / "song.wav").read_bytes()
    assert _upload(client, "a.wav", song).status_code == 201
    assert _upload(client, "b.wav", song + b"\0").status_code == 201
    r = _upload(client, "c.wav", song + b"\0\0")
    assert (r.status_code, r.json["error"]["code"]) == (429, "too_many_uploads") and "Retry-After" in r.headers


def test_an_upload_is_its_uploaders_only_and_goes_with_the_job_that_used_it(serve, media, tmp_path):
    client = serve({"BEATSYNC_API_KEYS": "key-one,key-two"})
    one, two = ({"Authorization": f"Bearer {k}"} for k in ("key-one", "key-two"))
    assert _upload(client, "song.wav", b"RIFF").status_code == 401  # identity first
    song = _upload(client, "song.wav", (media.root / "song.wav").read_bytes(), one).json["upload_url"]
    clip = _upload(client, "a.mp4", (media.root / "a.mp4").read_bytes(), one).json["upload_url"]
    body = {"audio_url": song, "video_urls": [clip]}
    r = client.post(f"{API}/create", json=body, headers=two)
    assert (r.status_code, r.json["error"]["code"]) == (400, "upload_not_found")
    assert r.json["error"]["details"] == {"field": "audio_url"}
    r = client.post(f"{API}/create", json={"audio_url": "upload://abc.wav", "video_urls": [clip]}, headers=one)
    assert r.json["error"]["code"] == "upload_not_found"
    r = client.post(f"{API}/create", json={"audio_url": song, "video_urls": [clip, clip[:-3] + "mov"]}, headers=one)
    assert r.json["error"]["details"] == {"field": "video_urls.1"}
    r = client.post(f"{API}/create", json=body, headers=one)
    assert r.status_code == 202, r.json
    from beatsync.http import get_container

    c = get_container()
    job = c.jobs.get(r.json["job_id"])
    assert set(job.request["upload_keys"]) == {song, clip}
    stored = list(job.request["upload_keys"].values())
    assert all(c.blobs.exists(k) for k in stored)
    assert client.delete(f"{API}/create/{job.job_id}", headers=one).json["status"] == "cancelled"
    assert not any(c.blobs.exists(k) for k in stored)  # the ended job took its uploads with it


def test_a_failed_jobs_error_names_the_input_it_concerns(serve, media):
    from beatsync import keys
    from beatsync.errors import MediaError
    from beatsync.http import get_container
    from beatsync.jobs import lifecycle

    assert keys.input_field("/tmp/work/j/clip_2.mp4") == "video_urls.2"
    assert keys.input_field("audio.wav") == "audio_url"
    assert keys.input_field("thumbnail.jpg") is None and keys.input_field("") is None
    client = serve()
    up = lambda name: _upload(client, name, (media.root / name).read_bytes()).json["upload_url"]  # noqa: E731
    body = {"audio_url": up("song.wav"), "video_urls": [up("a.mp4"), up("b.mp4")]}
    ids = [client.post(f"{API}/create", json={**body, "preset": p}).json["job_id"] for p in ("fast_cuts", "cinematic")]
    c = get_container()
    lifecycle.fail(c, c.jobs.get(ids[0]), MediaError("clip clip_1.mp4: not a video file FFmpeg can read",
                                                     code="unsupported_media", source="/tmp/w/clip_1.mp4"))
    lifecycle.fail(c, c.jobs.get(ids[1]), MediaError("no beats", code="corrupt_media"))
    first, second = (client.get(f"{API}/create/{i}").json for i in ids)
    validator("create_status").validate(first)
    assert first["error"]["code"] == "unsupported_media" and first["error"]["details"] == {"field": "video_urls.1"}
    assert second["error"]["details"] is None
