"""The serving kind's runs: the device and iteration table, the requests, one simulation's summary, the
largest arrival rate meeting the SLOs (bisection over rate) and the fewest replicas for the given rate.

Replicas: requests are split among replicas at random (a Poisson stream thins into independent Poisson
streams of rate lambda/R), so one replica is simulated at lambda/R and the deployment's throughput is R
times its own. Gamma arrivals are split the same way (each replica sees gamma gaps of the same CV, an
approximation); a trace is dealt round-robin and replica 0's share is simulated.

Speculative decoding: with a draft model each decode iteration is priced as the draft's k steps plus the
target's verification of k + 1 tokens per request (dse.engines.serving.speculative_table) and advances each
request by the expected accepted tokens (expected_accepted_tokens). The draft's weights and KV cache share the
devices' memory with the model's.

Disaggregated prefill/decode (DistServe, Zhong et al., OSDI'24; Splitwise, Patel et al., ISCA'24): the whole
stream is dealt at random over the prefill instances, each simulated (every request's output is its first
token); each instance then sends each request's KV cache over its link, one request at a time in the order
their prefills end (every device its shard, in parallel over min(TP_prefill, TP_decode) links); the requests
are dealt at random over the decode instances, each simulated with requests that arrive with their KV cache.
TTFT is the prefill instance's first token; TPOT includes the transfer and the decode instance's queue (the
prefill instance frees a request's blocks at its first token, not after the transfer: a simplification). The
co-located deployment it is compared with has the same devices (replicas of the document's tensor_parallel).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from dse.catalog.calibration import host_cost, stack_device
from dse.engines.decoder_ops import kv_cache_bytes_per_token
from dse.engines.device import Device
from dse.engines.inference import Deployment, model_shape, routed_expert_parameters
from dse.engines.serving import (
    BLOCK_TOKENS,
    FloatArray,
    IterationTable,
    Requests,
    SchedulerConfig,
    SimulationResult,
    arrival_times,
    expected_accepted_tokens,
    iteration_time_table,
    lognormal_lengths,
    percentile,
    simulate,
    speculative_table,
)
from dse.scenarios.kinds.serving.inputs import ServingResolved
from dse.specs.llm import LLMSpec

#: Requests per simulation of the rate search (at most; fewer when the document asks for fewer).
SEARCH_REQUESTS = 400
#: Seconds of arrivals (per replica) a search simulation spans at least, up to the document's request count.
SEARCH_WINDOW_S = 30.0


def deployment(r: ServingResolved, tp: float | None = None) -> Deployment:
    return Deployment(
        tensor_parallel=r.tensor_parallel if tp is None else tp,
        pipeline_parallel=1.0,
        link_bandwidth_bytes_per_s=r.link_bandwidth_bytes_per_s,
        link_latency_s=r.link_latency_s,
        weight_bytes=r.weight_bytes,
        activation_bytes=r.activation_bytes,
        kv_cache_bytes=r.kv_cache_bytes,
        expert_parallel=r.expert_parallel,
        expert_load_imbalance=r.expert_load_imbalance,
        attention_data_parallel=r.attention_data_parallel,
        expert_exchange=r.expert_exchange,
        expert_weight_bytes=r.expert_weight_bytes,
    )


def replica_devices(r: ServingResolved) -> float:
    """Devices of one co-located replica: TP, times the data-parallel attention ranks."""
    return r.tensor_parallel * r.attention_data_parallel


def device(r: ServingResolved) -> Device:
    return stack_device(
        r.kernel_fits or {}, r.accelerator, r.activation_dtype, r.software_stack, expert_dtype=r.expert_dtype
    ).device


@dataclass(frozen=True)
class Memory:
    weights_bytes_per_device: float
    kv_bytes_per_token_per_device: float
    kv_capacity_blocks: int


def kv_bytes_per_token(r: ServingResolved, llm: LLMSpec) -> float:
    """K and V (or the MLA latent) of one token over all layers, whole model (not per device)."""
    shape = model_shape(llm)
    return float(
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


def _footprint(r: ServingResolved, llm: LLMSpec, tp: float) -> tuple[float, float]:
    """Weights per device and KV bytes per token per device of one model (every expert stored; an MLA latent
    replicated on every tensor-parallel rank, as the inference engine's footprint)."""
    shape = model_shape(llm)
    params = shape.parameters()
    per_token = kv_bytes_per_token(r, llm)
    routed = float(routed_expert_parameters(shape))
    # data-parallel attention: the DP ranks share the routed experts; a stack may keep them in their own dtype
    shared_by = r.attention_data_parallel if r.expert_exchange is not None else 1.0
    expert_bytes = r.weight_bytes if r.expert_weight_bytes is None or llm is not r.model else r.expert_weight_bytes
    stored = (float(params.total) - routed) * r.weight_bytes + routed / shared_by * expert_bytes
    return stored / tp, per_token if shape.mla is not None else per_token / tp


def memory(r: ServingResolved, tp: float | None = None) -> Memory:
    """Weights per device and the paged KV cache left beside them (blocks of 16 tokens per replica); a draft
    model's weights and KV cache share the devices."""
    degree = r.tensor_parallel if tp is None else tp
    weights, per_token = _footprint(r, r.model, degree)
    if r.draft_model is not None:
        draft_weights, draft_per_token = _footprint(r, r.draft_model, degree)
        weights, per_token = weights + draft_weights, per_token + draft_per_token
    free = max(r.accelerator.memory_capacity_bytes * r.gpu_memory_utilization - weights, 0.0)
    # each data-parallel attention rank caches its own requests: the replica holds DP ranks' blocks
    return Memory(weights, per_token, int(r.attention_data_parallel) * (int(free // per_token) // BLOCK_TOKENS))


def max_context(r: ServingResolved) -> int:
    if r.trace is not None:
        return max(int(p + o) for _, p, o in r.trace)
    if r.request_lengths is not None:
        return int(r.request_lengths.max_context_tokens)
    return int(r.prompt_tokens + r.output_tokens)


def table(r: ServingResolved, tp: float | None = None) -> IterationTable:
    """The iteration table of one replica (of `tp` devices); a speculative one with a draft model."""
    dev, dep = device(r), deployment(r, tp)
    top_batch, top_prefill = int(r.max_running), int(max(r.token_budget, min(max_context(r), 1_048_576)))

    # the stack's host work per scheduler iteration (the target's step; a draft model's passes run inside it);
    # a multi-step scheduler (`scheduler_steps`) runs its per-block part once per decode block
    host = host_cost(
        r.host_fits or {},
        r.software_stack,
        vocab_size=float(r.model.vocab_size),
        tensor_parallel=float(r.tensor_parallel if tp is None else tp),
        scheduler_steps=float(r.scheduler_steps),
    )

    def priced(llm: LLMSpec, queries: int = 1, with_host: bool = True) -> IterationTable:
        return iteration_time_table(
            shape=model_shape(llm),
            device=dev,
            deployment=dep,
            max_decode_batch=top_batch,
            max_prefill_tokens=top_prefill,
            max_context_tokens=max_context(r),
            query_tokens_per_request=queries,
            prompt_tokens=mean_lengths(r)[0],
            host=host if with_host else None,
        )

    if r.draft_model is None:
        return priced(r.model)
    k = int(r.draft_tokens)
    return speculative_table(priced(r.model, k + 1), priced(r.draft_model, with_host=False), k)


def tokens_per_step(r: ServingResolved) -> float:
    """Tokens a decode iteration yields per request: 1, or the expected accepted tokens of a speculative step."""
    if r.draft_model is None:
        return 1.0
    return expected_accepted_tokens(int(r.draft_tokens), r.acceptance_rate)


def scheduler(r: ServingResolved, blocks: int, *, decode_only: bool = False) -> SchedulerConfig:
    return SchedulerConfig(
        token_budget=int(r.token_budget),
        chunked_prefill=r.chunked_prefill,
        max_running=int(r.max_running),
        kv_capacity_blocks=blocks,
        prefix_hit_rate=r.prefix_cache_hit_rate,
        tokens_per_step=tokens_per_step(r),
        decode_only=decode_only,
        budget_tokens_per_decode=1 if r.draft_model is None else int(r.draft_tokens) + 1,
        guaranteed_no_evict=r.guaranteed_no_evict,
        prompts_join_decodes=r.prompts_join_decodes,
        scheduler_steps=int(r.scheduler_steps),
        first_token_with_next_step=r.software_stack is not None and r.software_stack.outputs_with_next_step,
    )


def trace_rate(r: ServingResolved) -> float:
    """Requests per second of the inline trace."""
    assert r.trace is not None
    times = [row[0] for row in r.trace]
    return (len(times) - 1) / (max(times) - min(times))


def requests(r: ServingResolved, rate_per_s: float, count: int, replicas: int | None = None) -> Requests:
    """One replica's requests at the deployment's `rate_per_s` (deterministic for the seed); replicas=1: the
    whole stream."""
    rng = np.random.default_rng(int(r.seed))
    replicas = int(r.replicas) if replicas is None else replicas
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
            median_prompt=None if lengths.median_prompt_tokens is None else float(lengths.median_prompt_tokens),
            median_output=None if lengths.median_output_tokens is None else float(lengths.median_output_tokens),
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
    #: Token-level time between tokens (every gap of every request, Sarathi-Serve's TBT), p50 / p90 / p99.
    tbt_s: dict[str, float] = field(default_factory=dict)


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
        tbt_s={k: sim.tbt_percentile_s(v) for k, v in pct.items()},
    )


@dataclass
class Search:
    """The rate search's simulations (deployment rate, summary), in the order run, and its answer."""

    evaluations: list[Summary] = field(default_factory=list)
    max_rate_per_s: float = float("nan")


def mean_lengths(r: ServingResolved) -> tuple[float, float]:
    """Mean prompt and output tokens of the requests."""
    if r.trace is not None:
        return float(np.mean([row[1] for row in r.trace])), float(np.mean([row[2] for row in r.trace]))
    if r.request_lengths is not None:
        return float(r.request_lengths.mean_prompt_tokens), float(r.request_lengths.mean_output_tokens)
    return r.prompt_tokens, r.output_tokens


@dataclass(frozen=True)
class Pools:
    """The instances a run simulates: one co-located replica's table and cache, or the decode pool's (`table`,
    `memory`) and the prefill pool's."""

    table: IterationTable
    memory: Memory
    prefill_table: IterationTable | None = None
    prefill_memory: Memory | None = None


def pools(r: ServingResolved) -> Pools:
    if not r.disaggregated:
        return Pools(table(r), memory(r))
    return Pools(
        table=table(r, r.decode_tensor_parallel),
        memory=memory(r, r.decode_tensor_parallel),
        prefill_table=table(r, r.prefill_tensor_parallel),
        prefill_memory=memory(r, r.prefill_tensor_parallel),
    )


def devices(r: ServingResolved) -> float:
    """Devices of the whole deployment."""
    if r.disaggregated:
        return r.prefill_replicas * r.prefill_tensor_parallel + r.decode_replicas * r.decode_tensor_parallel
    return r.replicas * replica_devices(r)


def replica_scale(r: ServingResolved) -> float:
    """What one run's rates are multiplied by for the deployment's: R co-located (one replica simulated), 1
    disaggregated (the whole stream simulated)."""
    return 1.0 if r.disaggregated else r.replicas


def saturation_rate(r: ServingResolved, pl: Pools) -> float:
    """A first guess of the deployment's request rate at saturation: the largest decode batch the cache
    holds (at the mean context; no-evict, at the whole mean prompt + output) decoding back to back, over the
    mean output length; disaggregated, the smaller of that (decode pool) and the prefill pool's budget-sized
    chunks back to back over the mean prompt."""
    mean_prompt, mean_out = mean_lengths(r)
    mean_ctx = mean_prompt + mean_out / 2
    mem, tab = pl.memory, pl.table
    held = mean_prompt + mean_out if r.guaranteed_no_evict else mean_ctx  # no-evict: each holds its whole length
    batch = max(1.0, min(r.max_running, mem.kv_capacity_blocks * BLOCK_TOKENS / max(held, 1.0)))
    step = tab.at(batch, 0.0, mean_ctx)
    per_instance = batch * tokens_per_step(r) / step / max(mean_out, 1.0)
    if not r.disaggregated:
        return r.replicas * per_instance
    assert pl.prefill_table is not None
    chunk = r.token_budget
    prefill = chunk / pl.prefill_table.at(0.0, chunk, mean_prompt) / max(mean_prompt, 1.0)
    return min(r.decode_replicas * per_instance, r.prefill_replicas * prefill)


@dataclass(frozen=True)
class Served:
    """One run at a rate. `sim`: per-request times of the requests simulated (one replica's, or the whole
    stream's when disaggregated) and the step record of one (decode) instance."""

    sim: SimulationResult
    #: Device-hours the simulated instances are held over the run (the cost's base).
    device_hours: float
    #: Device-seconds the simulated instances compute (the energy's base).
    busy_device_s: float
    #: Share of the cost charged to input tokens: the prefill share of busy time, or the prefill pool's devices.
    input_cost_share: float
    #: Seconds each request's KV cache takes over the link (disaggregated; empty co-located).
    kv_transfer_s: FloatArray


def serve(r: ServingResolved, pl: Pools, rate_per_s: float, count: int) -> Served:
    if r.disaggregated:
        return _serve_disaggregated(r, pl, rate_per_s, count)
    sim = simulate(requests(r, rate_per_s, count), pl.table, scheduler(r, pl.memory.kv_capacity_blocks))
    return Served(
        sim=sim,
        device_hours=replica_devices(r) * sim.makespan_s / 3600.0,
        busy_device_s=replica_devices(r) * sim.busy_s,
        input_cost_share=sim.prefill_busy_s / max(sim.busy_s, 1e-12),
        kv_transfer_s=np.empty(0),
    )


def kv_transfer_s(r: ServingResolved, prompt_tokens: NDArray[np.int64]) -> FloatArray:
    """Seconds to send each prompt's KV cache (model's and draft's) from a prefill to a decode instance: every
    device sends its shard over its own link, min(TP_prefill, TP_decode) links in parallel."""
    link = r.kv_transfer_link
    assert link is not None
    per_token = kv_bytes_per_token(r, r.model)
    if r.draft_model is not None:
        per_token += kv_bytes_per_token(r, r.draft_model)
    lanes = min(r.prefill_tensor_parallel, r.decode_tensor_parallel)
    bytes_per_s = link.bandwidth_per_direction_bytes_per_s * lanes
    return np.asarray(link.latency_s + prompt_tokens * per_token / bytes_per_s, dtype=np.float64)


def _send_in_turn(ready_s: FloatArray, transfer_s: FloatArray) -> FloatArray:
    """When each transfer ends on one link that sends one at a time, in the order they are ready."""
    order = np.argsort(ready_s, kind="stable")
    ends = np.full(ready_s.shape, np.nan)
    free = 0.0
    for i, ready, seconds in zip(order.tolist(), ready_s[order].tolist(), transfer_s[order].tolist(), strict=True):
        if ready != ready:  # never prefilled (a prompt larger than the cache)
            continue
        free = max(free, ready) + seconds
        ends[i] = free
    return ends


def _serve_disaggregated(r: ServingResolved, pl: Pools, rate_per_s: float, count: int) -> Served:
    assert pl.prefill_table is not None and pl.prefill_memory is not None
    stream = requests(r, rate_per_s, count, replicas=1)
    n = len(stream.arrival_s)
    rng = np.random.default_rng(int(r.seed) + 1)
    prefill_of = rng.integers(int(r.prefill_replicas), size=n)
    decode_of = rng.integers(int(r.decode_replicas), size=n)
    output = np.maximum(stream.output_tokens, 1)
    transfer = kv_transfer_s(r, stream.prompt_tokens)
    first = np.full(n, np.nan)
    sent = np.full(n, np.nan)
    finish = np.full(n, np.nan)
    busy_device_s = 0.0
    preemptions = iterations = 0
    shown: list[SimulationResult] = []  # the instance whose steps the charts show: the first decode instance run
    for i in range(int(r.prefill_replicas)):
        idx = np.flatnonzero(prefill_of == i)
        if idx.size == 0:
            continue
        sim = simulate(
            Requests(stream.arrival_s[idx], stream.prompt_tokens[idx], np.ones(idx.size, dtype=np.int64)),
            pl.prefill_table,
            scheduler(r, pl.prefill_memory.kv_capacity_blocks),
        )
        first[idx] = sim.first_token_s
        sent[idx] = _send_in_turn(sim.first_token_s, transfer[idx])
        busy_device_s += r.prefill_tensor_parallel * sim.busy_s
        preemptions += sim.preemptions
        iterations += sim.iterations
        shown = shown or [sim]  # a prefill instance's until a decode instance runs
    decoded = False
    gaps: list[tuple[FloatArray, FloatArray]] = []  # every decode instance's token gaps
    for j in range(int(r.decode_replicas)):
        idx = np.flatnonzero((decode_of == j) & np.isfinite(sent) & (output > 1))
        if idx.size == 0:
            continue
        order = idx[np.argsort(sent[idx], kind="stable")]
        sim = simulate(
            Requests(sent[order], stream.prompt_tokens[order], output[order], first_token_s=first[order]),
            pl.table,
            scheduler(r, pl.memory.kv_capacity_blocks, decode_only=True),
        )
        finish[order] = sim.finish_s
        gaps.append((sim.tbt_gap_s, sim.tbt_gap_count))
        busy_device_s += r.decode_tensor_parallel * sim.busy_s
        preemptions += sim.preemptions
        iterations += sim.iterations
        if not decoded:
            shown, decoded = [sim], True
    finish = np.where(output <= 1, first, finish)
    done = np.isfinite(finish)
    makespan = float(max(np.max(finish[done], initial=0.0), np.max(first[np.isfinite(first)], initial=0.0), 1e-12))
    e2e = finish - stream.arrival_s
    sim = dataclasses.replace(
        shown[0],
        arrival_s=stream.arrival_s,
        first_token_s=first,
        finish_s=finish,
        prompt_tokens=stream.prompt_tokens,
        output_tokens=output,
        preemptions=preemptions,
        makespan_s=makespan,
        mean_in_system=float(np.sum(e2e[done])) / makespan,  # Little's law over the run
        iterations=iterations,
        tbt_gap_s=np.concatenate([g for g, _ in gaps]) if gaps else np.empty(0),
        tbt_gap_count=np.concatenate([c for _, c in gaps]) if gaps else np.empty(0),
    )
    total = devices(r)
    return Served(
        sim=sim,
        device_hours=total * makespan / 3600.0,
        busy_device_s=busy_device_s,
        input_cost_share=r.prefill_replicas * r.prefill_tensor_parallel / total,
        kv_transfer_s=transfer,
    )


def search_max_rate(r: ServingResolved, pl: Pools) -> Search:
    """The largest deployment rate whose simulation meets both SLOs: bracket then bisect (bounded count)."""
    out = Search()

    def meets(rate: float) -> bool:
        # enough requests to span SEARCH_WINDOW_S of arrivals per simulated stream (a short run never saturates)
        count = int(min(r.num_requests, max(SEARCH_REQUESTS, rate / replica_scale(r) * SEARCH_WINDOW_S)))
        s = summarise(r, serve(r, pl, rate, count).sim, rate)
        out.evaluations.append(s)
        return s.meets_slo

    hi = max(saturation_rate(r, pl) * 1.5, 1e-6)
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
    """Everything one design point computes: the main run, its summary, the search, memory; disaggregated, the
    co-located deployment of the same devices run the same way (`colocated`)."""

    sim: SimulationResult
    summary: Summary
    search: Search
    memory: Memory
    table: IterationTable
    served: Served
    colocated: Outcome | None = None


def colocated_twin(r: ServingResolved) -> ServingResolved:
    """The co-located deployment of the same devices: replicas of the document's tensor_parallel."""
    return dataclasses.replace(r, disaggregated=False, replicas=float(max(1, int(devices(r) // r.tensor_parallel))))


def run(r: ServingResolved) -> Outcome:
    pl = pools(r)
    rate = trace_rate(r) if r.trace is not None else r.arrival_rate_per_s
    served = serve(r, pl, rate, int(r.num_requests))
    return Outcome(
        sim=served.sim,
        summary=summarise(r, served.sim, rate),
        search=search_max_rate(r, pl),
        memory=pl.memory,
        table=pl.table,
        served=served,
        colocated=run(colocated_twin(r)) if r.disaggregated else None,
    )
