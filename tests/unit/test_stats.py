"""The daily analytics as operators read them: GET /admin/stats (admin callers only) and
`beatsync stats` (a table)."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import functions_framework
import pytest

from beatsync.bootstrap import bootstrap
from beatsync.cli import main
from beatsync.contracts.schemas import validator
from beatsync.http import set_container
from beatsync.settings import Settings
from tests.conftest import ROOT
from tests.suites.analytics import DAY, ended

STATS = "/api/v1/beat-sync/admin/stats"


def _record(c):
    c.analytics.record(ended("completed", seconds=10, bytes_out=2048, cached=True))
    c.analytics.record(ended("failed", seconds=2.5, bytes_out=0))
    c.analytics.record(ended("cancelled", at=DAY + timedelta(days=1), seconds=1, bytes_out=0))


@pytest.fixture
def status_client(tmp_path):
    def build(**settings):
        c = bootstrap(Settings.from_env({}, data_dir=tmp_path / "data", **settings))
        set_container(c)
        _record(c)
        app = functions_framework.create_app(target="status", source=str(ROOT / "functions/status/main.py"))
        return app.test_client()

    yield build
    set_container(None)


def test_the_stats_route_is_for_admins(status_client):
    admin = "key-" + hashlib.sha256(b"admin-key").hexdigest()[:16]
    client = status_client(api_keys="admin-key,user-key", admin_callers=admin)
    as_admin = {"Authorization": "Bearer admin-key"}
    resp = client.get(f"{STATS}?from=2026-03-14&to=2026-03-15", headers=as_admin)
    assert resp.status_code == 200, resp.json
    validator("daily_stats").validate(resp.json)
    assert [d["date"] for d in resp.json["days"]] == ["2026-03-14", "2026-03-15"]
    totals = resp.json["totals"]
    assert (totals["total_jobs"], totals["completed_jobs"], totals["failed_jobs"], totals["cancelled_jobs"]) == (3, 1, 1, 1)
    assert totals["total_processing_seconds"] == 13.5 and totals["total_output_bytes"] == 2048
    assert totals["cache_hits"] == 1
    assert client.get(STATS, headers={"Authorization": "Bearer user-key"}).status_code == 403
    assert client.get(STATS).status_code == 401
    assert client.get(f"{STATS}?from=14.03.2026", headers=as_admin).status_code == 400
    assert client.get(f"{STATS}?from=2026-03-15&to=2026-03-14", headers=as_admin).status_code == 400
    assert client.get(f"{STATS}?from=2024-01-01&to=2026-03-14", headers=as_admin).status_code == 400
    default = client.get(STATS, headers=as_admin).json  # the last 30 days: none of these
    assert default["days"] == [] and default["totals"]["total_jobs"] == 0


def test_without_authentication_the_local_caller_reads_them(status_client):
    client = status_client()
    assert client.get(f"{STATS}?from=2026-03-14&to=2026-03-14").json["totals"]["total_jobs"] == 2


def test_beatsync_stats_prints_a_table(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BEATSYNC_DATA_DIR", str(tmp_path / "data"))
    _record(bootstrap(Settings.from_env({}, data_dir=tmp_path / "data")))
    assert main(["stats", "--from", "2026-03-14", "--to", "2026-03-20"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "jobs ended 2026-03-14 .. 2026-03-20 (UTC)"
    assert lines[1].split() == ["date", "total", "completed", "failed", "cancelled", "processing", "s", "output",
                                "bytes", "cache", "hits"]
    assert lines[2].split() == ["2026-03-14", "2", "1", "1", "0", "12.5", "2048", "1"]
    assert lines[3].split() == ["2026-03-15", "1", "0", "0", "1", "1.0", "0", "0"]
    assert lines[4].split() == ["total", "3", "1", "1", "1", "13.5", "2048", "1"]
    assert main(["stats", "--from", "2026-03-14", "--to", "2026-03-14", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["total_jobs"] == 2
    assert main(["stats", "--from", "yesterday"]) == 2  # a clean error, not a traceback
