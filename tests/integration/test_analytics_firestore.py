import uuid

import pytest

from beatsync.adapters.analytics import FirestoreAnalytics
from tests.emulators import firestore_emulator  # noqa: F401  (session fixture)
from tests.suites.analytics import *  # noqa: F401,F403  (the Analytics interface suite)


@pytest.fixture
def analytics(firestore_emulator):  # noqa: F811
    # a fresh collection per test: the emulator is shared by the session
    return FirestoreAnalytics(project="demo-beatsync", collection=f"analytics_{uuid.uuid4().hex[:8]}")
