"""Plans per second of one vectorised `evaluate_plans` call (the training engine).

Run: PYTHONPATH=backend python benchmarks/bench_training.py [--plans N]
Appends its figures under the "training" key of benchmarks/results.json (other keys untouched).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from dse.catalog import default_catalog
from dse.engines.training import ClusterArrays, ModelArrays, PlanArrays, evaluate_plans, plan_reasons
from dse.specs.network import ClusterSpec

RESULTS = Path(__file__).with_name("results.json")


def random_plans(count: int, gpus: int, seed: int = 0) -> PlanArrays:
    """`count` plans over a 1024-GPU cluster: degrees drawn from powers of two (many invalid, as in a search)."""
    rng = np.random.default_rng(seed)
    powers = 2.0 ** np.arange(0, 11)
    tp = rng.choice(powers[:4], count)
    pp = rng.choice(powers[:7], count)
    sp_kind = rng.integers(0, 4, count).astype(float)
    sp = np.where(sp_kind >= 2, rng.choice(powers[:4], count), 1.0)
    dp = gpus / (tp * pp * sp)
    return PlanArrays(
        global_batch_size=1024.0,
        micro_batch_size=rng.choice(powers[:4], count),
        sequence_length=rng.choice([2048.0, 4096.0, 8192.0], count),
        data_parallel=dp,
        tensor_parallel=tp,
        pipeline_parallel=pp,
        sequence_parallel=sp_kind,
        sequence_parallel_degree=sp,
        zero_stage=rng.integers(0, 4, count).astype(float),
        recompute=rng.integers(0, 3, count).astype(float),
        pipeline_schedule=rng.integers(0, 3, count).astype(float),
        virtual_stages=rng.choice([1.0, 2.0, 4.0], count),
        overlap_grad_reduce=1.0,
    )


def run(plans: int = 1_000_000, repeats: int = 5) -> dict[str, Any]:
    catalog = default_catalog()
    spec = ClusterSpec(
        nodes=128,
        gpus_per_node=8,
        accelerator=catalog.get("accelerators", "h100-sxm"),
        intra_node_link=catalog.get("interconnects", "nvlink4"),
        inter_node_link=catalog.get("interconnects", "ib-ndr"),
        inter_node_links_per_node=8,
    )
    cluster = ClusterArrays.from_spec(spec)
    model = ModelArrays.from_llm(catalog.get("llms", "llama2-70b"))
    plan = random_plans(plans, spec.gpus)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = evaluate_plans(model=model, cluster=cluster, plan=plan)
        best = min(best, time.perf_counter() - start)
    # Plan search screens first: validity bits for all, the full evaluation for the valid ones only.
    screened = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        valid = plan_reasons(model=model, cluster=cluster, plan=plan) == 0
        evaluate_plans(model=model, cluster=cluster, plan=plan.select(valid))
        screened = min(screened, time.perf_counter() - start)
    return {
        "plans": plans,
        "seconds_best_of_5": best,
        "plans_per_s": plans / best,
        "screened_plans_per_s": plans / screened,
        "valid_fraction": float(np.mean(result.valid)),
        "feasible_fraction": float(np.mean(result.fits)),
        "setting": "Llama-2 70B on 128 x 8 H100 (NVLink 4, NDR), random dp/tp/pp/sp/ZeRO/recompute/schedule plans",
        "machine": f"{platform.processor() or platform.machine()}, numpy {np.__version__}",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plans", type=int, default=1_000_000)
    args = parser.parse_args()
    figures = run(args.plans)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["training"] = figures
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
