"""`beatsync serve` under hostile clients (issue 21): a good caller's latency while N slow
connections dribble request heads (an attacker keeping N open), the time to serve normally once
they leave, the server's peak memory for hostile bodies (a broken chunked body, 1 GiB of chunked
JSON, a 450 MiB upload, three 300 MiB uploads at once), and a good job's start delay while a
hostile clip (200,000 frames at 16x16) is analysed. One `beatsync serve` subprocess per part.

    python benchmarks/hostile_serving.py [--quick] [--slow 1000,5000,20000] [--skip-clip]

N is capped by this process's open-files limit (less a margin); the server holds at most
BEATSYNC_HTTP_CONNECTION_LIMIT of them. Upload rows send ``method=madmom`` (refused with 400 once
the body is read and staged, before any job exists): the figure is the request's own memory, not
that of an analysis job, which reads its song whole.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

API = "/api/v1/beat-sync"
KEY, OTHER = "bench-key-good", "bench-key-mallory"
AUTH = {"Authorization": f"Bearer {KEY}"}
MB = 1 << 20


class Peak:
    """The server's peak RSS while the block runs (sampled every 20 ms)."""

    def __init__(self, pid: int):
        import psutil

        self.proc, self.peak, self.before = psutil.Process(pid), 0, 0
        self._stop = threading.Event()

    def __enter__(self):
        self.before = self.peak = self.proc.memory_info().rss
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except Exception:  # noqa: BLE001 - the process ended
                return
            time.sleep(0.02)

    def __exit__(self, *exc):
        time.sleep(0.1)
        self._stop.set()
        self._t.join(5)
        return False


def _pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


def _serve(tmp: Path, **env):
    from tests.servers import Serve

    base = {"BEATSYNC_API_KEYS": f"{KEY},{OTHER}", "BEATSYNC_MIN_FREE_BYTES": "0", "BEATSYNC_ANALYSIS_METHOD": "librosa",
            "BEATSYNC_MAX_SUBMISSIONS_PER_MINUTE": "1000", "BEATSYNC_MAX_ACTIVE_JOBS": "100", "BEATSYNC_CALLER_MAX_ACTIVE_JOBS": "100", "BEATSYNC_CALLER_MAX_SUBMISSIONS_PER_MINUTE": "1000"}
    return Serve(Path(tempfile.mkdtemp(dir=tmp)) / "data", {**base, **env})


# -- slow connections ----------------------------------------------------------------------------

def slow_connections(tmp: Path, counts: list[int], seconds: float) -> list[dict]:
    import httpx

    from tests.hostile_http import SlowHeads

    rows = []
    serve = _serve(tmp)
    try:
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        for n in counts:
            n_used = min(n, soft - 300)
            slow = SlowHeads(serve.port, n_used, interval=5.0, reconnect=True).start()  # 0: the baseline
            with Peak(serve.proc.pid) as peak:
                ramp = time.monotonic()
                while slow.opened < n_used and time.monotonic() - ramp < 30:
                    time.sleep(0.2)
                lat, failed, open_seen = [], 0, []
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    t = time.perf_counter()
                    try:
                        ok = httpx.get(f"{serve.url}{API}/jobs", headers=AUTH, timeout=30).status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    if ok:
                        lat.append(time.perf_counter() - t)
                    else:
                        failed += 1
                    open_seen.append(slow.open)
                    time.sleep(0.1)
                slow.close()
                left = time.monotonic()
                while True:  # recovery: until a good request is answered quickly
                    t = time.perf_counter()
                    try:
                        if httpx.get(f"{serve.url}{API}/jobs", headers=AUTH, timeout=30).status_code == 200 \
                                and time.perf_counter() - t < 0.5:
                            break
                    except httpx.HTTPError:
                        pass
                recover = time.monotonic() - left
            rows.append({"case": f"{n_used} slow connections (asked {n})", "p50_ms": 1000 * statistics.median(lat) if lat else None,
                         "p99_ms": 1000 * _pct(lat, 0.99) if lat else None, "good": len(lat), "failed": failed,
                         "recover_s": recover, "peak_mb": peak.peak / MB,
                         "note": f"client held {int(statistics.median(open_seen))} open (median), "
                                 f"{slow.closed_by_server} closed by the server"})
    finally:
        serve.stop()
    return rows


# -- hostile bodies ------------------------------------------------------------------------------

def _sock_send(port: int, data: bytes, close: bool) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(data)
        if close:
            s.shutdown(socket.SHUT_WR)
        try:
            s.recv(4096)
        except OSError:
            pass


def _chunked_json(port: int, total: int) -> tuple[int, str]:
    head = (f"POST {API}/create HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    piece = b"[" + b"1," * (MB // 2 - 1) + b"1]"
    chunk = b"%x\r\n%s\r\n" % (len(piece), piece)
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head)
        try:
            while sent < total:
                s.sendall(chunk)
                sent += len(piece)
            s.sendall(b"0\r\n\r\n")
        except OSError:
            pass
        try:
            answer = s.recv(4096).split(b"\r\n", 1)[0].decode()
        except OSError:
            answer = "(reset)"
    return sent, answer


def _upload(url: str, size: int) -> int:
    import httpx

    boundary = "bench0boundary"
    first = (f'--{boundary}\r\nContent-Disposition: form-data; name="method"\r\n\r\nmadmom\r\n'
             f'--{boundary}\r\nContent-Disposition: form-data; name="audio_file"; filename="big.mp3"\r\n'
             "Content-Type: application/octet-stream\r\n\r\n").encode()
    last = f"\r\n--{boundary}--\r\n".encode()
    piece = os.urandom(MB)

    def body():
        yield first
        for _ in range(size // MB):
            yield piece
        yield last

    r = httpx.post(f"{url}{API}/analyze", content=body(), timeout=600,
                   headers={**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}",
                            "Content-Length": str(len(first) + size // MB * MB + len(last))})
    return r.status_code


def hostile_bodies(tmp: Path, quick: bool) -> list[dict]:
    rows = []
    serve = _serve(tmp)
    try:
        cases = [
            ("broken chunked (size ffffffffff, 6 bytes, close)", lambda: _sock_send(
                serve.port, (f"POST {API}/create HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
                             "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "ffffffffff\r\nabcdef").encode(), True) or time.sleep(3) or "sent"),
            (f"{'64 MiB' if quick else '1 GiB'} chunked JSON", lambda: "%d MiB sent, answer %s" % (
                lambda r: (r[0] // MB, r[1]))(_chunked_json(serve.port, (64 if quick else 1024) * MB))),
            (f"{'45' if quick else '450'} MiB upload", lambda: f"HTTP {_upload(serve.url, (45 if quick else 450) * MB)}"),
            (f"3 x {'30' if quick else '300'} MiB uploads at once", lambda: "HTTP " + ", ".join(
                str(c) for c in ThreadPoolExecutor(3).map(
                    lambda _: _upload(serve.url, (30 if quick else 300) * MB), range(3)))),
        ]
        for name, run in cases:
            with Peak(serve.proc.pid) as peak:
                t = time.perf_counter()
                note = run()
                took = time.perf_counter() - t
            rows.append({"case": name, "peak_mb": peak.peak / MB, "grew_mb": (peak.peak - peak.before) / MB,
                         "note": f"{note}; {took:.1f} s"})
    finally:
        serve.stop()
    return rows


# -- a hostile clip ------------------------------------------------------------------------------

def hostile_clip(path: Path, frames: int = 200_000) -> Path:
    """200,000 frames at 16x16, 100 fps (2,000 s): a few MB, slow to decode frame by frame."""
    if path.is_file():
        return path
    import av
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as out:
        s = out.add_stream("libx264", rate=100, options={"preset": "ultrafast", "tune": "zerolatency"})
        s.width = s.height = 16
        s.pix_fmt = "yuv420p"
        rng = np.random.default_rng(0)
        tiles = [av.VideoFrame.from_ndarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8), format="rgb24")
                 for _ in range(50)]
        for i in range(frames):
            f = tiles[i % 50]
            f.pts = i
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    tmp.rename(path)
    return path


def clip_delay(tmp: Path, timeout: float) -> dict:
    import shutil

    import httpx

    from tests.servers import media_server

    media_dir = tmp / "media"
    media_dir.mkdir(exist_ok=True)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "beatsync-bench"
    t = time.perf_counter()
    clip = hostile_clip(cache / "hostile_200k_16x16.mp4")
    made = time.perf_counter() - t
    shutil.copy(clip, media_dir / "hostile.mp4")
    shutil.copy(ROOT / "examples" / "lets_go_fishin_excerpt.opus", media_dir / "song.opus")
    shutil.copy(ROOT / "examples" / "bottles.mp4", media_dir / "good.mp4")
    media = media_server(media_dir)
    serve = _serve(tmp, BEATSYNC_ALLOWED_HOSTS=media.host, BEATSYNC_WORKERS="1")
    mallory = {"Authorization": f"Bearer {OTHER}"}
    try:
        def create(clip_name, headers):
            body = {"audio_url": f"{media.url}/song.opus", "video_urls": [f"{media.url}/{clip_name}"],
                    "preset": "fast_cuts", "preview_only": True, "preview_duration": 5,
                    "config": {"output_resolution": [160, 96]}}
            r = httpx.post(f"{serve.url}{API}/create", json=body, headers=headers, timeout=60)
            assert r.status_code == 202, r.text
            return r.json()["job_id"]

        def status(job_id, headers):
            return httpx.get(f"{serve.url}{API}/create/{job_id}", headers=headers, timeout=30).json()

        bad = create("hostile.mp4", mallory)
        t0 = time.monotonic()
        while status(bad, mallory)["status"] == "queued" and time.monotonic() - t0 < 60:
            time.sleep(0.2)
        time.sleep(2.0)  # the hostile clip's analysis is under way
        good = create("good.mp4", AUTH)
        t1 = time.monotonic()
        started = None
        while time.monotonic() - t1 < timeout:
            doc = status(good, AUTH)
            if doc["status"] != "queued":
                started = time.monotonic() - t1
                break
            time.sleep(0.2)
        bad_doc = status(bad, mallory)
        note = (f"hostile job {bad_doc['status']} after {time.monotonic() - t0:.0f} s"
                + (f" ({bad_doc['error']['code']})" if bad_doc.get("error") else "") + f"; clip made in {made:.0f} s")
        for job_id, h in ((bad, mallory), (good, AUTH)):
            httpx.delete(f"{serve.url}{API}/create/{job_id}", headers=h, timeout=30)
        return {"case": "good job's start delay, hostile clip analysed (200,000 frames, 16x16)",
                "start_s": started, "timeout": timeout, "note": note}
    finally:
        serve.stop()
        media.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer slow connections, smaller bodies, shorter waits")
    p.add_argument("--slow", default=None, help="comma-separated slow-connection counts (default 0,1000,5000,20000; "
                   "0: the baseline)")
    p.add_argument("--seconds", type=float, default=None, help="seconds of good requests per count (default 15)")
    p.add_argument("--skip-clip", action="store_true", help="leave out the hostile clip row")
    p.add_argument("--parts", default="slow,bodies,clip", help="which parts to run (default: all)")
    p.add_argument("--clip-timeout", type=float, default=None, help="longest wait for the good job (default 300)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    counts = [int(x) for x in (a.slow or ("0,1000" if a.quick else "0,1000,5000,20000")).split(",")]
    seconds = a.seconds or (6.0 if a.quick else 15.0)
    tmp = Path(tempfile.mkdtemp(prefix="beatsync-hostile-"))
    parts = set(a.parts.split(","))
    rows = slow_connections(tmp, counts, seconds) if "slow" in parts else []
    rows += hostile_bodies(tmp, a.quick) if "bodies" in parts else []
    if "clip" in parts and not a.skip_clip:
        rows.append(clip_delay(tmp, a.clip_timeout or (60.0 if a.quick else 300.0)))
    if a.json:
        print(json.dumps(rows, indent=1))
    print("| case | good p50 | good p99 | good / failed | recover | server peak RSS | notes |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if "p50_ms" in r:
            fmt = lambda v: "-" if v is None else f"{v:.0f} ms"  # noqa: E731
            print(f"| {r['case']} | {fmt(r['p50_ms'])} | {fmt(r['p99_ms'])} | {r['good']} / {r['failed']} | "
                  f"{r['recover_s']:.2f} s | {r['peak_mb']:.0f} MB | {r['note']} |")
        elif "peak_mb" in r:
            print(f"| {r['case']} | | | | | {r['peak_mb']:.0f} MB (+{r['grew_mb']:.0f}) | {r['note']} |")
        else:
            start = f"{r['start_s']:.1f} s" if r["start_s"] is not None else f"> {r['timeout']:.0f} s"
            print(f"| {r['case']} | start delay {start} | | | | | {r['note']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
