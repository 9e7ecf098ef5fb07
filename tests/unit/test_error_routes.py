"""Errors in one place, each a documented status with a code.

- every error class is defined in ``beatsync.errors`` (other modules may re-export, never define one),
  with a code and an HTTP status from 400 to 599;
- every route of ``beatsync.http.app.ROUTES`` is walked: the errors its handler can raise (read with
  ``ast`` through the functions it calls in the package, plus what any container-backed route can
  meet: a store down, a missing job, a misconfigured server) map to statuses that the OpenAPI
  document lists for that route.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import beatsync
from beatsync import errors
from beatsync.contracts.schemas import openapi
from beatsync.http import app

pytestmark = pytest.mark.unit

SRC = Path(beatsync.__file__).parent
#: modules whose functions a route may call (the light path: nothing heavy is imported to read them)
WALKED = ("beatsync.http", "beatsync.jobs", "beatsync.fetch", "beatsync.signing", "beatsync.editing.presets",
          "beatsync.contracts.schemas")
#: what building the container can raise (bad settings): any route that uses the container
CONTAINER_ERRORS = {"Misconfigured"}
#: what the stores behind the API routes raise on any call (an outage, contention); a missing job or
#: blob is raised by name in the functions walked
STORE_ERRORS = {"StoreUnavailable"}


def error_classes() -> dict[str, type[errors.BeatsyncError]]:
    return {name: cls for name, cls in vars(errors).items()
            if inspect.isclass(cls) and issubclass(cls, errors.BeatsyncError)}


def test_every_error_class_has_a_code_and_an_error_status():
    classes = error_classes()
    assert len(classes) >= 25
    for name, cls in classes.items():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", cls.code), name
        assert 400 <= cls.http_status <= 599, name
    assert errors.MediaError("x", code="too_long").code == "too_long"
    with pytest.raises(ValueError):
        errors.MediaError("x", code="no_such_code")


def _modules():
    for info in pkgutil.walk_packages([str(SRC)], "beatsync."):
        yield info.name, Path(importlib.util.find_spec(info.name).origin)


def test_error_classes_are_defined_only_in_errors_py():
    """A class deriving from an error class anywhere but errors.py is a second home for errors."""
    names = set(error_classes()) | {"Exception", "RuntimeError", "ValueError"}
    defined = []
    for name, path in _modules():
        if name == "beatsync.errors":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
                if bases & names:
                    defined.append(f"{name}.{node.name}")
    assert defined == []


def test_the_error_checker_sees_a_class_defined_elsewhere(tmp_path):
    tree = ast.parse("from ..errors import BeatsyncError\nclass Oops(BeatsyncError):\n    code = 'oops'\n")
    assert [n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)
            and {b.id for b in n.bases} & set(error_classes())] == ["Oops"]


# -- what each route can raise ----------------------------------------------------------------------

class Index:
    """Top-level functions of the walked modules: what each raises and which functions it calls."""

    def __init__(self):
        self.funcs: dict[str, ast.FunctionDef] = {}
        self.scope: dict[str, dict[str, str]] = {}  # module -> local name -> qualified name
        for name, path in _modules():
            if not name.startswith(WALKED):
                continue
            tree = ast.parse(path.read_text())
            package = name if path.name == "__init__.py" else name.rpartition(".")[0]
            names: dict[str, str] = {}
            for node in ast.walk(tree):  # imports anywhere in the module (lazy ones included)
                if isinstance(node, ast.ImportFrom):
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
                    mod = ".".join(base + ([node.module] if node.module else []))
                    for a in node.names:
                        names[a.asname or a.name] = f"{mod}.{a.name}"
            for node in tree.body:
                if isinstance(node, ast.FunctionDef):
                    self.funcs[f"{name}.{node.name}"] = node
                    names[node.name] = f"{name}.{node.name}"
            self.scope[name] = names

    def resolve(self, module: str, node: ast.expr) -> str | None:
        names = self.scope[module]
        if isinstance(node, ast.Name):
            return names.get(node.id)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in names:
            return f"{names[node.value.id]}.{node.attr}"
        return None

    def raised(self, qualname: str) -> tuple[set[str], set[int]]:
        """Error class names and literal HttpError statuses raised by ``qualname`` and what it calls."""
        classes, statuses, seen, todo = set(), set(), set(), [qualname]
        while todo:
            q = todo.pop()
            if q in seen or q not in self.funcs:
                continue
            seen.add(q)
            module = q.rpartition(".")[0]
            shielded = _shielded_calls(self.funcs[q])
            for node in ast.walk(self.funcs[q]):
                if not isinstance(node, ast.Call):
                    continue
                target = self.resolve(module, node.func) or ""
                short = target.rpartition(".")[2]
                if short in error_classes():
                    classes.add(short)
                    if short == "HttpError" and node.args and isinstance(node.args[0], ast.Constant):
                        statuses.add(node.args[0].value)
                elif target in self.funcs and id(node) not in shielded:
                    todo.append(target)
                elif isinstance(node.func, ast.Name) and node.func.id == "getattr":
                    # _step(request, "run_analyze"): steps.<name>, resolved by the caller's constant
                    pass
                for arg in node.args:  # a function passed on (service.X(...) given steps.Y) counts too
                    t = self.resolve(module, arg) if isinstance(arg, (ast.Name, ast.Attribute)) else None
                    if t in self.funcs:
                        todo.append(t)
        return classes, statuses


def _shielded_calls(func: ast.FunctionDef) -> set[int]:
    """Calls made inside a ``try`` whose handler catches every project error (``except
    BeatsyncError``) without raising it again (no bare ``raise``, no ``raise <the caught name>``):
    what the called functions raise stops there (what the handler raises instead is seen where it
    is written)."""
    out = set()
    for t in ast.walk(func):
        if not isinstance(t, ast.Try):
            continue
        for h in t.handlers:
            types = h.type.elts if isinstance(h.type, ast.Tuple) else [h.type] if h.type is not None else []
            if "BeatsyncError" not in {x.id if isinstance(x, ast.Name) else getattr(x, "attr", "") for x in types}:
                continue
            reraises = any(isinstance(n, ast.Raise) and (n.exc is None or (
                isinstance(n.exc, ast.Name) and n.exc.id == h.name)) for n in ast.walk(h))
            if not reraises:
                out |= {id(n) for stmt in t.body for n in ast.walk(stmt) if isinstance(n, ast.Call)}
    return out


def route_statuses(index: Index, handler, group: str) -> set[int]:
    classes, statuses = index.raised(f"{handler.__module__}.{handler.__name__}")
    source = inspect.getsource(handler)
    if "get_container" in source or "caller(" in source or group in ("submit", "status"):
        classes |= CONTAINER_ERRORS
    if group in ("submit", "status", "pubsub", "analyze", "control"):
        classes |= STORE_ERRORS
    table = error_classes()
    return statuses | {table[c].http_status for c in classes if c != "HttpError"}


@pytest.fixture(scope="module")
def index() -> Index:
    return Index()


def _documented():
    doc = openapi()
    out = {}
    for path, item in doc["paths"].items():
        pattern = re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(path))
        for method, op in item.items():
            out[(method.upper(), pattern)] = {int(s) for s in op["responses"] if s.isdigit()}
    return out


def _doc_for(method: str, route_pattern: str, documented: dict):
    example = re.sub(r"\(\?P<[a-z_]+>[^)]*\)", "x", route_pattern).replace("\\.", ".")
    for (m, pattern), statuses in documented.items():
        if m == method and re.fullmatch(pattern, example):
            return statuses
    return None


def test_the_walk_finds_the_errors_of_a_route(index):
    classes, _ = index.raised("beatsync.http.app.post_create")
    assert {"InvalidRequest", "IdempotencyConflict", "RateLimited", "UrlNotAllowed"} <= classes
    classes, statuses = index.raised("beatsync.http.app.files")
    assert {403, 404} <= statuses
    classes, _ = index.raised("beatsync.http.app.delete_create")
    assert "JobAlreadyEnded" in classes
    # what a call inside `try: ... except BeatsyncError:` raises is caught there; the handler's own error counts
    classes, _ = index.raised("beatsync.http.auth._fetch_certs")
    assert "AuthUnavailable" in classes and "UrlNotAllowed" not in classes
    assert "UrlNotAllowed" in index.raised("beatsync.fetch.request")[0]
    # a handler that raises what it caught again shields nothing
    tree = ast.parse("def f():\n    try:\n        g()\n    except BeatsyncError as exc:\n        raise exc\n")
    assert _shielded_calls(tree.body[0]) == set()


def test_every_error_a_public_route_can_raise_is_a_documented_status(index):
    documented = _documented()
    missing, walked = [], 0
    for group, method, pattern, handler in app.ROUTES:
        statuses = _doc_for(method, pattern, documented)
        if statuses is None:
            assert group in ("analyze", "control"), f"{method} {pattern} is not in the OpenAPI document"
            continue  # the internal routes are for the orchestrator, not in the public document
        walked += 1
        for status in sorted(route_statuses(index, handler, group) - statuses):
            missing.append(f"{method} {pattern}: {status}")
    assert walked >= 15
    assert missing == []


def test_internal_routes_answer_only_error_statuses_with_codes(index):
    for group, method, pattern, handler in app.ROUTES:
        for status in route_statuses(index, handler, group):
            assert 400 <= status <= 599, (pattern, status)
