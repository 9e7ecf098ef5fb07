import pytest

from beatsync.adapters.local_fs import LocalBlobStore
from tests.suites.blob_store import *  # noqa: F401,F403  (the BlobStore interface suite)


@pytest.fixture
def blobs(tmp_path):
    return LocalBlobStore(tmp_path / "blobs")
