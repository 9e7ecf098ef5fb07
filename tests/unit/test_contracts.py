"""schemas/ is the source of truth: the pydantic models must accept the same documents."""

from __future__ import annotations

import json

import jsonschema
import pytest

from beatsync.contracts import BeatMap, EditConfig, EditDecisionList, api
from beatsync.jobs import Job
from tests.conftest import ROOT
from tests.schema_compare import differences

MODELS = {
    "beat_map.schema.json": BeatMap,
    "edit_config.schema.json": EditConfig,
    "edl.schema.json": EditDecisionList,
    "job.schema.json": Job,
    "analyze_request.schema.json": api.AnalyzeRequest,
    "create_request.schema.json": api.CreateRequest,
    "step_request.schema.json": api.StepRequest,
    "error.schema.json": api.ErrorResponse,
    "job_accepted.schema.json": api.JobAccepted,
    "upload.schema.json": api.Upload,
    "create_status.schema.json": api.CreateStatus,
    "analyze_status.schema.json": api.AnalyzeStatus,
    "cancel_response.schema.json": api.CancelResponse,
    "job_list.schema.json": api.JobList,
    "job_logs.schema.json": api.JobLogs,
    "presets.schema.json": api.PresetList,
    "transitions.schema.json": api.TransitionList,
    "health.schema.json": api.Health,
    "service_info.schema.json": api.ServiceInfo,
    "webhook_event.schema.json": api.WebhookEvent,
    "step_response.schema.json": api.StepResponse,
    "daily_stats.schema.json": api.StatsResponse,
    "pubsub_push.schema.json": api.PubSubPush,
    "pubsub_push_result.schema.json": api.PubSubPushResult,
}


def _mode(filename: str) -> str:
    # requests are checked as pydantic validates them (defaults optional), the rest as it writes them
    return "validation" if filename.endswith(("request.schema.json", "pubsub_push.schema.json")) else "serialization"


def test_every_schema_file_has_a_model():
    assert {p.name for p in (ROOT / "schemas").glob("*.schema.json")} == set(MODELS)


@pytest.mark.parametrize("filename", sorted(MODELS))
def test_model_matches_schema_file(filename):
    schema = json.loads((ROOT / "schemas" / filename).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    diff = differences(schema, MODELS[filename].model_json_schema(mode=_mode(filename)))
    assert diff == [], "\n".join(diff)


def test_drift_is_detected():
    schema = json.loads((ROOT / "schemas" / "beat_map.schema.json").read_text())
    schema["$defs"]["Beat"]["properties"]["strength"]["maximum"] = 2
    assert any("strength" in d for d in differences(schema, BeatMap.model_json_schema(mode="serialization")))
    del schema["properties"]["tempo"]
    assert any("tempo" in d for d in differences(schema, BeatMap.model_json_schema(mode="serialization")))


def test_analysis_output_validates_against_schema():
    import io

    from beatsync.analysis import analyze
    from beatsync.analysis.synth import click_track, encode_wav

    y, _ = click_track(120.0, 8.0, 44100)
    bm = analyze(io.BytesIO(encode_wav(y, 44100)), "librosa")
    schema = json.loads((ROOT / "schemas" / "beat_map.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(json.loads(bm.to_json()))
