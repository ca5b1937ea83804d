"""Speed of sweep jobs on Dask: design points per second per core on 1 and 2 worker processes.

Run from the repository root:  PYTHONPATH=backend python -m benchmarks.bench_jobs
Appends its figures to benchmarks/results.json under the key "jobs" (other keys are kept).

A job is an inference grid (batch x HBM bandwidth x tensor parallelism x model preset, 65,536 points
in shards of 4,096) run through `DaskExecutor` on an embedded LocalCluster with 1, then 2,
single-threaded worker processes; the clock runs from the first submit to the last merged shard (the
cluster is started and warmed up before). Efficiency = (points/s on 2 workers) / (2 x points/s on 1
worker). Two grids: the NeuPIMs example (its engine prices every request of the batch on every PIM
channel, so a point costs more the larger its batch) and a GPU-only example (a flat cost per point).
`engine_points_per_s_per_core_in_process` is the same grid shard after shard in one thread, no Dask:
within a shard each preset combination is one vectorised engine call, so that rate is the engine's.

The figures for 64 and 1,024 cores are an EXTRAPOLATION, not a measurement: the per-core rate on 2
workers times the cores (shards are independent, so the work itself scales linearly), capped by
what one Dask scheduler can hand out: every task costs "somewhere between 200us and 1ms" of
overhead (Dask's documentation, Best Practices, "Avoid Very Large Graphs": dask/dask,
docs/source/best-practices.rst); taking the pessimistic 1 ms gives at most `SHARD_SIZE / 1 ms` points/s,
whatever the cores. On a machine shared with other work the
measured numbers are noisy; the cores are `os.cpu_count()`.
"""

from __future__ import annotations

import json
import math
import os
import platform
import threading
import time
from pathlib import Path
from typing import Any

from dse.catalog import default_catalog
from dse.scenarios.kinds.inference.examples import EXAMPLES
from dse.services.jobs.executor import DaskExecutor, SerialExecutor
from dse.services.jobs.grid import evaluate_shard, points_of, shards
from dse.services.jobs.service import JobRequest, build_spec, merge_for
from dse.services.jobs.summary import empty_summary

RESULTS = Path(__file__).resolve().parent / "results.json"
SHARD_SIZE = 4096  # 65,536 points in 16 shards
SCHEDULER_S_PER_TASK = 1e-3  # the top of Dask's documented 200 us - 1 ms per task


def job_request(document: dict[str, Any] | None = None) -> JobRequest:
    return JobRequest.model_validate(
        {
            "document": dict(document or EXAMPLES[1]),
            "axes": [
                {"path": "batch_size", "values": list(range(16, 1040, 16))},  # 64
                {"path": "accelerator.memory_bandwidth_bytes_per_s", "values": [2e11 * 1.04**i for i in range(128)]},
                {"path": "tensor_parallel", "values": [1, 2, 4, 8]},
                {"path": "model", "presets": ["gpt3-7b", "gpt3-13b"]},
            ],
            "objective": {"metric": "time_per_output_token_s", "goal": "min", "top_k": 10},
            "pareto": {"x": "time_per_output_token_s", "y": "throughput_tokens_per_s", "goal_y": "max"},
            "feasible": "fits",
            "shard_size": SHARD_SIZE,
        }
    )


def run_job(executor: DaskExecutor, key: str, spec: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    n = points_of(spec["axes"])
    tasks = [
        (i, (spec["document"], spec["axes"], a, b, spec["settings"]))
        for i, (a, b) in enumerate(shards(n, spec["shard_size"]))
    ]
    summary = empty_summary([len(a["values"]) for a in spec["axes"]])
    start = time.perf_counter()
    for _, part in executor.run(key, evaluate_shard, tasks, threading.Event()):
        summary = merge_for(spec, summary, part)
    return time.perf_counter() - start, summary


def measure(workers: int, spec: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    executor = DaskExecutor(n_workers=workers)
    try:
        executor.client().wait_for_workers(workers)
        warm = {**spec, "axes": [{**spec["axes"][0], "values": spec["axes"][0]["values"][:8]}, *spec["axes"][1:]]}
        run_job(executor, "warm-up", warm)  # imports and caches on every worker
        best = math.inf
        summary: dict[str, Any] = {}
        for repeat in range(2):
            seconds, summary = run_job(executor, f"run-{repeat}", spec)
            best = min(best, seconds)
        return best, summary
    finally:
        executor.close()


def serial_cpu_s(spec: dict[str, Any]) -> float:
    """CPU seconds of the whole grid in this thread, shard after shard (no Dask): the engine's own cost."""
    start = time.thread_time()
    run_job(SerialExecutor(), "serial", spec)
    return time.thread_time() - start


def figures_for(document: dict[str, Any]) -> dict[str, Any]:
    _, _, spec = build_spec(job_request(document), default_catalog())
    points = points_of(spec["axes"])
    serial = serial_cpu_s(spec)
    t1, s1 = measure(1, spec)
    t2, s2 = measure(2, spec)
    assert s1 == s2, "1 and 2 workers must give the same summary"
    per_core_1 = points / t1
    per_core_2 = points / t2 / 2
    efficiency = per_core_2 / per_core_1
    scheduler_cap = SHARD_SIZE / SCHEDULER_S_PER_TASK
    return {
        "document": document["name"],
        "points": points,
        "shards": math.ceil(points / SHARD_SIZE),
        "engine_points_per_s_per_core_in_process": round(points / serial),
        "seconds_1_worker": round(t1, 3),
        "seconds_2_workers": round(t2, 3),
        "points_per_s_per_core_1_worker": round(per_core_1),
        "points_per_s_per_core_2_workers": round(per_core_2),
        "efficiency_2_workers": round(efficiency, 3),
        "extrapolated_points_per_s": {
            str(cores): round(min(per_core_2 * cores, scheduler_cap)) for cores in (64, 1024)
        },
        "extrapolation": "EXTRAPOLATED, not measured: 2-worker rate per core x cores, capped at 1 ms per shard",
    }


def main() -> None:
    # The NeuPIMs grid prices every request of the batch on every PIM channel (its cost per point grows
    # with the batch); the GPU-only grid's cost per point is flat: the two bound what a job costs.
    neupims = figures_for(dict(EXAMPLES[1]))
    gpu_only = figures_for(next(dict(e) for e in EXAMPLES if e["inputs"].get("system") == "gpu_only"))
    figures = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared), Python {platform.python_version()}",
        **neupims,
        "gpu_only": gpu_only,
    }
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["jobs"] = figures
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
