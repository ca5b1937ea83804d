"""Serving simulation speed: 10,000 requests through the iteration-level simulation on one core.

    python -m benchmarks.bench_serving

Llama-2 7B on one A100 80GB (vLLM CUDA-graph stack), ShareGPT-like lengths, Poisson arrivals at 10 req/s,
chunked prefill, budget 2048, 256 running. Prints the iteration-table time (one vectorised call), the
simulation time (median of 3) and the steps / iterations it ran. Writes nothing.
"""

from __future__ import annotations

import statistics
import time

from dse.catalog import default_catalog
from dse.engines.serving import simulate
from dse.scenarios.kinds.serving import studies
from dse.scenarios.kinds.serving.inputs import ServingInputs, resolve

REQUESTS = 10_000


def main() -> None:
    r = resolve(
        ServingInputs(model="llama2-7b", accelerator="a100-80gb", arrival_rate_per_s=10.0, num_requests=REQUESTS),
        default_catalog(),
    )
    t0 = time.perf_counter()
    table = studies.table(r)
    table_s = time.perf_counter() - t0
    memory = studies.memory(r)
    requests = studies.requests(r, r.arrival_rate_per_s, REQUESTS)
    config = studies.scheduler(r, memory.kv_capacity_blocks)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        sim = simulate(requests, table, config)
        times.append(time.perf_counter() - t0)
    print(f"iteration table {table.time_s.shape}: {table_s * 1e3:.1f} ms")
    print(
        f"{REQUESTS:,} requests: {statistics.median(times):.3f} s (median of 3), "
        f"{len(sim.step_start_s):,} steps, {sim.iterations:,} iterations, {sim.preemptions} preemptions"
    )


if __name__ == "__main__":
    main()
