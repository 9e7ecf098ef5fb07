"""/studio in a real browser (headless Chromium, tests/browser.py) against `beatsync serve`: a creator
uploads a song and two clips from the page, sees the progress with its steps, plays the finished video
(an MP4: Debian's Chromium plays H.264; its currentTime advances), downloads the outputs the status
lists, and sees the beat grid (one mark per beat of the beat map, a cut per shot change, a bar per
shot); a bad upload's error shows next to the clips; a server with API keys asks for one and keeps it in
sessionStorage only. Screenshots at 1280 and 390 px wide go to out/screenshots/ (not committed)."""

from __future__ import annotations

import httpx
from urllib.parse import urlsplit

from tests.browser import SCREENSHOTS, browser, watch_console
from tests.media import make_media
from tests.servers import Serve, media_server

API = "/api/v1/beat-sync"
FIELDS_IN_TAB_ORDER = ["song-file", "song-url", "clip-files", "clip-urls", "preset", "sync_mode", "transition_style",
                       "fit", "output_resolution", "output_format", "preview_duration", "preview_only", "start"]


CONTRAST = """sels => {
  const lum = c => {
    const [r, g, b] = c.match(/[\\d.]+/g).slice(0, 3).map(Number).map(v => {
      v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const bg = el => {
    for (let e = el; e; e = e.parentElement) {
      const m = getComputedStyle(e).backgroundColor.match(/[\\d.]+/g);
      if (m && (m.length < 4 || +m[3] > 0)) return getComputedStyle(e).backgroundColor;
    }
    return "rgb(255, 255, 255)";
  };
  const out = {};
  for (const sel of sels) {
    const el = document.querySelector(sel);
    const a = lum(getComputedStyle(el).color), b = lum(bg(el));
    out[sel] = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  }
  return out;
}"""


def _low_contrast(page, selectors) -> dict:
    """The selectors whose text is below WCAG AA's 4.5:1 against its background."""
    ratios = page.evaluate(CONTRAST, selectors)
    return {k: round(v, 2) for k, v in ratios.items() if v < 4.5}


def _no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_creator_makes_a_video_in_the_studio(tmp_path):
    (tmp_path / "media").mkdir()
    media = make_media(tmp_path / "media")
    host = media_server(media)
    serve = Serve(tmp_path / "data", {"BEATSYNC_ANALYSIS_METHOD": "librosa", "BEATSYNC_ALLOWED_HOSTS": host.host})
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        with browser() as b:
            page = b.new_page(viewport={"width": 1280, "height": 900})
            problems = watch_console(page)
            page.goto(f"{serve.url}/studio")
            page.wait_for_selector("#job-form:not([hidden])")
            # the choice lists come from the API (presets, transitions, the OpenAPI document's enums)
            presets = [p["name"] for p in httpx.get(f"{serve.url}{API}/presets", timeout=10).json()["presets"]]
            options = page.eval_on_selector_all("#preset option", "os => os.map(o => o.value)")
            assert options[1:] == presets
            assert "smart" in page.eval_on_selector_all("#fit option", "os => os.map(o => o.value)")
            assert "1080x1920" in page.eval_on_selector_all("#resolutions option", "os => os.map(o => o.value)")
            # every control is reachable with the keyboard, in order
            page.focus("#song-file")
            reached = []
            for _ in range(40):
                reached.append(page.evaluate("document.activeElement.id"))
                page.keyboard.press("Tab")
            order = [f for f in dict.fromkeys(reached) if f in FIELDS_IN_TAB_ORDER]  # first visits (Tab wraps)
            assert order == FIELDS_IN_TAB_ORDER, reached

            # a bad upload: its error (the API's message and code) shows next to the clips
            page.set_input_files("#song-file", str(media / "song.wav"))
            page.set_input_files("#clip-files", [str(media / "a.mp4"), str(media / "bad.mp4")])
            page.select_option("#preset", "fast_cuts")
            page.fill("#output_resolution", "160x96")
            page.check("#preview_only")
            page.fill("#preview_duration", "5")
            page.click("#start")
            page.wait_for_function("() => document.getElementById('err-video_urls').textContent.includes('unsupported_media')")
            error = page.text_content("#err-video_urls")
            assert "bad.mp4" in error and "not an audio or video file" in error, error
            assert page.get_attribute("#clip-files", "aria-invalid") == "true"
            page.screenshot(path=str(SCREENSHOTS / "studio-bad-upload-1280.png"))
            assert _low_contrast(page, ["h1", "header p", "legend", "label", ".hint", "#err-video_urls",
                                        "#err-video_urls .code", "#start", "#steps li", "#step"]) == {}

            # a pasted URL the service refuses: the create request's error names the input, shown by the clips
            page.set_input_files("#clip-files", [])
            page.fill("#clip-urls", "http://127.0.0.1:9/clip.mp4")
            page.click("#start")
            page.wait_for_function("() => document.getElementById('err-video_urls').textContent.includes('url_not_allowed')")
            assert page.text_content("#err-form") == ""

            # a pasted URL of a file that is no video: the job fails, and its error shows by the clips too
            page.fill("#clip-urls", f"{host.url}/bad.mp4")
            page.click("#start")
            page.wait_for_function("() => document.getElementById('err-video_urls').textContent.includes('clip 1')",
                                   timeout=120_000)
            assert "unsupported_media" in page.text_content("#err-video_urls")
            assert "unsupported_media" in page.text_content("#err-job")
            page.fill("#clip-urls", "")

            # a song and two clips uploaded from the page; the render's progress, then the video
            page.set_input_files("#clip-files", [str(media / "a.mp4"), str(media / "b.mp4")])
            page.click("#start")
            page.wait_for_selector("#result-section:not([hidden])", timeout=240_000)
            assert page.text_content("#err-form") == "" and page.text_content("#err-job") == ""
            steps = page.eval_on_selector_all("#steps li", "ls => ls.map(l => l.textContent)")
            assert [s for s in steps if s.startswith("uploading ")] == [
                "uploading song.wav", "uploading a.mp4", "uploading b.mp4"], steps
            assert any(s.startswith(("analyzing", "composing", "downloading")) for s in steps), steps
            assert page.eval_on_selector("#progress", "p => p.value") == 100

            # the job, as the API tells it
            jobs = httpx.get(f"{serve.url}{API}/jobs", timeout=10).json()["jobs"]
            status = httpx.get(f"{serve.url}{API}/create/{jobs[0]['job_id']}", timeout=10).json()
            assert status["status"] == "completed"
            assert status["result"]["output_url"].split("?")[0].endswith(".mp4")
            edl = httpx.get(status["result"]["edl_url"], timeout=10).json()
            beat_map = httpx.get(status["result"]["beat_map_url"], timeout=10).json()
            assert len(beat_map["beats"]) >= 8  # 8 s at 120 BPM

            # the finished video plays in the page: its currentTime advances
            page.eval_on_selector("#video", "v => { v.muted = true; return v.play(); }")
            page.wait_for_function("() => document.getElementById('video').currentTime > 0.5", timeout=30_000)

            # downloads: every signed link of the status, each one answering
            hrefs = page.eval_on_selector_all("#downloads a", "as => as.map(a => a.href)")
            listed = {status[k] for k in ("output_url", "thumbnail_url") if status.get(k)}
            listed |= {v for k, v in status["result"].items() if k.endswith("_url") and v}
            key = lambda u: urlsplit(u).path  # noqa: E731 - each status read signs its links afresh
            assert {key(h) for h in hrefs} == {key(u) for u in listed}
            assert len(hrefs) >= 5  # video, thumbnail, EDL, beat map, OTIO
            for href in hrefs:
                assert httpx.get(href, timeout=10).status_code == 200, href

            # the beat grid: a mark per beat (downbeats among them), a cut per shot change, a bar per shot
            page.wait_for_selector("#grid-section:not([hidden]) svg")
            assert page.locator("#grid-scroll line.beatmark").count() == len(beat_map["beats"])
            downbeats = sum(1 for b in beat_map["beats"] if b["is_downbeat"])
            assert page.locator("#grid-scroll line.downbeat").count() == downbeats > 0
            assert page.locator("#grid-scroll rect.shot").count() == len(edl["shots"])
            cuts = sum(1 for s in edl["shots"][1:] if not s.get("continues"))
            assert page.locator("#grid-scroll line.cut").count() == cuts > 0
            used = page.eval_on_selector_all("#grid-scroll rect.shot", "rs => rs.map(r => +r.dataset.clip)")
            assert used == [s["clip"] for s in edl["shots"]]
            assert page.locator("#grid-scroll path.wave").count() == 1  # the waveform of the uploaded song
            assert page.locator("#grid-scroll rect.section").count() == len(beat_map["sections"])
            grid_width = page.eval_on_selector("#grid-scroll svg", "s => s.width.baseVal.value")
            assert grid_width >= page.eval_on_selector("#grid-scroll", "b => b.clientWidth") - 2  # fills its box
            legend = page.eval_on_selector_all("#clip-legend li", "ls => ls.map(l => l.textContent)")
            assert legend == ["1: a.mp4", "2: b.mp4"]  # the creator's own file names
            assert _low_contrast(page, ["#downloads a", "#summary", "#clip-legend li", "#grid-about"]) == {}
            assert _no_sideways_scroll(page)
            page.screenshot(path=str(SCREENSHOTS / "studio-1280.png"), full_page=True)

            # a phone: one column, nothing wider than the screen
            for width in (390, 360):
                page.set_viewport_size({"width": width, "height": 844})
                page.wait_for_timeout(300)
                assert _no_sideways_scroll(page), width
            page.set_viewport_size({"width": 390, "height": 844})
            page.wait_for_timeout(300)
            page.screenshot(path=str(SCREENSHOTS / "studio-390.png"), full_page=True)
            # no CSP violation, no script error, no missing file: only the answers to the bad upload and URL
            assert [p for p in problems if "status of 422" not in p and "status of 400" not in p] == [], problems
    finally:
        serve.stop()
        host.close()


def test_the_studio_asks_for_an_api_key_and_keeps_it_for_the_tab_only(tmp_path):
    serve = Serve(tmp_path / "data", {"BEATSYNC_API_KEYS": "right-key-123"})
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        with browser() as b:
            context = b.new_context(viewport={"width": 390, "height": 844})
            page = context.new_page()
            problems = watch_console(page)
            page.goto(f"{serve.url}/studio")
            page.wait_for_selector("#key-section:not([hidden])")
            assert page.is_hidden("#job-form")
            assert page.evaluate("document.activeElement.id") == "api-key"
            page.fill("#api-key", "wrong-key")
            page.press("#api-key", "Enter")
            page.wait_for_function("() => document.getElementById('err-key').textContent.includes('unauthenticated')")
            page.screenshot(path=str(SCREENSHOTS / "studio-key-prompt-390.png"))
            assert page.evaluate("sessionStorage.getItem('beatsync.apiKey')") is None  # a refused key is not kept
            page.fill("#api-key", "right-key-123")
            page.click("#key-form button")
            page.wait_for_selector("#job-form:not([hidden])")
            assert page.is_hidden("#key-section")
            assert page.evaluate("sessionStorage.getItem('beatsync.apiKey')") == "right-key-123"
            assert page.evaluate("localStorage.length") == 0 and context.cookies() == []
            page.screenshot(path=str(SCREENSHOTS / "studio-key-390.png"), full_page=True)
            # a new tab of the same browser starts without it
            other = context.new_page()
            other.goto(f"{serve.url}/studio")
            other.wait_for_selector("#key-section:not([hidden])")
            # 401 console lines are the API's answers to the key-less calls, not page errors
            assert [p for p in problems if "401" not in p] == []
    finally:
        serve.stop()
