"""The form as a demanding user finds it (issue 18, items 4, 6 and 7), in real headless Chromium.

Each test saves a screenshot under test-artifacts/screenshots/ (looked at when written).
"""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from dse.scenarios.registry import KINDS
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def _doc_url(base: str, doc: dict) -> str:
    encoded = base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")
    return f"{base}/k/{doc['kind']}?doc={encoded}"


def _wait_ready(page) -> None:
    page.wait_for_selector("#metrics [data-metric] .value", timeout=30_000)


def _type(page, selector: str, value: str) -> None:
    page.evaluate(
        "([sel, v]) => { const el = document.querySelector(sel); el.value = v;"
        " el.dispatchEvent(new Event('input', { bubbles: true })); }",
        [selector, value],
    )


def _no_page_scroll(page) -> None:
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page scrolls sideways: {width}"


def test_preset_picker_shows_the_preset_the_engine_uses(live_server, page):
    doc = json.loads(json.dumps(KINDS["inference"].examples()[0]))
    doc["inputs"].pop("comparison_gpu", None)  # left out: the engine uses the schema default
    page.goto(_doc_url(live_server, doc))
    _wait_ready(page)
    picker = "[data-path='comparison_gpu'] select[data-preset]"
    page.wait_for_function(f'() => document.querySelector("{picker}").options.length > 2')
    assert page.locator(picker).input_value() == "a100-80gb"
    assert not page.console_errors, page.console_errors


def test_inputs_that_do_not_apply_are_disabled_with_the_reason(live_server, page):
    doc = json.loads(json.dumps(KINDS["inference"].examples()[0]))
    doc["inputs"]["request_lengths"] = "alpaca-vllm"
    doc["inputs"]["system"] = "neupims"
    page.goto(_doc_url(live_server, doc))
    _wait_ready(page)
    prompt = page.locator("label.field[data-path='prompt_tokens']")
    assert prompt.locator("input").is_disabled()
    assert "request-length distribution" in prompt.inner_text()
    assert page.locator("label.field[data-path='sub_batch_fraction'] input").is_enabled()
    # A GPU-only run: the PIM memory and the NeuPIMs split do not apply.
    page.select_option("label.field[data-path='system'] select", "gpu_only")
    assert page.locator("label.field[data-path='sub_batch_fraction'] input").is_disabled()
    assert page.locator("[data-path='memory'] select").first.is_disabled()
    assert "PIM" in page.locator("div.preset[data-path='memory']").inner_text()
    # Fixed lengths again: prompt and output tokens apply.
    page.select_option("[data-path='request_lengths'] select", "__none__")
    assert prompt.locator("input").is_enabled()
    screenshot(page, "form-not-applicable")


def test_the_all_to_all_inputs_apply_from_two_data_parallel_attention_groups(live_server, page):
    """A condition on a number (DP attention of at least 2), not only on listed values."""
    doc = next(d for d in KINDS["inference"].examples() if d["inputs"].get("attention_data_parallel", 1) > 1)
    page.goto(_doc_url(live_server, doc))
    _wait_ready(page)
    nodes = page.locator("label.field[data-path='gpus_per_node']")
    dp = "label.field[data-path='attention_data_parallel'] input"
    assert nodes.locator("input").is_enabled()
    _type(page, dp, "1")
    assert nodes.locator("input").is_disabled()
    assert "DP 2 or more" in nodes.inner_text()
    _type(page, dp, "2")
    assert nodes.locator("input").is_enabled()
    assert not page.console_errors, page.console_errors


def test_an_error_message_belongs_to_the_current_value(live_server, page):
    page.goto(f"{live_server}/k/inference")
    _wait_ready(page)
    batch = "label.field[data-path='batch_size'] input"
    _type(page, batch, "70000")
    page.wait_for_selector("#eval-error .error")
    assert "65536" in page.locator("label.field[data-path='batch_size'] .field-error").inner_text()
    screenshot(page, "form-error-refused")
    _type(page, batch, "")  # mid-edit: the old refusal is gone, the field says what is wrong now
    assert "65536" not in page.locator("#eval-error").inner_text()
    assert page.locator("label.field[data-path='batch_size'] .field-error").inner_text() == "enter a whole number"
    _type(page, batch, "64")
    page.wait_for_function("() => !document.querySelector('#eval-error').textContent")
    page.wait_for_function("() => document.querySelector('#status').textContent.startsWith('updated')")
    assert page.locator(".field-error:not(:empty)").count() == 0
    assert not page.console_errors, page.console_errors


def test_a_sweep_range_past_the_cap_is_refused_and_axes_are_inputs(live_server, page):
    page.goto(f"{live_server}/k/inference")
    _wait_ready(page)
    page.wait_for_selector("#sweep-path-0 option", state="attached")
    axes = page.eval_on_selector_all("#sweep-path-0 option", "os => os.map((o) => o.value)")
    assert "batch_size" in axes and not any("published_" in a for a in axes)
    page.fill("#sweep-values-0", "1:100000:1")
    page.click("#sweep-run")
    page.wait_for_selector("#sweep-range-error")
    assert "2,000" in page.locator("#sweep-range-error").inner_text()
    assert not page.console_errors, page.console_errors


def test_long_names_wrap_and_pages_fit_390_px(live_server, chromium):
    name = "N" * 200  # one unbroken word
    doc = {**KINDS["inference"].examples()[0], "name": name}
    saved = httpx.post(f"{live_server}/api/v1/scenarios", json=doc).json()
    context = chromium.new_context(viewport=PHONE)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        for path, ready, shot in [
            ("/", ".kind-card", "phone-home"),
            ("/scenarios", "#scenarios tbody tr", "phone-saved-list"),
            ("/catalog", "section[data-category='accelerators'] tbody tr", "phone-catalog"),
            ("/k/inference", "#metrics [data-metric] .value", "phone-inference"),
            (f"/s/{saved['id']}", "#metrics [data-metric] .value", "phone-saved-scenario"),
            ("/k/training", "#metrics [data-metric] .value", "phone-training"),
        ]:
            page.goto(live_server + path)
            page.wait_for_selector(ready, timeout=30_000)
            page.wait_for_timeout(300)
            _no_page_scroll(page)
            screenshot(page, shot)
        assert not errors, errors
    finally:
        context.close()


def test_a_long_name_keeps_the_scenarios_table_on_screen(live_server, page):
    httpx.post(f"{live_server}/api/v1/scenarios", json={**KINDS["inference"].examples()[0], "name": "W" * 200})
    page.goto(f"{live_server}/scenarios")
    page.wait_for_selector("#scenarios tbody tr")
    table = page.locator("#scenarios").bounding_box()
    assert table["x"] + table["width"] <= page.viewport_size["width"]
    _no_page_scroll(page)
    screenshot(page, "saved-list-long-name")


def test_delete_asks_for_confirmation(live_server, page):
    doc = {**KINDS["inference"].examples()[0], "name": "to be deleted"}
    page.goto(_doc_url(live_server, doc))
    _wait_ready(page)
    page.click("#save")
    page.wait_for_selector("#share-link")
    scenario_id = page.locator("#share-link").get_attribute("href").split("/")[-1]
    page.goto(f"{live_server}/s/{scenario_id}")
    _wait_ready(page)
    messages: list[str] = []

    def dismiss(dialog):
        messages.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.click("#delete")
    page.wait_for_timeout(300)
    assert messages and "to be deleted" in messages[0]
    assert httpx.get(f"{live_server}/api/v1/scenarios/{scenario_id}").status_code == 200
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete")
    page.wait_for_url(f"{live_server}/scenarios")
    assert httpx.get(f"{live_server}/api/v1/scenarios/{scenario_id}").status_code == 404
    assert not page.console_errors, page.console_errors


def test_saving_inputs_saved_under_another_name_says_so_and_keeps_your_own_copy(live_server, page):
    doc = KINDS["inference"].examples()[0]
    first = httpx.post(f"{live_server}/api/v1/scenarios", json={**doc, "name": "first name"}).json()
    page.goto(_doc_url(live_server, {**doc, "name": "my own name"}))
    _wait_ready(page)
    page.click("#save")
    page.wait_for_selector("#same-content")
    assert "first name" in page.locator("#same-content").inner_text()
    assert "my own name" in page.locator("#same-content").inner_text()
    assert page.locator("#same-content-link").get_attribute("href") == f"/s/{first['id']}"
    mine = page.locator("#share-link").get_attribute("href").split("/")[-1]
    assert mine != first["id"]
    assert httpx.get(f"{live_server}/api/v1/scenarios/{mine}").json()["name"] == "my own name"
    assert httpx.get(f"{live_server}/api/v1/scenarios/{first['id']}").json()["name"] == "first name"
    screenshot(page, "saved-same-content")
    # A second click gives the same scenario of one's own back (the page shows its token), no duplicate.
    page.click("#save")
    page.wait_for_selector(".share-notice strong:has-text('Already saved')")
    assert page.locator("#share-link").get_attribute("href") == f"/s/{mine}"
    assert httpx.get(f"{live_server}/api/v1/scenarios").json()["total"] == 2
    # Opening it, the page knows it is this browser's: it may be deleted from here.
    page.goto(f"{live_server}/s/{mine}")
    _wait_ready(page)
    assert page.locator("#delete").count() == 1
    assert not page.console_errors, page.console_errors


def test_an_absent_trace_is_an_empty_field_that_says_how_to_fill_it(live_server, page):
    """Serving's trace (null unless the arrivals are a trace): an empty box, never the word "null", with an
    example row as its placeholder; a pasted trace is sent as rows, and emptying the box sends null again."""
    doc = json.loads(json.dumps(KINDS["serving"].examples()[0]))
    page.goto(_doc_url(live_server, doc))
    _wait_ready(page)
    box = page.locator("[data-path='trace'] textarea")
    assert box.input_value() == ""
    assert "empty: none" in box.get_attribute("placeholder") and "[[0,512,128]" in box.get_attribute("placeholder")
    assert "Not used" in page.locator("[data-path='trace']").inner_text()  # Poisson arrivals read no trace
    # the admission policy is a choice of the two schedulers, the default vLLM's
    policy = page.locator("[data-path='admission_policy'] select")
    assert policy.input_value() == "max_utilization"
    assert policy.locator("option[value='guaranteed_no_evict']").count() == 1
    page.select_option("[data-path='arrival_process'] select", "trace")
    box.fill("[[0, 100, 10], [0.5, 200, 20]]")
    box.dispatch_event("change")
    _wait_for_trace(page, [[0, 100, 10], [0.5, 200, 20]])
    box.fill("")
    box.dispatch_event("change")
    _wait_for_trace(page, None)
    assert not page.console_errors, page.console_errors


def _wait_for_trace(page, rows) -> None:
    """Until the document in the page's URL holds this trace (None: absent or null)."""
    for _ in range(100):
        encoded = parse_qs(urlparse(page.url).query).get("doc", [""])[0]
        doc = json.loads(base64.urlsafe_b64decode(encoded + "==")) if encoded else {"inputs": {}}
        if doc["inputs"].get("trace") == rows:
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"the document's trace is not {rows}: {page.url}")
