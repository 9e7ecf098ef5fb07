import uuid

import pytest

from beatsync.adapters.gcs import GcsBlobStore
from tests.emulators import fake_gcs, fetch_http, signing_credentials  # noqa: F401  (session fixture)
from tests.suites.blob_store import *  # noqa: F401,F403  (the BlobStore interface suite)


@pytest.fixture
def blobs(fake_gcs):  # noqa: F811
    name = f"bucket-{uuid.uuid4().hex[:8]}"
    store = GcsBlobStore(name, project="demo-beatsync", endpoint=fake_gcs, signing_credentials=signing_credentials())
    store.bucket.client.create_bucket(name)
    return store


@pytest.fixture
def fetch_signed():
    return fetch_http


def test_urls_are_v4_signed(blobs):
    url = blobs.signed_url("outputs/j/output.mp4", 3600)
    assert "X-Goog-Algorithm=GOOG4-RSA-SHA256" in url and "X-Goog-Expires=3600" in url and "X-Goog-Signature=" in url

