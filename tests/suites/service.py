"""The job service interface suite: submit, steps, cancel, webhooks, idempotency, ownership.

Run over every adapter set, like the port suites: tests/unit/test_service_local.py (SQLite + a
local folder) and tests/integration/test_service_cloud.py (the Firestore emulator +
fake-gcs-server). A module provides fixtures ``container`` (with a RecordingOrchestrator), ``media``
(a media server with song.wav, a.mp4, b.mp4, bad.mp4) and ``receiver`` (a webhook receiver), and
``fetch_url(container, url)`` returning the bytes behind a signed URL.
"""

from __future__ import annotations

import json

import pytest

from beatsync import keys
from beatsync.jobs import service, steps
from beatsync.ports import JobNotFound, Orchestrator
from beatsync.signing import SIGNATURE_HEADER, verify_event
from tests.servers import wait_for


class RecordingOrchestrator(Orchestrator):
    """Records what the service asks for; the tests run the steps themselves, in order."""

    def __init__(self):
        self.started, self.cancelled = [], []

    def start(self, job):
        self.started.append(job.job_id)
        return f"recorded/{job.job_id}"

    def cancel(self, job):
        self.cancelled.append(job.job_id)


def create_body(media, receiver=None, **extra):
    body = {"audio_url": f"{media.url}/song.wav", "video_urls": [f"{media.url}/a.mp4", f"{media.url}/b.mp4"],
            "preset": "fast_cuts", "config": {"output_resolution": [160, 96], "transition_style": "fade",
                                              "transition_duration": 0.1}, "method": "librosa"}
    if receiver is not None:
        body["webhook_url"] = f"{receiver.url}/hook"
    body.update(extra)
    return body


def test_a_silent_song_is_cut_on_a_steady_grid_and_the_job_says_so(container, media):
    """All-zero audio: the job completes, cut every 0.5 s (fast_cuts: every beat of a steady 120 BPM
    grid), with warning ``no_beats`` in its status."""
    body = create_body(media, audio_url=f"{media.url}/silence.wav")
    body["config"]["transition_style"] = "cut"
    job, _ = service.submit_create(container, body, "alice")
    assert steps.run_analyze(container, job.job_id)["status"] == "processing"
    assert steps.run_compose(container, job.job_id)["status"] == "completed"
    view = service.get_job(container, job.job_id, "alice", "create")
    assert view["beat_map"]["tempo"] == 0 and view["total_cuts"] == 15  # 8 s: a cut every 0.5 s
    (warning,) = [w for w in view["warnings"] if w["code"] == "no_beats"]
    assert "every_beat every 0.5 s" in warning["message"]


def _deliver(container, receiver, n):
    wait_for(lambda: len(receiver.received) >= n, timeout=30)
    return receiver.received


def test_create_job_runs_through_both_steps(container, media, receiver, fetch_url, monkeypatch):
    from beatsync.jobs.model import seed_step

    seen = []  # the seed-level step of every progress write, as a status read would show it
    report = container.jobs.report

    def recording_report(job_id, pct, step):
        job = report(job_id, pct, step)
        seen.append((seed_step(job), job.current_step))
        return job

    monkeypatch.setattr(container.jobs, "report", recording_report)
    body = create_body(media, receiver)
    body["config"]["transition_duration"] = 0  # a fade of 0 s: hard cuts, and a warning says so
    job, created = service.submit_create(container, body, "alice")
    assert created and job.status == "queued" and container.orchestrator.started == [job.job_id]
    assert container.jobs.get(job.job_id).execution == f"recorded/{job.job_id}"
    accepted = service.accepted_view(container, job)
    assert accepted["status"] == "queued" and accepted["estimated_duration"] > 0 and accepted["queue_position"] >= 0

    out = steps.run_analyze(container, job.job_id)
    assert out["status"] == "processing" and out["done"]
    assert container.blobs.exists(f"outputs/{job.job_id}/beat_map.json")
    assert container.blobs.list(f"inputs/video/{job.job_id}/") == [f"inputs/video/{job.job_id}/clip_0.mp4",
                                                                    f"inputs/video/{job.job_id}/clip_1.mp4"]
    assert any(k.startswith("cache/beat_maps/") for k in container.blobs.list("cache/"))

    out = steps.run_compose(container, job.job_id)
    assert out["status"] == "completed"
    view = service.get_job(container, job.job_id, "alice", "create")
    assert view["progress"] == 100 and view["total_cuts"] > 0 and view["file_size"] > 0
    assert view["beat_map"]["tempo"] == pytest.approx(120, abs=2)
    assert view["result"]["output_url"] == view["output_url"] and view["expires_at"]
    video = fetch_url(container, view["output_url"])
    assert len(video) == view["file_size"] and video[4:8] == b"ftyp"
    assert fetch_url(container, view["thumbnail_url"])[:2] == b"\xff\xd8"
    # the seed's steps, in the seed's order, each seen; the project's finer steps beside them
    order = ["downloading", "analyzing", "composing", "uploading"]
    steps_seen = [s for s, _ in seen]
    assert [s for i, s in enumerate(steps_seen) if i == 0 or s != steps_seen[i - 1]] == order, seen
    assert {"checking", "analyzing", "render", "uploading"} <= {d for _, d in seen}
    assert view["current_step"] == view["step_detail"] == "completed"
    # the job list carries the seed's output_url: a working signed link to the same file
    (summary,) = service.list_jobs(container, "alice", None, None, 20, 0)["jobs"]
    assert summary["output_url"] and summary["current_step"] == "completed"
    assert summary["output_url"].split("?")[0] == view["output_url"].split("?")[0]
    assert fetch_url(container, summary["output_url"]) == video
    keys = set(container.blobs.list(f"outputs/{job.job_id}/"))
    assert {f"outputs/{job.job_id}/{n}" for n in ("output.mp4", "thumbnail.jpg", "beat_map.json", "edl.json",
                                                  "edit.otio", "result.json")} == keys
    import opentimelineio as otio

    timeline = otio.adapters.read_from_string(fetch_url(container, view["result"]["otio_url"]).decode(), "otio_json")
    clip_urls = {c.media_reference.target_url for c in timeline.video_tracks()[0].find_clips()}
    assert clip_urls <= set(body["video_urls"])  # the creator's own inputs
    edl = json.loads(fetch_url(container, view["result"]["edl_url"]))
    assert view["warnings"] == view["result"]["warnings"] == edl["warnings"]
    assert "transition_is_cut" in [w["code"] for w in view["warnings"]], view["warnings"]

    (event,) = _deliver(container, receiver, 1)
    assert event["json"]["event"] == "beat_sync.job.completed" and event["json"]["job_id"] == job.job_id
    secret = container.settings.secret("webhook_secret")
    assert verify_event(secret, event["body"], event["headers"][SIGNATURE_HEADER])
    assert not verify_event(b"wrong", event["body"], event["headers"][SIGNATURE_HEADER])

    # a retried call of either step changes nothing
    assert steps.run_analyze(container, job.job_id)["status"] == "completed"
    assert steps.run_compose(container, job.job_id)["status"] == "completed"
    logs = [e["message"] for e in container.jobs.logs(job.job_id)]
    assert sum(m.startswith("rendered") for m in logs) == 1


def test_a_one_task_compose_renders_the_plan_the_analysis_stored(container, media, fetch_url, monkeypatch):
    """The edit is planned once, in the analyze step: the compose step renders temp/{id}/plan.json as
    stored (here, a plan edited after the analysis shows through), and never plans again."""
    from beatsync import keys
    from beatsync.render import pipeline

    body = create_body(media)
    body["config"]["transition_duration"] = 0  # hard cuts: the planner warns transition_is_cut
    job, _ = service.submit_create(container, body, "alice")
    assert steps.run_analyze(container, job.job_id)["done"]
    plan = json.loads(container.blobs.get_bytes(keys.plan(job.job_id)))
    assert plan["tasks"] == 1 and "transition_is_cut" in [w["code"] for w in plan["edl"]["warnings"]]
    plan["edl"]["warnings"] = []
    container.blobs.put_bytes(keys.plan(job.job_id), json.dumps(plan).encode(), "application/json")

    def planned_again(*args, **kwargs):
        raise AssertionError("the compose step planned the edit again")

    monkeypatch.setattr(pipeline, "plan_edit", planned_again)
    assert steps.run_compose(container, job.job_id)["status"] == "completed"
    view = service.get_job(container, job.job_id, "alice", "create")
    assert view["warnings"] == [] and json.loads(fetch_url(container, view["result"]["edl_url"]))["warnings"] == []
    assert view["total_cuts"] == len(plan["edl"]["shots"]) - 1


class Killed(BaseException):
    """Stands in for the process dying (not an Exception: no handler in the step sees it)."""


def test_a_compose_attempt_that_dies_after_uploading_is_finished_without_a_second_render(
        container, media, monkeypatch):
    job, _ = service.submit_create(container, create_body(media), "alice")
    steps.run_analyze(container, job.job_id)
    real_end = steps.end_job

    def die(c, job_id, status, **kw):
        raise Killed()

    monkeypatch.setattr(steps, "end_job", die)
    with pytest.raises(Killed):
        steps.run_compose(container, job.job_id)
    monkeypatch.setattr(steps, "end_job", real_end)
    assert container.jobs.get(job.job_id).status == "processing"
    assert steps.run_compose(container, job.job_id)["status"] == "completed"
    logs = [e["message"] for e in container.jobs.logs(job.job_id)]
    assert sum(m.startswith("rendered") for m in logs) == 1
    assert len([k for k in container.blobs.list(f"outputs/{job.job_id}/") if k.endswith(".mp4")]) == 1


def _an_end_cut_short(container, media, receiver, at="_clean_up"):
    """A job whose end was cut short (the process killed after the terminal status, in the step of
    :mod:`beatsync.jobs.lifecycle` named ``at``): the job is ended with ``end_pending`` set."""
    from beatsync.jobs import lifecycle

    job, _ = service.submit_create(container, create_body(media, receiver), "alice")
    real = getattr(lifecycle, at)

    def die(c, j):
        raise Killed()

    setattr(lifecycle, at, die)
    try:
        with pytest.raises(Killed):
            lifecycle.end_job(container, job.job_id, "failed", error={"code": "internal_error", "message": "x"})
    finally:
        setattr(lifecycle, at, real)
    return job


def test_an_end_cut_short_by_a_crash_is_finished_at_start_up(container, media, receiver, caplog):
    """The process dies between the terminal write and what follows it (audit line, webhook): the job
    stays flagged, and the next start-up finishes it: one job.end line, one webhook event (its id is
    the job's and status's, so a re-sent event is the same event)."""
    import logging

    from beatsync.jobs import lifecycle

    job = _an_end_cut_short(container, media, receiver)
    ended = container.jobs.get(job.job_id)
    assert ended.status == "failed" and ended.end_pending
    assert job.job_id in {j.job_id for j in container.jobs.pending_ends()}
    caplog.set_level(logging.INFO)
    audit_log = logging.getLogger("beatsync.audit")  # its own stderr handler, not propagated: watched here
    audit_log.addHandler(caplog.handler)
    try:
        assert lifecycle.finish_pending_ends(container) >= 1
    finally:
        audit_log.removeHandler(caplog.handler)
    assert not container.jobs.get(job.job_id).end_pending
    assert job.job_id not in {j.job_id for j in container.jobs.pending_ends()}  # a second start-up: nothing again
    ends = [r for r in caplog.records if '"job.end"' in r.getMessage() and job.job_id in r.getMessage()]
    assert len(ends) == 1
    (event,) = _deliver(container, receiver, 1)
    assert event["json"]["job_id"] == job.job_id and event["json"]["status"] == "failed"
    assert lifecycle.new_event(container, ended)["id"] == event["json"]["id"]  # the same event if re-sent


def test_an_end_killed_after_its_last_effect_writes_one_job_end_line(container, media, receiver, caplog):
    """The soak test's SIGKILL fell after the job.end line and before the end was recorded done, and
    the restart wrote a second line (the log-based metrics count them). The line is written after the
    flag is cleared: one line across the crashed end and the one finished at start-up."""
    import logging

    from beatsync.jobs import lifecycle

    caplog.set_level(logging.INFO)
    audit_log = logging.getLogger("beatsync.audit")
    audit_log.addHandler(caplog.handler)
    try:
        job = _an_end_cut_short(container, media, receiver, at="_notify")
        assert container.jobs.get(job.job_id).end_pending
        assert lifecycle.finish_pending_ends(container) >= 1
    finally:
        audit_log.removeHandler(caplog.handler)
    assert not container.jobs.get(job.job_id).end_pending
    ends = [r for r in caplog.records if '"job.end"' in r.getMessage() and job.job_id in r.getMessage()]
    assert len(ends) == 1


def test_the_scheduled_sweep_finishes_ends_left_pending_through_its_route(container, media, receiver):
    """The cloud's sweep (Cloud Scheduler -> the analyze service's POST /internal/sweep): an end cut
    short by a killed instance is finished once it is older than the threshold, never before (the
    process that ended it may still be finishing); a second sweep finds nothing."""
    import functions_framework

    from beatsync.http import set_container
    from beatsync.jobs import lifecycle
    from tests.conftest import ROOT

    job = _an_end_cut_short(container, media, receiver)
    assert container.jobs.get(job.job_id).end_pending
    analyze = functions_framework.create_app(target="analyze", source=str(ROOT / "functions" / "analyze" / "main.py"))
    client = analyze.test_client()
    set_container(container)
    try:
        young = client.post("/internal/sweep", json={"older_than_seconds": 3600})
        assert young.status_code == 200 and young.json["younger"] >= 1 and young.json["finished"] == 0, young.json
        assert container.jobs.get(job.job_id).end_pending and receiver.received == []
        for bad in ({"older_than_seconds": -1}, {"older_than_seconds": "soon"}, [1]):
            r = client.post("/internal/sweep", json=bad)
            assert (r.status_code, r.json["error"]["code"]) == (400, "invalid_request"), bad
        done = client.post("/internal/sweep", json={"older_than_seconds": 0})
        assert done.status_code == 200 and done.json["finished"] >= 1 and done.json["failed"] == 0, done.json
        assert not container.jobs.get(job.job_id).end_pending
        assert job.job_id not in {j.job_id for j in container.jobs.pending_ends()}
        (event,) = _deliver(container, receiver, 1)
        assert event["json"]["job_id"] == job.job_id and event["json"]["status"] == "failed"
        again = client.post("/internal/sweep", json={"older_than_seconds": 0}).json
        assert again["finished"] == 0
    finally:
        set_container(None)


def test_analyze_job_completes_with_a_beat_map(container, media):
    job, _ = service.submit_analyze(container, {"audio_url": f"{media.url}/song.wav", "method": "librosa",
                                                "fps": 25}, "bob")
    steps.run_analyze(container, job.job_id)
    view = service.get_job(container, job.job_id, "bob", "analyze")
    assert view["status"] == "completed" and view["beat_map"]["fps"] == 25
    assert len(view["beat_map"]["beats"]) >= 10
    with pytest.raises(JobNotFound):
        service.get_job(container, job.job_id, "bob", "create")  # wrong type: not found


def test_upload_is_stored_by_content_and_analysed(container, media):
    data = (media.root / "song.wav").read_bytes()
    job, _ = service.submit_analyze(container, {"method": "librosa"}, "bob", upload=("my song.wav", data))
    assert container.blobs.get_bytes(job.request["audio_key"]) == data
    steps.run_analyze(container, job.job_id)
    assert container.jobs.get(job.job_id).status == "completed"


def test_cancel_of_a_queued_job_ends_it_at_once(container, media, receiver):
    job, _ = service.submit_create(container, create_body(media, receiver), "alice")
    answer = service.cancel(container, job.job_id, "alice")
    assert answer == {"success": True, "message": "job cancelled", "job_id": job.job_id, "status": "cancelled"}
    assert container.orchestrator.cancelled == [job.job_id]
    assert steps.run_analyze(container, job.job_id)["status"] == "cancelled"  # a late step does nothing
    (event,) = _deliver(container, receiver, 1)
    assert event["json"]["event"] == "beat_sync.job.cancelled"
    with pytest.raises(service.JobAlreadyEnded):
        service.cancel(container, job.job_id, "alice")


def test_cancel_during_compose_stops_the_render_and_leaves_no_output(container, media, receiver, monkeypatch):
    job, _ = service.submit_create(container, create_body(media, receiver), "alice")
    steps.run_analyze(container, job.job_id)
    monkeypatch.setattr(steps, "CANCEL_POLL", 0.0)
    report = steps._Reporter.__call__
    seen = []

    def cancel_midway(self, pct, step):  # the caller cancels while frames are being encoded
        report(self, pct, step)
        seen.append(pct)
        if pct > 40 and not container.jobs.get(job.job_id).cancel_requested:
            service.cancel(container, job.job_id, "alice")

    monkeypatch.setattr(steps._Reporter, "__call__", cancel_midway)
    monkeypatch.setattr(steps, "REPORT_EVERY", 0.0)
    assert steps.run_compose(container, job.job_id)["status"] == "cancelled"
    assert max(seen) < 97  # it stopped before uploading
    assert container.blobs.list(f"outputs/{job.job_id}/") == []
    (event,) = _deliver(container, receiver, 1)
    assert event["json"]["status"] == "cancelled"


def test_stopping_compose_after_a_cancel_removes_what_a_task_wrote_in_between(container, media):
    """A cancel ends the job at once (its temp/ objects removed); a task still rendering may report
    progress before the workflow stops the execution: the stop removes what it wrote."""
    job, _ = service.submit_create(container, create_body(media), "alice")
    steps.run_analyze(container, job.job_id)
    service.cancel(container, job.job_id, "alice")
    assert container.jobs.get(job.job_id).status == "cancelled"
    late = keys.task_progress(job.job_id, 3, 0)
    container.blobs.put_bytes(late, b'{"frames": 10, "total": 100}', "application/json")
    assert steps.compose_stop(container, job.job_id, "recorded/none")["status"] == "cancelled"
    assert container.blobs.list(keys.temp(job.job_id)) == []


def test_bad_media_fails_the_job_with_its_code(container, media, receiver):
    job, _ = service.submit_create(container, create_body(media, receiver, video_urls=[f"{media.url}/bad.mp4"]),
                                   "alice")
    out = steps.run_analyze(container, job.job_id)
    assert out["status"] == "failed" and out["error"]["code"] == "unsupported_media"
    assert steps.run_compose(container, job.job_id)["status"] == "failed"
    (event,) = _deliver(container, receiver, 1)
    assert event["json"]["event"] == "beat_sync.job.failed"
    assert event["json"]["data"]["error"]["code"] == "unsupported_media"


def test_a_media_error_names_the_url_the_caller_sent(container, media):
    """Not the job's local copy (``audio.txt``, ``clip_1.mp4``): the URL as sent, less its query string."""
    (media.root / "notes.txt").write_text("these are my notes, not a song")
    bad_clip = create_body(media, video_urls=[f"{media.url}/a.mp4", f"{media.url}/bad.mp4?sig=SECRET"])
    song = create_body(media, audio_url=f"{media.url}/notes.txt")
    messages = []
    for body in (bad_clip, song):
        job, _ = service.submit_create(container, body, "alice")
        out = steps.run_analyze(container, job.job_id)
        assert out["status"] == "failed" and out["error"]["code"] == "unsupported_media", out
        assert container.jobs.get(job.job_id).error.message == out["error"]["message"]
        messages.append(out["error"]["message"])
    assert messages[0].startswith(f"clip {media.url}/bad.mp4?…: not a video file"), messages
    assert messages[1].startswith(f"{media.url}/notes.txt: not an audio or video file"), messages
    for m in messages:
        assert "SECRET" not in m and "clip_1" not in m and "audio.txt" not in m


def test_a_missing_source_fails_the_job(container, media):
    job, _ = service.submit_create(container, create_body(media, video_urls=[f"{media.url}/nope.mp4"]), "alice")
    assert steps.run_analyze(container, job.job_id)["error"]["code"] == "source_not_found"


def test_idempotency_key_returns_the_same_job_or_conflicts(container, media):
    body = create_body(media)
    a, created_a = service.submit_create(container, body, "alice", "key-1")
    b, created_b = service.submit_create(container, body, "alice", "key-1")
    assert created_a and not created_b and a.job_id == b.job_id
    assert container.orchestrator.started == [a.job_id]
    with pytest.raises(service.IdempotencyConflict) as info:
        service.submit_create(container, {**body, "preset": "cinematic"}, "alice", "key-1")
    assert info.value.http_status == 409


def test_jobs_belong_to_their_caller(container, media):
    job, _ = service.submit_create(container, create_body(media), "alice")
    for call in (lambda: service.get_job(container, job.job_id, "mallory", "create"),
                 lambda: service.cancel(container, job.job_id, "mallory"),
                 lambda: service.job_logs(container, job.job_id, "mallory")):
        with pytest.raises(JobNotFound):
            call()
    assert service.list_jobs(container, "mallory", None, None, 20, 0)["total"] == 0
    listing = service.list_jobs(container, "alice", "queued", "create", 1, 0)
    assert listing["jobs"][0]["video_count"] == 2 and listing["limit"] == 1


def test_cancel_between_steps_ends_the_job_at_once(container, media, receiver):
    # the orchestration may be stopped between two steps (a cancelled Workflows execution): the job
    # must not stay processing, and nothing of it may stay in the bucket
    job, _ = service.submit_create(container, create_body(media, receiver), "alice")
    steps.run_analyze(container, job.job_id)
    assert container.blobs.exists(f"outputs/{job.job_id}/beat_map.json")
    answer = service.cancel(container, job.job_id, "alice")
    assert answer["status"] == "cancelled" and container.jobs.get(job.job_id).status == "cancelled"
    assert container.blobs.list(f"outputs/{job.job_id}/") == []
    assert steps.run_compose(container, job.job_id)["status"] == "cancelled"
    assert container.blobs.list(f"outputs/{job.job_id}/") == []
    (event,) = _deliver(container, receiver, 1)
    assert event["json"]["event"] == "beat_sync.job.cancelled"


def test_cancel_during_a_slow_download_frees_the_worker_at_once(container, media):
    """A source that dribbles its headers: cancelling the job abandons the fetch within a second or two
    (the fetch watches the cancel flag), however long the fetch timeout."""
    import threading
    import time

    body = create_body(media, video_urls=[f"{media.url}/slow-headers"])
    job, _ = service.submit_create(container, body, "alice")
    worker = threading.Thread(target=steps.run_analyze, args=(container, job.job_id), daemon=True)
    worker.start()
    wait_for(lambda: container.jobs.get(job.job_id).status == "processing", timeout=30)
    time.sleep(0.5)
    service.cancel(container, job.job_id, "alice")
    t = time.monotonic()
    worker.join(30)
    assert not worker.is_alive() and time.monotonic() - t < 30  # not the fetch's timeout (60 s or more)
    assert container.jobs.get(job.job_id).status == "cancelled"


def test_metrics_are_recorded_shown_and_counted_once_in_the_daily_analytics(container, media):
    job, _ = service.submit_create(container, create_body(media), "alice")
    steps.run_analyze(container, job.job_id)
    steps.run_compose(container, job.job_id)
    view = service.get_job(container, job.job_id, "alice", "create")
    m = view["metrics"]
    assert view["status"] == "completed" and m["beat_map_cached"] is False
    for name in ("download_time_ms", "analysis_time_ms", "composition_time_ms", "processing_time_ms"):
        assert isinstance(m[name], int) and m[name] >= 0, name
    assert m["composition_time_ms"] > 0 and m["processing_time_ms"] >= m["composition_time_ms"]
    sizes = sum(len(media.root.joinpath(n).read_bytes()) for n in ("song.wav", "a.mp4", "b.mp4"))
    assert m["bytes_in"] == sizes
    outputs = [k for k in container.blobs.list(f"outputs/{job.job_id}/") if not k.endswith("result.json")]
    assert m["bytes_out"] == sum(container.blobs.size(k) for k in outputs) and m["bytes_out"] > view["file_size"]
    assert any(e["message"].startswith("metrics: ") for e in container.jobs.logs(job.job_id))
    # the clips' planning analysis: timed, its decoded frames counted, and cached by clip content
    assert isinstance(m["clip_analysis_time_ms"], int) and m["clip_analysis_time_ms"] >= 0
    assert m["clip_analysis_frames"] > 0
    assert any(k.startswith("cache/clip_analysis/") for k in container.blobs.list("cache/"))
    second, _ = service.submit_create(container, create_body(media), "bob")  # another job, the same clips
    steps.run_analyze(container, second.job_id)
    m2 = service.get_job(container, second.job_id, "bob", "create")["metrics"]
    assert m2["clip_analysis_frames"] == 0 and isinstance(m2["clip_analysis_time_ms"], int)
    assert container.blobs.get_bytes(keys.plan(second.job_id))  # planned from the cached analysis

    # the same song again (same method and fps): the beat map comes from the cache
    again, _ = service.submit_analyze(container, {"audio_url": f"{media.url}/song.wav", "method": "librosa",
                                                  "fps": job.request["edit_config"]["output_fps"]}, "alice")
    steps.run_analyze(container, again.job_id)
    assert service.get_job(container, again.job_id, "alice", "analyze")["metrics"]["beat_map_cached"] is True
    cancelled, _ = service.submit_create(container, create_body(media), "alice")
    service.cancel(container, cancelled.job_id, "alice")

    # ended again, or an end retried: counted once
    steps.end_job(container, job.job_id, "failed", error={"code": "late", "message": "late"})
    steps.end(container, cancelled.job_id, "failed", "late", "late")
    doc = service.stats(container)
    (today,) = doc["days"]
    assert (today["total_jobs"], today["completed_jobs"], today["cancelled_jobs"], today["failed_jobs"]) == (3, 2, 1, 0)
    assert today["cache_hits"] == 1 and doc["totals"]["total_jobs"] == 3
    assert today["total_output_bytes"] == m["bytes_out"] + container.jobs.get(again.job_id).metrics.bytes_out
    assert today["total_processing_seconds"] >= m["processing_time_ms"] / 1000


def test_a_second_job_over_the_same_clips_reuses_their_analysis(container, media):
    """The clips' planning analysis is cached by content in the blob store (cache/clip_analysis/): a later
    job, another caller's included, decodes none of them again and plans the same edit."""
    first, _ = service.submit_create(container, create_body(media), "alice")
    steps.run_analyze(container, first.job_id)
    assert container.jobs.get(first.job_id).metrics.clip_analysis_frames > 0
    assert any(k.startswith("cache/clip_analysis/") for k in container.blobs.list("cache/"))
    second, _ = service.submit_create(container, create_body(media), "bob")
    steps.run_analyze(container, second.job_id)
    assert container.jobs.get(second.job_id).metrics.clip_analysis_frames == 0
    plans = [json.loads(container.blobs.get_bytes(keys.plan(j.job_id)))["edl"]["shots"] for j in (first, second)]
    assert plans[0] == plans[1]
