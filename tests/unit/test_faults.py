"""Faults: the job store unavailable at submit (503, nothing half-written), the blob store failing
uploads (the step is retried, then the job fails cleanly with a code; a brief failure heals)."""

from __future__ import annotations

import functions_framework

from beatsync.adapters.local_fs import LocalBlobStore
from beatsync.adapters.sqlite_jobs import SqliteJobStore
from beatsync.bootstrap import bootstrap
from beatsync.errors import StoreUnavailable
from beatsync.http import set_container
from beatsync.settings import Settings
from tests.conftest import ROOT
from tests.servers import wait_for
from tests.suites.service import create_body

API = "/api/v1/beat-sync"


class FlakyJobs(SqliteJobStore):
    """SQLite, with create() failing while ``down`` is set (a store outage)."""

    down = False

    def create(self, job, quota=None):
        if self.down:
            raise StoreUnavailable("job store unavailable (injected)")
        return super().create(job, quota)


class FlakyBlobs(LocalBlobStore):
    """A local folder whose uploads under outputs/ fail ``failures`` times (an outage, then recovery)."""

    failures = 0
    attempts = 0

    def put_file(self, key, path, content_type="application/octet-stream"):
        if key.startswith("outputs/") and key.endswith(".mp4"):
            self.attempts += 1
            if self.failures != 0:
                self.failures -= 1
                raise StoreUnavailable("upload failed (injected)")
        return super().put_file(key, path, content_type)


def _container(tmp_path, media, **kw):
    settings = Settings.from_env({}, data_dir=tmp_path / "data", allowed_hosts=media.host, analysis_method="librosa")
    return bootstrap(settings, **kw)


def test_submit_answers_503_and_writes_nothing_while_the_job_store_is_down(tmp_path, media):
    jobs = FlakyJobs(tmp_path / "jobs.db")
    c = _container(tmp_path, media, jobs=jobs)
    set_container(c)
    try:
        submit = functions_framework.create_app(target="submit", source=str(ROOT / "functions/submit/main.py"))
        jobs.down = True
        r = submit.test_client().post(f"{API}/create", json=create_body(media))
        assert r.status_code == 503 and r.json["error"]["code"] == "store_unavailable" and r.headers["Retry-After"]
        assert jobs.list("anonymous")[1] == 0 and c.blobs.list() == []
        jobs.down = False
        r = submit.test_client().post(f"{API}/create", json=create_body(media))
        assert r.status_code == 202
    finally:
        set_container(None)


def _run(c, body):
    from beatsync.jobs import service

    job, _ = service.submit_create(c, body, "alice")
    final = wait_for(lambda: (lambda j: j if j.terminal else None)(c.jobs.get(job.job_id)), timeout=120)
    return final


def test_a_failing_upload_is_retried_then_the_job_fails_cleanly(tmp_path, media):
    blobs = FlakyBlobs(tmp_path / "blobs", secret=b"s" * 32)
    blobs.failures = -1  # always
    c = _container(tmp_path, media, blobs=blobs)
    c.orchestrator.backoff = 0.05
    job = _run(c, create_body(media))
    assert job.status == "failed" and job.error.code == "store_unavailable"
    assert blobs.attempts == c.orchestrator.retries + 1
    assert blobs.list(f"outputs/{job.job_id}/") == []  # no partial outputs stay behind
    logs = [e["message"] for e in c.jobs.logs(job.job_id)]
    assert sum("composing started" in m for m in logs) == c.orchestrator.retries + 1


def test_a_brief_upload_failure_heals(tmp_path, media):
    blobs = FlakyBlobs(tmp_path / "blobs", secret=b"s" * 32)
    blobs.failures = 1
    c = _container(tmp_path, media, blobs=blobs)
    c.orchestrator.backoff = 0.05
    job = _run(c, create_body(media))
    assert job.status == "completed" and blobs.attempts == 2
    assert [k for k in blobs.list(f"outputs/{job.job_id}/") if k.endswith(".mp4")] == [
        f"outputs/{job.job_id}/output.mp4"]
