import uuid

import pytest

from beatsync.adapters.gcs import GcsBlobStore
from tests.emulators import fake_gcs  # noqa: F401  (session fixture)
from tests.suites.blob_store import *  # noqa: F401,F403  (the BlobStore interface suite)


@pytest.fixture
def blobs(fake_gcs):  # noqa: F811
    name = f"bucket-{uuid.uuid4().hex[:8]}"
    store = GcsBlobStore(name, project="demo-beatsync", endpoint=fake_gcs)
    store.bucket.client.create_bucket(name)
    return store
