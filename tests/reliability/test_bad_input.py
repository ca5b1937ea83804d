"""Bad input through the HTTP API (real kinds, in-process): every refusal is a 4xx problem+json
naming the field, nothing is a 5xx, and a valid document never yields NaN or infinity.

Promises in docs/reliability.md ("bad input"). The limits tested are the service settings'
defaults (dse.settings: max_body_bytes = 1 MiB, max_json_depth = 32) and
dse.scenarios.sweep.MAX_SWEEP_POINTS; values are exact (status codes and field names), and the
property tests use a fixed seed (derandomize) so a failure reproduces.
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from dse.catalog import default_catalog
from dse.scenarios.base import InputError
from dse.scenarios.documents import evaluate_document, parse_document
from dse.scenarios.registry import KINDS
from dse.scenarios.sweep import MAX_SWEEP_POINTS
from dse.settings import Settings

EXAMPLES: list[dict[str, Any]] = [doc for kind in KINDS.values() for doc in kind.examples()]
FIRST_EXAMPLES: dict[str, dict[str, Any]] = {name: kind.examples()[0] for name, kind in KINDS.items()}
# DSE_FUZZ_EXAMPLES raises the number of examples for a deeper local run; the suite keeps 12.
PROPERTY = settings(
    max_examples=int(os.environ.get("DSE_FUZZ_EXAMPLES", "12")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from dse.api.app import create_app

    url = f"sqlite:///{tmp_path_factory.mktemp('bad-input') / 'store.sqlite3'}"
    # One client for the whole module, hundreds of requests: the per-client rate limits are off.
    settings = Settings(database_url=url, write_rate_per_minute=0, evaluation_rate_per_minute=0, save_quota_per_day=0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def assert_problem(response: Any, status: int | tuple[int, ...], field: str | None = None) -> dict[str, Any]:
    """A problem+json refusal with `status`, whose errors name `field` (or at least some field)."""
    statuses = (status,) if isinstance(status, int) else status
    assert response.status_code in statuses, response.text[:500]
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == response.status_code
    fields = [error["field"] for error in body["errors"]]
    assert all(fields), body
    if field is not None:
        assert field in fields, (field, body)
    return body


def post_text(api: Any, path: str, text: str) -> Any:
    return api.post(path, content=text.encode("utf-8"), headers={"content-type": "application/json"})


def numeric_leaves(value: Any, prefix: str = "") -> Iterator[str]:
    """Dotted paths of the numbers (not booleans) in a JSON value; list items by index."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from numeric_leaves(item, f"{prefix}{key}.")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from numeric_leaves(item, f"{prefix}{index}.")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield prefix[:-1]


def with_leaf(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    node: Any = changed["inputs"]
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(last) if isinstance(node, list) else last] = value
    return changed


NUMERIC_INPUTS = [(name, path) for name, doc in FIRST_EXAMPLES.items() for path in numeric_leaves(doc["inputs"])]


# -- non-finite numbers ----------------------------------------------------------------------------


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
@pytest.mark.parametrize(("kind", "path"), NUMERIC_INPUTS)
def test_non_finite_numbers_are_refused_naming_the_input(api: Any, kind: str, path: str, literal: str) -> None:
    """NaN, +-Infinity (Python's JSON extension) and 1e999 (parses to inf) in any numeric input: 422 on that input."""
    marker = "__NON_FINITE__"
    text = json.dumps(with_leaf(FIRST_EXAMPLES[kind], path, marker)).replace(f'"{marker}"', literal)
    for endpoint in ("/api/v1/evaluate", "/api/v1/scenarios"):
        assert_problem(post_text(api, endpoint, text), 422, f"inputs.{path}")


def test_non_finite_sweep_values_are_refused(api: Any) -> None:
    document = FIRST_EXAMPLES["inference"]
    text = json.dumps({"document": document, "axes": [{"path": "batch_size", "values": [1, "__X__"]}]})
    response = post_text(api, "/api/v1/sweep", text.replace('"__X__"', "NaN"))
    assert_problem(response, 422, "axes[0].values")


def test_an_inline_accelerator_with_infinite_bandwidth_is_refused(api: Any) -> None:
    """Custom hardware goes through the same finite-number rule as the document's own fields."""
    preset = api.get("/api/v1/catalog/accelerators/a100-80gb").json()
    inline = {key: value for key, value in preset.items() if not key.startswith("derived")}
    inline["memory_bandwidth_bytes_per_s"] = "__X__"
    document = with_leaf(FIRST_EXAMPLES["pruning"], "accelerator", inline)
    text = json.dumps(document).replace('"__X__"', "Infinity")
    body = assert_problem(post_text(api, "/api/v1/evaluate", text), 422)
    assert any("memory_bandwidth_bytes_per_s" in error["field"] for error in body["errors"]), body


# -- sizes: huge arrays, deep nesting, oversized sweeps --------------------------------------------


def test_a_body_over_the_limit_is_413(api: Any) -> None:
    limit = Settings(database_url="sqlite://").max_body_bytes
    axes = [{"path": "batch_size", "values": [1.0] * (limit // 4)}]  # "1.0, " is 5 bytes a value
    response = api.post("/api/v1/sweep", json={"document": FIRST_EXAMPLES["inference"], "axes": axes})
    assert_problem(response, 413, "(body)")


def test_a_huge_array_inside_inputs_is_refused_not_evaluated(api: Any) -> None:
    document = with_leaf(FIRST_EXAMPLES["pruning"], "figure_batch_sizes", list(range(1, 100_001)))
    response = api.post("/api/v1/evaluate", json=document)
    assert_problem(response, (413, 422))


@pytest.mark.parametrize("depth", [33, 200, 100_000])
def test_deeply_nested_json_is_422(api: Any, depth: int) -> None:
    """Deeper than max_json_depth (32) is refused before parsing, whatever the endpoint."""
    nested = "[" * depth + "]" * depth
    text = json.dumps(FIRST_EXAMPLES["inference"]).replace('"inputs": {', f'"deep": {nested}, "inputs": {{')
    for endpoint in ("/api/v1/evaluate", "/api/v1/sweep", "/api/v1/compare", "/api/v1/scenarios"):
        body = assert_problem(post_text(api, endpoint, text), 422, "(body)")
        assert "nested deeper than 32" in body["detail"]


def test_nesting_within_the_limit_is_an_ordinary_field_error(api: Any) -> None:
    text = json.dumps(FIRST_EXAMPLES["inference"]).replace('"inputs": {', '"deep": [[[[1]]]], "inputs": {')
    assert_problem(post_text(api, "/api/v1/evaluate", text), 422, "deep")


def test_a_sweep_over_the_point_limit_is_422_saying_the_limit(api: Any) -> None:
    side = math.isqrt(MAX_SWEEP_POINTS) + 1  # side^2 > MAX_SWEEP_POINTS, each axis alone is allowed
    axes = [
        {"path": "batch_size", "values": list(range(1, side + 1))},
        {"path": "tensor_parallel", "values": [4] * side},
    ]
    response = api.post("/api/v1/sweep", json={"document": FIRST_EXAMPLES["inference"], "axes": axes})
    body = assert_problem(response, 422, "axes")
    assert f"at most {MAX_SWEEP_POINTS}" in body["detail"]


def test_one_axis_over_the_point_limit_is_422(api: Any) -> None:
    axes = [{"path": "batch_size", "values": [1] * (MAX_SWEEP_POINTS + 1)}]  # "1, " = 3 bytes: under 1 MiB
    response = api.post("/api/v1/sweep", json={"document": FIRST_EXAMPLES["inference"], "axes": axes})
    assert_problem(response, 422, "axes.0.values")


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=20,
    )
)
def test_arbitrary_json_bodies_are_never_a_server_error(api: Any, body: Any) -> None:
    """Any JSON value (NaN and infinities included) posted to every body-taking endpoint: a 4xx problem."""
    text = json.dumps(body)
    for endpoint in ("/api/v1/evaluate", "/api/v1/sweep", "/api/v1/compare", "/api/v1/scenarios"):
        assert_problem(post_text(api, endpoint, text), (400, 413, 422))


# -- names: unicode and HTML -----------------------------------------------------------------------


HOSTILE_NAMES = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "Robert'); DROP TABLE scenarios;--",
    "日本語の名前 ✓ 🚀",
    "\u202eevil right-to-left override",
    "a\u0301 combining accent, zero\u200bwidth",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_names_are_stored_as_text_and_served_as_json(api: Any, name: str) -> None:
    """Names are data: stored and returned byte for byte, served as JSON with nosniff, never as HTML."""
    saved = api.post("/api/v1/scenarios", json={**EXAMPLES[1], "name": "to be renamed"})
    assert saved.status_code in (200, 201), saved.text
    scenario = saved.json()
    token = scenario["owner_token"] or pytest.skip("saved by an earlier test; token shown only once")
    url = f"/api/v1/scenarios/{scenario['id']}"
    renamed = api.patch(url, json={"name": name}, headers={"X-Owner-Token": token})
    assert renamed.status_code == 200, renamed.text
    got = api.get(url)
    assert got.json()["name"] == name
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-content-type-options"] == "nosniff"
    listed = api.get("/api/v1/scenarios", params={"limit": 100}).json()["items"]
    assert name in [item["name"] for item in listed]
    assert api.delete(url, headers={"X-Owner-Token": token}).status_code == 204


@PROPERTY
@given(name=st.text(max_size=250))
def test_any_name_is_saved_verbatim_or_refused_naming_the_name(api: Any, name: str) -> None:
    """Any text: a NUL, an empty name or more than 200 characters is a 422 on `name`; else it round-trips."""
    document = {**FIRST_EXAMPLES["temporal_batching"], "name": name}
    evaluated = api.post("/api/v1/evaluate", json=document)
    if not name or len(name) > 200:
        assert_problem(evaluated, 422, "name")
        return
    assert evaluated.status_code == 200, evaluated.text
    saved = api.post("/api/v1/scenarios", json=document)
    if "\x00" in name:
        assert_problem(saved, 422, "name")
        return
    assert saved.status_code in (200, 201), saved.text
    url = f"/api/v1/scenarios/{saved.json()['id']}"
    if saved.json()["owner_token"] is None:  # same content saved before under another name
        return
    assert api.get(url).json()["name"] == name
    assert api.delete(url, headers={"X-Owner-Token": saved.json()["owner_token"]}).status_code == 204


# -- engines: a valid document never yields NaN or infinity ---------------------------------------


def _non_finite_numbers(value: Any, where: str = "") -> Iterator[str]:
    if isinstance(value, float) and not math.isfinite(value):
        yield where
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _non_finite_numbers(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _non_finite_numbers(item, f"{where}[{index}]")


#: Kinds whose one evaluation is a whole search (plan_search: 0.1-1 s) get fewer examples.
FEWER_EXAMPLES = {"plan_search": 3}


@pytest.mark.parametrize("kind", list(KINDS))
def test_valid_documents_near_the_examples_evaluate_to_finite_numbers(kind: str) -> None:
    """Each numeric input of a kind's examples scaled by 1/4..4 (whole numbers stay whole and >= 1):
    whatever the schema and the kind accept evaluates to finite metrics and table cells (None is
    allowed only as 'undefined', never NaN or inf)."""
    examples = KINDS[kind].examples()
    deep_run = "DSE_FUZZ_EXAMPLES" in os.environ
    budget = PROPERTY.max_examples if deep_run else FEWER_EXAMPLES.get(kind, PROPERTY.max_examples)

    @settings(PROPERTY, max_examples=budget)
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        example = data.draw(st.sampled_from(examples), label="example")
        paths = sorted(numeric_leaves(example["inputs"]))
        assume(paths)
        document = example
        for path in data.draw(st.lists(st.sampled_from(paths), min_size=1, max_size=3, unique=True), label="paths"):
            node: Any = document["inputs"]
            for part in path.split("."):
                node = node[int(part)] if isinstance(node, list) else node[part]
            factor = data.draw(st.floats(0.25, 4.0), label=path)
            scaled: float | int = max(1, round(node * factor)) if isinstance(node, int) else node * factor
            document = with_leaf(document, path, scaled)
        try:
            parsed = parse_document(document)
            result = evaluate_document(parsed, default_catalog())
        except (ValidationError, InputError):
            assume(False)  # refused with a named field: not a valid document
            return
        dumped = result.model_dump(include={"metrics", "tables"})
        bad = list(_non_finite_numbers(dumped))
        assert not bad, (kind, document["inputs"], bad[:5])
        json.dumps(result.model_dump(mode="json"), allow_nan=False)

    check()


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"{d['kind']}-{i}" for i, d in enumerate(EXAMPLES)])
def test_every_example_evaluates_to_finite_numbers(example: dict[str, Any]) -> None:
    result = evaluate_document(parse_document(example), default_catalog())
    assert not list(_non_finite_numbers(result.model_dump(include={"metrics", "tables"})))
