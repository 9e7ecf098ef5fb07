"""Soak: ~200 small jobs from 3 callers, a third of them hostile (sources that dribble their headers,
bad media, webhook receivers that dribble their answers), the server killed with SIGKILL twice and
restarted. Every job ends exactly once, every good job completes, the good callers' webhooks are all
delivered, and after the retention sweep the data folder's blobs are back to their baseline.

Bounded: SOAK_JOBS jobs (default 126; 198 for the figures in docs/security.md), about 2 minutes on an idle
2-core machine; prints its numbers."""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
import uuid

import httpx

from tests.servers import API, Serve, hostile_receiver, media_server, wait_for, webhook_receiver

JOBS = int(os.environ.get("SOAK_JOBS", "126"))
KEYS = {"alice": "key-alice", "bob": "key-bob", "mallory": "key-mallory"}
TERMINAL = ("completed", "failed", "cancelled")


def _size(path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def _blobs_size(data, exclude=("cache",)) -> int:
    root = data / "blobs"
    if not root.is_dir():
        return 0
    return sum(_size(p) if p.is_dir() else p.stat().st_size for p in root.iterdir() if p.name not in exclude)


def test_soak(tmp_path, media):
    receiver, dribble = webhook_receiver(), hostile_receiver("dribble")
    hosts = ",".join([media.host, receiver.host, dribble.host])
    data = tmp_path / "data"
    env = {"BEATSYNC_ALLOWED_HOSTS": hosts, "BEATSYNC_ANALYSIS_METHOD": "librosa", "BEATSYNC_FETCH_TIMEOUT": "3",
           "BEATSYNC_WEBHOOK_TIMEOUT": "2", "BEATSYNC_WORKERS": "2", "BEATSYNC_SYNC_WAIT": "0",
           "BEATSYNC_API_KEYS": ",".join(KEYS.values()), "BEATSYNC_MAX_ACTIVE_JOBS": "1000",
           "BEATSYNC_MAX_SUBMISSIONS_PER_MINUTE": "1000", "BEATSYNC_CALLER_MAX_ACTIVE_JOBS": "1000",
           "BEATSYNC_CALLER_MAX_SUBMISSIONS_PER_MINUTE": "1000", "BEATSYNC_SWEEP_INTERVAL": "2",
           "BEATSYNC_MIN_FREE_BYTES": "0"}
    serve = Serve(data, env)
    baseline = _blobs_size(data)
    plan = []  # (caller, kind, body, good)
    for i in range(JOBS):
        caller = ("alice", "bob", "mallory")[i % 3]
        if caller != "mallory":
            hook = f"{receiver.url}/{caller}"
            if i % 9 < 3:  # a third small renders (with webhooks), the rest analyses (no webhook in that API)
                plan.append((caller, "create", {"audio_url": f"{media.url}/song.wav", "video_urls": [
                    f"{media.url}/a.mp4", f"{media.url}/b.mp4"], "preset": "fast_cuts", "preview_only": True,
                    "preview_duration": 5, "config": {"output_resolution": [160, 96]}, "webhook_url": hook}, True))
            else:
                plan.append((caller, "analyze", {"audio_url": f"{media.url}/song.wav"}, True))
        else:
            source = (f"{media.url}/slow-headers", f"{media.url}/bad.mp4", f"{media.url}/song.wav")[i % 9 // 3]
            plan.append((caller, "create", {"audio_url": source, "video_urls": [f"{media.url}/a.mp4"],
                                            "preview_only": True, "preview_duration": 5,
                                            "config": {"output_resolution": [160, 96]},
                                            "webhook_url": f"{dribble.url}/m"}, False))
    jobs: dict[str, dict] = {}
    latencies: list[float] = []
    kills = {JOBS // 3, 2 * JOBS // 3}
    stop_polling = threading.Event()
    seen: dict[str, tuple[float, float]] = {}  # job id -> (last progress change, progress)
    stalls: dict[str, float] = {}

    def poll():
        while not stop_polling.is_set():
            for job_id, j in list(jobs.items()):
                if j.get("final") or not j["good"]:
                    continue
                try:
                    r = httpx.get(f"{serve.url}{API}/{j['kind']}/{job_id}", headers=j["auth"], timeout=5)
                except httpx.HTTPError:
                    continue  # the server is down for a moment
                doc = r.json()
                t = time.monotonic()
                last, progress = seen.get(job_id, (j["submitted"], -1.0))
                if doc["progress"] != progress or doc["status"] in TERMINAL:
                    stalls[job_id] = max(stalls.get(job_id, 0.0), t - last)
                    seen[job_id] = (t, doc["progress"])
                if doc["status"] in TERMINAL:
                    j["final"], j["ended"] = doc, t
            time.sleep(0.5)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    t0 = time.monotonic()
    for n, (caller, kind, body, good) in enumerate(plan):
        if n in kills:
            serve.kill9()
            serve.start()
        auth = {"Authorization": f"Bearer {KEYS[caller]}", "Idempotency-Key": uuid.uuid4().hex}
        for _ in range(20):  # a submit that meets the restart is sent again: the key makes it once
            t = time.monotonic()
            try:
                r = httpx.post(f"{serve.url}{API}/{kind}", json=body, headers=auth, timeout=30)
            except httpx.HTTPError:
                time.sleep(0.5)
                continue
            latencies.append(time.monotonic() - t)
            break
        assert r.status_code in (200, 202), r.text
        jobs[r.json()["job_id"]] = {"caller": caller, "kind": kind, "good": good, "auth": {
            "Authorization": auth["Authorization"]}, "submitted": time.monotonic()}
        time.sleep(0.05)

    def all_ended():
        for job_id, j in jobs.items():
            if "final" not in j:
                doc = httpx.get(f"{serve.url}{API}/{j['kind']}/{job_id}", headers=j["auth"], timeout=10).json()
                if doc["status"] not in TERMINAL:
                    return False
                j["final"], j["ended"] = doc, time.monotonic()
        return True

    wait_for(all_ended, timeout=600, interval=1)
    stop_polling.set()
    good_ids = {j_id for j_id, j in jobs.items() if j["good"]}
    hooked = {j_id for j_id in good_ids if jobs[j_id]["kind"] == "create"}
    wait_for(lambda: hooked <= {e["json"]["job_id"] for e in receiver.received}, timeout=60)
    elapsed = time.monotonic() - t0
    serve.stop()
    # the sweep, with the outputs' retention at 0 days, takes the data folder back to its baseline
    serve.env.update({"BEATSYNC_RETENTION_OUTPUTS_DAYS": "0"})
    serve.start()
    before = _blobs_size(data)
    try:
        after = wait_for(lambda: (lambda s: s if s <= baseline else None)(_blobs_size(data)), timeout=30)
    except TimeoutError:
        after = _blobs_size(data)
    serve.stop()

    outcomes: dict[str, int] = {}
    for j in jobs.values():
        key = f"{j['caller']}:{j['final']['status']}"
        outcomes[key] = outcomes.get(key, 0) + 1
    ends: dict[str, int] = {}
    for line in (tmp_path / "serve.log").read_text(errors="replace").splitlines():
        if line.startswith("{") and '"job.end"' in line:
            ends[json.loads(line)["job_id"]] = ends.get(json.loads(line)["job_id"], 0) + 1
    events: dict[str, set] = {}
    for e in receiver.received:
        events.setdefault(e["json"]["job_id"], set()).add(e["json"]["id"])
    good_turnaround = [jobs[j]["ended"] - jobs[j]["submitted"] for j in good_ids]
    latencies.sort()
    print(f"\nsoak: {len(jobs)} jobs in {elapsed:.0f} s, 2 SIGKILL restarts; outcomes {dict(sorted(outcomes.items()))}")
    print(f"submit latency p50 {statistics.median(latencies) * 1000:.0f} ms, "
          f"p95 {latencies[int(0.95 * (len(latencies) - 1))] * 1000:.0f} ms; longest stall of a good job (no "
          f"progress change) {max(stalls.values(), default=0):.1f} s; longest good turnaround "
          f"{max(good_turnaround):.1f} s")
    print(f"blobs (without cache/): baseline {baseline} B, after the jobs {before} B, after the sweep {after} B; "
          f"webhooks to good callers {len(receiver.received)} deliveries for {len(events)} of {len(hooked)} jobs")
    assert len(jobs) == JOBS
    assert all(ends.get(j) == 1 for j in jobs), {j: ends.get(j) for j in jobs if ends.get(j) != 1}
    assert all(jobs[j]["final"]["status"] == "completed" for j in good_ids), outcomes
    assert all(len(events.get(j, ())) == 1 for j in hooked)  # one event per job (re-sent at most, same id)
    assert after <= baseline
    receiver.close()
    dribble.close()
