"""The job service suite over the embedded adapters: SQLite and a local folder."""

from __future__ import annotations

import pytest

from beatsync.bootstrap import bootstrap
from beatsync.settings import Settings
from beatsync.signing import check_link

from tests.suites.service import *  # noqa: F401,F403 - the suite's tests run here
from tests.suites.service import RecordingOrchestrator
from tests.servers import wait_for


@pytest.fixture
def container(tmp_path, media, receiver):
    settings = Settings.from_env({}, data_dir=tmp_path / "data", allowed_hosts=f"{media.host},{receiver.host}")
    return bootstrap(settings, orchestrator=RecordingOrchestrator())


@pytest.fixture
def fetch_url():
    def fetch(container, url):
        from urllib.parse import parse_qs, unquote, urlsplit

        parts = urlsplit(url)
        key = unquote(parts.path.removeprefix("/files/"))
        q = parse_qs(parts.query)
        assert check_link(container.settings.secret("signing_secret"), key, q["expires"][0], q["signature"][0])
        return container.blobs.get_bytes(key)

    return fetch


def test_job_logs_and_errors_carry_codes_and_messages_not_tracebacks_or_paths(container, media, monkeypatch, caplog):
    import beatsync.analysis
    from beatsync.jobs import service, steps
    from tests.suites.service import create_body

    def broken(path, *args, **kwargs):
        raise RuntimeError(f"cannot read {path}")  # a bug, naming a server path

    monkeypatch.setattr(beatsync.analysis, "analyze", broken)
    job, _ = service.submit_create(container, create_body(media), "alice")
    steps.run_analyze(container, job.job_id)
    status = service.get_job(container, job.job_id, "alice", "create")
    assert status["error"]["code"] == "internal_error"
    text = str(status) + str(service.job_logs(container, job.job_id, "alice"))
    assert "Traceback" not in text and "/tmp" not in text and str(container.settings.data_dir) not in text
    assert "Traceback" in caplog.text  # the server log has it
    # a bad clip: the decoder's message names the work file; the caller sees its name only
    bad = create_body(media, video_urls=[f"{media.url}/bad.mp4"])
    job, _ = service.submit_create(container, bad, "alice")
    monkeypatch.undo()
    steps.run_analyze(container, job.job_id)
    status = service.get_job(container, job.job_id, "alice", "create")
    assert status["status"] == "failed"
    text = str(status) + str(service.job_logs(container, job.job_id, "alice"))
    assert "/tmp" not in text and "beatsync-work" not in text, text


def test_queue_position_counts_only_the_callers_own_jobs(container, media):
    from beatsync.jobs import service
    from tests.suites.service import create_body

    for _ in range(3):
        service.submit_create(container, create_body(media), "alice")
    bob, _ = service.submit_create(container, create_body(media), "bob")
    assert service.accepted_view(container, bob)["queue_position"] == 0
    alice2, _ = service.submit_create(container, create_body(media), "alice")
    view = service.accepted_view(container, alice2)
    assert view["queue_position"] == 3
    assert service.accepted_view(container, bob)["estimated_duration"] < view["estimated_duration"]


@pytest.mark.parametrize("size, ok", [
    ([4096, 2160], True), ("4096x2160", True), ([2160, 4096], True), ("2160x4096", True), ([2160, 2160], True),
    ([16, 64], True), ([1080, 1920], True),
    ([7680, 7680], False), ("9999x9999", False), ("4096x2161", False), ([2161, 4096], False), ([4097, 1000], False),
    ("4096x512", False), ([16, 65], False), ("15x20", False), ([3000, 3000], False),
])
def test_one_output_size_rule_for_both_forms_at_submit(container, media, size, ok):
    from beatsync.contracts import EditConfig
    from beatsync.jobs import service
    from tests.suites.service import create_body

    body = create_body(media)
    body["config"] = {**body["config"], "output_resolution": size}
    if ok:
        job, _ = service.submit_create(container, body, "alice")
        assert job.request["edit_config"]["output_resolution"] == (size if isinstance(size, str) else "%dx%d" % tuple(size))
    else:
        with pytest.raises(service.InvalidRequest) as info:
            service.submit_create(container, body, "alice")
        assert info.value.code == "output_size_not_allowed" and info.value.http_status == 400
        label = size if isinstance(size, str) else "%dx%d" % tuple(size)
        with pytest.raises(ValueError):  # the worker's model holds the same rule
            EditConfig(output_resolution=label)


def test_a_stuck_job_is_ended_at_its_time_budget_and_the_next_caller_runs(tmp_path, media, monkeypatch):
    """The real local orchestrator: mallory's job hangs on a source that dribbles its headers (fetch
    timeout 60 s); at its (here tiny) budget it ends failed and alice's job runs."""
    from beatsync.jobs import service, steps
    from tests.servers import wait_for
    from tests.suites.service import create_body

    monkeypatch.setattr(steps, "time_budget", lambda c, job: 2.0 if job.owner == "mallory" else 600.0)
    c = bootstrap(Settings.from_env({}, data_dir=tmp_path / "data", allowed_hosts=media.host, fetch_timeout=60))
    stuck, _ = service.submit_create(c, create_body(media, video_urls=[f"{media.url}/slow-headers"]), "mallory")
    wait_for(lambda: c.jobs.get(stuck.job_id).current_step == "downloading", timeout=30)
    good, _ = service.submit_analyze(c, {"audio_url": f"{media.url}/missing.wav"}, "alice")  # quick to run
    final = wait_for(lambda: (lambda j: j if j.terminal else None)(c.jobs.get(stuck.job_id)), timeout=15)
    assert final.status == "failed" and final.error.code == "time_budget_exceeded"
    done = wait_for(lambda: (lambda j: j if j.terminal else None)(c.jobs.get(good.job_id)), timeout=30)
    assert done.error.code == "source_not_found"  # it ran once the worker was free


@pytest.mark.parametrize("method", ["madmom", "hybrid"])
def test_noncommercial_methods_are_refused_at_submission(container, media, method):
    from beatsync.errors import InvalidRequest
    from beatsync.jobs import service

    with pytest.raises(InvalidRequest) as e:
        service.submit_analyze(container, {"audio_url": f"{media.url}/song.wav", "method": method}, "bob")
    assert e.value.code == "noncommercial_model" and e.value.http_status == 400
    assert not container.jobs.list("bob")[0]  # no job was created
    job, _ = service.submit_analyze(container, {"audio_url": f"{media.url}/song.wav"}, "bob")
    assert job.request["method"] == "beatnet"  # the service's default: commercially usable


def test_noncommercial_methods_run_when_the_operator_allows_them(tmp_path, media):
    from beatsync.jobs import service

    settings = Settings.from_env({"BEATSYNC_ALLOW_NONCOMMERCIAL_MODELS": "1"}, data_dir=tmp_path / "data",
                                 allowed_hosts=media.host)
    c = bootstrap(settings, orchestrator=RecordingOrchestrator())
    job, _ = service.submit_analyze(c, {"audio_url": f"{media.url}/song.wav", "method": "madmom"}, "bob")
    assert job.request["method"] == "madmom"


def test_a_jobs_inputs_are_fetched_at_once(container, media):
    """The song and both clips are in flight together (each answer waits until all three have
    arrived: fetched one after another, each would wait its 10 s out alone)."""
    from beatsync.jobs import service, steps
    from tests.suites.service import create_body

    t = f"{media.url}/together"
    body = create_body(media, audio_url=f"{t}/song.wav?n=3", video_urls=[f"{t}/a.mp4?n=3", f"{t}/b.mp4?n=3"])
    job, _ = service.submit_create(container, body, "alice")
    assert steps.run_analyze(container, job.job_id)["status"] == "processing"
    assert media.together["max"] == 3


def test_the_first_input_that_fails_stops_the_other_fetches(container, media):
    """A clip that is not there fails the job at once; the song still trickling in (600 bytes over a
    minute) is abandoned, not waited for."""
    from beatsync.jobs import service, steps
    from tests.suites.service import create_body

    body = create_body(media, audio_url=f"{media.url}/slow", video_urls=[f"{media.url}/a.mp4", f"{media.url}/gone.mp4"])
    job, _ = service.submit_create(container, body, "alice")
    out = steps.run_analyze(container, job.job_id)
    assert out["status"] == "failed" and out["error"]["code"] == "source_not_found", out
    assert "gone.mp4" in out["error"]["message"]
    sent = wait_for(lambda: media.trickled[:1], timeout=60)  # the trickle's request ended (its client went away)
    assert sent[0] < 600
