"""Headless Chromium for the page tests (/docs, /studio): Debian's `chromium`, which ./scripts/test
installs with apt-get, driven by Playwright (pip `playwright`, dev extra) through ``executable_path``
(Playwright's own browser download is not used). A missing browser fails the test: it is never skipped."""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: where the page tests write their screenshots (ignored by git)
SCREENSHOTS = ROOT / "out" / "screenshots"


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is not installed: ./scripts/test installs it (apt-get install chromium)")
    return path


@contextmanager
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(),
                              args=["--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required"])
        try:
            yield b
        finally:
            b.close()


def watch_console(page) -> list[str]:
    """The page's console errors and uncaught exceptions (a CSP violation is one), as they come."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    return problems
