import pytest

from beatsync.adapters.firestore_jobs import FirestoreJobStore
from beatsync.adapters.gcs import GcsBlobStore
from beatsync.adapters.local_fs import LocalBlobStore
from beatsync.adapters.sqlite_jobs import SqliteJobStore
from beatsync.bootstrap import bootstrap
from beatsync.errors import Misconfigured
from beatsync.settings import Settings


def test_local_defaults(tmp_path):
    c = bootstrap(Settings.from_env({}, data_dir=tmp_path))
    assert isinstance(c.blobs, LocalBlobStore) and c.blobs.root == tmp_path / "blobs"
    assert isinstance(c.jobs, SqliteJobStore) and c.jobs.path == tmp_path / "jobs.db"


def test_environment_selects_cloud_adapters_without_contacting_them(tmp_path):
    env = {"BEATSYNC_BLOB_STORE": "gcs", "BEATSYNC_BUCKET": "media", "BEATSYNC_JOB_STORE": "firestore",
           "BEATSYNC_FIRESTORE_COLLECTION": "jobs_x", "BEATSYNC_PROJECT": "p1", "BEATSYNC_DATA_DIR": str(tmp_path)}
    c = bootstrap(Settings.from_env(env))
    assert isinstance(c.blobs, GcsBlobStore) and c.blobs.bucket_name == "media" and c.blobs.project == "p1"
    assert isinstance(c.jobs, FirestoreJobStore) and c.jobs.collection_name == "jobs_x"
    assert "bucket" not in vars(c.blobs) and "client" not in vars(c.jobs)  # no client built yet


def test_argument_beats_environment_and_bad_settings_are_errors(tmp_path):
    s = Settings.from_env({"BEATSYNC_JOB_STORE": "firestore"}, job_store="sqlite", data_dir=tmp_path)
    assert s.job_store == "sqlite"
    with pytest.raises(Misconfigured):
        Settings.from_env({"BEATSYNC_BLOB_STORE": "gcs"})
    with pytest.raises(Misconfigured):
        Settings.from_env({"BEATSYNC_JOB_STORE": "postgres"})


def test_orchestrator_and_notifier_follow_the_settings(tmp_path):
    from beatsync.adapters.cloud_tasks import CloudTasksNotifier
    from beatsync.adapters.local_orchestrator import LocalOrchestrator
    from beatsync.adapters.webhooks import LocalWebhookNotifier
    from beatsync.adapters.workflows import WorkflowsOrchestrator

    c = bootstrap(Settings.from_env({}, data_dir=tmp_path))
    assert isinstance(c.orchestrator, LocalOrchestrator) and isinstance(c.notifier, LocalWebhookNotifier)
    env = {"BEATSYNC_ORCHESTRATOR": "workflows", "BEATSYNC_NOTIFIER": "cloud_tasks", "BEATSYNC_PROJECT": "p",
           "BEATSYNC_REGION": "europe-west1", "BEATSYNC_WORKFLOW": "wf", "BEATSYNC_TASKS_QUEUE": "q",
           "BEATSYNC_WEBHOOK_SECRET": "s3cret", "BEATSYNC_DATA_DIR": str(tmp_path)}
    c = bootstrap(Settings.from_env(env))
    assert isinstance(c.orchestrator, WorkflowsOrchestrator)
    assert c.orchestrator.workflow_path == "projects/p/locations/europe-west1/workflows/wf"
    assert isinstance(c.notifier, CloudTasksNotifier) and c.notifier.secret == b"s3cret"
    assert "client" not in vars(c.orchestrator) and "client" not in vars(c.notifier)
    with pytest.raises(Misconfigured):
        Settings.from_env({"BEATSYNC_ORCHESTRATOR": "celery"})
    with pytest.raises(Misconfigured):
        Settings.from_env({"BEATSYNC_MAX_CLIPS": "many"})


def test_generated_secrets_persist_in_the_data_folder(tmp_path):
    a = Settings.from_env({}, data_dir=tmp_path).secret("webhook_secret")
    b = Settings.from_env({}, data_dir=tmp_path).secret("webhook_secret")
    assert a == b and len(a) == 64 and (tmp_path / "secrets" / "webhook_secret").stat().st_mode & 0o777 == 0o600
