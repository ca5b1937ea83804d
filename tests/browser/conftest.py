"""Real headless Chromium (Debian's) driven by Playwright, against a live server on loopback.

Skipped where chromium is missing, except when DSE_REQUIRE_BROWSER=1 (CI): then it fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from dse.api.app import create_app
from dse.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
#: With DSE_SCREENSHOTS=1 each browser test saves full-length pictures of its pages here; with
#: DSE_UPDATE_DOCS_SCREENSHOTS=1 those, and the screenshots named in DOCS_SCREENSHOTS also go to docs/screenshots
#: (viewport-sized, so each stays well under 300 KB) for the README.
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
#: A full-length capture of a long page (7,000 px at 390 px wide) takes seconds on the loaded 2-core machine.
SCREENSHOT_TIMEOUT_MS = 120_000
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def _chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def chromium():
    path = _chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover
        sync_playwright = None
    if path is None or sync_playwright is None:
        message = "Debian's chromium (or playwright) is not installed"
        if os.environ.get("DSE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{message}, and DSE_REQUIRE_BROWSER=1 makes browser tests mandatory")
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def _serve(tmp_path):
    """The app on a free loopback port, with its own SQLite store."""
    port = _free_port()
    # As `dse serve` does: the heavy worker processes start with the server, not on the first search.
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'browser.sqlite3'}"), start_processes=True)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def live_server(tmp_path):
    """The app with the real kinds only (what a user sees)."""
    yield from _serve(tmp_path)


@pytest.fixture
def toy_live_server(tmp_path, toy_kind):
    """The app with the toy kind registered too (plumbing tests)."""
    yield from _serve(tmp_path)


def _new_page(chromium, **options):
    context = chromium.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True, **options)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.console_errors = errors
    return context, page


@pytest.fixture
def page(chromium):
    context, page = _new_page(chromium)
    yield page
    context.close()


@pytest.fixture
def fresh_page(chromium):
    """A second, independent browser context: no shared storage, as another person opening a link."""
    context, page = _new_page(chromium)
    yield page
    context.close()


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


def charts_settled(page) -> None:
    """Wait until every chart the page started drawing is drawn, relayouts included (result.js counts them
    on <html data-pending-draws>), and two frames more for the browser to lay the SVG out."""
    page.wait_for_function("() => document.documentElement.dataset.pendingDraws === '0'", timeout=60_000)
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")


def screenshot(page, name: str, docs: bool = False) -> None:
    """A picture to look at, taken only when asked (DSE_SCREENSHOTS=1 for test-artifacts/screenshots/,
    DSE_UPDATE_DOCS_SCREENSHOTS=1 for those and the docs'): a full-length capture of a long page takes
    seconds on the 2-core CI machine, ~1.5 minutes of the full tier, and checks nothing."""
    update_docs = os.environ.get("DSE_UPDATE_DOCS_SCREENSHOTS") == "1"
    if not update_docs and os.environ.get("DSE_SCREENSHOTS") != "1":
        return
    # The viewport shot goes first: a full-page capture resizes the window, and responsive
    # Plotly charts re-lay themselves out after it.
    if docs and update_docs:
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_SCREENSHOTS / f"{name}.png"), full_page=False, timeout=SCREENSHOT_TIMEOUT_MS)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True, timeout=SCREENSHOT_TIMEOUT_MS)
