"""Speed of the pruning engine: the UNet counter over codes and resolutions, batched Sinkhorn, sweeps.

Run from the repository root:  PYTHONPATH=backend python -m benchmarks.bench_pruning
Appends its figures to benchmarks/results.json under the key "pruning" (other keys are kept).
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from dse.catalog import default_catalog
from dse.engines import pruning as eng
from dse.scenarios.registry import KINDS
from dse.scenarios.sweep import SweepAxis, run_sweep

RESULTS = Path(__file__).resolve().parent / "results.json"


def _best_of(repeats: int, fn: Any) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> dict[str, Any]:
    catalog = default_catalog()
    spec = catalog.get("diffusion", "sd21")
    table = eng.unet_layer_table(spec.unet, spec.text_encoder.max_position_embeddings)
    n_prunable = len(table.prunable_blocks)
    rng = np.random.default_rng(0)

    n_codes = 1_000_000
    codes = rng.uniform(0.2, 1.0, size=(n_codes, n_prunable, 3))
    codes_s = _best_of(3, lambda: eng.resource_ratio(spec, image_side_px=768.0, keep=codes))

    side = np.linspace(256.0, 1024.0, 1000)[:, None]
    uniform = np.linspace(0.1, 1.0, 1000)[None, :]
    grid_keep = np.broadcast_to(uniform[..., None, None], (1, 1000, n_prunable, 3))
    grid_s = _best_of(3, lambda: eng.resource_ratio(spec, image_side_px=side, keep=grid_keep))

    n_problems = 10_000
    # Routing problems as the scenario builds them: cost (R_k - q_i)^2 from random codes and needs.
    cost = eng.routing_cost(
        code_ratio=rng.uniform(0.3, 1.0, size=(n_problems, 8)),
        category_capacity=rng.uniform(0.3, 1.0, size=(n_problems, 5)),
    )
    share = rng.dirichlet(np.ones(5), size=n_problems)
    solved: list[eng.TransportPlan] = []

    def solve() -> None:
        solved.append(eng.sinkhorn(cost=cost, row_marginal=share, col_marginal=np.full(8, 1 / 8), epsilon=0.01))

    sinkhorn_s = _best_of(3, solve)

    kind = KINDS["pruning"]
    doc = kind.examples()[0]["inputs"]
    inputs = kind.inputs_model.model_validate(doc)
    batches = [float(b) for b in range(1, 4097)]
    sweep_s = _best_of(3, lambda: run_sweep(kind, inputs, catalog, [SweepAxis(path="batch_size", values=batches)]))
    evaluate_s = _best_of(5, lambda: kind.evaluate(kind.resolve(kind.inputs_model.model_validate(doc), catalog)))

    figures = {
        "counter_codes_per_s": n_codes / codes_s,
        "counter_codes_note": (
            "R_k of 1,000,000 random per-block codes (9 blocks x channels/heads/FFN), SD 2.1 at 768 px, one call"
        ),
        "counter_grid_points_per_s": 1_000_000 / grid_s,
        "counter_grid_note": "1000 resolutions x 1000 uniform keep fractions, one call",
        "sinkhorn_problems_per_s": n_problems / sinkhorn_s,
        "sinkhorn_iterations": solved[-1].iterations,
        "sinkhorn_unconverged_problems": solved[-1].unconverged,
        "sinkhorn_note": (
            "10,000 random routing problems (5 categories x 8 codes, cost (R_k - q_i)^2, epsilon 0.01) in one "
            "batched solve to 1e-9 on the marginals (converged problems drop out; at most 2000 iterations)"
        ),
        "serving_sweep_points_per_s": len(batches) / sweep_s,
        "serving_sweep_note": (
            "run_sweep of the default example over batch sizes 1..4096 (routing, static match, serving)"
        ),
        "single_evaluation_s": evaluate_s,
        "single_evaluation_note": "in-process resolve + evaluate of the default example (metrics, 4 tables, 4 figures)",
        "machine": f"{platform.machine()}, Python {platform.python_version()}, shared 2-core machine",
    }
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["pruning"] = figures
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    for key, value in main().items():
        print(f"{key}: {value}")
