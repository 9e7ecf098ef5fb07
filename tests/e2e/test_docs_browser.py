"""/docs and /redoc in a real browser: headless Chromium (tests/browser.py) opens the pages from
`beatsync serve`, with their own Content-Security-Policy; Swagger UI must render every documented operation
and the Authorize button, without a warning or a console error, and ReDoc every operation."""

from __future__ import annotations

import re

import httpx

from tests.browser import browser, watch_console
from tests.servers import Serve


def test_swagger_ui_renders_every_operation(tmp_path):
    serve = Serve(tmp_path / "data", {})
    try:
        doc = httpx.get(f"{serve.url}/openapi.json", timeout=10).json()
        expected = set(doc["paths"]) | set(doc["webhooks"])  # Swagger UI lists a webhook by its name
        with browser() as b:
            page = b.new_page()
            problems = watch_console(page)
            page.goto(f"{serve.url}/docs")
            page.wait_for_function(f"() => document.querySelectorAll('.opblock-summary-path').length >= {len(expected)}",
                                   timeout=60_000)
            rendered = set(page.eval_on_selector_all(".opblock-summary-path",
                                                     "els => els.map(e => e.getAttribute('data-path'))"))
            dom = page.content()
    finally:
        serve.stop()
    assert rendered == expected, expected ^ rendered
    assert "Authorize" in dom  # the bearer security scheme
    # no error or version banner ("Warning" alone would match the EditWarning schema)
    assert "errors-wrapper" not in dom and "version-pragma" not in dom and "Unable to render" not in dom
    assert problems == []


def test_redoc_renders_every_operation(tmp_path):
    serve = Serve(tmp_path / "data", {})
    try:
        doc = httpx.get(f"{serve.url}/openapi.json", timeout=10).json()
        expected = {op["operationId"] for item in doc["paths"].values() for op in item.values()}
        with browser() as b:
            page = b.new_page()
            page.goto(f"{serve.url}/redoc")
            page.wait_for_function(f"() => document.querySelectorAll('[id^=\"operation/\"]').length >= {len(expected)}",
                                   timeout=60_000)
            dom = page.content()
    finally:
        serve.stop()
    rendered = set(re.findall(r'id="operation/([^"]+)"', dom))
    assert rendered == expected, expected ^ rendered
    assert "jobEnded" in dom and "Something went wrong" not in dom  # the webhook; no ReDoc error page
