import pytest

from beatsync.adapters.analytics import SqliteAnalytics
from tests.suites.analytics import *  # noqa: F401,F403  (the Analytics interface suite)


@pytest.fixture
def analytics(tmp_path):
    return SqliteAnalytics(tmp_path / "analytics.db")
