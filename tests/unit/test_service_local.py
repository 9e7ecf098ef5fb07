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
