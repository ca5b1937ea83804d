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
from collections.abc import Callable

import httpx
import pytest

from dse.scenarios.registry import KINDS
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1400, "height": 1000}
PHONE = {"width": 390, "height": 844}
MOE_EXAMPLE = next(e for e in KINDS["inference"].examples() if e["inputs"].get("model") == "deepseek-v3")

# Elements wider than the page (their right edge past the viewport) that are not inside a box that
# scrolls on its own: what makes a phone scroll the whole page sideways.
OVERFLOW_JS = """() => {
  const width = document.documentElement.clientWidth;
  const scrolls = (el) => { for (let p = el.parentElement; p; p = p.parentElement) {
      const s = getComputedStyle(p); if (/(auto|scroll|hidden)/.test(s.overflowX) && p !== document.body
          && p !== document.documentElement) return true; } return false; };
  const wide = [...document.querySelectorAll('body *')].filter((el) => {
      const r = el.getBoundingClientRect(); return r.width > 0 && r.right > width + 1 && !scrolls(el); });
  return { scrollWidth: document.documentElement.scrollWidth, width,
           wide: wide.slice(0, 5).map((el) => `${el.tagName.toLowerCase()}#${el.id}.${el.className}`) };
}"""


# Charts whose box is shorter than their drawing (the card would cut off a lower panel, the x axis or
# the legend's last entries), or whose legend runs past the box's right edge.
CLIPPED_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].flatMap((d) => {
  const box = d.getBoundingClientRect(); const legend = d.querySelector('.legend');
  const drawn = d._fullLayout ? d._fullLayout.height : 0; const out = [];
  if (box.height + 1 < drawn) out.push(`${d.dataset.figure || d.id}: box ${box.height} < drawing ${drawn}`);
  if (legend && legend.getBoundingClientRect().right > box.right + 2) out.push(`${d.dataset.figure || d.id}: legend`);
  return out; })"""


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
