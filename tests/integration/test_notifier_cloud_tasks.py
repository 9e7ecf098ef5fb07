"""Webhooks through Cloud Tasks: the CloudTasksNotifier creates HTTP tasks on the queue of
gcloud-tasks-emulator, which dispatches them to real local receivers (retrying failures).

(Tasks are named by the event id, so Cloud Tasks drops a repeated notify of one event; the emulator
does not implement that de-duplication, so it is not asserted here.)"""

import pytest

from beatsync.adapters.cloud_tasks import CloudTasksNotifier
from tests.emulators import tasks_emulator  # noqa: F401  (session fixture)
from tests.suites.notifier import *  # noqa: F401,F403  (the Notifier interface suite)

SECRET = b"k" * 32


@pytest.fixture
def secret():
    return SECRET


@pytest.fixture
def notifier(tasks_emulator):  # noqa: F811
    host, _ = tasks_emulator

    def make(*receivers):  # the queue delivers anywhere; the receivers need no allowlist
        return CloudTasksNotifier(project="demo-beatsync", location="asia-southeast1", queue="beat-sync-webhooks",
                                  secret=SECRET, emulator_host=host)

    return make
