"""The log-based metrics of terraform/metrics.tf against the structured log lines the code emits.

Jobs are run and ended for real (an analyze job that completes, a create job that is cancelled, one
that fails); their stderr lines are turned into Cloud Logging entries the way Cloud Run does (JSON
line -> jsonPayload, ``severity`` and ``logging.googleapis.com/labels`` lifted into the entry), and
each metric's filter, label extractors and value extractor, as written in the HCL, are evaluated on
them. The operator's query of docs/operations.md (one job's lines across every component) is
evaluated the same way."""

from __future__ import annotations

import json
import re

import pytest

from beatsync.bootstrap import bootstrap
from beatsync.jobs import service, steps
from beatsync.joblog import LABELS
from beatsync.settings import Settings
from tests.conftest import ROOT
from tests.suites.service import RecordingOrchestrator, create_body
from tests.unit.test_terraform import resources


def metric(name: str) -> dict:
    """The google_logging_metric ``name`` with its strings unescaped as HCL does (python-hcl2 keeps
    the source's escapes, ``\\"``)."""
    def unescape(node):
        if isinstance(node, dict):
            return {k: unescape(v) for k, v in node.items()}
        if isinstance(node, list):
            return [unescape(v) for v in node]
        return json.loads(f'"{node}"') if isinstance(node, str) else node

    return unescape(resources("google_logging_metric")[name])


def to_entry(line: dict) -> dict:
    """A structured stderr line as Cloud Logging stores it (Cloud Run / Cloud Functions agent)."""
    payload = {k: v for k, v in line.items() if k not in ("severity", "time", LABELS)}
    return {"severity": line.get("severity", "DEFAULT"), "labels": dict(line.get(LABELS, {})),
            "jsonPayload": payload, "resource": {"type": "cloud_run_revision"}}


def field(entry: dict, path: str):
    node = entry
    for part in path.split("."):
        part = part.strip('"')
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


TERM = re.compile(r'\s*(NOT\s+)?([A-Za-z_][\w.]*(?:\."[^"]+")*)\s*(=|:)\s*("(?:[^"\\]|\\.)*"|\*|[\w.+-]+)\s*')


def matches(flt: str, entry: dict) -> bool:
    """The subset of the Logging query language the filters use: terms ``path="value"``,
    ``path=number``, ``path:*`` (present), ``path:"text"`` (has), optionally negated with ``NOT``,
    joined by ``AND``. Anything else fails the test: extend this evaluator with the filter."""
    result = True
    for term in re.split(r"\s+AND\s+", flt.strip()):
        m = TERM.fullmatch(term)
        assert m, f"unsupported filter syntax: {term!r}"
        negate, path, op, value = m.groups()
        have = field(entry, path)
        if op == ":" and value == "*":
            ok = have is not None
        elif value.startswith('"'):
            want = json.loads(value)
            ok = have is not None and (str(have) == want if op == "=" else want.lower() in str(have).lower())
        else:
            ok = have is not None and (str(have) == value or _num(have) == _num(value))
        result = result and (not ok if negate else ok)
    return result


def _num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def extract(extractor: str, entry: dict):
    m = re.fullmatch(r"EXTRACT\(([\w.]+)\)", extractor)
    assert m, f"unsupported extractor {extractor!r}"
    return field(entry, m.group(1))


@pytest.fixture(scope="module")
def entries(tmp_path_factory, media):
    """Cloud Logging entries of three real jobs: an analyze job completed, a create job cancelled
    while processing, a create job failed by the orchestrator."""
    import contextlib
    import io
    import sys

    data = tmp_path_factory.mktemp("logs") / "data"
    c = bootstrap(Settings.from_env({}, data_dir=data, allowed_hosts=media.host), orchestrator=RecordingOrchestrator())
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        done, _ = service.submit_analyze(c, {"audio_url": f"{media.url}/song.wav", "method": "librosa"}, "alice")
        steps.run_analyze(c, done.job_id)
        cancelled, _ = service.submit_create(c, create_body(media), "alice")
        steps.begin(c, cancelled.job_id)
        service.cancel(c, cancelled.job_id, "alice")
        failed, _ = service.submit_create(c, create_body(media), "alice")
        steps.end(c, failed.job_id, "failed", "workflow_failed", "gave up")
    lines = [json.loads(x) for x in stderr.getvalue().splitlines() if x.startswith("{")]
    assert sys.stderr is not stderr
    return {"jobs": {"completed": done.job_id, "cancelled": cancelled.job_id, "failed": failed.job_id},
            "entries": [to_entry(x) for x in lines]}


def test_job_count_matches_one_line_per_ended_job_with_its_labels(entries):
    metric_ = metric("job_count")
    hits = [e for e in entries["entries"] if matches(metric_["filter"], e)]
    labels = sorted((extract(metric_["label_extractors"]["job_type"], e),
                     extract(metric_["label_extractors"]["status"], e)) for e in hits)
    assert labels == [("analyze", "completed"), ("create", "cancelled"), ("create", "failed")]
    declared = {lab["key"] for lab in metric_["metric_descriptor"][0]["labels"]}
    assert declared == set(metric_["label_extractors"]) == {"job_type", "status"}
    assert metric_["metric_descriptor"][0]["value_type"] == "INT64" and "value_extractor" not in metric_


def test_job_duration_extracts_each_ended_jobs_seconds(entries):
    metric_ = metric("job_duration")
    hits = [e for e in entries["entries"] if matches(metric_["filter"], e)]
    assert len(hits) == 3
    for e in hits:
        seconds = extract(metric_["value_extractor"], e)
        assert isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and 0 <= seconds < 600
        assert seconds == pytest.approx(e["jsonPayload"]["metrics"]["processing_time_ms"] / 1000, abs=0.001)
        assert extract(metric_["label_extractors"]["job_type"], e) in ("create", "analyze")
    assert {lab["key"] for lab in metric_["metric_descriptor"][0]["labels"]} == {"job_type"}
    assert metric_["metric_descriptor"][0]["value_type"] == "DISTRIBUTION"


def test_the_operations_query_follows_one_job_and_only_it(entries):
    doc = (ROOT / "docs" / "operations.md").read_text()
    query = re.search(r"<!-- job-query -->\s*```\w*\n(.+?)\n```", doc, re.S).group(1).strip()
    jobs = entries["jobs"]
    for status, job_id in jobs.items():
        mine = [e for e in entries["entries"] if matches(query.replace("JOB_ID", job_id), e)]
        about = [e for e in entries["entries"] if e["jsonPayload"].get("job_id") == job_id]
        assert mine == about and len(mine) >= 3, status  # created, its own log lines, ended
        kinds = {e["jsonPayload"].get("audit") or e["jsonPayload"].get("log") for e in mine}
        assert {"job.create", "job", "job.end"} <= kinds, (status, kinds)
    # every line that names a job carries it as an indexed label
    assert all(e["labels"].get("job_id") == e["jsonPayload"]["job_id"]
               for e in entries["entries"] if e["jsonPayload"].get("job_id"))


def test_the_evaluator_rejects_what_it_does_not_understand():
    entry = to_entry({"severity": "INFO", "message": "job.end", "audit": "job.end", "status": "failed"})
    assert matches('jsonPayload.audit="job.end" AND jsonPayload.status:*', entry)
    assert not matches('jsonPayload.audit="job.ended"', entry)
    assert not matches("jsonPayload.job_type:*", entry)
    assert matches('NOT jsonPayload.status="completed"', entry)
    with pytest.raises(AssertionError):
        matches('jsonPayload.audit="job.end" OR severity>=ERROR', entry)
