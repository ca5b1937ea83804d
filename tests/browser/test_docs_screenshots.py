"""Every page the README and docs/ show, drawn at desktop width and at 390 px (a phone).

One place takes the documentation's screenshots: `DSE_UPDATE_DOCS_SCREENSHOTS=1 pytest
tests/browser/test_docs_screenshots.py` rewrites docs/screenshots/<page>.png (1400 x 1000 viewport)
and docs/screenshots/<page>-390.png (390 x 844). Each run also saves the full-length pages under
test-artifacts/screenshots/ (<page>.png and <page>-390.png) to be looked at.

At 390 px each page must fit the screen's width: nothing makes the page scroll sideways (a wide table
or chart scrolls inside its own box). At both widths no chart is cut by its card (a lower panel, the x
axis or the legend's last entries), nor does its legend run past the card's edge.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable

import httpx
import pytest

from dse.scenarios.registry import KINDS
from tests.browser.conftest import CLIPPED_JS, OVERFLOW_JS, screenshot

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1400, "height": 1000}
PHONE = {"width": 390, "height": 844}
MOE_EXAMPLE = next(e for e in KINDS["inference"].examples() if e["inputs"].get("model") == "deepseek-v3")


def _doc_url(base: str, doc: dict) -> str:
    encoded = base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")
    return f"{base}/k/{doc['kind']}?doc={encoded}"


def _settle(page) -> None:
    """Let Plotly's responsive relayout (after a viewport change) finish before the capture."""
    page.evaluate("() => new Promise((done) => setTimeout(() => requestAnimationFrame(done), 300))")


def _kind_ready(page) -> None:
    page.wait_for_selector("#metrics [data-metric] .value", timeout=60_000)
    page.wait_for_selector("#figures .figure .main-svg", timeout=60_000)


def _shoot(page, name: str, ready: Callable[[], None], *, reload: bool = True) -> None:
    """The page at desktop width, then at 390 px, each checked and captured. The phone's page is loaded
    at its width (as a phone would), unless `reload` is False (a sweep's result is not in the URL)."""
    for viewport, suffix in ((DESKTOP, ""), (PHONE, "-390")):
        page.set_viewport_size(viewport)
        if suffix and reload:
            page.reload()
        ready()
        _settle(page)
        assert page.evaluate(CLIPPED_JS) == [], (name, suffix)
        if suffix:
            found = page.evaluate(OVERFLOW_JS)
            assert found["scrollWidth"] <= found["width"] and not found["wide"], (name, found)
        screenshot(page, f"{name}{suffix}", docs=True)


def _saved(live_server: str, doc: dict) -> str:
    response = httpx.post(f"{live_server}/api/v1/scenarios", json=doc, timeout=60)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.mark.skipif(
    os.environ.get("DSE_UPDATE_DOCS_SCREENSHOTS") != "1",
    reason="takes the docs' kind-page screenshots only: the same pages' checks (no chart cut by its card, no "
    "sideways scroll at 390 px) run on every example in test_charts_readable.py",
)
def test_kind_pages(live_server, page):
    for kind in KINDS:
        page.set_viewport_size(DESKTOP)
        page.goto(f"{live_server}/k/{kind}")
        _shoot(page, f"kind-{kind}", lambda: _kind_ready(page))
    page.set_viewport_size(DESKTOP)
    page.goto(_doc_url(live_server, MOE_EXAMPLE))
    _shoot(page, "kind-inference-moe", lambda: _kind_ready(page))
    assert not page.console_errors, page.console_errors


def test_home_catalog_validation_and_saved_pages(live_server, page):
    page.goto(live_server)
    _shoot(page, "home", lambda: page.wait_for_selector(".kind-card"))
    page.goto(f"{live_server}/catalog")
    _shoot(page, "catalog", lambda: page.wait_for_selector("table tbody tr"))
    page.goto(f"{live_server}/validation")

    def validation_ready() -> None:
        for kind in KINDS:
            page.wait_for_selector(f"section[data-kind='{kind}'] .summary", timeout=60_000)
        page.wait_for_selector("[data-figure='validation-errors'] .main-svg")

    _shoot(page, "validation", validation_ready)
    for kind in ("inference", "training", "serving"):
        _saved(live_server, KINDS[kind].examples()[0])
    scenario_id = _saved(live_server, {**MOE_EXAMPLE, "name": "DeepSeek-V3 on 8 H200s, my copy"})
    page.goto(f"{live_server}/scenarios")
    _shoot(page, "saved", lambda: page.wait_for_selector("#scenarios tbody tr"))
    page.goto(f"{live_server}/s/{scenario_id}")
    _shoot(page, "shared-scenario", lambda: _kind_ready(page))
    assert not page.console_errors, page.console_errors


def test_compare_sweep_and_job_pages(live_server, page):
    base = KINDS["inference"].examples()[2]
    other = {**base, "name": "Naive NPU+PIM, batch 128", "inputs": {**base["inputs"], "batch_size": 128}}
    ids = [_saved(live_server, doc) for doc in (base, other)]
    page.goto(f"{live_server}/compare?ids={','.join(ids)}")
    _shoot(page, "compare", lambda: page.wait_for_selector("[data-figure='throughput_vs_batch'] .main-svg"))

    page.set_viewport_size(DESKTOP)
    page.goto(f"{live_server}/k/inference")
    _kind_ready(page)
    page.wait_for_selector("#sweep-path-0 option", state="attached")
    page.select_option("#sweep-path-0", "batch_size")
    page.fill("#sweep-values-0", "32:512:x2")
    page.click("#sweep-add-axis")
    page.select_option("#sweep-path-1", "tensor_parallel")
    page.fill("#sweep-values-1", "1,2,4,8")
    page.click("#sweep-run")

    def heatmap_ready() -> None:
        page.wait_for_selector("#sweep-out .figure .main-svg")
        page.locator("#sweep").scroll_into_view_if_needed()

    _shoot(page, "sweep-heatmap", heatmap_ready, reload=False)
    page.set_viewport_size(DESKTOP)
    page.click("#sweep-run-job")

    def job_ready() -> None:
        page.wait_for_selector("#sweep-job strong:has-text('done')", timeout=120_000)
        page.wait_for_selector("#sweep-job .main-svg")
        page.locator("#sweep-job").scroll_into_view_if_needed()

    _shoot(page, "sweep-job", job_ready)
    assert not page.console_errors, page.console_errors
