"""Every chart can be read (issue 18): on every example of every kind, on the compare page and in the
HTML report, no two text boxes of a chart overlap (title, axis titles, tick labels of categorical and of
log axes, where Plotly's "6 7 8 9 0.1" or "0.6M 0.8M 1M" ran together, legend entries, annotations), none
sticks out of its chart or is cut by its bottom edge, no text is under 11 px on a desktop, every
reference line (an SLO, a memory limit, this scenario's value) has a label beside it, and no two series
of a chart share a colour.

The checks run on the SVG Plotly rendered in headless Chromium (bounding boxes of the text elements).
"""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from tests.browser.conftest import CLIPPED_JS, OVERFLOW_JS, charts_settled, screenshot

pytestmark = pytest.mark.browser

#: In the page: for every rendered chart (a div Plotly drew into), the text boxes that overlap, the ones
#: outside the chart and the series that share a colour. Boxes may touch (1 px slack).
CHECK_CHARTS = r"""
(root) => {
  const SLACK = 1;
  const BOTTOM_ROOM = 3;
  const MIN_FONT_PX = 11;
  const MIN_PLOT_PX = 150;
  const problems = [];
  const logCharts = new Set();
  const plots = [...document.querySelectorAll(root)].filter((d) => d._fullLayout && d.querySelector(".main-svg"));
  for (const div of plots) {
    const name = div.dataset.figure || div.closest("[data-figure]")?.dataset.figure || div.id || "chart";
    const layout = div._fullLayout;
    const boxes = [];
    const add = (el, what) => {
      const r = el.getBoundingClientRect();
      if (r.width < 0.5 || r.height < 0.5 || !el.textContent.trim()) return;
      boxes.push({ what: `${what} "${el.textContent.trim().slice(0, 40)}"`, r });
    };
    div.querySelectorAll("text.gtitle").forEach((el) => add(el, "title"));
    const axisTitles = "g[class^='g-x'][class$='title'] text, g[class^='g-y'][class$='title'] text";
    div.querySelectorAll(axisTitles).forEach((el) => add(el, "axis title"));
    div.querySelectorAll(".legendtext").forEach((el) => add(el, "legend"));
    div.querySelectorAll("g.annotation text.annotation-text").forEach((el) => add(el, "annotation"));
    div.querySelectorAll("g.colorbar .cbtitle text").forEach((el) => add(el, "colour bar title"));
    for (const key of Object.keys(layout)) {
      const m = /^([xy])axis(\d*)$/.exec(key);
      if (!m || !["category", "log"].includes(layout[key].type) || layout[key].visible === false) continue;
      const id = m[1] + (m[2] || "");
      div.querySelectorAll(`g.${id}tick text`).forEach((el) => add(el, `${id} tick`));
      if (layout[key].type !== "log") continue;
      logCharts.add(name);
      // Plotly's "D1"/"D2" ticks write 2, 3 … 9 for 20, 300 or 0.09: a lone digit is a label only where it is
      // the tick's value (a tick's datum holds its position, log10 of the value on a log axis).
      if (String(layout[key].dtick).startsWith("D")) problems.push(`${name}: ${id} has Plotly's digit ticks`);
      div.querySelectorAll(`g.${id}tick text`).forEach((el) => {
        const text = el.textContent.trim();
        const value = 10 ** el.__data__.x;
        if (/^[2-9]$/.test(text) && Math.abs(value - Number(text)) > 1e-6 * value)
          problems.push(`${name}: ${id} tick "${text}" stands for ${value.toPrecision(3)}`);
      });
    }
    // No text under 11 px (a reference line's label was 10 px). On a phone, panels side by side and
    // crowded category labels get smaller text on purpose (result.js), so the floor is the desktop's.
    if (window.innerWidth > 700)
      div.querySelectorAll("text").forEach((el) => {
        const size = parseFloat(getComputedStyle(el).fontSize);
        if (el.textContent.trim() && size < MIN_FONT_PX)
          problems.push(`${name}: "${el.textContent.trim().slice(0, 40)}" is written in ${size} px`);
      });
    // unique boxes (Plotly may draw a title twice while it lays out)
    const seen = new Set();
    const unique = boxes.filter((b) => {
      const k = `${b.what}|${Math.round(b.r.left)}|${Math.round(b.r.top)}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
    const frame = div.querySelector(".main-svg").getBoundingClientRect();
    for (const b of unique) {
      const out = b.r.left < frame.left - SLACK || b.r.right > frame.right + SLACK;
      if (out || b.r.top < frame.top - SLACK || b.r.bottom > frame.bottom + SLACK)
        problems.push(`${name}: ${b.what} sticks out of the chart`);
      // A text box flush with the bottom edge loses its descenders ("p", "y", brackets) to the card's edge.
      else if (b.r.bottom > frame.bottom - BOTTOM_ROOM) problems.push(`${name}: ${b.what} is cut by the bottom edge`);
    }
    for (let i = 0; i < unique.length; i++)
      for (let j = i + 1; j < unique.length; j++) {
        const a = unique[i].r, b = unique[j].r;
        const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        if (w > SLACK && h > SLACK) problems.push(`${name}: ${unique[i].what} overlaps ${unique[j].what}`);
      }
    // Every reference line (a line shape across the plot: an SLO, a memory limit, this scenario's value)
    // has its label beside it: an annotation box within 16 px of the line and alongside it.
    const labels = [...div.querySelectorAll("g.annotation")].map((a) => a.getBoundingClientRect());
    const NEAR = 16;
    div.querySelectorAll(".shapelayer path").forEach((path) => {
      const r = path.getBoundingClientRect();
      const vertical = r.width < 3 && r.height > 20;
      const horizontal = r.height < 3 && r.width > 20;
      if (!vertical && !horizontal) return;
      const labelled = labels.some((a) =>
        vertical
          ? a.left - NEAR <= r.left && r.right <= a.right + NEAR && a.bottom > r.top && a.top < r.bottom
          : a.top - NEAR <= r.top && r.bottom <= a.bottom + NEAR && a.right > r.left && a.left < r.right,
      );
      const where = `${vertical ? "vertical" : "horizontal"} line at ${Math.round(vertical ? r.left : r.top)} px`;
      if (!labelled) problems.push(`${name}: the ${where} has no label`);
    });
    // Titles in words: an input's path ("sequence_length_tokens") is a code word, not an axis title.
    const titles = [["chart title", layout.title?.text]];
    for (const key of Object.keys(layout))
      if (/^[xy]axis\d*$/.test(key) && layout[key].visible !== false)
        titles.push([`${key} title`, layout[key].title?.text]);
    for (const [what, text] of titles)
      if (/[A-Za-z]_[A-Za-z]/.test(text || "")) problems.push(`${name}: the ${what} "${text}" has a code word`);
    // A series on a log axis with no positive value draws nothing, yet its legend entry promises a point.
    for (const t of div._fullData) {
      if (t.visible !== true || t.type !== "scatter") continue;
      for (const [letter, values] of [["x", t.x], ["y", t.y]]) {
        const axis = layout[`${letter}axis${(t[`${letter}axis`] || letter).slice(1)}`];
        if (axis?.type === "log" && values?.length && ![...values].some((v) => Number(v) > 0))
          problems.push(`${name}: "${t.name}" has no point a log ${letter} axis can draw`);
      }
    }
    // A plot area too small to read: on a phone the labels, legend and colour bar around it leave it little.
    if (layout._size.w < MIN_PLOT_PX || layout._size.h < MIN_PLOT_PX)
      problems.push(`${name}: plot area ${Math.round(layout._size.w)} x ${Math.round(layout._size.h)} px`);
    // one colour per series: a series is a legend group (or a trace); array colours (colour scales) do not count
    const styles = new Map();
    for (const t of div._fullData) {
      if (t.visible !== true || t.type === "heatmap") continue;
      const colour = (t.type === "bar" ? t.marker?.color : t.line?.color ?? t.marker?.color) ?? t.marker?.color;
      if (typeof colour !== "string") continue;
      const style = `${colour.toLowerCase()}|${t.line?.dash ?? ""}|${t.marker?.symbol ?? ""}`;
      const series = t.legendgroup || t.name || String(t.index);
      if (styles.has(style) && styles.get(style) !== series)
        problems.push(`${name}: "${styles.get(style)}" and "${series}" share the colour ${colour}`);
      else styles.set(style, series);
    }
  }
  return { count: plots.length, problems, logCharts: [...logCharts] };
}
"""


def _check(page, root: str) -> dict:
    charts_settled(page)
    return page.evaluate(CHECK_CHARTS, root)


def _doc_url(server: str, doc: dict) -> str:
    text = base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")
    return f"{server}/k/{doc['kind']}?doc={text}"


@pytest.mark.parametrize("width", [1400, 390])
def test_every_chart_of_every_example_is_readable(live_server, page, width):
    """At desktop width and on a phone (390 px: long axis titles wrap, crowded category labels turn
    upright, get smaller, then every other one is written). No chart is cut by its card, and on the phone
    nothing makes the page scroll sideways."""
    examples = httpx.get(f"{live_server}/api/v1/examples").json()
    page.set_viewport_size({"width": width, "height": 1000})
    problems: list[str] = []
    shot: set[str] = set()
    log_charts: set[str] = set()
    for doc in examples:
        page.goto(_doc_url(live_server, doc))
        page.wait_for_selector("#metrics [data-metric] .value", timeout=60_000)
        page.wait_for_selector("#figures .figure .main-svg", timeout=60_000)
        if doc["kind"] == "plan_search":
            page.wait_for_function("() => !document.querySelector('.layout.stale')", timeout=120_000)
        found = _check(page, "#figures .figure")
        assert found["count"] > 0, doc["name"]
        log_charts |= {f"{doc['kind']}/{key}" for key in found["logCharts"]}
        where = f"{width} px {doc['kind']} / {doc['name']}"
        problems += [f"{where}: {p}" for p in found["problems"]]
        problems += [f"{where}: cut by its card: {p}" for p in page.evaluate(CLIPPED_JS)]
        if width < 700:
            wide = page.evaluate(OVERFLOW_JS)
            if wide["scrollWidth"] > wide["width"] or wide["wide"]:
                problems.append(f"{where}: the page scrolls sideways: {wide}")
        if doc["kind"] not in shot:
            shot.add(doc["kind"])
            screenshot(page, f"charts-{doc['kind']}" + ("" if width == 1400 else f"-{width}"))
    assert not problems, "\n".join(problems)
    assert not page.console_errors, page.console_errors
    # The log axes where Plotly wrote lone digits ("2 5 1000 2 5 10k", "2 3 … 9 0.1") were checked.
    seen = {"rl_scaling/samples_vs_minibatch", "serving/ttft_cdf", "serving/tpot_cdf", "serving/percentiles_vs_rate"}
    assert seen <= log_charts, sorted(log_charts)


@pytest.mark.parametrize("count", [2, 3])
def test_compare_charts_are_readable(live_server, page, count):
    examples = httpx.get(f"{live_server}/api/v1/examples").json()
    kinds = sorted({d["kind"] for d in examples})
    problems: list[str] = []
    for kind in kinds:
        mine = [d for d in examples if d["kind"] == kind]
        docs = [mine[i % len(mine)] for i in range(count)]
        # Same example twice: a second copy with a changed name (compare wants distinct scenarios).
        docs = [{**d, "name": f"{d['name']} #{i + 1}"} for i, d in enumerate(docs)]
        ids = [httpx.post(f"{live_server}/api/v1/scenarios", json=d, timeout=120).json()["id"] for d in docs]
        page.goto(f"{live_server}/compare?ids={','.join(ids)}")
        page.wait_for_selector("#metric-deltas", timeout=120_000)
        page.wait_for_selector("#comparison .figures .main-svg", timeout=60_000)
        found = _check(page, "#comparison .figure")
        problems += [f"compare {kind} x{count}: {p}" for p in found["problems"]]
        # Every overlaid chart's plot area is big enough to read.
        small = page.evaluate(
            "() => [...document.querySelectorAll('#comparison .figure')].filter((d) => d._fullLayout)"
            ".filter((d) => d._fullLayout._size.h < 200 || d._fullLayout._size.w < 250)"
            ".map((d) => (d.dataset.figure || d.closest('[data-figure]')?.dataset.figure) + ' '"
            " + Math.round(d._fullLayout._size.w) + 'x' + Math.round(d._fullLayout._size.h))"
        )
        problems += [f"compare {kind} x{count}: plot area too small: {s}" for s in small]
        if count == 2:
            screenshot(page, f"compare-{kind}")
    assert not problems, "\n".join(problems)
    assert not page.console_errors, page.console_errors


def test_report_charts_are_readable(live_server, page):
    examples = httpx.get(f"{live_server}/api/v1/examples").json()
    problems: list[str] = []
    for doc in {d["kind"]: d for d in reversed(examples)}.values():
        scenario_id = httpx.post(f"{live_server}/api/v1/scenarios", json=doc, timeout=120).json()["id"]
        html = httpx.get(f"{live_server}/api/v1/scenarios/{scenario_id}/report.html", timeout=120).text
        page.set_content(html)
        page.wait_for_selector(".main-svg", timeout=60_000)
        found = _check(page, "[id^='figure-']")
        problems += [f"report {doc['kind']}: {p}" for p in found["problems"]]
    assert not problems, "\n".join(problems)


def test_a_plan_that_does_not_fit_says_so_on_cards_and_in_a_sweep(live_server, page):
    examples = httpx.get(f"{live_server}/api/v1/examples").json()
    doc = next(d for d in examples if d["kind"] == "training")
    doc = {**doc, "inputs": {**doc["inputs"], "recompute": "none", "sequence_length_tokens": 32768}}
    assert httpx.post(f"{live_server}/api/v1/evaluate", json=doc, timeout=120).json()["feasible"] is False
    page.goto(_doc_url(live_server, doc))
    page.wait_for_selector("#metrics [data-metric] .value", timeout=60_000)
    cards = page.locator("#metrics [data-metric]:visible")
    assert cards.count() > 0
    assert page.locator("#metrics [data-metric]:visible .fit-badge").count() == cards.count()
    assert page.locator(".fit-badge").first.inner_text() == "does not fit"
    # A sweep over the sequence length: the points that do not fit are their own hollow grey trace.
    page.wait_for_selector("#sweep-path-0 option", state="attached")
    page.select_option("#sweep-path-0", "sequence_length_tokens")
    page.fill("#sweep-values-0", "1024,2048,4096,8192,16384,32768")
    page.click("#sweep-run")
    page.wait_for_selector("#sweep-out .figure .main-svg", timeout=60_000)
    traces = page.evaluate(
        "() => document.querySelector('#sweep-out .figure').data.map(t => [t.name, t.marker && t.marker.symbol])"
    )
    assert ["does not fit", "circle-open"] in traces, traces
    assert "do not fit" in page.locator("#sweep-caption").inner_text()
    screenshot(page, "does-not-fit")
    assert not page.console_errors, page.console_errors


@pytest.mark.parametrize("width", [1400, 390])
def test_validation_charts_are_readable(live_server, page, width):
    """The validation page's error chart and every kernel calibration chart."""
    page.set_viewport_size({"width": width, "height": 1000})
    page.goto(f"{live_server}/validation")
    page.wait_for_selector("[data-figure='validation-errors'] .main-svg", timeout=120_000)
    page.wait_for_selector("[data-figure^='calibration-'] .main-svg", timeout=120_000)
    found = _check(page, "[data-figure]")
    assert found["count"] > 10
    assert not found["problems"], "\n".join(found["problems"])
    assert not page.console_errors, page.console_errors


@pytest.mark.parametrize("width", [1400, 390])
def test_sweep_charts_are_readable(live_server, page, width):
    """A sweep's line, heatmap and trade-off charts, titled in words with units, not the inputs' paths."""
    page.set_viewport_size({"width": width, "height": 1000})
    page.goto(f"{live_server}/k/training")
    page.wait_for_selector("#metrics [data-metric] .value", timeout=60_000)
    page.wait_for_selector("#sweep-path-0 option", state="attached")
    page.select_option("#sweep-path-0", "sequence_length_tokens")
    page.fill("#sweep-values-0", "1024,2048,4096,8192")
    problems: list[str] = []
    for axes, mode in ((1, "auto"), (2, "auto"), (2, "pareto")):
        if axes == 2 and not page.locator("#sweep-path-1").count():
            page.click("#sweep-add-axis")
            page.select_option("#sweep-path-1", "micro_batch_size")
            page.fill("#sweep-values-1", "1,2")
        page.select_option("#sweep-mode", mode)
        page.evaluate("() => { const d = document.querySelector('#sweep-out .figure'); if (d) d.remove(); }")
        page.click("#sweep-run")
        page.wait_for_selector("#sweep-out .figure .main-svg", timeout=120_000)
        found = _check(page, "#sweep-out .figure")
        problems += [f"{width} px, {axes} axes, {mode}: {p}" for p in found["problems"]]
        if mode == "auto":  # the count's unit, the name's last word, stands once, in brackets
            title = page.evaluate("() => document.querySelector('#sweep-out .figure').layout.xaxis.title.text")
            assert title.replace("<br>", " ") == "sequence length (tokens)", title
    assert not problems, "\n".join(problems)
    assert not page.console_errors, page.console_errors
