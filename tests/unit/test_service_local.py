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
