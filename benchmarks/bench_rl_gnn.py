"""Speed of the rl_scaling and temporal_batching engines.

Run from the repository root:  PYTHONPATH=backend python -m benchmarks.bench_rl_gnn
Appends its figures to benchmarks/results.json under the key "rl_gnn" (other keys are kept).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dse.catalog import default_catalog
from dse.engines.temporal_batching import discontinuity_rate, side_classes, temporal_batch_time
from dse.scenarios.kinds.rl_scaling.metrics import run_ppo
from dse.scenarios.registry import KINDS

RESULTS = Path(__file__).resolve().parent / "results.json"
PPO_GRID_SIDE = 1000  # 1000 GPU counts x 1000 minibatch sizes = 1,000,000 design points
BATCH_POINTS = 1_000_000  # temporal batch sizes for the throughput model
DISCONTINUITY_POINTS = 20_000  # temporal batch sizes for the closed-form discontinuity rate


def _best_of(repeats: int, fn: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def ppo_points_per_s() -> float:
    kind = KINDS["rl_scaling"]
    resolved = kind.resolve(kind.inputs_model.model_validate({}), default_catalog())
    # Both axes enter every layer's roofline (per-GPU minibatch = minibatch / GPUs): the full grid is computed.
    gpus = np.linspace(1.0, 1000.0, PPO_GRID_SIDE).round()[:, None]
    minibatch = np.linspace(1024.0, 65536.0, PPO_GRID_SIDE).round()[None, :]
    return PPO_GRID_SIDE**2 / _best_of(3, lambda: run_ppo(resolved, num_gpus=gpus, minibatch_samples=minibatch))


def temporal_points_per_s() -> tuple[float, float]:
    dataset = default_catalog().get("graph_datasets", "reddit")
    source, destination = side_classes(dataset.source_side), side_classes(dataset.destination_side)
    batches = np.geomspace(1.0, 1e6, BATCH_POINTS)
    timing = _best_of(
        3,
        lambda: temporal_batch_time(
            batch_events=batches,
            events=dataset.events,
            fixed_cost_per_batch_s=5e-3,
            event_time_s=2e-6,
            parallel_events=20,
        ),
    )
    rate_batches = np.geomspace(1.0, 1e5, DISCONTINUITY_POINTS)
    rate = _best_of(3, lambda: discontinuity_rate(batch_events=rate_batches, source=source, destination=destination))
    return BATCH_POINTS / timing, DISCONTINUITY_POINTS / rate


def single_evaluation_s(kind_name: str) -> float:
    kind = KINDS[kind_name]
    doc = kind.examples()[0]["inputs"]
    catalog = default_catalog()
    return _best_of(5, lambda: kind.evaluate(kind.resolve(kind.inputs_model.model_validate(doc), catalog)))


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    batch_rate, discontinuity_rate_points = temporal_points_per_s()
    figures = {
        "ppo_points_per_s": ppo_points_per_s(),
        "ppo_grid": f"{PPO_GRID_SIDE} GPU counts x {PPO_GRID_SIDE} minibatch sizes (41 layers each), one engine call",
        "temporal_batch_time_points_per_s": batch_rate,
        "discontinuity_rate_points_per_s": discontinuity_rate_points,
        "discontinuity_note": "closed form over Reddit's ~80 x 80 node-class pairs per batch size",
        "rl_scaling_single_evaluation_s": single_evaluation_s("rl_scaling"),
        "temporal_batching_single_evaluation_s": single_evaluation_s("temporal_batching"),
        "single_evaluation_note": "in-process resolve + evaluate of the default example (metrics, tables, figures)",
        "machine": f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, one core",
    }
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["rl_gnn"] = figures
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
