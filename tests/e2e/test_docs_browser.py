"""/docs and /redoc in a real browser: headless Chromium (Debian's `chromium`, skipped where it is not
installed) opens the pages from `beatsync serve`, with their own Content-Security-Policy; Swagger UI must
render every documented operation and the Authorize button, without a warning, and ReDoc every operation."""

from __future__ import annotations

import re
import shutil
import subprocess

import httpx
import pytest

from tests.servers import Serve


def test_swagger_ui_renders_every_operation(tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    serve = Serve(tmp_path / "data", {})
    try:
        doc = httpx.get(f"{serve.url}/openapi.json", timeout=10).json()
        dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000",
                              "--dump-dom", f"{serve.url}/docs"], capture_output=True, text=True, timeout=120).stdout
    finally:
        serve.stop()
    rendered = set(re.findall(r'class="opblock-summary-path" data-path="([^"]+)"', dom))
    expected = set(doc["paths"]) | set(doc["webhooks"])  # Swagger UI lists a webhook by its name
    assert rendered == expected, expected ^ rendered
    assert "Authorize" in dom  # the bearer security scheme
    # no error or version banner ("Warning" alone would match the EditWarning schema)
    assert "errors-wrapper" not in dom and "version-pragma" not in dom and "Unable to render" not in dom


def test_redoc_renders_every_operation(tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    serve = Serve(tmp_path / "data", {})
    try:
        doc = httpx.get(f"{serve.url}/openapi.json", timeout=10).json()
        dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000",
                              "--dump-dom", f"{serve.url}/redoc"], capture_output=True, text=True, timeout=120).stdout
    finally:
        serve.stop()
    rendered = set(re.findall(r'id="operation/([^"]+)"', dom))
    expected = {op["operationId"] for item in doc["paths"].values() for op in item.values()}
    assert rendered == expected, expected ^ rendered
    assert "jobEnded" in dom and "Something went wrong" not in dom  # the webhook; no ReDoc error page
