"""A corpus of bad and hostile inputs against a running `beatsync serve`: each one is answered with a
clean 4xx or ends in a job `failed` with a specific code, and the server stays healthy and useful."""

from __future__ import annotations


import httpx
import pytest

from tests.hostile import make_corpus
from tests.servers import API, Serve, media_server, wait_for

GOOD_SONG, GOOD_CLIP = "song.wav", "clip.mp4"

# (name, body changes, expected status, expected code(s))
HTTP_CASES = [
    ("malformed JSON", {"raw": b'{"audio_url": '}, 400, "malformed_json"),
    ("oversized JSON body", {"raw": b'{"x": "' + b"a" * (2 << 20) + b'"}'}, 413, "body_too_large"),
    ("form instead of JSON", {"form": True}, 415, "unsupported_media_type"),
    ("JSON nested 100,000 deep", {"raw": b"[" * 100_000 + b"]" * 100_000}, 400, "too_deeply_nested"),
    ("NaN preview_duration", {"raw": b'{"audio_url": "https://93.184.215.14/a.mp3", "video_urls": '
                                     b'["https://93.184.215.14/v.mp4"], "preview_only": true, "preview_duration": NaN}'},
     400, "malformed_json"),
    ("too many clips", {"video_urls": ["https://93.184.215.14/v.mp4"] * 21}, 400, "invalid_request"),
    ("no clips", {"video_urls": []}, 400, "invalid_request"),
    ("no song", {"audio_url": None}, 400, "invalid_request"),
    ("fps out of range", {"config": {"output_fps": 500}}, 400, "invalid_request"),
    ("threshold out of range", {"config": {"strength_threshold": -1}}, 400, "invalid_request"),
    ("transition too long", {"config": {"transition_duration": 5}}, 400, "invalid_request"),
    ("absurd resolution", {"config": {"output_resolution": [99999, 1]}}, 400, "output_size_not_allowed"),
    ("8K square", {"config": {"output_resolution": [7680, 7680]}}, 400, "output_size_not_allowed"),
    ("9999x9999", {"config": {"output_resolution": "9999x9999"}}, 400, "output_size_not_allowed"),
    ("unknown transition", {"config": {"transition_style": "wipe"}}, 400, "invalid_request"),
    ("unknown preset", {"preset": "disco"}, 400, "invalid_request"),
    ("preview too short", {"preview_only": True, "preview_duration": 1}, 400, "invalid_request"),
    ("file URL", {"audio_url": "file:///etc/passwd"}, 400, "invalid_request"),
    ("gs URL outside the service bucket", {"audio_url": "gs://someone-else/song.mp3"}, 400, "url_not_allowed"),
    ("webhook to the metadata server", {"webhook_url": "http://169.254.169.254/hook"}, 400, "url_not_allowed"),
]

CLIP_CASES = {
    "empty.mp4": ("unsupported_media",),
    "text.mp4": ("unsupported_media",),
    "truncated.mp4": ("unsupported_media", "corrupt_media"),
    "huge_moov.mp4": ("corrupt_media",),
    "giant_16384.mp4": ("corrupt_media", "too_large"),
    "giant_12000.mp4": ("too_large",),
    "many_streams.mkv": ("unsupported_media",),
    "image.png": ("no_video_stream",),
    "audio_only.mp4": ("no_video_stream",),
    "no_frames.mp4": ("corrupt_media",),
    "corrupt_middle.mp4": ("completed", "corrupt_media"),  # damage after the first frame may be decoded around
}
SONG_CASES = {
    "empty.mp3": ("unsupported_media",),
    "text.mp3": ("unsupported_media",),
    "truncated.mp3": ("unsupported_media", "corrupt_media"),
    "ten_hours.mka": ("too_long",),
    "video_no_audio.mp4": ("no_audio_stream",),
}
URL_CASES = {
    "/missing.mp4": ("source_not_found",),
    "/slow": ("fetch_timeout",),
    "/short": ("fetch_incomplete",),
    "/huge": ("too_large",),
    "/lie": ("unsupported_media",),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    make_corpus(root)
    server = media_server(root)
    yield server
    server.close()


@pytest.fixture(scope="module")
def serve(tmp_path_factory, corpus):
    s = Serve(tmp_path_factory.mktemp("serve") / "data", {
        "BEATSYNC_ALLOWED_HOSTS": corpus.host, "BEATSYNC_ANALYSIS_METHOD": "librosa", "BEATSYNC_FETCH_TIMEOUT": "3",
        "BEATSYNC_MAX_INPUT_BYTES": "5000000", "BEATSYNC_MAX_ACTIVE_JOBS": "100", "BEATSYNC_CALLER_MAX_ACTIVE_JOBS": "100", "BEATSYNC_CALLER_MAX_SUBMISSIONS_PER_MINUTE": "100",
        "BEATSYNC_MAX_SUBMISSIONS_PER_MINUTE": "100", "BEATSYNC_WORKERS": "3"})
    yield s
    s.stop()


def _body(corpus, song=GOOD_SONG, clip=GOOD_CLIP):
    return {"audio_url": f"{corpus.url}/{song}" if not song.startswith("/") else corpus.url + song,
            "video_urls": [f"{corpus.url}/{clip}" if not clip.startswith("/") else corpus.url + clip],
            "preset": "fast_cuts", "preview_only": True, "preview_duration": 5,
            "config": {"output_resolution": [160, 96]}}


RESULTS: list[tuple[str, str, bool]] = []


def test_bad_requests_get_a_clean_4xx(serve, corpus):
    for name, change, status, code in HTTP_CASES:
        body = _body(corpus)
        if "raw" in change:
            r = httpx.post(f"{serve.url}{API}/create", content=change["raw"],
                           headers={"Content-Type": "application/json"}, timeout=30)
        elif "form" in change:
            r = httpx.post(f"{serve.url}{API}/create", data={"audio_url": "x"}, timeout=30)
        else:
            for k, v in change.items():
                if v is None:
                    body.pop(k)
                elif k == "config":
                    body["config"] = {**body["config"], **v}
                else:
                    body[k] = v
            r = httpx.post(f"{serve.url}{API}/create", json=body, timeout=30)
        ok = r.status_code == status and r.json()["error"]["code"] == code
        RESULTS.append((name, f"{r.status_code} {r.json()['error']['code']}", ok))
        assert ok, (name, r.status_code, r.text[:300])
    others = [
        ("PUT on create", httpx.put(f"{serve.url}{API}/create", json={}, timeout=10), 405, "method_not_allowed"),
        ("list limit 1000", httpx.get(f"{serve.url}{API}/jobs?limit=1000", timeout=10), 400, "invalid_query"),
        ("unknown job", httpx.get(f"{serve.url}{API}/create/../../etc/passwd", timeout=10), 404, None),
        ("upload without audio_file", httpx.post(f"{serve.url}{API}/analyze", files={"other": ("a", b"x")},
                                                 timeout=10), 400, "missing_audio_file"),
        ("empty upload", httpx.post(f"{serve.url}{API}/analyze", files={"audio_file": ("a.mp3", b"")}, timeout=10),
         400, "empty_upload"),
        ("multipart fps=\u00b2", httpx.post(f"{serve.url}{API}/analyze", files={"audio_file": ("a.mp3", b"x" * 10)},
                                         data={"fps": "\u00b2"}, timeout=10), 400, "invalid_request"),
        ("200 request headers", httpx.get(f"{serve.url}{API}/jobs", headers={f"X-H{i}": "v" for i in range(200)},
                                          timeout=10), 431, "headers_too_large"),
        ("text uploaded as a song", httpx.post(f"{serve.url}{API}/analyze",
                                               files={"audio_file": ("a.mp3", b"hello " * 100)}, timeout=60),
         422, "unsupported_media"),
    ]
    for name, r, status, code in others:
        ok = r.status_code == status and (code is None or r.json()["error"]["code"] == code)
        RESULTS.append((name, str(r.status_code), ok))
        assert ok, (name, r.status_code, r.text[:300])


def _run_jobs(serve, corpus, cases: dict, make_body):
    ids = {}
    for name in cases:
        r = httpx.post(f"{serve.url}{API}/create", json=make_body(name), timeout=30)
        assert r.status_code == 202, (name, r.text)
        ids[name] = r.json()["job_id"]

    def ended():
        out = {n: serve.job(j) for n, j in ids.items()}
        return out if all(s["status"] in ("completed", "failed", "cancelled") for s in out.values()) else None

    final = wait_for(ended, timeout=240, interval=0.5)
    for name, expected in cases.items():
        s = final[name]
        got = s["status"] if s["status"] == "completed" else (s["error"] or {}).get("code")
        ok = got in expected
        RESULTS.append((name, got, ok))
        assert ok, (name, s["status"], s["error"])


def test_broken_clips_fail_their_jobs_with_codes(serve, corpus):
    _run_jobs(serve, corpus, CLIP_CASES, lambda name: _body(corpus, clip=name))


def test_broken_songs_fail_their_jobs_with_codes(serve, corpus):
    _run_jobs(serve, corpus, SONG_CASES, lambda name: _body(corpus, song=name))


def test_misbehaving_sources_fail_their_jobs_with_codes(serve, corpus):
    _run_jobs(serve, corpus, URL_CASES, lambda name: _body(corpus, clip=name))


def test_the_server_is_healthy_and_working_afterwards(serve, corpus):
    health = httpx.get(f"{serve.url}/health", timeout=30).json()
    assert health["status"] == "healthy", health
    r = httpx.post(f"{serve.url}{API}/create", json=_body(corpus), timeout=30)
    job_id = r.json()["job_id"]
    final = wait_for(lambda: (lambda s: s if s["status"] in ("completed", "failed") else None)(serve.job(job_id)),
                     timeout=120, interval=0.5)
    assert final["status"] == "completed", final
    handled = sum(ok for _, _, ok in RESULTS)
    print(f"\nbad inputs tried: {len(RESULTS)}, handled: {handled}")
    for name, got, ok in RESULTS:
        print(f"  {'ok ' if ok else 'BAD'} {name}: {got}")
    assert len(RESULTS) >= 30 and handled == len(RESULTS)
