"""The light parts of the package must not import numpy / librosa / madmom / av."""

import subprocess
import sys

HEAVY = ("numpy", "librosa", "madmom", "av", "scipy", "numba", "google.cloud.storage", "google.cloud.firestore",
         "google.cloud.tasks_v2", "google.cloud.workflows")


def test_light_modules_do_not_import_heavy_libraries():
    code = (
        "import sys, beatsync, beatsync.errors, beatsync.settings, beatsync.ports, beatsync.contracts, "
        "beatsync.analysis, beatsync.adapters.local_fs, beatsync.adapters.sqlite_jobs, beatsync.adapters.gcs, "
        "beatsync.adapters.firestore_jobs, beatsync.jobs, beatsync.bootstrap, beatsync.cli, beatsync.jobs.service, "
        "beatsync.jobs.steps, beatsync.http, beatsync.http.health, beatsync.fetch, beatsync.signing, "
        "beatsync.adapters.cloud_tasks, beatsync.adapters.workflows, beatsync.adapters.webhooks, "
        "beatsync.adapters.local_orchestrator, beatsync.contracts.schemas, beatsync.contracts.api\n"
        "from beatsync.bootstrap import bootstrap\n"
        "from beatsync.settings import Settings\n"
        "import tempfile; c = bootstrap(Settings.from_env({}, data_dir=tempfile.mkdtemp())); c.blobs; c.jobs; "
        "c.notifier; c.orchestrator\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"heavy modules imported: {out}"
