"""How fast a cancel takes effect on `beatsync serve`: a 1080p render of the sample song and clips is
cancelled once it is past 40 %; prints the seconds until the job reads `cancelled` and until the
server's CPU falls idle (the render stopped). The tests only check that a cancel ends the job
cancelled with no output (bounds with a wide margin); the speed is measured here.

    python benchmarks/cancel_latency.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

API = "/api/v1/beat-sync"


def _idle(proc, quiet: float = 0.2, window: float = 0.5) -> bool:
    """True when the process tree used under ``quiet`` of a core over ``window`` seconds."""
    import psutil

    tree = [proc, *proc.children(recursive=True)]
    before = sum(p.cpu_times().user + p.cpu_times().system for p in tree if p.is_running())
    time.sleep(window)
    after = sum(p.cpu_times().user + p.cpu_times().system for p in tree if p.is_running())
    return (after - before) / window < quiet


def measure(repeat: int = 3) -> list[dict]:
    import httpx
    import psutil

    from tests.servers import Serve, media_server, wait_for

    examples = media_server(ROOT / "examples")
    tmp = Path(tempfile.mkdtemp(prefix="beatsync-cancel-"))
    serve = Serve(tmp / "data", {"BEATSYNC_ALLOWED_HOSTS": examples.host, "BEATSYNC_ANALYSIS_METHOD": "librosa"})
    body = {"audio_url": f"{examples.url}/lets_go_fishin_excerpt.opus", "preset": "cinematic",
            "video_urls": [f"{examples.url}/{n}" for n in ("bottles.mp4", "cars.mp4", "people.mp4")],
            "config": {"output_resolution": [1920, 1080]}}
    runs = []
    try:
        proc = psutil.Process(serve.proc.pid)
        for _ in range(repeat):
            r = httpx.post(f"{serve.url}{API}/create", json=body, timeout=30)
            job_id = r.json()["job_id"]
            wait_for(lambda: serve.job(job_id)["progress"] > 40, timeout=600, interval=0.1)
            t = time.monotonic()
            httpx.delete(f"{serve.url}{API}/create/{job_id}", timeout=30).raise_for_status()
            wait_for(lambda: serve.job(job_id)["status"] == "cancelled", timeout=600, interval=0.05)
            to_status = time.monotonic() - t
            wait_for(lambda: _idle(proc), timeout=600, interval=0.0)
            runs.append({"status_s": to_status, "stopped_s": time.monotonic() - t - 0.5})  # less the idle window
    finally:
        serve.stop()
        examples.close()
    return runs


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    runs = measure(p.parse_args().repeat)
    print("| runs | to `cancelled` median | max | render stopped median | max |")
    print("|---|---|---|---|---|")
    s, r = [x["status_s"] for x in runs], [x["stopped_s"] for x in runs]
    print(f"| {len(runs)} | {statistics.median(s):.2f} s | {max(s):.2f} s | {statistics.median(r):.2f} s | "
          f"{max(r):.2f} s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
