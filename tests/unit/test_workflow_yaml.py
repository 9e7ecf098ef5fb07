"""workflows/beat_sync.yaml against Google's Workflows JSON schema (the schemastore.org
workflows.json that workflows-emulator ships; a copy is in tests/fixtures), plus its own rules."""

from __future__ import annotations

import copy
import json
import re

import jsonschema
import yaml

from tests.conftest import ROOT

WORKFLOW = ROOT / "workflows" / "beat_sync.yaml"


def _load():
    return yaml.safe_load(WORKFLOW.read_text())


def _validator():
    schema = json.loads((ROOT / "tests" / "fixtures" / "workflows.schema.json").read_text())
    return jsonschema.Draft7Validator(schema)


def test_the_workflow_matches_googles_schema():
    errors = [f"{list(e.path)}: {e.message}" for e in _validator().iter_errors(_load())]
    assert errors == []


def test_the_schema_check_catches_a_broken_workflow():
    doc = copy.deepcopy(_load())
    doc["main"]["steps"][0]["init"]["asign"] = doc["main"]["steps"][0]["init"].pop("assign")
    assert list(_validator().iter_errors(doc))


def _steps(node, out):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "next" and isinstance(v, str):
                out["next"].append(v)
            _steps(v, out)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict) and len(item) == 1:
                out["names"].append(next(iter(item)))
            _steps(item, out)
    return out


def test_every_jump_has_a_target_and_calls_only_known_subworkflows():
    doc = _load()
    for name, sub in doc.items():
        found = _steps(sub["steps"], {"next": [], "names": []})
        missing = set(found["next"]) - set(found["names"]) - {"end", "break", "continue"}
        assert not missing, (name, missing)
    calls = set(re.findall(r"call: ([a-z_.]+)", WORKFLOW.read_text()))
    assert calls <= set(doc) | {"http.post", "sys.log", "sys.sleep"}


def test_no_urls_or_secrets_are_hard_coded():
    text = WORKFLOW.read_text()
    assert "https://" not in text and "http://" not in text.replace("http.post", "")
    assert 'sys.get_env("BEATSYNC_CONTROL_URL")' in text
