"""docs/operations.md's "What it costs" and "How far it scales" are benchmarks/cost_model.py's output
for the files in the repository (prices, quotas, measurements), and every term the model uses says
where it comes from."""

from __future__ import annotations

import json
import re
import sys

import yaml

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import cost_model  # noqa: E402

BEGIN, END = "<!-- cost-model:begin -->", "<!-- cost-model:end -->"


def generated() -> str:
    model = cost_model.Model(json.loads(cost_model.PRICES.read_text()), cost_model.load_measurements(), "us-central1")
    return cost_model.render_tables(model, json.loads(cost_model.QUOTAS.read_text()))


def test_operations_md_holds_the_cost_models_output():
    doc = (ROOT / "docs" / "operations.md").read_text()
    assert BEGIN in doc and END in doc
    inside = doc.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert inside == generated().strip(), (
        "docs/operations.md is out of step with benchmarks/cost_model.py: paste the output of "
        "`python benchmarks/cost_model.py` between the cost-model markers")


def test_every_price_quota_and_measurement_says_where_it_comes_from():
    prices = json.loads(cost_model.PRICES.read_text())
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", prices["read"])
    for name, item in prices["items"].items():
        assert item["url"].startswith("https://cloud.google.com/"), name
        assert item["source"] and item["unit"] and item["what"], name
    quotas = json.loads(cost_model.QUOTAS.read_text())
    for name, limit in {**quotas["limits"], **quotas["caller_limits"]}.items():
        assert limit["source"] in ("page", "terraform", "settings", "assumed") and limit["raise"], name
    for name, f in cost_model.load_measurements()["figures"].items():
        assert f["source"] in ("measured", "assumed") and f["command"] and f["date"], name
    table = generated()
    for name in list(cost_model.load_measurements()["figures"]) + list(cost_model.ASSUMED):
        row = next(line for line in table.splitlines() if line.startswith(f"| {name} |"))
        assert "| measured (" in row or "| assumed" in row, row


def test_the_workflow_steps_the_model_counts_exist_in_the_yaml():
    """workflow_steps() counts these steps of workflows/beat_sync.yaml for a completed job (the
    integration test checks the total against an execution on workflows-emulator)."""
    wf = yaml.safe_load((ROOT / "workflows" / "beat_sync.yaml").read_text())
    main = [next(iter(s)) for s in wf["main"]["steps"]]
    internal = wf["internal"]["steps"][0]["call_with_retries"]["try"]["steps"]
    one_task = ["init", "job_or_request", "take_job_id", "begin", "log_begin", "check_begin", "analyze",
                "log_analyze", "check_analyze", "compose_start", "log_compose", "first_wait", "finish", "done"]
    per_poll = ["wait", "poll", "schedule", "decide"]
    calls = ["begin", "analyze", "compose_start", "poll", "merge"]  # each runs `internal`: 4 steps more
    assert set(one_task + per_poll + ["merge", "after_merge"]) <= set(main)
    plain = 1 + 3  # call_with_retries, pick_auth, post_plain, plain_done (auth_mode none; OIDC: post_oidc)
    assert len(internal) == 5
    assert cost_model.workflow_steps(1, 0) == len(one_task) + 3 * plain
    assert cost_model.workflow_steps(1, 3) - cost_model.workflow_steps(1, 2) == len(per_poll) + plain
    assert cost_model.workflow_steps(3, 0) - cost_model.workflow_steps(1, 0) == len(["merge", "after_merge"]) + plain
    assert "poll" in calls


def test_more_task_seconds_mean_fewer_tasks_a_slower_video_and_a_cheaper_one():
    model = cost_model.Model(json.loads(cost_model.PRICES.read_text()), cost_model.load_measurements())
    runs = [model.video(180, "1080p", False, ts, None) for ts in (20, 30, 60, 180)]  # no target: the floor
    assert [r["tasks"] for r in runs] == [8, 6, 3, 1]
    assert all(a["ttv_s"] < b["ttv_s"] and a["total"] > b["total"] for a, b in zip(runs, runs[1:]))


def test_a_later_target_means_fewer_tasks_and_a_cheaper_video_within_the_floor():
    model = cost_model.Model(json.loads(cost_model.PRICES.read_text()), cost_model.load_measurements())
    runs = [model.video(180, "1080p", False, 30, target) for target in (5, 10, 20, 60)]
    assert [r["tasks"] for r in runs] == [6, 6, 3, 1]  # 5 s: none meets it, the floor's 6
    assert all(a["total"] >= b["total"] for a, b in zip(runs, runs[1:]))
    # the 720p render needs fewer tasks for the same deadline than the 1080p one
    assert model.video(180, "720p", False)["tasks"] < model.video(180, "1080p", False)["tasks"]
