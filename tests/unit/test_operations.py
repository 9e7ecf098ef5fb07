"""Operations as the seed specifies them: the dashboard's charts and the alert policies
(terraform/monitoring.tf), and the Cloud Build pipeline (cloudbuild.yaml, terraform/cloudbuild.tf),
checked offline: the HCL parsed with python-hcl2, the pipeline against schemastore's Cloud Build
schema, its images against what Terraform deploys and the Dockerfile's targets."""

from __future__ import annotations

import json
import re

import jsonschema
import yaml

from tests.conftest import ROOT
from tests.unit.test_terraform import blocks, parsed, resources

SEED_CHARTS = {  # title -> metric types its datasets must query
    "Request rate": {"run.googleapis.com/request_count", "loadbalancing.googleapis.com/https/request_count"},
    "Request latency (p50, p95, p99)": {"run.googleapis.com/request_latencies",
                                        "loadbalancing.googleapis.com/https/total_latencies"},
    "Active instances": {"run.googleapis.com/container/instance_count"},
    "Memory utilisation (p95)": {"run.googleapis.com/container/memory/utilizations"},
    "CPU utilisation (p95)": {"run.googleapis.com/container/cpu/utilizations"},
    "Error rate (non-2xx / all)": {"run.googleapis.com/request_count",
                                   "loadbalancing.googleapis.com/https/request_count"},
}
JOB_CHARTS = {
    "Jobs by status": {"logging.googleapis.com/user/beat_sync/job_count"},
    "Job duration (p50, p95, p99)": {"logging.googleapis.com/user/beat_sync/job_duration"},
    "Compose attempts (job executions by result)": {"run.googleapis.com/job/completed_execution_count"},
}


def _text(node) -> str:
    """A parsed HCL node as one string, the HCL escapes of quotes undone."""
    return json.dumps(node).replace('\\\\\\"', '"').replace('\\"', '"')


def _monitoring_locals() -> dict:
    out = {}
    for b in parsed()["monitoring.tf"]["locals"]:
        out.update(b)
    return out


def _expand(text: str, locals_: dict, depth: int = 4) -> str:
    """``${local.x}`` references replaced by the local's text (enough to read filters)."""
    def value(m):
        if m.group(1) not in locals_:
            return m.group(0)
        v = locals_[m.group(1)][m.group(2)] if m.group(2) else locals_[m.group(1)]
        return v.replace('\\"', '"') if isinstance(v, str) else _text(v)

    for _ in range(depth):
        text = re.sub(r"\$\{local\.(\w+)(?:\.(\w+))?\}", value, text)
    return text


# -- dashboard ------------------------------------------------------------------------------------

def test_the_dashboard_has_the_seeds_six_charts_and_the_job_charts():
    loc = _monitoring_locals()
    charts = {c["title"]: _expand(_text(c["datasets"]), loc) for c in loc["charts"]}
    assert list(charts)[:6] == list(SEED_CHARTS)  # the seed's six, in its order
    for title, metrics in {**SEED_CHARTS, **JOB_CHARTS}.items():
        found = set(re.findall(r'metric\.type="([^"]+)"', charts[title]))
        assert metrics <= found, (title, found)
    latency = charts["Request latency (p50, p95, p99)"]
    assert "local.percentiles" in latency and loc["percentiles"] == {
        "p50": "REDUCE_PERCENTILE_50", "p95": "REDUCE_PERCENTILE_95", "p99": "REDUCE_PERCENTILE_99"}
    assert "local.percentiles" in charts["Job duration (p50, p95, p99)"]
    # error rate: a ratio of the non-2xx answers to all, as the seed's filter
    errors = charts["Error rate (non-2xx / all)"]
    assert errors.count("timeSeriesFilterRatio") == 2 and 'response_code_class"!="2xx"' in errors
    assert 'metric.label."status"' in charts["Jobs by status"]  # grouped by the seed's labels
    assert 'metric.label."job_type"' in charts["Job duration (p50, p95, p99)"]
    assert "job_name" in charts["Compose attempts (job executions by result)"]
    # the public entry and the functions
    assert "https_lb_rule" in charts["Request rate"] and "cloud_run_revision" in charts["Request rate"]
    dash = resources("google_monitoring_dashboard")["beatsync"]
    assert "local.charts" in dash["dashboard_json"]


# -- alerts ---------------------------------------------------------------------------------------

def _alert(name: str) -> tuple[dict, str]:
    policy = resources("google_monitoring_alert_policy")[name]
    (cond,) = policy["conditions"]
    (threshold,) = cond["condition_threshold"]
    return threshold, _expand(_text(threshold), _monitoring_locals())


def test_every_alert_notifies_the_configured_channels():
    policies = resources("google_monitoring_alert_policy")
    assert {"error_rate", "server_errors", "latency", "status_latency", "failed_jobs", "failed_job_ratio",
            "dead_letters", "webhook_backlog"} <= set(policies)
    for name, p in policies.items():
        assert p["notification_channels"] == "${var.notification_channels}", name
        assert p["documentation"][0]["content"], name
    variables = {k: v for b in blocks("variable") for k, v in b.items()}
    assert variables["notification_channels"]["type"] == "${list(string)}"


def test_error_rate_alert_is_the_seeds_5_percent_of_non_2xx_for_5_minutes():
    t, text = _alert("error_rate")
    assert t["threshold_value"] == 0.05 and t["duration"] == "300s" and t["comparison"] == "COMPARISON_GT"
    assert 'run.googleapis.com/request_count' in text and 'response_code_class"!="2xx"' in _text(t["filter"])
    assert "response_code_class" not in t["denominator_filter"]  # over all requests
    t, _ = _alert("server_errors")
    assert 'response_code_class\\"=\\"5xx' in t["filter"] and t["threshold_value"] < 0.05


def test_latency_alerts_seed_30_s_and_the_projects_target():
    t, text = _alert("latency")
    assert t["threshold_value"] == 30000 and t["duration"] == "300s"
    assert t["aggregations"][0]["per_series_aligner"] == "ALIGN_PERCENTILE_95"
    assert "run.googleapis.com/request_latencies" in text and "submit" in text and "status" in text
    t, text = _alert("status_latency")
    assert t["threshold_value"] == "${var.latency_p95_threshold_ms}"
    assert t["aggregations"][0]["per_series_aligner"] == "ALIGN_PERCENTILE_95" and "status_name" in text
    variables = {k: v for b in blocks("variable") for k, v in b.items()}
    assert 0 < variables["latency_p95_threshold_ms"]["default"] < 30000


def test_failed_job_ratio_dead_letters_and_webhook_backlog():
    t, text = _alert("failed_job_ratio")
    assert t["threshold_value"] == "${var.failed_job_ratio}" and "denominator_filter" in t
    assert 'status"="failed' in _text(t["filter"]) and "job_outcomes" in text
    assert "status" not in t["denominator_filter"]
    t, text = _alert("dead_letters")
    assert "pubsub.googleapis.com/subscription/num_undelivered_messages" in text
    assert t["threshold_value"] == 0 and "dead_letter_sub" in t["filter"]
    loc = _monitoring_locals()
    assert loc["dead_letter_sub"] == '${coalesce(var.dead_letter_subscription, "${var.pubsub_requests_topic}-dead-letter")}'
    t, text = _alert("webhook_backlog")
    assert "cloudtasks.googleapis.com/queue/depth" in text and "google_cloud_tasks_queue.webhooks.name" in text
    assert t["threshold_value"] == "${var.webhook_backlog_threshold}"
    assert resources("google_logging_metric")["job_outcomes"]["filter"] == 'jsonPayload.audit=\\"job.end\\"'


# -- Cloud Build ------------------------------------------------------------------------------------

def _build() -> dict:
    return yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())


def _schema() -> dict:
    return json.loads((ROOT / "tests" / "fixtures" / "cloudbuild.schema.json").read_text())


def test_cloudbuild_yaml_validates_against_the_cloud_build_schema():
    schema = _schema()
    assert schema["$id"] == "https://json.schemastore.org/cloudbuild"
    validator = jsonschema.Draft7Validator(schema)
    validator.check_schema(schema)
    build = _build()
    assert list(validator.iter_errors(build)) == []
    # the schema does catch mistakes
    for broken in ({**build, "options": {**build["options"], "machineType": "E2_HUGE"}},
                   {**build, "steps": [{**build["steps"][0], "waitfor": ["-"]}]},
                   {**build, "timeout": "1h"}):
        assert list(validator.iter_errors(broken)), broken.get("options")


def _tags(build: dict) -> list[tuple[str, str, str]]:
    """``(repository substitution, image name, tag)`` of every ``--tag`` of every docker build."""
    out = []
    for step in build["steps"]:
        if step["name"].startswith("gcr.io/cloud-builders/docker") and step.get("args", [""])[0] == "build":
            for arg in step["args"]:
                m = re.fullmatch(r"--tag=\$\{_REGION\}-docker\.pkg\.dev/\$PROJECT_ID/\$\{(\w+)\}/([a-z-]+):(\S+)", arg)
                if arg.startswith("--tag"):
                    assert m, arg
                    out.append(m.groups())
    return out


def test_every_image_built_is_one_terraform_deploys():
    build = _build()
    tags = _tags(build)
    released = {name for repo, name, tag in tags if repo == "_REPOSITORY"}
    assert {tag for repo, _, tag in tags if repo == "_REPOSITORY"} == {"$COMMIT_SHA"}
    main = {k: v for b in parsed()["main.tf"]["locals"] for k, v in b.items()}
    deployed = {m.group(1) for v in main.values() if isinstance(v, str)
                for m in [re.fullmatch(r"\$\{local\.image_base\}/([a-z-]+):\$\{var\.image_tag\}", v)] if m}
    assert released == deployed == {"analyze", "compose"}
    assert main["image_base"] == "${var.region}-docker.pkg.dev/${var.project_id}/${var.image_repository}"
    assert "${local.analyze_image}" in _text(resources("google_cloud_run_v2_service")["analyze"])
    assert "${local.compose_image}" in _text(resources("google_cloud_run_v2_job")["compose"])
    # the build's defaults are the module's defaults; the trigger sets every substitution from Terraform
    variables = {k: v for b in blocks("variable") for k, v in b.items()}
    subs = build["substitutions"]
    assert subs["_REGION"] == variables["region"]["default"]
    assert subs["_REPOSITORY"] == variables["image_repository"]["default"]
    assert subs["_NAME_PREFIX"] == variables["name_prefix"]["default"]
    assert subs["_CACHE_REPOSITORY"] == subs["_REPOSITORY"] + "-cache"
    trigger = resources("google_cloudbuild_trigger")["main"]
    assert set(trigger["substitutions"]) == set(subs)
    assert trigger["substitutions"]["_REPOSITORY"] == "${google_artifact_registry_repository.images.repository_id}"
    # and it deploys them to the service and the job Terraform names
    deploys = {s["id"]: s["args"] for s in build["steps"] if s["id"].startswith("deploy-")}
    assert deploys["deploy-analyze"][:4] == ["run", "services", "update", "${_NAME_PREFIX}-analyze"]
    assert deploys["deploy-compose"][:4] == ["run", "jobs", "update", "${_NAME_PREFIX}-compose"]
    assert main["analyze_name"] == "${var.name_prefix}-analyze" and main["compose_name"] == "${var.name_prefix}-compose"
    for target, args in (("analyze", deploys["deploy-analyze"]), ("compose", deploys["deploy-compose"])):
        assert f"--image=${{_REGION}}-docker.pkg.dev/$PROJECT_ID/${{_REPOSITORY}}/{target}:$COMMIT_SHA" in args


def test_the_dockerfile_targets_it_names_exist_and_layers_are_cached():
    stages = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", (ROOT / "containers" / "Dockerfile").read_text(), re.M | re.I))
    build = _build()
    targets = {}
    for step in build["steps"]:
        args = step.get("args", [])
        if args[:1] == ["build"]:
            (target,) = [a.split("=", 1)[1] for a in args if a.startswith("--target=")]
            assert "--file=containers/Dockerfile" in args
            assert any(a.startswith("--cache-from=") for a in args), step["id"]
            # the cache tag it writes is one a later build reads
            targets[target] = args
    assert set(targets) == {"analyze", "compose"} and set(targets) <= stages
    cache_tags = {t for repo, name, t in _tags(build) if repo == "_CACHE_REPOSITORY"}
    assert cache_tags == {"main"}
    for args in targets.values():
        assert "--build-arg=BUILDKIT_INLINE_CACHE=1" in args


def test_pipeline_order_tests_before_push_before_deploy():
    steps = {s["id"]: s for s in _build()["steps"]}
    assert "pytest" in steps["tests"]["args"][-1]
    assert {"tests", "build-compose"} <= set(steps["push"]["waitFor"])
    for sid in ("deploy-analyze", "deploy-compose"):
        assert steps[sid]["waitFor"] == ["push"]
    # a build that runs as a user-specified service account must say where its logs go
    assert _build()["options"]["logging"] == "CLOUD_LOGGING_ONLY"
    pushed = steps["push"]["args"][-1]
    assert "${_REPOSITORY}/$$target:$COMMIT_SHA" in pushed and "${_CACHE_REPOSITORY}/$$target:main" in pushed


def test_the_trigger_runs_on_main_as_its_own_least_privilege_account():
    trigger = resources("google_cloudbuild_trigger")["main"]
    assert trigger["filename"] == "cloudbuild.yaml"
    assert trigger["github"][0]["push"][0]["branch"] == "^main$"
    assert trigger["service_account"] == "${google_service_account.build.id}"
    # every grant to the build account, and nothing else
    grants = set()
    for rtype, named in ((t, n) for b in blocks("resource") for t, n in b.items()):
        for name, spec in named.items():
            if rtype.endswith("_iam_member") and spec.get("member") == "${local.build_member}":
                grants.add((rtype, spec["role"]))
    assert grants == {
        ("google_artifact_registry_repository_iam_member", "roles/artifactregistry.writer"),
        ("google_cloud_run_v2_service_iam_member", "roles/run.developer"),
        ("google_cloud_run_v2_job_iam_member", "roles/run.developer"),
        ("google_service_account_iam_member", "roles/iam.serviceAccountUser"),
        ("google_project_iam_member", "roles/logging.logWriter"),
    }
    acts_as = resources("google_service_account_iam_member")["build_acts_as"]
    (loc,) = [b for b in parsed()["cloudbuild.tf"]["locals"]]
    assert loc["build_deploys_as"] == '${toset(["analyze", "compose"])}'
    assert acts_as["service_account_id"] == "${google_service_account.this[each.value].name}"
    cache = resources("google_artifact_registry_repository")["build_cache"]
    assert cache["docker_config"][0]["immutable_tags"] is False  # the cache tag moves; release tags do not
    assert resources("google_artifact_registry_repository")["images"]["docker_config"][0]["immutable_tags"] is True
