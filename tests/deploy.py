"""The deployment as Terraform describes it, read with python-hcl2: resources, the URL map's route
table (and a router that applies it the way the load balancer does), the route groups each
function serves, and each component's environment and grants. Used by the unit tests of the
deployment and by the deployment rehearsal (tests/e2e/test_deployment.py)."""

from __future__ import annotations

import ast
import re
from functools import lru_cache

import hcl2

from tests.conftest import ROOT

TF = ROOT / "terraform"


def _clean(node):
    """python-hcl2 8 keeps string quotes and marks blocks; strip both."""
    if isinstance(node, dict):
        return {_clean(k): _clean(v) for k, v in node.items() if k != "__is_block__"}
    if isinstance(node, list):
        return [_clean(v) for v in node]
    if isinstance(node, str) and len(node) >= 2 and node[0] == node[-1] == '"':
        return node[1:-1]
    return node


@lru_cache(maxsize=None)
def parsed() -> dict[str, dict]:
    out = {}
    for path in sorted(TF.glob("*.tf")):
        with open(path) as fh:
            out[path.name] = _clean(hcl2.load(fh))
    return out


def blocks(kind: str) -> list[dict]:
    return [b for doc in parsed().values() for b in doc.get(kind, [])]


def resources(rtype: str) -> dict[str, dict]:
    out = {}
    for block in blocks("resource"):
        for t, named in block.items():
            if t == rtype:
                out.update(named)
    return out


def local(name: str):
    (value,) = [b[name] for b in blocks("locals") if name in b]
    return value


def variables() -> dict[str, dict]:
    return {k: v for b in blocks("variable") for k, v in b.items()}


# -- the URL map ------------------------------------------------------------------------------------

_BACKEND = re.compile(r'^\$\{google_compute_backend_service\.functions\["(\w+)"\]\.id\}$')


def backend_function(ref: str) -> str:
    """The function behind a backend-service reference of the URL map (via its serverless NEG)."""
    m = _BACKEND.match(ref)
    assert m, f"not a function backend: {ref}"
    key = m.group(1)
    neg = resources("google_compute_region_network_endpoint_group")["functions"]
    assert neg["network_endpoint_type"] == "SERVERLESS" and neg["for_each"] == "${local.public_functions}"
    backend = resources("google_compute_backend_service")["functions"]
    assert backend["backend"][0]["group"] == '${google_compute_region_network_endpoint_group.functions[each.key].id}'
    target = local("public_functions")[key]
    m = re.fullmatch(r"\$\{google_cloudfunctions2_function\.(\w+)\.name\}", target)
    assert m, target
    return m.group(1)


def route_table() -> tuple[str, list[tuple[str, str]]]:
    """``(default function, [(path pattern, function)])`` of the API URL map's path matcher."""
    url_map = resources("google_compute_url_map")["api"]
    (matcher,) = url_map["path_matcher"]
    (host_rule,) = url_map["host_rule"]
    assert host_rule["path_matcher"] == matcher["name"]
    rules = [(p, backend_function(rule["service"])) for rule in matcher.get("path_rule", []) for p in rule["paths"]]
    return backend_function(matcher["default_service"]), rules


def route(path: str, table=None) -> str:
    """The function the load balancer sends ``path`` to: the longest matching path rule (a rule
    ending in ``/*`` matches paths under that prefix, not the prefix without its slash), else the
    path matcher's default."""
    default, rules = table or route_table()
    best, best_len = default, -1
    for pattern, fn in rules:
        if pattern.endswith("/*"):
            ok = path.startswith(pattern[:-1])
        else:
            ok = path == pattern
        if ok and len(pattern) > best_len:
            best, best_len = fn, len(pattern)
    return best


# -- what each function serves ---------------------------------------------------------------------

def function_groups(name: str) -> tuple[str, ...]:
    """``ROUTES`` of ``functions/NAME/main.py`` (the route groups it serves), read without importing it."""
    tree = ast.parse((ROOT / "functions" / name / "main.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["ROUTES"]:
            return tuple(ast.literal_eval(node.value))
    raise AssertionError(f"functions/{name}/main.py has no ROUTES")


def serves(groups: tuple[str, ...], method: str, path: str) -> bool:
    from beatsync.http.app import _COMPILED

    return any(g in groups and m == method and p.match(path) for g, m, p, _ in _COMPILED)


def openapi_operations() -> list[tuple[str, str]]:
    """Every public ``(METHOD, concrete path)`` of the OpenAPI document."""
    from beatsync.contracts.schemas import openapi

    ops = []
    for template, item in openapi()["paths"].items():
        path = re.sub(r"\{[^}]+\}", "job-0123456789abcdef", template)
        ops += [(m.upper(), path) for m in item if m in ("get", "post", "put", "patch", "delete")]
    return ops
