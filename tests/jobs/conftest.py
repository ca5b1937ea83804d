"""Jobs run serially in-process here (tests/jobs/test_dask.py runs them on a real LocalCluster)."""

from __future__ import annotations

from typing import Any

import pytest

from dse.scenarios.kinds.inference.examples import EXAMPLES


@pytest.fixture(autouse=True)
def serial_jobs(monkeypatch):
    monkeypatch.setenv("DSE_JOBS_EXECUTOR", "serial")


def inference_job(shard_size: int = 64, **extra: Any) -> dict[str, Any]:
    """A three-axis inference job: batch size x HBM bandwidth x TP x model preset (4 x 8 x 3 x 2 = 192 points)."""
    return {
        "document": dict(EXAMPLES[1]),
        "axes": [
            {"path": "batch_size", "values": [16, 64, 256, 512]},
            {"path": "accelerator.memory_bandwidth_bytes_per_s", "values": [0.5e12 * 1.5**i for i in range(8)]},
            {"path": "tensor_parallel", "values": [1, 2, 4]},
            {"path": "model", "presets": ["gpt3-7b", "gpt3-13b"]},
        ],
        "objective": {"metric": "time_per_output_token_s", "goal": "min", "top_k": 5},
        "pareto": {"x": "time_per_output_token_s", "y": "throughput_tokens_per_s", "goal_x": "min", "goal_y": "max"},
        "feasible": "fits",
        "shard_size": shard_size,
        **extra,
    }
