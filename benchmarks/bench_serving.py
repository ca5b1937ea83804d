"""Serving simulation speed: 10,000 requests through the iteration-level simulation on one core.

    python -m benchmarks.bench_serving

Llama-2 7B on one A100 80GB (vLLM CUDA-graph stack), ShareGPT-like lengths, Poisson arrivals at 10 req/s,
chunked prefill, budget 2048, 256 running. Prints the iteration-table time (one vectorised call), the
simulation time (median of 3) and the steps / iterations it ran; then the same 10,000 requests with
speculative decoding (a Llama-2 7B draft for Llama-2 13B, k = 4, alpha = 0.7) and through a disaggregated
deployment (1 prefill + 3 decode instances, the whole stream). Times are CPU seconds of this process (the
machine is shared). Writes nothing.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from dse.catalog import default_catalog
from dse.engines.serving import simulate
from dse.scenarios.kinds.serving import studies
from dse.scenarios.kinds.serving.inputs import ServingInputs, resolve

REQUESTS = 10_000


def _median_s(run: Callable[[], object], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        run()
        times.append(time.process_time() - t0)
    return statistics.median(times)


def main() -> None:
    catalog = default_catalog()
    r = resolve(
        ServingInputs(model="llama2-7b", accelerator="a100-80gb", arrival_rate_per_s=10.0, num_requests=REQUESTS),
        catalog,
    )
    t0 = time.process_time()
    table = studies.table(r)
    table_s = time.process_time() - t0
    memory = studies.memory(r)
    requests = studies.requests(r, r.arrival_rate_per_s, REQUESTS)
    config = studies.scheduler(r, memory.kv_capacity_blocks)
    seconds = _median_s(lambda: simulate(requests, table, config))
    sim = simulate(requests, table, config)
    print(f"iteration table {table.time_s.shape}: {table_s * 1e3:.1f} ms")
    print(
        f"{REQUESTS:,} requests: {seconds:.3f} s (median of 3), "
        f"{len(sim.step_start_s):,} steps, {sim.iterations:,} iterations, {sim.preemptions} preemptions"
    )
    spec = resolve(
        ServingInputs(
            model="llama2-13b",
            accelerator="a100-80gb",
            arrival_rate_per_s=5.0,
            num_requests=REQUESTS,
            draft_model="llama2-7b",
            draft_tokens=4,
            acceptance_rate=0.7,
        ),
        catalog,
    )
    spec_table, spec_memory = studies.table(spec), studies.memory(spec)
    spec_requests = studies.requests(spec, spec.arrival_rate_per_s, REQUESTS)
    spec_config = studies.scheduler(spec, spec_memory.kv_capacity_blocks)
    print(
        f"{REQUESTS:,} requests, speculative (k 4, alpha 0.7, "
        f"{studies.tokens_per_step(spec):.2f} tokens/step): "
        f"{_median_s(lambda: simulate(spec_requests, spec_table, spec_config)):.3f} s (median of 3)"
    )
    split = resolve(
        ServingInputs(
            model="llama2-7b",
            accelerator="a100-80gb",
            arrival_rate_per_s=30.0,
            num_requests=REQUESTS,
            disaggregated=True,
            prefill_replicas=1,
            decode_replicas=3,
        ),
        catalog,
    )
    pools = studies.pools(split)
    print(
        f"{REQUESTS:,} requests, disaggregated (1 prefill + 3 decode instances, each request through two): "
        f"{_median_s(lambda: studies.serve(split, pools, split.arrival_rate_per_s, REQUESTS)):.3f} s (median of 3)"
    )


if __name__ == "__main__":
    main()
