"""The typed result words through the API: yes/no metrics, published comparisons, links, the Validation rows,
the report that shows them, and the result cache that never reads a result of an older shape back."""

from __future__ import annotations

import base64
import json
import re

import pytest
from tests.api.conftest import HOSTILE
from tests.support.toy_kind import TOY as TOY_KIND

from dse.scenarios import vocabulary
from dse.scenarios.base import RESULT_FORMAT
from dse.services import evaluation
from dse.services.evaluation import result_cache_key

DOC = {"schema_version": 1, "kind": "typed_toy", "name": "typed", "inputs": {"batch_size": 8}}
TOY = {"schema_version": 1, "kind": "toy", "name": "toy", "inputs": {"batch_size": 8}}


def test_boolean_metrics_are_booleans_and_say_so(typed_client):
    result = typed_client.post("/api/v1/evaluate", json=DOC).json()
    metrics = {m["key"]: m for m in result["metrics"]}
    assert metrics["fits"]["value"] is True and metrics["fits"]["value_type"] == "boolean"
    assert metrics["weight_bytes"]["value_type"] == "number"


def test_published_and_links_are_typed(typed_client):
    result = typed_client.post("/api/v1/evaluate", json=DOC).json()
    check, context = result["published"]
    assert check["role"] == "validation" and check["within_tolerance"] is True
    assert check["tolerance"] == {"relative": 0.05, "ratio_low": None, "ratio_high": None}
    assert check["tolerance_label"] == "±5%"
    assert check["relative_error"] == pytest.approx(2 * 6_658_404_352 / 13.3e9 - 1)
    assert context["role"] == "context" and context["published"] is None
    assert context["published_text"] == "32 sequences" and context["within_tolerance"] is None
    (link,) = result["links"]
    assert link["document"]["kind"] == "toy" and link["note"]
    assert "references" not in result


def test_compare_shows_yes_no_without_deltas(typed_client):
    other = {**DOC, "name": "fp32", "inputs": {"batch_size": 8, "bytes_per_param": 4}}
    out = typed_client.post("/api/v1/compare", json={"items": [DOC, other]}).json()
    fits = next(m for m in out["metrics"] if m["key"] == "fits")
    assert fits["value_type"] == "boolean" and fits["values"] == [True, False]
    assert fits["absolute_delta"] == [None, None] and fits["relative_delta"] == [None, None]
    weights = next(m for m in out["metrics"] if m["key"] == "weight_bytes")
    assert weights["value_type"] == "number" and weights["relative_delta"] == [0.0, 1.0]


def test_openapi_describes_the_typed_words(typed_client):
    schemas = typed_client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    result = schemas["EvaluationResult"]["properties"]
    assert {"charts", "published", "links", "metrics"} <= set(result)
    assert result["published"]["items"]["$ref"].endswith("/PublishedComparison")
    assert result["links"]["items"]["$ref"].endswith("/ScenarioLink")
    assert set(schemas["Metric"]["properties"]["value_type"]["enum"]) == {"number", "boolean"}
    assert {"role", "tolerance_label", "published_text"} <= set(schemas["PublishedComparison"]["properties"])
    row = schemas["ValidationRow"]["properties"]
    assert {"kind", "key", "known_miss", "error", "role", "tolerance", "within_tolerance"} <= set(row)
    assert "value_type" in schemas["MetricComparison"]["properties"]


def test_validation_rows_of_a_kinds_records(typed_client):
    rows = typed_client.get("/api/v1/validation/typed_toy").json()
    assert [r["key"] for r in rows] == ["weights", "weights_missed"]
    good, missed = rows
    assert good["within_tolerance"] is True and good["known_miss"] is None and good["error"] is None
    assert good["kind"] == "typed_toy" and good["tolerance_label"] == "±5%"
    assert missed["within_tolerance"] is False and missed["known_miss"] == "counts embeddings the paper leaves out"


def test_report_shows_published_comparisons_and_links_escaped(typed_client):
    html = typed_client.post("/api/v1/report", json={**DOC, "name": HOSTILE}).text
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "<h2>Published figures</h2>" in html and "Brown et al. 2020, Table 2.1" in html
    assert "32 sequences" in html and "<td>context</td>" in html and "<td>within</td>" in html
    assert "<h2>Scenarios to open</h2>" in html and "open &lt;script&gt;" in html
    # A link is shown with the dashboard path that opens it, never as a link (the report loads nothing).
    markup = re.sub(r"<script[^>]*>.*?</script>", "", html, flags=re.S)
    assert not re.search(r"""<[^>]+\b(src|href)\s*=""", markup)
    path = re.search(r"/k/toy\?doc=([A-Za-z0-9_-]+)", html)
    assert path is not None
    encoded = path.group(1)
    decoded = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    assert decoded["kind"] == "toy" and decoded["inputs"] == {"batch_size": 4}
    # A yes/no metric reads yes or no.
    assert re.search(r"<td>Fits in 16 GB</td><td>yes</td>", html)


def test_cache_key_carries_engine_version_and_result_format(typed_kind):
    key = result_cache_key(typed_kind)
    assert typed_kind.engine_version in key and str(RESULT_FORMAT) in key
    assert key != typed_kind.engine_version


def _save(client, doc=TOY):
    return client.post("/api/v1/scenarios", json=doc).json()["id"]


def test_a_result_cached_in_the_old_shape_is_ignored_and_recomputed(toy_client):
    scenario_id = _save(toy_client)
    store = toy_client.app.state.store
    # What the cache held before results had a format: keyed by the engine version alone, an old shape
    # ("figures", metrics without value_type) and, to tell it apart, a wrong number.
    old = {
        "kind": "toy",
        "engine_version": "toy-1",
        "metrics": [{"key": "weight_bytes", "label": "Weights", "value": 1.0, "unit": "B"}],
        "figures": [],
    }
    store.cache_result(scenario_id, "toy-1", old)
    result = toy_client.get(f"/api/v1/scenarios/{scenario_id}/result").json()
    weights = next(m for m in result["metrics"] if m["key"] == "weight_bytes")
    assert weights["value"] == 2 * 6_658_404_352 and weights["value_type"] == "number"
    assert "figures" not in result and result["charts"]
    assert store.cached_result(scenario_id, result_cache_key(TOY_KIND)) == result  # cached under the new key
    assert store.cached_result(scenario_id, "toy-1") == old  # the old entry is left, never read


def test_a_new_result_format_never_reads_the_previous_one(toy_client, monkeypatch):
    scenario_id = _save(toy_client)
    store = toy_client.app.state.store
    first = toy_client.get(f"/api/v1/scenarios/{scenario_id}/result").json()
    key = result_cache_key(TOY_KIND)
    marked = {**first, "notes": ["read from the cache"]}
    store.cache_result(scenario_id, key, marked)
    assert toy_client.get(f"/api/v1/scenarios/{scenario_id}/result").json() == marked  # a hit is read back
    monkeypatch.setattr(evaluation, "RESULT_FORMAT", RESULT_FORMAT + 1)
    assert vocabulary.RESULT_FORMAT == RESULT_FORMAT  # only the service's view changed
    assert result_cache_key(TOY_KIND) != key
    again = toy_client.get(f"/api/v1/scenarios/{scenario_id}/result").json()
    assert again == first and "read from the cache" not in again["notes"]


def test_a_cached_result_that_no_longer_parses_is_recomputed(toy_client):
    scenario_id = _save(toy_client)
    store = toy_client.app.state.store
    store.cache_result(scenario_id, result_cache_key(TOY_KIND), {"kind": "toy", "metrics": "not a list"})
    result = toy_client.get(f"/api/v1/scenarios/{scenario_id}/result")
    assert result.status_code == 200 and result.json()["engine_version"] == "toy-1"
    assert store.cached_result(scenario_id, result_cache_key(TOY_KIND)) == result.json()


def test_chart_text_from_a_user_controlled_name_carries_no_markup():
    """Issue 17: an inline spec's id could put a clickable link into a shared scenario's chart legend. Every `<` that
    does not open a formatting tag the charts use (br, b, i, em, sup, sub, extra) is escaped when a Chart is built."""
    from dse.scenarios.vocabulary import Chart

    chart = Chart(
        key="k",
        title="t",
        figure={
            "data": [
                {"name": "<a href='https://example.org'>click</a>", "hovertemplate": "%{x}<br>%{y}<extra></extra>"}
            ],
            "layout": {"title": {"text": "A<sup>2</sup> <span style='color:red'>x</span>"}},
        },
    )
    assert chart.figure["data"][0]["name"] == "&lt;a href='https://example.org'>click&lt;/a>"
    assert chart.figure["data"][0]["hovertemplate"] == "%{x}<br>%{y}<extra></extra>"
    assert chart.figure["layout"]["title"]["text"] == "A<sup>2</sup> &lt;span style='color:red'>x&lt;/span>"


def test_an_inline_accelerator_id_with_a_link_shows_as_text_in_every_chart():
    from dse.catalog import default_catalog
    from dse.scenarios.documents import evaluate_document, parse_document

    catalog = default_catalog()
    accelerator = dict(vars(catalog.get("accelerators", "h100-sxm")))
    accelerator["id"] = "<a href='https://example.org'>h100</a>"
    doc = {
        "schema_version": 1,
        "kind": "inference",
        "name": "x",
        "inputs": {"model": "llama2-7b", "system": "gpu_only", "accelerator": accelerator},
    }
    result = evaluate_document(parse_document(doc), catalog)
    assert "<a " not in json.dumps([c.figure for c in result.charts])
