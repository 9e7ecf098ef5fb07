"""The dashboard JSON as Terraform renders it: the locals of terraform/monitoring.tf (and main.tf's
names) evaluated by the terraform binary in a scratch module without providers (resource
attributes stubbed), then every chart and dataset checked against the Monitoring API's shape."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from tests.conftest import ROOT

PLOTS = {"LINE", "STACKED_AREA", "STACKED_BAR", "HEATMAP"}
PERCENTILE = re.compile(r"REDUCE_PERCENTILE_(05|50|95|99)")


def _block(text: str, start: str) -> str:
    """The ``start { ... }`` block of ``text`` (braces counted, strings respected)."""
    i = text.index(start)
    depth, j, in_str = 0, text.index("{", i), False
    while True:
        c = text[j]
        if in_str:
            if c == "\\":
                j += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[i:j + 1]
        j += 1


def _stub(hcl: str) -> str:
    return re.sub(r'\b(?:data\.)?google_\w+\.\w+(?:\[[^\]]+\])?\.\w+', '"stub"', hcl)


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    if shutil.which("terraform") is None:
        pytest.skip("terraform not on PATH")
    monitoring = (ROOT / "terraform" / "monitoring.tf").read_text()
    main = (ROOT / "terraform" / "main.tf").read_text()
    dash = _block(monitoring, 'resource "google_monitoring_dashboard"')
    body = dash[dash.index("dashboard_json = ") + len("dashboard_json = "):dash.rindex("}")]
    # the module's own variable declarations (defaults and validations as written), with stand-ins for
    # the required ones, so the locals evaluate exactly as in a deployment
    variables = (ROOT / "terraform" / "variables.tf").read_text()
    required = {"project_id": "beatsync-test", "bucket_name": "beatsync-test-media", "image_tag": "v1",
                "domain": "api.example.com"}
    module = "\n".join([
        variables,
        _stub(_block(main, "locals {")),
        _stub(_block(monitoring, "locals {")),
        'output "dashboard" {\n  value = ' + _stub(body) + "\n}",
    ])
    work = tmp_path_factory.mktemp("tf")
    (work / "main.tf").write_text(module)
    (work / "terraform.tfvars").write_text("".join(f'{k} = "{v}"\n' for k, v in required.items()))
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "TF_IN_AUTOMATION": "1", "HOME": str(work)}
    for cmd in (["init", "-input=false", "-no-color"], ["apply", "-auto-approve", "-input=false", "-no-color"]):
        proc = subprocess.run(["terraform", *cmd], cwd=work, capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = subprocess.run(["terraform", "output", "-raw", "dashboard"], cwd=work, capture_output=True, text=True,
                         env=env, check=True).stdout
    return json.loads(out)


def _queries(dataset: dict) -> list[dict]:
    q = dataset["timeSeriesQuery"]
    assert len(q) == 1, q
    if "timeSeriesFilter" in q:
        return [q["timeSeriesFilter"]]
    ratio = q["timeSeriesFilterRatio"]
    assert set(ratio) == {"numerator", "denominator"}
    return [ratio["numerator"], ratio["denominator"]]


def test_the_rendered_dashboard_has_well_formed_charts(dashboard):
    widgets = dashboard["gridLayout"]["widgets"]
    titles = [w["title"] for w in widgets]
    assert titles[:6] == ["Request rate", "Request latency (p50, p95, p99)", "Active instances",
                          "Memory utilisation (p95)", "CPU utilisation (p95)", "Error rate (non-2xx / all)"]
    assert {"Jobs by status", "Job duration (p50, p95, p99)", "Compose attempts (job executions by result)"} <= set(titles)
    for w in widgets:
        for ds in w["xyChart"]["dataSets"]:
            assert ds["plotType"] in PLOTS
            for q in _queries(ds):
                assert re.match(r'metric\.type="[a-z.]+googleapis\.com/[\w/]+"', q["filter"]), q["filter"]
                assert '""' not in q["filter"] and "${" not in q["filter"], q["filter"]
                agg = q["aggregation"]
                assert re.fullmatch(r"\d+s", agg["alignmentPeriod"])
                assert agg["perSeriesAligner"].startswith("ALIGN_") and agg["crossSeriesReducer"].startswith("REDUCE_")
                if PERCENTILE.fullmatch(agg["crossSeriesReducer"]):  # percentiles of distributions
                    assert agg["perSeriesAligner"] == "ALIGN_DELTA", w["title"]


def test_the_rendered_percentile_charts_have_p50_p95_p99(dashboard):
    by_title = {w["title"]: w["xyChart"]["dataSets"] for w in dashboard["gridLayout"]["widgets"]}
    for title, metric in (("Request latency (p50, p95, p99)", "run.googleapis.com/request_latencies"),
                          ("Job duration (p50, p95, p99)", "logging.googleapis.com/user/beat_sync/job_duration")):
        reducers = {q["aggregation"]["crossSeriesReducer"] for ds in by_title[title] for q in _queries(ds)
                    if metric in q["filter"]}
        assert reducers == {"REDUCE_PERCENTILE_50", "REDUCE_PERCENTILE_95", "REDUCE_PERCENTILE_99"}, title
    dead = [q["filter"] for ds in by_title["Webhook queue and dead letters"] for q in _queries(ds)]
    assert any('subscription_id"="beat-sync-requests-dead-letter"' in f for f in dead), dead
