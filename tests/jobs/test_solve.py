"""POST /api/v1/solve: the smallest HBM bandwidth that meets a TPOT target (inference)."""

from __future__ import annotations

import numpy as np

from dse.catalog import default_catalog
from dse.scenarios.documents import kind_of, parse_document
from dse.scenarios.kinds.inference.examples import EXAMPLES
from dse.scenarios.sweep import set_path

PATH = "accelerator.memory_bandwidth_bytes_per_s"


def _tpot(document, bandwidth, batch=None):
    parsed = parse_document(document)
    kind = kind_of(parsed)
    resolved = set_path(kind.resolve(parsed.inputs, default_catalog()), PATH, np.asarray(bandwidth, dtype=float))
    if batch is not None:
        resolved = set_path(resolved, "batch_size", np.asarray(batch, dtype=float))
    return np.asarray(kind.compute(resolved)["time_per_output_token_s"], dtype=float)


def test_smallest_hbm_bandwidth_meeting_a_tpot_target(client):
    document = dict(EXAMPLES[1])
    curve = _tpot(document, np.geomspace(1e11, 1e14, 50))
    target = float(np.quantile(curve[np.isfinite(curve)], 0.5))  # a target met half-way up the range
    body = {
        "document": document,
        "path": PATH,
        "metric": "time_per_output_token_s",
        "target": target,
        "low": 1e11,
        "high": 1e14,
        "rel_tol": 1e-9,
    }
    response = client.post("/api/v1/solve", json=body)
    assert response.status_code == 200, response.text
    out = response.json()
    answer = out["answers"][0]
    assert answer["met"] and answer["monotone"]
    value = answer["value"]
    assert _tpot(document, value) <= target
    assert _tpot(document, value * (1 - 1e-6)) > target  # the smallest, to the tolerance
    assert len(out["curve"]["x"][0]) == 33 and out["engine_calls"] <= out["rounds"] + 1


def test_solve_over_batch_sizes_in_the_same_calls(client):
    document = dict(EXAMPLES[1])
    target = float(_tpot(document, 2e12))
    body = {
        "document": document,
        "path": PATH,
        "metric": "time_per_output_token_s",
        "target": target,
        "low": 1e11,
        "high": 1e14,
        "over": {"path": "batch_size", "values": [64, 128, 256, 512]},
    }
    out = client.post("/api/v1/solve", json=body).json()
    assert [a["over"] for a in out["answers"]] == [64, 128, 256, 512]
    for a in out["answers"]:
        if a["met"]:
            assert _tpot(document, a["value"], a["over"]) <= target
    bad = {**body, "metric": "nope"}
    assert client.post("/api/v1/solve", json=bad).status_code == 422


def test_a_whole_number_input_is_solved_over_integers(client):
    """The smallest batch size whose decode throughput reaches a target: an integer, checked at b and b - 1."""
    document = dict(EXAMPLES[1])

    def throughput(batch):
        inputs = {**document["inputs"], "batch_size": batch}
        metrics = client.post("/api/v1/evaluate", json={**document, "inputs": inputs}).json()["metrics"]
        return next(m["value"] for m in metrics if m["key"] == "throughput_tokens_per_s")

    target = (throughput(100) + throughput(101)) / 2
    body = {
        "document": document,
        "path": "batch_size",
        "metric": "throughput_tokens_per_s",
        "target": target,
        "sense": ">=",
        "low": 1,
        "high": 512,
    }
    answer = client.post("/api/v1/solve", json=body).json()["answers"][0]
    assert answer["met"] and answer["monotone"] and answer["value"] == 101
    assert throughput(101) >= target > throughput(100)
