"""The serving kind's runs: the device and iteration table, the requests, one simulation's summary, the
largest arrival rate meeting the SLOs (bisection over rate) and the fewest replicas for the given rate.

Replicas: requests are split among replicas at random (a Poisson stream thins into independent Poisson
streams of rate lambda/R), so one replica is simulated at lambda/R and the deployment's throughput is R
times its own. Gamma arrivals are split the same way (each replica sees gamma gaps of the same CV, an
approximation); a trace is dealt round-robin and replica 0's share is simulated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from dse.catalog.calibration import stack_device
from dse.engines.decoder_ops import kv_cache_bytes_per_token
from dse.engines.device import Device
from dse.engines.inference import Deployment, model_shape
from dse.engines.serving import (
    BLOCK_TOKENS,
    IterationTable,
    Requests,
    SchedulerConfig,
    SimulationResult,
    arrival_times,
    iteration_time_table,
    lognormal_lengths,
    percentile,
    simulate,
)
from dse.engines.transformer import parameter_breakdown
from dse.scenarios.kinds.serving.inputs import ServingResolved

#: Requests per simulation of the rate search (at most; fewer when the document asks for fewer).
SEARCH_REQUESTS = 400
#: Seconds of arrivals (per replica) a search simulation spans at least, up to the document's request count.
SEARCH_WINDOW_S = 30.0


def deployment(r: ServingResolved) -> Deployment:
    return Deployment(
        tensor_parallel=r.tensor_parallel,
        pipeline_parallel=1.0,
        link_bandwidth_bytes_per_s=r.link_bandwidth_bytes_per_s,
        link_latency_s=r.link_latency_s,
        weight_bytes=r.weight_bytes,
        activation_bytes=r.activation_bytes,
        kv_cache_bytes=r.kv_cache_bytes,
    )


def device(r: ServingResolved) -> Device:
    return stack_device(r.kernel_fits or {}, r.accelerator, r.activation_dtype, r.software_stack).device


@dataclass(frozen=True)
class Memory:
    weights_bytes_per_device: float
    kv_bytes_per_token_per_device: float
    kv_capacity_blocks: int


def memory(r: ServingResolved) -> Memory:
    """Weights per device and the paged KV cache left beside them (blocks of 16 tokens per replica).

    Every expert of a mixture-of-experts model is stored; a latent-attention (MLA) cache holds one latent per
    token and layer, replicated on every tensor-parallel rank (as the inference engine's footprint)."""
    shape = model_shape(r.model)
    params = parameter_breakdown(
        hidden_size=shape.hidden_size,
        num_layers=shape.num_layers,
        num_heads=shape.num_heads,
        num_kv_heads=shape.num_kv_heads,
        ffn_hidden_size=shape.ffn_hidden_size,
        vocab_size=shape.vocab_size,
        gated_ffn=shape.gated_ffn,
        tied_embeddings=shape.tied_embeddings,
        learned_positions=shape.learned_positions,
        layernorm=shape.layernorm,
        linear_bias=shape.linear_bias,
        head_dim=shape.head_dim,
        qk_norm=shape.qk_norm,
        moe=shape.moe,
        mla=shape.mla,
    )
    weights = float(params.total) * r.weight_bytes / r.tensor_parallel
    per_token = float(
        kv_cache_bytes_per_token(
            num_layers=shape.num_layers,
            hidden_size=shape.hidden_size,
            num_heads=shape.num_heads,
            num_kv_heads=shape.num_kv_heads,
            kv_cache_bytes=r.kv_cache_bytes,
            head_dim=shape.head_dim,
            mla=shape.mla,
        )
    )
    if shape.mla is None:
        per_token /= r.tensor_parallel
    free = max(r.accelerator.memory_capacity_bytes * r.gpu_memory_utilization - weights, 0.0)
    return Memory(weights, per_token, int(free // per_token) // BLOCK_TOKENS)


def max_context(r: ServingResolved) -> int:
    if r.trace is not None:
        return max(int(p + o) for _, p, o in r.trace)
    if r.request_lengths is not None:
        return int(r.request_lengths.max_context_tokens)
    return int(r.prompt_tokens + r.output_tokens)


def table(r: ServingResolved) -> IterationTable:
    return iteration_time_table(
        shape=model_shape(r.model),
        device=device(r),
        deployment=deployment(r),
        max_decode_batch=int(r.max_running),
        max_prefill_tokens=int(max(r.token_budget, min(max_context(r), 1_048_576))),
        max_context_tokens=max_context(r),
    )


def scheduler(r: ServingResolved, blocks: int) -> SchedulerConfig:
    return SchedulerConfig(
        token_budget=int(r.token_budget),
        chunked_prefill=r.chunked_prefill,
        max_running=int(r.max_running),
        kv_capacity_blocks=blocks,
        prefix_hit_rate=r.prefix_cache_hit_rate,
    )


def trace_rate(r: ServingResolved) -> float:
    """Requests per second of the inline trace."""
    assert r.trace is not None
    times = [row[0] for row in r.trace]
    return (len(times) - 1) / (max(times) - min(times))


def requests(r: ServingResolved, rate_per_s: float, count: int) -> Requests:
    """One replica's requests at the deployment's `rate_per_s` (deterministic for the seed)."""
    rng = np.random.default_rng(int(r.seed))
    replicas = int(r.replicas)
    if r.trace is not None:
        rows = sorted(r.trace)[::replicas] or sorted(r.trace)[:1]
        t = np.asarray([row[0] for row in rows], dtype=np.float64)
        scale = trace_rate(r) / rate_per_s
        return Requests(
            arrival_s=(t - t[0]) * scale,
            prompt_tokens=np.asarray([row[1] for row in rows], dtype=np.int64),
            output_tokens=np.asarray([row[2] for row in rows], dtype=np.int64),
        )
    arrivals = arrival_times(
        rng, count=count, rate_per_s=rate_per_s / replicas, process=r.arrival_process, cv=r.burstiness_cv
    )
    lengths = r.request_lengths
    if lengths is None:
        prompt = np.full(count, int(r.prompt_tokens), dtype=np.int64)
        output = np.full(count, int(r.output_tokens), dtype=np.int64)
    else:
        prompt, output = lognormal_lengths(
            rng,
            count=count,
            mean_prompt=float(lengths.mean_prompt_tokens),
            mean_output=float(lengths.mean_output_tokens),
            median_context=float(lengths.median_context_tokens),
            mean_context=float(lengths.mean_context_tokens),
            max_context=float(min(lengths.max_context_tokens, r.model.max_context_tokens)),
        )
    return Requests(arrival_s=arrivals, prompt_tokens=prompt, output_tokens=output)


@dataclass(frozen=True)
class Summary:
    """One simulation, in the metrics' words (per replica unless said)."""

    rate_per_s: float
    ttft_s: dict[str, float]
    tpot_s: dict[str, float]
    e2e_s: dict[str, float]
    ttft_at_slo_percentile_s: float
    tpot_at_slo_percentile_s: float
    meets_slo: bool
    output_tokens_per_s: float
    input_tokens_per_s: float
    requests_per_s: float
    goodput_requests_per_s: float
    finished_fraction: float


def summarise(r: ServingResolved, sim: SimulationResult, rate_per_s: float) -> Summary:
    ttft, tpot, e2e = sim.ttft_s, sim.tpot_s, sim.e2e_s
    q = r.slo_percentile
    ttft_q, tpot_q = percentile(ttft, q), percentile(tpot, q)
    finished = np.isfinite(sim.finish_s)
    tpot_ok = np.where(np.isfinite(tpot), tpot <= r.tpot_slo_s, True)
    good = finished & (ttft <= r.ttft_slo_s) & tpot_ok
    span = sim.makespan_s
    pct = {"p50": 50.0, "p90": 90.0, "p99": 99.0}
    return Summary(
        rate_per_s=rate_per_s,
        ttft_s={k: percentile(ttft, v) for k, v in pct.items()},
        tpot_s={k: percentile(tpot, v) for k, v in pct.items()},
        e2e_s={k: percentile(e2e, v) for k, v in pct.items()},
        ttft_at_slo_percentile_s=ttft_q,
        tpot_at_slo_percentile_s=tpot_q,
        meets_slo=bool(
            finished.all() and ttft_q <= r.ttft_slo_s and (not math.isfinite(tpot_q) or tpot_q <= r.tpot_slo_s)
        ),
        output_tokens_per_s=float(sim.output_tokens[finished].sum()) / span,
        input_tokens_per_s=float(sim.prompt_tokens[finished].sum()) / span,
        requests_per_s=float(finished.sum()) / span,
        goodput_requests_per_s=float(good.sum()) / span,
        finished_fraction=float(finished.mean()),
    )


@dataclass
class Search:
    """The rate search's simulations (deployment rate, summary), in the order run, and its answer."""

    evaluations: list[Summary] = field(default_factory=list)
    max_rate_per_s: float = float("nan")


def saturation_rate(r: ServingResolved, tab: IterationTable, mem: Memory) -> float:
    """A first guess of the deployment's request rate at saturation: the largest decode batch the cache
    holds (at the mean context) decoding back to back, over the mean output length."""
    if r.trace is not None:
        mean_out = float(np.mean([row[2] for row in r.trace]))
        mean_ctx = float(np.mean([row[1] + row[2] / 2 for row in r.trace]))
    elif r.request_lengths is not None:
        mean_out = float(r.request_lengths.mean_output_tokens)
        mean_ctx = float(r.request_lengths.mean_prompt_tokens + mean_out / 2)
    else:
        mean_out, mean_ctx = r.output_tokens, r.prompt_tokens + r.output_tokens / 2
    batch = max(1.0, min(r.max_running, mem.kv_capacity_blocks * BLOCK_TOKENS / max(mean_ctx, 1.0)))
    step = tab.at(batch, 0.0, mean_ctx)
    return r.replicas * batch / step / max(mean_out, 1.0)


def search_max_rate(r: ServingResolved, tab: IterationTable, mem: Memory) -> Search:
    """The largest deployment rate whose simulation meets both SLOs: bracket then bisect (bounded count)."""
    config = scheduler(r, mem.kv_capacity_blocks)
    out = Search()

    def meets(rate: float) -> bool:
        # enough requests to span SEARCH_WINDOW_S of arrivals per replica (a short run never saturates)
        count = int(min(r.num_requests, max(SEARCH_REQUESTS, rate / r.replicas * SEARCH_WINDOW_S)))
        s = summarise(r, simulate(requests(r, rate, count), tab, config), rate)
        out.evaluations.append(s)
        return s.meets_slo

    hi = max(saturation_rate(r, tab, mem) * 1.5, 1e-6)
    if meets(hi):  # the upper end of the search (1.5x the saturation guess) meets the SLOs: report it
        out.max_rate_per_s = hi
        return out
    lo = 0.0
    low_end = hi / 64.0
    if lo == 0.0 and not meets(low_end):
        out.max_rate_per_s = 0.0
        return out
    lo = max(lo, low_end)
    for _ in range(int(r.rate_search_steps)):
        mid = math.sqrt(lo * hi)
        if meets(mid):
            lo = mid
        else:
            hi = mid
    out.max_rate_per_s = lo
    out.evaluations.sort(key=lambda s: s.rate_per_s)
    return out


@dataclass(frozen=True)
class Outcome:
    """Everything one design point computes: the main run, its summary, the search, memory."""

    sim: SimulationResult
    summary: Summary
    search: Search
    memory: Memory
    table: IterationTable


def run(r: ServingResolved) -> Outcome:
    tab = table(r)
    mem = memory(r)
    rate = trace_rate(r) if r.trace is not None else r.arrival_rate_per_s
    sim = simulate(requests(r, rate, int(r.num_requests)), tab, scheduler(r, mem.kv_capacity_blocks))
    return Outcome(sim=sim, summary=summarise(r, sim, rate), search=search_max_rate(r, tab, mem), memory=mem, table=tab)
