"""Load on one machine: N create jobs submitted at once (small synthetic media) to `beatsync serve`.
Every job must end in exactly one terminal state; none lost, none duplicated. Prints submit
latency percentiles and the time until the last job ended.

    python benchmarks/load.py [--jobs 50] [--workers 2] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

API = "/api/v1/beat-sync"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run_load(jobs: int = 50, workers: int = 2, concurrency: int = 50, timeout: float = 600.0) -> dict:
    import httpx

    from tests.media import make_media
    from tests.servers import Serve, media_server, wait_for

    tmp = Path(tempfile.mkdtemp(prefix="beatsync-load-"))
    (tmp / "media").mkdir()
    media = media_server(make_media(tmp / "media"))
    serve = Serve(tmp / "data", {"BEATSYNC_ALLOWED_HOSTS": media.host, "BEATSYNC_ANALYSIS_METHOD": "librosa",
                                 "BEATSYNC_WORKERS": str(workers), "BEATSYNC_MAX_ACTIVE_JOBS": str(jobs * 2),
                                 "BEATSYNC_MAX_SUBMISSIONS_PER_MINUTE": str(jobs * 2),
                                 "BEATSYNC_CALLER_MAX_ACTIVE_JOBS": str(jobs * 2),
                                 "BEATSYNC_CALLER_MAX_SUBMISSIONS_PER_MINUTE": str(jobs * 2)})
    body = {"audio_url": f"{media.url}/song.wav", "video_urls": [f"{media.url}/a.mp4", f"{media.url}/b.mp4"],
            "preset": "fast_cuts", "preview_only": True, "preview_duration": 5,
            "config": {"output_resolution": [160, 96]}}
    try:
        def submit(i: int):
            t = time.perf_counter()
            r = httpx.post(f"{serve.url}{API}/create", json=body, headers={"Idempotency-Key": f"load-{i}"}, timeout=60)
            return time.perf_counter() - t, r.status_code, r.json().get("job_id")

        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            results = list(pool.map(submit, range(jobs)))
        latencies = [r[0] for r in results]
        accepted = [r[2] for r in results if r[1] == 202]

        def all_ended():
            page = httpx.get(f"{serve.url}{API}/jobs?limit=100", timeout=30).json()
            done = [j for j in page["jobs"] if j["status"] in ("completed", "failed", "cancelled")]
            return page if len(done) == page["total"] == len(accepted) else None

        page = wait_for(all_ended, timeout=timeout, interval=0.5)
        elapsed = time.perf_counter() - started
        statuses = [j["status"] for j in page["jobs"]]
        outputs = sum(1 for jid in accepted
                      if (tmp / "data" / "blobs" / "outputs" / jid / "preview.mp4").is_file())
        ends = []
        for jid in accepted:
            logs = httpx.get(f"{serve.url}{API}/jobs/{jid}/logs", timeout=30).json()["logs"]
            ends.append(sum(e["message"].startswith("job ") for e in logs))
        return {
            "submitted": jobs, "accepted": len(accepted), "distinct_ids": len(set(accepted)),
            "listed": page["total"], "terminal": len(statuses), "completed": statuses.count("completed"),
            "failed": statuses.count("failed"), "lost": len(set(accepted)) - len(statuses),
            "outcomes_per_job": sorted(set(ends)), "outputs": outputs,
            "p50_ms": 1000 * statistics.median(latencies), "p95_ms": 1000 * _pct(latencies, 0.95),
            "max_ms": 1000 * max(latencies), "all_done_s": elapsed, "workers": workers,
        }
    finally:
        serve.stop()
        media.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=50)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--concurrency", type=int, default=50)
    args = p.parse_args()
    s = run_load(args.jobs, args.workers, args.concurrency)
    print("| jobs | accepted | terminal | completed | lost | outcomes/job | submit p50 | submit p95 | max | all done |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {s['submitted']} | {s['accepted']} | {s['terminal']} | {s['completed']} | {s['lost']} | "
          f"{s['outcomes_per_job']} | {s['p50_ms']:.0f} ms | {s['p95_ms']:.0f} ms | {s['max_ms']:.0f} ms | "
          f"{s['all_done_s']:.1f} s ({s['workers']} workers) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
