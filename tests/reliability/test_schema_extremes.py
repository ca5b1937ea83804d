"""Every numeric input of every kind at its schema's extremes (smallest allowed, largest allowed,
just outside, around 2^53, the smallest and largest doubles), evaluated and swept through the HTTP
API: never a 500. A 503 is allowed only as the deadline's answer ("Evaluation stopped"); the
deadlines are shortened here (heavy 5 s, cheap 10 s) to keep the run bounded. Slow tier
(Hypothesis); DSE_FUZZ_EXAMPLES raises the examples per kind (default 30), derandomized.
"""

from __future__ import annotations

import copy
import os
import tempfile
import typing
from collections.abc import Iterator
from typing import Any

import annotated_types
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from dse.scenarios.registry import KINDS
from dse.services import limits
from dse.settings import Settings

pytestmark = pytest.mark.slow

PROPERTY = settings(
    max_examples=int(os.environ.get("DSE_FUZZ_EXAMPLES", "30")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
AROUND_2_53 = [2**53 - 1, 2**53, 2**53 + 1, -(2**53)]


def numeric_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, type, float | None, float | None]]:
    """(dotted path, int or float, lowest allowed, highest allowed) of every numeric field, nested models included."""
    found: list[tuple[str, type, float | None, float | None]] = []
    for name, info in model.model_fields.items():
        args = typing.get_args(info.annotation) or (info.annotation,)
        nested = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        if nested:
            found += numeric_fields(nested[0], f"{prefix}{name}.")
            continue
        number = next((a for a in args if a in (int, float)), None)
        if number is None:
            continue
        low = high = None
        for bound in info.metadata:
            if isinstance(bound, annotated_types.Ge | annotated_types.Gt):
                low = float(bound.ge if isinstance(bound, annotated_types.Ge) else bound.gt)
            if isinstance(bound, annotated_types.Le | annotated_types.Lt):
                high = float(bound.le if isinstance(bound, annotated_types.Le) else bound.lt)
        found.append((prefix + name, number, low, high))
    return found


def extremes(number: type, low: float | None, high: float | None) -> list[Any]:
    values: list[Any] = list(AROUND_2_53)
    for edge in (low, high):
        if edge is not None:
            values += [edge, edge - 1, edge + 1] if number is int else [edge, edge * 0.999999, edge * 1.000001]
    if number is float:
        values += [5e-324, 1e-300, 1e308, -1e308]
    return [int(v) if number is int and float(v).is_integer() else v for v in values]


def with_value(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    node = changed["inputs"]
    *parents, leaf = path.split(".")
    for part in parents:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[leaf] = value
    return changed


@pytest.fixture(scope="module")
def api() -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from dse.api.app import create_app

    saved = {k: os.environ.get(k) for k in ("DSE_HEAVY_DEADLINE_S", "DSE_EVALUATION_DEADLINE_S")}
    os.environ.update(DSE_HEAVY_DEADLINE_S="5", DSE_EVALUATION_DEADLINE_S="10")
    limits.get_limits.cache_clear()
    url = f"sqlite:///{tempfile.mkdtemp(prefix='extremes-')}/store.sqlite3"
    try:
        # hundreds of requests from one client: the per-client rate limits are off here (tested elsewhere)
        settings = Settings(database_url=url, evaluation_rate_per_minute=0, write_rate_per_minute=0)
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            yield client
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        limits.get_limits.cache_clear()


def assert_no_crash(response: Any) -> None:
    assert response.status_code != 500, response.text[:500]
    if response.status_code >= 500:
        assert response.status_code == 503 and response.json()["title"] == "Evaluation stopped", response.text[:500]


def cases(kind_name: str) -> st.SearchStrategy[tuple[str, Any]]:
    fields = numeric_fields(KINDS[kind_name].inputs_model)
    return st.sampled_from(fields).flatmap(
        lambda f: st.tuples(st.just(f[0]), st.sampled_from(extremes(f[1], f[2], f[3])))
    )


@pytest.mark.parametrize("kind_name", sorted(KINDS))
def test_every_numeric_input_at_its_extremes_never_crashes(api: Any, kind_name: str) -> None:
    example = KINDS[kind_name].examples()[0]

    @PROPERTY
    @given(case=cases(kind_name))
    def check(case: tuple[str, Any]) -> None:
        path, value = case
        assert_no_crash(api.post("/api/v1/evaluate", json=with_value(example, path, value)))

    check()


@pytest.mark.parametrize("kind_name", sorted(KINDS))
def test_sweeps_to_the_extremes_never_crash(api: Any, kind_name: str) -> None:
    """Every sweepable leaf (the dashboard's list, resolved names) and every schema field, swept to an extreme."""
    example = KINDS[kind_name].examples()[0]
    leaves = api.post("/api/v1/sweep/axes", json=example)
    assert leaves.status_code == 200, leaves.text[:300]
    axes: dict[str, list[Any]] = {
        path: [*extremes(int if float(base).is_integer() else float, None, None), base * 1e7, base / 1e7, 0, -base]
        for path, base in leaves.json().items()
    }
    for path, number, low, high in numeric_fields(KINDS[kind_name].inputs_model):
        axes.setdefault(path, extremes(number, low, high))

    @PROPERTY
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        path = data.draw(st.sampled_from(sorted(axes)))
        value = data.draw(st.sampled_from(axes[path]))
        body = {"document": example, "axes": [{"path": path, "values": [value, value]}]}
        assert_no_crash(api.post("/api/v1/sweep", json=body))

    check()
