import uuid

import pytest

from beatsync.adapters.analytics import FirestoreAnalytics
from tests.emulators import firestore_emulator  # noqa: F401  (session fixture)
from tests.suites.analytics import *  # noqa: F401,F403  (the Analytics interface suite)


@pytest.fixture
def analytics(firestore_emulator):  # noqa: F811
    # a fresh collection per test: the emulator is shared by the session
    return FirestoreAnalytics(project="demo-beatsync", collection=f"analytics_{uuid.uuid4().hex[:8]}")


def test_counted_markers_carry_the_ttl_field(analytics):
    from datetime import timedelta

    from tests.suites.analytics import DAY, ended

    job = ended(at=DAY)
    analytics.record(job)
    marker = analytics.client.collection(analytics.collection).document("daily_stats") \
        .collection("counted").document(job.job_id).get().to_dict()
    assert marker["expire_at"] == DAY + timedelta(days=analytics.ttl_days) and marker["day"] == "2026-03-14"
