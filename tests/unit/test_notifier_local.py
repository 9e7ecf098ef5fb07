import pytest

from beatsync.adapters.webhooks import LocalWebhookNotifier
from beatsync.fetch import Policy
from tests.servers import wait_for, webhook_receiver
from tests.suites.notifier import *  # noqa: F401,F403  (the Notifier interface suite)
from tests.suites.notifier import event

SECRET = b"k" * 32


@pytest.fixture
def secret():
    return SECRET


@pytest.fixture
def notifier(tmp_path):
    def make(*receivers):
        return LocalWebhookNotifier(tmp_path / "w.db", SECRET, Policy(allowed_hosts=tuple(r.host for r in receivers)),
                                    base_delay=0.05, poll=0.02)

    return make


def test_retries_are_recorded_with_backoff_until_delivered(tmp_path):
    receiver = webhook_receiver(fail_first=2)
    try:
        n = LocalWebhookNotifier(tmp_path / "w.db", SECRET, Policy(allowed_hosts=(receiver.host,)), base_delay=0.05,
                                 poll=0.02)
        n.notify(f"{receiver.url}/h", event())
        wait_for(lambda: receiver.received, timeout=10)
        wait_for(lambda: n.deliveries()[0]["state"] != "sending", timeout=10)  # recorded after the answer
        (d,) = n.deliveries()
        assert d["state"] == "delivered" and d["attempts"] == 3 and d["last_error"] is None
    finally:
        receiver.close()
