"""The job service suite over the embedded adapters: SQLite and a local folder."""

from __future__ import annotations

import pytest

from beatsync.bootstrap import bootstrap
from beatsync.settings import Settings
from beatsync.signing import check_link

from tests.suites.service import *  # noqa: F401,F403 - the suite's tests run here
from tests.suites.service import RecordingOrchestrator


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
