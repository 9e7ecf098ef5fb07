import uuid

import pytest

from beatsync.adapters.firestore_jobs import FirestoreJobStore
from tests.emulators import firestore_emulator  # noqa: F401  (session fixture)
from tests.suites.job_store import *  # noqa: F401,F403  (the JobStore interface suite)


@pytest.fixture
def store(firestore_emulator):  # noqa: F811
    # a fresh collection per test: the emulator is shared by the session
    return FirestoreJobStore(project="demo-beatsync", collection=f"jobs_{uuid.uuid4().hex[:8]}")
