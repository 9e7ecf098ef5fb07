"""schemathesis against the OpenAPI document `beatsync serve` publishes: generated requests (valid and
invalid) for every operation; no 5xx, every status documented, every body matching its schema."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import ROOT
from tests.servers import Serve

MAX_EXAMPLES = 15


def test_schemathesis_finds_no_failures(tmp_path):
    serve = Serve(tmp_path / "data", {"BEATSYNC_FETCH_TIMEOUT": "2", "BEATSYNC_MAX_ACTIVE_JOBS": "100000", "BEATSYNC_CALLER_MAX_ACTIVE_JOBS": "100000", "BEATSYNC_CALLER_MAX_SUBMISSIONS_PER_MINUTE": "100000",
                                      "BEATSYNC_MAX_SUBMISSIONS_PER_MINUTE": "100000", "BEATSYNC_SYNC_WAIT": "0.5",
                                      "BEATSYNC_ANALYSIS_METHOD": "librosa"})
    try:
        proc = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "st"), "run", f"{serve.url}/openapi.json", "--max-examples",
             str(MAX_EXAMPLES), "--seed", "20261125", "--checks",
             "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"],
            capture_output=True, text=True, timeout=600)
    finally:
        serve.stop()
    out = proc.stdout + proc.stderr
    summary = re.search(r"(\d+) generated, (\d+) passed", out)
    print("\n" + (summary.group(0) if summary else out[-3000:]))
    assert proc.returncode == 0, out[-6000:]
    assert summary and summary.group(1) == summary.group(2) and int(summary.group(1)) > 100
    assert "Traceback" not in (tmp_path / "serve.log").read_text()
