"""The job service suite over the Google Cloud adapters, on the real protocols: jobs in the
official Firestore emulator, media in fake-gcs-server (signed URLs fetched over HTTP)."""

from __future__ import annotations

import uuid

import pytest

from beatsync.adapters.firestore_jobs import FirestoreJobStore
from beatsync.adapters.gcs import GcsBlobStore
from beatsync.bootstrap import bootstrap
from beatsync.settings import Settings
from tests.emulators import fake_gcs, fetch_http, firestore_emulator, signing_credentials  # noqa: F401

from tests.suites.service import *  # noqa: F401,F403 - the suite's tests run here
from tests.suites.service import RecordingOrchestrator


@pytest.fixture
def container(tmp_path, media, receiver, fake_gcs, firestore_emulator):  # noqa: F811
    bucket = f"media-{uuid.uuid4().hex[:8]}"
    settings = Settings.from_env({}, data_dir=tmp_path / "data", allowed_hosts=f"{media.host},{receiver.host}",
                                 blob_store="gcs", bucket=bucket, gcs_endpoint=fake_gcs, job_store="firestore",
                                 project="demo-beatsync", analytics_collection=f"analytics_{uuid.uuid4().hex[:8]}")
    blobs = GcsBlobStore(bucket, project="demo-beatsync", endpoint=fake_gcs, signing_credentials=signing_credentials())
    blobs.bucket.client.create_bucket(bucket)
    jobs = FirestoreJobStore(project="demo-beatsync", collection=f"jobs_{uuid.uuid4().hex[:8]}")
    return bootstrap(settings, blobs=blobs, jobs=jobs, orchestrator=RecordingOrchestrator())


@pytest.fixture
def fetch_url():
    return lambda container, url: fetch_http(url)


def test_gs_urls_are_accepted_inside_the_bucket_only(container, media):
    from beatsync.fetch import UrlNotAllowed
    from beatsync.jobs import service, steps
    from tests.suites.service import create_body

    container.blobs.put_file("inputs/user/song.wav", str(media.root / "song.wav"), "audio/wav")
    container.blobs.put_file("inputs/user/a.mp4", str(media.root / "a.mp4"), "video/mp4")
    bucket = container.settings.bucket
    body = create_body(media, audio_url=f"gs://{bucket}/inputs/user/song.wav",
                       video_urls=[f"gs://{bucket}/inputs/user/a.mp4"])
    job, _ = service.submit_create(container, body, "alice")
    assert steps.run_analyze(container, job.job_id)["status"] == "processing"
    assert steps.run_compose(container, job.job_id)["status"] == "completed"
    with pytest.raises(UrlNotAllowed):
        service.submit_create(container, {**body, "audio_url": "gs://someone-elses-bucket/song.wav"}, "alice")
