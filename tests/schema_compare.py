"""Compare a JSON Schema file with the schema pydantic generates for a model.

The file is the source of truth; this checks that both accept the same shapes: the same
properties, required sets, types, enums/consts, bounds and patterns, recursively.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"

KEYWORDS = ("type", "enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "pattern",
            "minLength", "maxLength", "minItems", "maxItems")


def _resolve(node: dict, root: dict) -> tuple[dict, dict]:
    while "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#"):  # another file of schemas/, e.g. "beat_map.schema.json"
            file, _, ref = ref.partition("#")
            root = json.loads((SCHEMAS / file).read_text())
            ref = "#" + ref
        target: Any = root
        for part in ref[2:].split("/") if ref != "#" else []:
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node, root


def _norm(node: dict, root: dict) -> dict:
    node, root = _resolve(node, root)
    if "anyOf" in node:
        return {"anyOf": sorted((_norm(n, root) for n in node["anyOf"]), key=repr)}
    out: dict[str, Any] = {}
    for k in KEYWORDS:
        if k in node:
            out[k] = sorted(node[k]) if k == "enum" else node[k]
    if "const" in out and "type" not in out:
        out["type"] = {bool: "boolean", int: "integer", float: "number", str: "string"}[type(out["const"])]
    if out.get("type") == "object" or "properties" in node:
        out["type"] = "object"
        out["properties"] = {k: _norm(v, root) for k, v in node.get("properties", {}).items()}
        out["required"] = sorted(node.get("required", []))
        out["additionalProperties"] = node.get("additionalProperties", True) is not False
    if node.get("type") == "array" and "items" in node:
        out["items"] = _norm(node["items"], root)
    return out


def differences(file_schema: dict, model_schema: dict, path: str = "$") -> list[str]:
    a, b = _norm(file_schema, file_schema), _norm(model_schema, model_schema)
    return _diff(a, b, path)


def _diff(a: Any, b: Any, path: str) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in a:
                out.append(f"{path}.{k}: only in the model ({b[k]!r})")
            elif k not in b:
                out.append(f"{path}.{k}: only in the schema file ({a[k]!r})")
            else:
                out.extend(_diff(a[k], b[k], f"{path}.{k}"))
        return out
    if isinstance(a, float) or isinstance(b, float):
        return [] if a == b else [f"{path}: schema file {a!r} != model {b!r}"]
    return [] if a == b else [f"{path}: schema file {a!r} != model {b!r}"]
