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
    """Every public ``(METHOD, concrete path)`` of the OpenAPI document that the deployment serves
    (``x-beatsync-local-only`` operations, the local download links, are V4 signed GCS URLs there)."""
    from beatsync.contracts.schemas import openapi

    ops = []
    for template, item in openapi()["paths"].items():
        for m, op in item.items():
            if m not in ("get", "post", "put", "patch", "delete") or op.get("x-beatsync-local-only"):
                continue
            # a path parameter with a list of values takes its first; any other a job-id-like value
            enums = {p["name"]: p["schema"]["enum"][0] for p in op.get("parameters", [])
                     if p.get("in") == "path" and "enum" in p.get("schema", {})}
            path = re.sub(r"\{([^}]+)\}", lambda g: enums.get(g.group(1), "job-0123456789abcdef"), template)
            ops.append((m.upper(), path))
    return ops


# -- the grants ------------------------------------------------------------------------------------

def _literal_set(expr: str) -> list:
    m = re.fullmatch(r'\$\{toset\(\[(.*)\]\)\}', expr.strip(), re.S)
    assert m, expr
    return [s.strip().strip('"') for s in m.group(1).split(",") if s.strip()]


def _instances(spec: dict) -> list[tuple[str | None, object]]:
    """``(each.key, each.value)`` of a resource's instances (one ``(None, None)`` without for_each)."""
    fe = spec.get("for_each")
    if fe is None:
        return [(None, None)]
    m = re.fullmatch(r"\$\{local\.(\w+)\}", fe)
    value = local(m.group(1)) if m else fe
    if isinstance(value, str):
        value = _literal_set(value)
    if isinstance(value, dict):
        return list(value.items())
    return [(v, v) for v in value]


def _each(expr: str, key, value):
    expr = expr.strip()
    if expr.startswith('"'):
        return expr.strip('"')
    if expr == "each.key":
        return key
    if expr == "each.value":
        return value
    m = re.fullmatch(r"each\.value\.(\w+)", expr)
    assert m and isinstance(value, dict), expr
    return value[m.group(1)]


def _subst(text: str, key, value) -> str:
    """``text`` with ``${each.*}`` interpolations replaced (anything else is left as it is)."""
    return re.sub(r"\$\{(each\.[\w.]+)\}", lambda m: str(_each(m.group(1), key, value)), text)


def _account(ref: str, key, value) -> str:
    m = re.search(r"google_service_account\.this\[(.+?)\]\.(email|name|id)", ref)
    if m is None:  # an account of its own (the build pipeline's: google_service_account.build)
        m = re.search(r"google_service_account\.(\w+)\.(email|name|id)", ref)
        assert m and m.group(1) != "this", ref
        return m.group(1)
    return _each(m.group(1), key, value)


def _target(rtype: str, spec: dict, key, value) -> tuple[str, str | None]:
    """What a grant is on, as the permission test names it, and an object-name prefix (IAM condition)."""
    if rtype == "google_project_iam_member":
        return "project", None
    if rtype == "google_storage_bucket_iam_member":
        assert spec["bucket"] == "${google_storage_bucket.media.name}", spec["bucket"]
        prefix = None
        if spec.get("condition"):
            expr = _subst(spec["condition"][0]["expression"], key, value)
            m = re.search(r"/objects/([^\"\\]*)", expr)
            assert m and expr.count("startsWith") == 1, expr
            prefix = m.group(1)
        return "bucket", prefix
    if rtype == "google_service_account_iam_member":
        return "account:" + _account(spec["service_account_id"], key, value), None
    if rtype == "google_cloud_tasks_queue_iam_member":
        assert spec["name"] == "${google_cloud_tasks_queue.webhooks.name}"
        return "queue", None
    if rtype == "google_secret_manager_secret_iam_member":
        m = re.fullmatch(r"\$\{google_secret_manager_secret\.(\w+)\.secret_id\}", spec["secret_id"])
        return "secret:" + m.group(1), None
    if rtype == "google_cloud_run_v2_service_iam_member":
        m = re.fullmatch(r"\$\{google_cloud_run_v2_service\.(\w+)\.name\}", spec["name"])
        return "service:" + m.group(1), None
    if rtype == "google_cloud_run_v2_job_iam_member":
        m = re.fullmatch(r"\$\{google_cloud_run_v2_job\.(\w+)\.name\}", spec["name"])
        return "job:" + m.group(1), None
    if rtype == "google_pubsub_topic_iam_member":
        m = re.fullmatch(r"\$\{google_pubsub_topic\.(\w+)\.(name|id)\}", spec["topic"])
        assert m, spec["topic"]
        return "topic:" + m.group(1), None
    if rtype == "google_pubsub_subscription_iam_member":
        m = re.fullmatch(r"\$\{google_pubsub_subscription\.(\w+)\.(name|id)\}", spec["subscription"])
        assert m, spec["subscription"]
        return "subscription:" + m.group(1), None
    if rtype == "google_artifact_registry_repository_iam_member":
        repo = _subst(spec["repository"], key, value)
        m = re.fullmatch(r"\$\{google_artifact_registry_repository\.(\w+)\.(repository_id|name)\}", repo)
        assert m, repo
        return "repository:" + m.group(1), None
    raise AssertionError(f"unknown grant type {rtype}")


#: members of grants that are not a component's service account, as Terraform writes them: their
#: grants give the components nothing, so the permission test leaves them out (like ``allUsers``)
NOT_COMPONENTS = {
    # Pub/Sub's service agent: mints the push subscription's OIDC tokens, forwards and acknowledges
    # dead letters (terraform/pubsub.tf; tests/unit/test_terraform_pubsub.py checks those grants)
    "${local.pubsub_agent}",
}
#: ``for_each`` sets of members the operator supplies (the platform's apps that publish requests
#: to the intake topic): not components either
CALLER_MEMBERS = {"${toset(var.pubsub_publisher_members)}"}


def grants() -> list[dict]:
    """Every IAM grant Terraform makes to a component's service account, one per instance:
    ``{"id", "account", "role", "on", "prefix"}`` (``on``: ``project``, ``bucket``, ``queue``,
    ``secret:NAME``, ``account:NAME``, ``service:NAME``, ``job:NAME``, ``repository:NAME``,
    ``topic:NAME``, ``subscription:NAME``). Grants to other members (the public functions'
    ``allUsers`` invoker, Pub/Sub's service agent, the operator's publisher members) are left
    out: they give the components nothing."""
    out = []
    for block in blocks("resource"):
        for rtype, named in block.items():
            if not rtype.endswith("_iam_member"):
                continue
            for name, spec in named.items():
                if spec["member"] in NOT_COMPONENTS:
                    continue
                if spec.get("for_each") in CALLER_MEMBERS:
                    assert spec["member"] == "${each.value}", (name, spec["member"])
                    continue
                for key, value in _instances(spec):
                    member = _subst(spec["member"], key, value)
                    ref = re.fullmatch(r"\$\{local\.(\w+)\}", member)
                    if ref:
                        member = local(ref.group(1))
                    if member in ("allUsers", "allAuthenticatedUsers"):
                        continue
                    assert member.startswith("serviceAccount:"), member
                    on, prefix = _target(rtype, spec, key, value)
                    out.append({"id": f"{rtype}.{name}" + (f"[{key}]" if key is not None else ""),
                                "account": _account(member, key, value), "role": _subst(spec["role"], key, value),
                                "on": on, "prefix": prefix})
    return out


# -- the components --------------------------------------------------------------------------------

def components() -> dict[str, dict]:
    """Each deployed component: its service account, the secrets mounted into it, and its
    environment (literal values only; references stay as written)."""
    fns = resources("google_cloudfunctions2_function")
    out = {}
    for name, fn in fns.items():
        cfg = fn["service_config"][0]
        out[name] = {"account": _account(cfg["service_account_email"], None, None),
                     "secrets": [_secret(s["secret"]) for s in cfg.get("secret_environment_variables", [])],
                     "env": _env_expr(cfg["environment_variables"])}
    analyze = resources("google_cloud_run_v2_service")["analyze"]["template"][0]
    out["analyze"] = {"account": _account(analyze["service_account"], None, None),
                      "secrets": _container_secrets(analyze["containers"][0]),
                      "env": _env_expr(analyze["containers"][0]["dynamic"][0]["env"]["for_each"])}
    compose = resources("google_cloud_run_v2_job")["compose"]["template"][0]["template"][0]
    out["compose"] = {"account": _account(compose["service_account"], None, None),
                      "secrets": _container_secrets(compose["containers"][0]),
                      "env": _env_expr(compose["containers"][0]["dynamic"][0]["env"]["for_each"])}
    wf = resources("google_workflows_workflow")["beat_sync"]
    out["workflow"] = {"account": _account(wf["service_account"], None, None), "secrets": [],
                       "env": dict(wf["user_env_vars"])}
    sweep = resources("google_cloud_scheduler_job").get("end_pending_sweep")
    if sweep is not None:  # the scheduled end_pending sweep calls the analyze service as its own account
        (token,) = sweep["http_target"][0]["oidc_token"]
        out["scheduler"] = {"account": _account(token["service_account_email"], None, None), "secrets": [],
                            "env": {}}
    trigger = resources("google_cloudbuild_trigger").get("main")
    if trigger is not None:  # the pipeline (cloudbuild.yaml) runs as its own account
        out["build"] = {"account": _account(trigger["service_account"], None, None), "secrets": [], "env": {}}
    return out


def _secret(ref: str) -> str:
    m = re.fullmatch(r"\$\{google_secret_manager_secret\.(\w+)\.secret_id\}", ref)
    assert m, ref
    return "secret:" + m.group(1)


def _container_secrets(container: dict) -> list[str]:
    return [_secret(e["value_source"][0]["secret_key_ref"][0]["secret"]) for e in container.get("env", [])
            if e.get("value_source")]


def _env_expr(expr) -> dict[str, str]:
    """The environment a ``merge(local.a, local.b, {...})`` / ``local.x`` expression gives, one level of
    locals deep (values that reference resources stay as their expressions)."""
    if isinstance(expr, dict):
        return dict(expr)
    expr = expr.strip()
    m = re.fullmatch(r"\$\{local\.(\w+)\}", expr)
    if m:
        return _env_expr(local(m.group(1)))
    m = re.fullmatch(r"\$\{merge\((.*)\)\}", expr, re.S)
    assert m, expr
    env: dict[str, str] = {}
    for part in _split_args(m.group(1)):
        part = part.strip()
        if part.startswith("local."):
            env.update(_env_expr("${" + part + "}"))
        else:
            body = part.strip().removeprefix("{").removesuffix("}")
            for item in _split_args(body):
                k, _, v = item.partition("=")
                v = v.strip()
                env[k.strip()] = v[1:-1] if v.startswith('"') and v.endswith('"') else "${" + v + "}"
    return env


def _split_args(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return parts + ([cur] if cur.strip() else [])


def resolve(expr: str, values: dict) -> str:
    """A Terraform value of a component's environment, resolved with ``values`` (``{"var.x": ...,
    "local.y": ..., "resource.attr": ...}``). Anything unknown fails (a new setting must be given a
    value by the caller)."""
    if "${" not in expr:
        return expr
    m = re.fullmatch(r"\$\{(.+)\}", expr)
    inner = m.group(1).strip() if m else None
    if inner in values:
        return str(values[inner])
    if inner and (m2 := re.fullmatch(r"tostring\((.+)\)", inner)):
        return resolve("${" + m2.group(1) + "}", values)
    if inner and (m2 := re.fullmatch(r'join\(",", (.+)\)', inner)):
        return ",".join(values[m2.group(1)])
    if inner and (m2 := re.fullmatch(r'(\S+) \? "([^"]*)" : "([^"]*)"', inner)):  # a boolean variable
        return m2.group(2) if values[m2.group(1)] else m2.group(3)
    if inner and (m2 := re.fullmatch(r'length\((\S+)\) > 0 \? (\S+) : ""', inner)):  # set only with a list
        return str(values[m2.group(2)]) if len(values[m2.group(1)]) > 0 else ""
    out = re.sub(r"\$\{([^}]+)\}", lambda mm: str(values[mm.group(1).strip()]), expr)
    assert "${" not in out, expr
    return out
