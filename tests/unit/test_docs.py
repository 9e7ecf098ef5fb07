"""The README and docs/ stay true to the code: links resolve, settings exist and are all documented,
the CLI they show exists, and the README stays short."""

from __future__ import annotations

import re
import shlex
from dataclasses import fields
from pathlib import Path

import pytest

from beatsync.cli import build_parser
from beatsync.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
DOCS = [README, *PAGES]

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
SETTING = re.compile(r"\bBEATSYNC_[A-Z0-9_]+\b")
FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)
SPAN = re.compile(r"`([^`\n]+)`")
# `beatsync SUB`, `.venv/bin/beatsync SUB`, `python -m beatsync SUB`: not `src/beatsync/`, `beatsync.cli`
COMMAND = re.compile(r"(?:^|(?<=[\s/(]))beatsync[ \t]+([a-z][a-z0-9-]*)")
SHELL_END = re.compile(r"\s(?:\||\|\||&&|;|&|#|>|<)(?=\s|$)")


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _code(text: str) -> list[str]:
    """The code a page shows: each fenced block's lines (backslash continuations joined) and each inline span."""
    chunks: list[str] = []
    for block in FENCE.finditer(text):
        body = "\n".join(block.group(0).splitlines()[1:-1])
        chunks.extend(body.replace("\\\n", " ").splitlines())
    chunks.extend(SPAN.findall(FENCE.sub("", text)))
    return chunks


def _settings_names() -> set[str]:
    return {"BEATSYNC_" + f.name.upper() for f in fields(Settings)}


def _workflow_names() -> set[str]:
    text = (ROOT / "workflows" / "beat_sync.yaml").read_text()
    return set(re.findall(r'sys\.get_env\("(BEATSYNC_[A-Z0-9_]+)"\)', text))


def _test_tool_names() -> set[str]:
    """Variables the tests and benchmarks themselves read (where the shared media lives)."""
    names: set[str] = set()
    for path in [ROOT / "tests" / "conftest.py", *sorted((ROOT / "benchmarks").glob("*.py"))]:
        names |= set(re.findall(r'environ(?:\.get\(|\[)"(BEATSYNC_[A-Z0-9_]+)"', path.read_text()))
    return names


@pytest.mark.parametrize("page", DOCS, ids=_rel)
def test_relative_links_point_to_existing_files(page: Path) -> None:
    text = FENCE.sub("", page.read_text())
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL or an anchor on the same page
        path = target.split("#", 1)[0]
        if not (page.parent / path).exists():
            broken.append(target)
    assert not broken, f"{_rel(page)} links to files that do not exist: {broken}"


def test_readme_links_every_docs_page() -> None:
    linked = {(ROOT / t.split("#", 1)[0]).resolve() for t in LINK.findall(README.read_text())}
    missing = [_rel(p) for p in PAGES if p.resolve() not in linked]
    assert not missing, f"README.md does not link {missing}"


def test_every_beatsync_variable_mentioned_is_real() -> None:
    known = _settings_names() | _workflow_names() | _test_tool_names()
    unknown = {f"{_rel(p)}: {name}" for p in DOCS for name in SETTING.findall(p.read_text()) if name not in known}
    assert not unknown, f"BEATSYNC_* names that no setting, workflow or test tool reads: {sorted(unknown)}"


def test_every_setting_is_in_the_service_settings_table() -> None:
    rows = [line for line in (ROOT / "docs" / "service.md").read_text().splitlines() if line.startswith("|")]
    in_table = {name for line in rows for name in SETTING.findall(line.split("|")[1])}
    missing = sorted(_settings_names() - in_table)
    assert not missing, f"docs/service.md's settings table lacks {missing}"


def _subcommands() -> dict[str, set[str]]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return {name: {opt for a in sub._actions for opt in a.option_strings}
            for name, sub in action.choices.items()}


def test_every_cli_command_and_flag_shown_exists() -> None:
    subs = _subcommands()
    top = {opt for a in build_parser()._actions for opt in a.option_strings}
    wrong: list[str] = []
    seen = 0
    for page in DOCS:
        for chunk in _code(page.read_text()):
            for match in COMMAND.finditer(chunk):
                sub = match.group(1)
                rest = SHELL_END.split(chunk[match.end():], 1)[0]
                if sub.startswith("-") or sub not in subs:
                    wrong.append(f"{_rel(page)}: beatsync {sub}")
                    continue
                seen += 1
                try:
                    words = shlex.split(rest)
                except ValueError:
                    words = rest.split()
                for word in words:
                    flag = word.split("=", 1)[0]
                    if re.fullmatch(r"--?[a-z][a-z0-9-]*", flag) and flag not in subs[sub] | top:
                        wrong.append(f"{_rel(page)}: beatsync {sub} {flag}")
    assert seen >= 5, "the README and docs show the CLI; the scan found too few commands"
    assert not wrong, f"commands or flags the CLI does not have: {wrong}"


def test_readme_is_short() -> None:
    size = len(README.read_text())
    assert size < 10_000, f"README.md is {size} characters; keep it under 10,000 and move the rest to docs/"


def test_the_readme_says_each_presets_frame_rate():
    """`cinematic` renders at 24 fps: the README's preset line says so (from the presets, one place)."""
    from beatsync.contracts import EditConfig
    from beatsync.editing.presets import PRESETS

    line = " ".join(README.read_text().split("**Another preset**", 1)[1].split("```", 1)[0].split())
    default = EditConfig.model_fields["output_fps"].default
    for name, preset in PRESETS.items():
        fps = preset["config"].get("output_fps", default)
        said = re.search(rf"`{name}` \(([^)]*)\)", line).group(1)
        assert f"{fps} fps" in said or (fps == default and f"at {default} fps" in line), (name, said)


def test_seed_contract_names_every_known_difference_and_deploy_md_agrees():
    """docs/seed-contract.md lists the differences from the seed a client notices; docs/deploy.md says which
    seed clients run unchanged and never that all of them do."""
    page = (ROOT / "docs" / "seed-contract.md").read_text()
    for needle in ("`{code, message, details}`", "whole status document", "409 `job_already_ended`",
                   "404 `job_not_found`", "`pending`", "`estimated_duration`", "`BEATSYNC_SYNC_WAIT` (20 s)",
                   "`degraded`", "Firestore", "`beatnet`", "401 `unauthenticated`", "X-Beatsync-User-Id"):
        assert needle in page, needle
    rows = re.findall(r"^\| (Option \d)[^|]*\| ([^|]+) \| ([^|]+) \|$", page, re.M)
    assert [(o, s.strip().split(":")[0].split(",")[0]) for o, _, s in rows] == [
        ("Option 1", "**one change**"), ("Option 2", "unchanged"), ("Option 3", "unchanged")]
    deploy = " ".join((ROOT / "docs" / "deploy.md").read_text().split())
    assert "use the seed's client code unchanged" not in deploy and "seed's clients then run" not in deploy
    assert "Option 1 (direct HTTP calls) needs one change" in deploy and "seed-contract.md" in deploy
