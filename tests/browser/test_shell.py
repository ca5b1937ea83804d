"""The dashboard shell in real headless Chromium: pages load, a Plotly chart renders, a saved link opens."""

from __future__ import annotations

import httpx
import pytest

from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser


def test_saved_scenario_opens_and_plots(toy_live_server, page):
    doc = {"schema_version": 1, "kind": "toy", "name": "<img src=x onerror=alert(1)>", "inputs": {"batch_size": 4}}
    saved = httpx.post(f"{toy_live_server}/api/v1/scenarios", json=doc).json()
    page.goto(f"{toy_live_server}/s/{saved['id']}")
    page.wait_for_selector(".figure .main-svg", timeout=15_000)
    assert page.locator("[data-metric='weight_bytes'] .value").inner_text() != "—"
    # The name is shown as text, never parsed as HTML.
    assert page.locator("input[aria-label='scenario name']").input_value() == doc["name"]
    assert page.locator("img[src=x]").count() == 0
    screenshot(page, "saved-scenario")
    assert not page.console_errors, page.console_errors


def test_catalog_and_saved_list(toy_live_server, page):
    httpx.post(
        f"{toy_live_server}/api/v1/scenarios", json={"schema_version": 1, "kind": "toy", "name": "listed", "inputs": {}}
    )
    page.goto(f"{toy_live_server}/catalog")
    page.wait_for_selector("section[data-category='llms'] tbody tr")
    assert page.locator("section[data-category='llms'] tbody tr").count() >= 9
    screenshot(page, "catalog")
    page.click("nav a[href='/scenarios']")
    page.wait_for_selector("#scenarios tbody tr")
    assert "listed" in page.locator("#scenarios").inner_text()
    screenshot(page, "saved-list")
    assert not page.console_errors, page.console_errors
