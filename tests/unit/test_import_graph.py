"""The import graph of ``src/beatsync``, read with ``ast`` (imports at module level, inside functions
and under ``if TYPE_CHECKING:`` all count): no cycle, ``bootstrap`` only in entry points, and the
layering entry points -> http -> jobs.service -> jobs.lifecycle / jobs.steps -> ports -> core ->
contracts / errors.

Entry points: ``functions/*/main.py`` (outside the package) and, inside it, ``beatsync.cli`` (the
command line, which also runs ``beatsync serve`` and the compose job) and ``beatsync.__main__``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "beatsync"
ENTRY_POINTS = {"beatsync.cli", "beatsync.__main__"}


# -- the checker ----------------------------------------------------------------------------------

def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(name: str, source: str, is_package: bool, known: set[str]) -> set[str]:
    """Every beatsync module ``name`` imports, wherever the import statement is. ``from . import x``
    counts ``pkg.x`` when that is a module, else ``pkg``."""
    out: set[str] = set()
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{alias.name}" if f"{mod}.{alias.name}" in known else mod for alias in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:  # `import beatsync.jobs.x.y` names the deepest known module
                t = t.rpartition(".")[0]
            if t and t != name and (t == PACKAGE or t.startswith(PACKAGE + ".")):
                out.add(t)
    return out


def graph(sources: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """``{module: (source, is_package)}`` -> ``{module: imported beatsync modules}``."""
    known = set(sources)
    return {name: imports_of(name, src, pkg, known) for name, (src, pkg) in sources.items()}


def package_sources(root: Path = SRC) -> dict[str, tuple[str, bool]]:
    return {module_name(root, p): (p.read_text(), p.name == "__init__.py")
            for p in sorted((root / PACKAGE).rglob("*.py"))}


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    """One cycle ``[a, b, ..., a]``, or None (a package's ``__init__`` counts as the module ``pkg``)."""
    def edges(m):
        return sorted(g.get(m, ()))

    state: dict[str, int] = {}
    for start in sorted(g):
        if state.get(start):
            continue
        stack = [(start, iter(edges(start)))]
        path = [start]
        state[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                path.pop()
                state[node] = 2
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, iter(edges(nxt))))
    return None


def importers(g: dict[str, set[str]], target: str) -> set[str]:
    return {m for m, deps in g.items() if target in deps}


def under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


# -- the checker can fail -------------------------------------------------------------------------

def test_checker_finds_a_cycle_hidden_in_a_function_and_under_type_checking():
    sources = {
        "beatsync": ("", True),
        "beatsync.a": ("from . import b\n", False),
        "beatsync.b": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .c import X\n", False),
        "beatsync.c": ("def f():\n    from .a import g\n    return g\n", False),
        "beatsync.d": ("import beatsync.a\n", False),
    }
    g = graph(sources)
    assert g["beatsync.a"] == {"beatsync.b"}
    assert g["beatsync.b"] == {"beatsync.c"}
    assert g["beatsync.c"] == {"beatsync.a"}
    assert g["beatsync.d"] == {"beatsync.a"}
    assert find_cycle(g) == ["beatsync.a", "beatsync.b", "beatsync.c", "beatsync.a"]
    sources["beatsync.c"] = ("def f():\n    import json\n", False)
    assert find_cycle(graph(sources)) is None


def test_checker_counts_a_cycle_through_a_package_init():
    """settings -> analysis (its ``__init__``) -> analysis._libs -> settings is a cycle."""
    sources = {
        "beatsync": ("", True),
        "beatsync.settings": ("def f():\n    from .analysis import check\n", False),
        "beatsync.analysis": ("from ._libs import x\n", True),
        "beatsync.analysis._libs": ("def g():\n    from ..settings import Settings\n", False),
    }
    assert find_cycle(graph(sources)) == ["beatsync.analysis", "beatsync.analysis._libs", "beatsync.settings",
                                          "beatsync.analysis"]


def test_checker_resolves_relative_imports_in_subpackages():
    sources = {
        "beatsync": ("", True),
        "beatsync.jobs": ("from .service import x\n", True),
        "beatsync.jobs.service": ("from ..http import app\nfrom . import steps\n", False),
        "beatsync.jobs.steps": ("from .. import errors\n", False),
        "beatsync.http": ("", True),
        "beatsync.http.app": ("", False),
        "beatsync.errors": ("", False),
    }
    g = graph(sources)
    assert g["beatsync.jobs"] == {"beatsync.jobs.service"}
    assert g["beatsync.jobs.service"] == {"beatsync.http.app", "beatsync.jobs.steps"}
    assert g["beatsync.jobs.steps"] == {"beatsync.errors"}
    assert importers(g, "beatsync.http.app") == {"beatsync.jobs.service"}


# -- the package ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def g() -> dict[str, set[str]]:
    return graph(package_sources())


def test_the_graph_is_read(g):
    assert "beatsync.jobs.service" in g and "beatsync.jobs.lifecycle" in g
    assert "beatsync.jobs.lifecycle" in g["beatsync.jobs.steps"]


def test_no_cycle_among_beatsync_modules(g):
    assert find_cycle(g) is None, " -> ".join(find_cycle(g))


def test_bootstrap_is_imported_only_by_entry_points(g):
    assert importers(g, "beatsync.bootstrap") <= ENTRY_POINTS
    for main in sorted((SRC.parent / "functions").glob("*/main.py")):
        deps = imports_of("main", main.read_text(), False, set(g))
        assert deps, main  # the adapters do use the package (the check below reads them)


def test_jobs_never_import_the_service_or_http(g):
    lower = ("beatsync.jobs.steps", "beatsync.jobs.parallel", "beatsync.jobs.storage", "beatsync.jobs.lifecycle",
             "beatsync.jobs.inputs", "beatsync.jobs.views", "beatsync.jobs.model")
    for m in lower:
        assert "beatsync.jobs.service" not in g[m], m
    for m in g:
        if under(m, "beatsync.jobs"):
            assert not any(under(d, "beatsync.http") for d in g[m]), (m, g[m])
    # lifecycle is below steps and parallel
    assert not {"beatsync.jobs.steps", "beatsync.jobs.parallel"} & g["beatsync.jobs.lifecycle"]


def test_contracts_and_errors_import_only_each_other(g):
    for m, deps in g.items():
        if under(m, "beatsync.contracts") or m == "beatsync.errors":
            bad = {d for d in deps if not (under(d, "beatsync.contracts") or d in ("beatsync.errors", PACKAGE))}
            assert not bad, (m, bad)


def test_lower_layers_do_not_reach_up(g):
    """ports and the core (analysis, render, editing, adapters, fetch, settings, keys...) never import
    the jobs, the HTTP layer or the command line; the job record itself (``jobs.model``, what the
    JobStore port stores) is data, below the ports."""
    upper = ("beatsync.jobs", "beatsync.http", "beatsync.cli", "beatsync.bootstrap")
    lower = [m for m in g if m in ("beatsync.ports", "beatsync.fetch", "beatsync.settings", "beatsync.container",
                                   "beatsync.keys", "beatsync.joblog", "beatsync.signing", "beatsync.media")
             or any(under(m, p) for p in ("beatsync.analysis", "beatsync.render", "beatsync.editing",
                                          "beatsync.adapters"))]
    for m in lower:
        bad = {d for d in g[m] if any(under(d, u) for u in upper) and d != "beatsync.jobs.model"}
        assert not bad, (m, bad)
    assert not {d for d in g["beatsync.jobs.model"] if not (under(d, "beatsync.contracts") or d == "beatsync.errors")}


# -- the blob-key layout lives in beatsync/keys.py --------------------------------------------------

KEY_PREFIXES = ("inputs/", "outputs/", "temp/", "cache/")


def spelled_keys(source: str) -> list[str]:
    """String constants and f-string heads that start a blob key (docstrings and comments aside)."""
    tree = ast.parse(source)
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    docstrings |= {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
            head = node.values[0].value
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            head = node.value
        else:
            continue
        if isinstance(head, str) and head.startswith(KEY_PREFIXES):
            found.append(head)
    return found


def test_the_key_checker_sees_an_f_string_key_and_ignores_docstrings():
    src = 'def f(j):\n    """Writes ``outputs/{id}/x``."""\n    return f"outputs/{j}/result.json", "temp/"\n'
    assert spelled_keys(src) == ["outputs/", "temp/"]


def test_blob_keys_are_spelled_only_in_keys_py():
    spelled = {name: keys for name, (src, _) in package_sources().items()
               if name != "beatsync.keys" and (keys := spelled_keys(src))}
    assert spelled == {}
