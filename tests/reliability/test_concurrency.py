"""A slow sweep does not block other requests (docs/reliability.md, "load").

The short version of benchmarks/load_test.py's check: the real server (one uvicorn process), one
250 x 250 inference sweep (62,500 points, ~14 MB of JSON, about 1 s of engine time) and a health
check every 20 ms while it runs. CPU-heavy endpoints hand their work to a thread pool of their own
(dse.api.cpu) and the sweep's answer is streamed in short pieces (dse.api.streaming), so the event
loop keeps answering. Were the sweep computed on the event loop, a health check would wait for
all of it; the bound below (half the sweep's wall time) catches that without depending on this
machine's speed (checked: computing the sweep inline in the endpoint fails it, 1.09 s against
0.5 x 1.19 s).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dse.api.streaming import _chunks
from dse.catalog import default_catalog
from dse.scenarios.documents import kind_of, parse_document
from dse.scenarios.registry import KINDS
from dse.scenarios.sweep import SweepAxis, run_sweep
from dse.services import evaluation
from tests.reliability.live_server import LiveServer, big_sweep_request, health_latency_during

SIDE = 250


@pytest.mark.slow
def test_health_answers_while_a_large_sweep_runs(tmp_path: Path) -> None:
    with LiveServer(f"sqlite:///{tmp_path / 'store.sqlite3'}", tmp_path / "server.log") as server:
        examples = httpx.get(f"{server.base_url}/api/v1/examples").json()
        outcome = health_latency_during(server.base_url, big_sweep_request(examples, SIDE))
    assert outcome["sweep_status"] == 200
    assert outcome["sweep_bytes"] > SIDE * SIDE  # the whole grid came back
    assert outcome["health_samples"] >= 3, outcome
    assert outcome["health_max_s"] < 0.5 * outcome["sweep_s"], outcome


# -- the streamed encoding is the same JSON ---------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(value=JSON_VALUES)
def test_streamed_json_parses_back_to_the_value(value: Any) -> None:
    assert json.loads(b"".join(_chunks(value))) == value


@settings(max_examples=20, deadline=None, derandomize=True)
@given(rows=st.integers(1, 40), columns=st.integers(1, 9000))
def test_streamed_grids_of_any_shape_parse_back(rows: int, columns: int) -> None:
    """Grids split into pieces of whole rows or row slices; None cells stay null."""
    grid = [[None if (r + c) % 7 == 0 else r * 0.5 + c for c in range(columns)] for r in range(min(rows, 3))]
    flat = [float(c) for c in range(columns * rows)]
    value = {"grid": grid, "flat": flat, "empty": [], "nested": [grid, grid]}
    assert json.loads(b"".join(_chunks(value))) == value


def test_the_api_sweep_answer_equals_the_sweep_result(make_client: Any) -> None:
    api = make_client()
    document = next(doc for doc in KINDS["temporal_batching"].examples())
    axes = [
        {"path": "temporal_batch_events", "values": [100.0, 200.0, 400.0]},
        {"path": "accelerator.memory_efficiency", "values": [0.5, 0.9]},
    ]
    response = api.post("/api/v1/sweep", json={"document": document, "axes": axes})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    parsed = parse_document(document)
    expected = evaluation.sweep(parsed, default_catalog(), [SweepAxis.model_validate(a) for a in axes])
    assert response.json() == expected.model_dump(mode="json")
    engine_only = run_sweep(
        kind_of(parsed), parsed.inputs, default_catalog(), [SweepAxis.model_validate(a) for a in axes]
    )
    assert expected.metrics == engine_only.metrics  # the service adds bands and scope, never changes a value
