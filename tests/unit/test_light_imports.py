"""The light parts of the package must not import numpy / librosa / madmom / av."""

import subprocess
import sys

HEAVY = ("numpy", "librosa", "madmom", "av", "scipy", "numba", "google.cloud.storage", "google.cloud.firestore")


def test_light_modules_do_not_import_heavy_libraries():
    code = (
        "import sys, beatsync, beatsync.errors, beatsync.settings, beatsync.ports, beatsync.contracts, "
        "beatsync.analysis, beatsync.adapters.local_fs, beatsync.adapters.sqlite_jobs, beatsync.adapters.gcs, "
        "beatsync.adapters.firestore_jobs, beatsync.jobs, beatsync.bootstrap, beatsync.cli\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"heavy modules imported: {out}"
