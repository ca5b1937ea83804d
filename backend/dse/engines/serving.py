"""Serving under load: an iteration-level simulation of a continuous-batching LLM server (vLLM / Sarathi style).

One replica (tensor parallel over `tp` devices) serves a stream of requests. Each scheduler iteration
runs the decode tokens of the running requests plus, with chunked prefill, a chunk of waiting prompts
up to a token budget (Sarathi-Serve, Agrawal et al., OSDI'24); without it an iteration is either a
prefill of newly admitted prompts or a decode of the running requests (vLLM's default scheduler,
Kwon et al., SOSP'23). The KV cache is paged in blocks of 16 tokens; a request is admitted when its
prompt's blocks are free, and when a decode step needs a block that is not free the newest running
request is preempted by recompute (its blocks freed, its prompt and generated tokens prefilled again).

Iteration time comes from the same per-op model as the inference kind: one decoder layer priced as a
mixed batch through `decoder_layer_ops` / `price_layer_ops` on the `Device` (dense ops over every token
of the iteration, decode attention over the running requests' KV, prefill attention over the chunk),
times the layers, plus the logits. `iteration_time_table` prices a grid over (decode batch, prefill
tokens, mean context) in one vectorised call; the loop interpolates it (trilinear).

The loop advances over iterations, never over design points. Runs of identical decode-only iterations
(no prefill in flight, nothing admissible) are taken in one step of k iterations, k bounded by the
next completion, the next arrival and the free KV blocks, so a run costs O(events), not O(tokens);
each step is recorded (time, iterations, decode batch, prefill tokens, queue, KV blocks).
Deterministic for a seed (numpy Generator).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dse.engines.decoder_ops import OP_NAMES, decoder_layer_ops, price_layer_ops
from dse.engines.device import Device
from dse.engines.inference import Deployment, ModelShape, lm_head_time_s

FloatArray = NDArray[np.float64]

#: Tokens per KV-cache block (vLLM's default block size).
BLOCK_TOKENS = 16
BLOCK_SHIFT = 4
#: Ops priced per decode request / per prefill chunk (attention); the rest are priced over all tokens.
ATTENTION_OPS: tuple[str, ...] = ("score", "softmax", "context")


@dataclass(frozen=True)
class SchedulerConfig:
    """The server's scheduler and cache."""

    token_budget: int
    chunked_prefill: bool
    max_running: int
    kv_capacity_blocks: int
    prefix_hit_rate: float = 0.0


@dataclass(frozen=True)
class Requests:
    """Requests in arrival order: arrival time (s), prompt and output tokens."""

    arrival_s: FloatArray
    prompt_tokens: NDArray[np.int64]
    output_tokens: NDArray[np.int64]


@dataclass(frozen=True)
class IterationTable:
    """Seconds of one iteration on a grid over (decode batch, prefill tokens, mean decode context)."""

    decode_batch: tuple[float, ...]
    prefill_tokens: tuple[float, ...]
    context_tokens: tuple[float, ...]
    time_s: FloatArray  # shape (decode, prefill, context)

    def at(self, decode: float, prefill: float, context: float) -> float:
        """Trilinear interpolation (clamped to the grid)."""
        i, fi = _bracket(self.decode_batch, decode)
        j, fj = _bracket(self.prefill_tokens, prefill)
        k, fk = _bracket(self.context_tokens, context)
        t = self.time_s
        c00 = t[i, j, k] * (1 - fk) + t[i, j, k + 1] * fk
        c01 = t[i, j + 1, k] * (1 - fk) + t[i, j + 1, k + 1] * fk
        c10 = t[i + 1, j, k] * (1 - fk) + t[i + 1, j, k + 1] * fk
        c11 = t[i + 1, j + 1, k] * (1 - fk) + t[i + 1, j + 1, k + 1] * fk
        c0 = c00 * (1 - fj) + c01 * fj
        c1 = c10 * (1 - fj) + c11 * fj
        return float(c0 * (1 - fi) + c1 * fi)


def _bracket(grid: tuple[float, ...], x: float) -> tuple[int, float]:
    """Index i and weight f with x ~ grid[i] * (1 - f) + grid[i + 1] * f (clamped)."""
    n = len(grid)
    if x <= grid[0]:
        return 0, 0.0
    if x >= grid[-1]:
        return n - 2, 1.0
    i = bisect.bisect_right(grid, x) - 1
    return i, (x - grid[i]) / (grid[i + 1] - grid[i])


def _grid(top: float, points: int, *, zero: bool) -> tuple[float, ...]:
    values = np.unique(np.round(np.geomspace(1.0, max(top, 2.0), points)))
    return tuple(float(v) for v in ((0.0, *values) if zero else values))


def iteration_time_table(
    *,
    shape: ModelShape,
    device: Device,
    deployment: Deployment,
    max_decode_batch: int,
    max_prefill_tokens: int,
    max_context_tokens: int,
    fused_qkv: bool = True,
    points: int = 14,
) -> IterationTable:
    """One mixed-batch iteration priced on the grid in one vectorised pass (see the module docstring).

    Dense ops (norms, QKV, out-projection, FFN, all-reduces) run over all B + P tokens; decode
    attention over B requests of mean context c; prefill attention over one chunk of P tokens
    against P keys (causal). Times `num_layers`, plus the logits of the B + 1 sampled tokens.
    """
    dec = _grid(max_decode_batch, points, zero=True)
    pre = _grid(max_prefill_tokens, points, zero=True)
    ctx = _grid(max_context_tokens, max(points // 2, 4), zero=False)
    b = np.asarray(dec)[:, None, None]
    p = np.asarray(pre)[None, :, None]
    c = np.asarray(ctx)[None, None, :]
    common: dict[str, Any] = {
        "hidden_size": shape.hidden_size,
        "num_heads": shape.num_heads,
        "num_kv_heads": shape.num_kv_heads,
        "ffn_hidden_size": shape.ffn_hidden_size,
        "gated_ffn": shape.gated_ffn,
        "layernorm": shape.layernorm,
        "tensor_parallel": deployment.tensor_parallel,
        "weight_bytes": deployment.weight_bytes,
        "activation_bytes": deployment.activation_bytes,
        "kv_cache_bytes": deployment.kv_cache_bytes,
        "fused_qkv": fused_qkv,
    }
    links: dict[str, Any] = {
        "tensor_parallel": deployment.tensor_parallel,
        "link_bandwidth_bytes_per_s": deployment.link_bandwidth_bytes_per_s,
        "link_latency_s": deployment.link_latency_s,
    }
    tokens = np.maximum(b + p, 1.0)
    dense = price_layer_ops(
        decoder_layer_ops(batch=tokens, query_tokens=1.0, context_tokens=c, **common), device, **links
    )
    decode = price_layer_ops(
        decoder_layer_ops(batch=np.maximum(b, 1.0), query_tokens=1.0, context_tokens=c, **common), device, **links
    )
    prefill = price_layer_ops(
        decoder_layer_ops(
            batch=1.0, query_tokens=np.maximum(p, 1.0), context_tokens=np.maximum(p, 1.0), prefill=True, **common
        ),
        device,
        **links,
    )
    layer = np.zeros(np.broadcast_shapes(b.shape, p.shape, c.shape))
    for name in OP_NAMES:
        if name in ATTENTION_OPS:
            layer = layer + np.where(b > 0, decode[name].time_s, 0.0) + np.where(p > 0, prefill[name].time_s, 0.0)
        else:
            layer = layer + dense[name].time_s
    logits = lm_head_time_s(shape, device, deployment, np.maximum(b + np.minimum(p, 1.0), 1.0))
    total = np.asarray(shape.num_layers * layer + logits, dtype=np.float64)
    total = np.broadcast_to(total, layer.shape).copy()
    total[0, 0, :] = 0.0  # nothing to run
    return IterationTable(decode_batch=dec, prefill_tokens=pre, context_tokens=ctx, time_s=total)


@dataclass(frozen=True)
class SimulationResult:
    """Per-request times and the recorded steps of one run."""

    arrival_s: FloatArray
    first_token_s: FloatArray
    finish_s: FloatArray
    prompt_tokens: NDArray[np.int64]
    output_tokens: NDArray[np.int64]
    preemptions: int
    makespan_s: float
    busy_s: float
    prefill_busy_s: float
    #: Time-average of requests in the system (waiting + running) over [0, makespan].
    mean_in_system: float
    mean_kv_blocks: float
    peak_kv_blocks: float
    iterations: int
    #: Recorded steps: start (s), duration (s), iterations, decode batch, prefill tokens, queue, KV blocks.
    step_start_s: FloatArray
    step_duration_s: FloatArray
    step_iterations: FloatArray
    step_decode_batch: FloatArray
    step_prefill_tokens: FloatArray
    step_queue: FloatArray
    step_kv_blocks: FloatArray

    @property
    def ttft_s(self) -> FloatArray:
        return self.first_token_s - self.arrival_s

    @property
    def tpot_s(self) -> FloatArray:
        """(finish - first token) / (output - 1); requests of one output token have none (NaN)."""
        steps = self.output_tokens.astype(np.float64) - 1.0
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(steps > 0, (self.finish_s - self.first_token_s) / np.maximum(steps, 1.0), np.nan)

    @property
    def e2e_s(self) -> FloatArray:
        return self.finish_s - self.arrival_s


def _blocks(tokens: NDArray[np.int64]) -> NDArray[np.int64]:
    """KV blocks that hold each count of tokens (a shift: BLOCK_TOKENS is 2**BLOCK_SHIFT)."""
    return (tokens + (BLOCK_TOKENS - 1)) >> BLOCK_SHIFT


def _blocks_of(tokens: int) -> int:
    return -(-tokens // BLOCK_TOKENS)


class _Recorder:
    def __init__(self) -> None:
        self.rows: list[tuple[float, float, float, float, float, float, float]] = []

    def add(self, t: float, dt: float, k: int, b: int, p: int, queue: int, kv: int) -> None:
        self.rows.append((t, dt, float(k), float(b), float(p), float(queue), float(kv)))

    def arrays(self) -> list[FloatArray]:
        data = np.asarray(self.rows, dtype=np.float64).reshape(-1, 7)
        return [data[:, i].copy() for i in range(7)]


def simulate(requests: Requests, table: IterationTable, config: SchedulerConfig) -> SimulationResult:
    """Run every request to completion (see the module docstring); deterministic, no randomness inside."""
    n = len(requests.arrival_s)
    arrival = requests.arrival_s.astype(np.float64)
    prompt = requests.prompt_tokens.astype(np.int64)
    output = np.maximum(requests.output_tokens.astype(np.int64), 1)
    cached = np.floor(prompt * min(max(config.prefix_hit_rate, 0.0), 1.0)).astype(np.int64)
    cached = np.minimum(cached, prompt - 1)  # at least one prompt token is computed
    # per-request state
    prefill_len = prompt.copy()  # KV tokens written by the prefill (prompt; + generated after a preemption)
    prefill_left = prompt - cached  # tokens still to compute
    generated = np.zeros(n, dtype=np.int64)
    kv_tokens = np.zeros(n, dtype=np.int64)
    first = np.full(n, np.nan)
    finish = np.full(n, np.nan)
    capacity = int(config.kv_capacity_blocks)
    budget = max(int(config.token_budget), 1)
    max_running = max(int(config.max_running), 1)

    waiting: deque[int] = deque()
    running: list[int] = []  # admission order (the last is the newest)
    next_arrival = 0
    used_blocks = 0
    t = 0.0
    done = 0
    preemptions = 0
    busy = prefill_busy = 0.0
    in_system_area = kv_area = 0.0
    peak_kv = 0
    iterations = 0
    rec = _Recorder()
    hold_admission = False
    n_prefilling = 0  # running requests with prompt tokens still to compute
    run_cache: NDArray[np.int64] | None = None  # `running` as an array (rebuilt when it changes)

    def finish_step(dt: float, k: int, b: int, p: int, t_dec: float, t_pre: float) -> None:
        nonlocal t, busy, prefill_busy, in_system_area, kv_area, peak_kv, iterations
        rec.add(t, dt, k, b, p, len(waiting), used_blocks)
        in_system_area += dt * (len(waiting) + len(running))
        kv_area += dt * used_blocks
        peak_kv = max(peak_kv, used_blocks)
        busy += dt
        share = t_pre / (t_pre + t_dec) if t_pre + t_dec > 0 else 0.0
        prefill_busy += dt * share
        iterations += k
        t += dt

    while done < n:
        while next_arrival < n and arrival[next_arrival] <= t:
            waiting.append(next_arrival)
            next_arrival += 1
        # admission (FCFS): blocks for the prompt, a free running slot; without chunking, prompts up to the budget
        admitted_tokens = 0
        while waiting and len(running) < max_running and not hold_admission:
            r = waiting[0]
            need = _blocks_of(int(prefill_len[r]))
            if used_blocks + need > capacity:
                break
            if not config.chunked_prefill and admitted_tokens > 0 and admitted_tokens + prefill_left[r] > budget:
                break
            waiting.popleft()
            running.append(r)
            n_prefilling += 1
            run_cache = None
            kv_tokens[r] = prefill_len[r]
            used_blocks += need
            admitted_tokens += int(prefill_left[r])
        if not running:
            if next_arrival >= n:  # nothing admissible ever again (a prompt larger than the cache)
                break
            idle = arrival[next_arrival] - t
            if idle > 0:
                in_system_area += idle * len(waiting)
                rec.add(t, idle, 0, 0, 0, len(waiting), used_blocks)
                t = float(arrival[next_arrival])
            continue
        if run_cache is None:
            run_cache = np.asarray(running, dtype=np.int64)
        run = run_cache
        if n_prefilling:
            left = prefill_left[run]
            dec = run[left == 0]
            # prefill chunks (in admission order)
            if config.chunked_prefill:
                room = max(budget - len(dec), 0)
                chunk = np.minimum(left, np.maximum(room - (np.cumsum(left) - left), 0))
            else:
                chunk = left.copy()
            p_tokens = int(chunk.sum())
        else:
            dec, p_tokens = run, 0
        decode_now = dec if (config.chunked_prefill or p_tokens == 0) else dec[:0]
        b = len(decode_now)
        # KV blocks for the decode step: preempt the newest until they fit
        if b:
            grow = int((_blocks(kv_tokens[decode_now] + 1) - _blocks(kv_tokens[decode_now])).sum())
            if used_blocks + grow > capacity:
                if len(running) == 1:  # one request that outgrows the whole cache: it is dropped
                    gone_id = running.pop()
                    run_cache = None
                    used_blocks -= _blocks_of(int(kv_tokens[gone_id]))
                    kv_tokens[gone_id] = 0
                    done += 1
                    continue
                hold_admission = True  # no re-admission before the next iteration runs (no livelock)
                victim = running.pop()
                run_cache = None
                n_prefilling -= int(prefill_left[victim] > 0)
                used_blocks -= _blocks_of(int(kv_tokens[victim]))
                prefill_len[victim] = prompt[victim] + generated[victim]
                prefill_left[victim] = prefill_len[victim]
                kv_tokens[victim] = 0
                waiting.appendleft(victim)
                preemptions += 1
                continue
        ctx = float(kv_tokens[decode_now].sum()) / b if b else 1.0
        k = 1
        first_done = 0
        if p_tokens == 0 and b:
            # a run of identical decode iterations: until a completion, an arrival that could be admitted,
            # or the free KV blocks (each iteration grows each request by one token)
            remaining = output[decode_now] - generated[decode_now]
            first_done = k = int(remaining.min())
            step0 = table.at(b, 0, ctx)
            # a waiting request is blocked by KV blocks, which only a completion frees; an arrival
            # matters when the queue is empty and a running slot is free
            if not waiting and len(running) < max_running and next_arrival < n:
                k = min(k, max(1, math.ceil((arrival[next_arrival] - t) / max(step0, 1e-12))))
            free = capacity - used_blocks
            k = max(1, min(k, BLOCK_TOKENS * (free // b)))
            ctx = ctx + (k - 1) / 2.0
        # the prefill share of a mixed iteration (its cost split): by the two halves' standalone times
        t_dec, t_pre = (
            (table.at(b, 0, ctx), table.at(0, p_tokens, ctx)) if b and p_tokens else (float(b), float(p_tokens))
        )
        dt = table.at(b, p_tokens, ctx) * k
        if b:
            old = int(_blocks(kv_tokens[decode_now]).sum())
            kv_tokens[decode_now] += k
            used_blocks += int(_blocks(kv_tokens[decode_now]).sum()) - old
            generated[decode_now] += k
        finish_step(dt, k, b, p_tokens, t_dec, t_pre)
        hold_admission = False
        if p_tokens:
            prefill_left[run] = left - chunk
            completed = run[(left > 0) & (left - chunk == 0)]
            n_prefilling -= len(completed)
            fresh = completed[generated[completed] == 0]
            first[fresh] = t
            generated[completed] += 1
            finished = run[(generated[run] >= output[run]) & (prefill_left[run] == 0)]
        elif k >= first_done:
            finished = decode_now[generated[decode_now] >= output[decode_now]]
        else:
            finished = decode_now[:0]
        # completions
        if len(finished):
            run_cache = None
            finish[finished] = t
            first_missing = finished[np.isnan(first[finished])]
            first[first_missing] = t
            done += len(finished)
            gone = set(finished.tolist())
            used_blocks -= int(_blocks(kv_tokens[finished]).sum())
            running = [r for r in running if r not in gone]
    steps = rec.arrays()
    makespan = max(t, 1e-12)
    return SimulationResult(
        arrival_s=arrival,
        first_token_s=first,
        finish_s=finish,
        prompt_tokens=prompt,
        output_tokens=output,
        preemptions=preemptions,
        makespan_s=makespan,
        busy_s=busy,
        prefill_busy_s=prefill_busy,
        mean_in_system=in_system_area / makespan,
        mean_kv_blocks=kv_area / makespan,
        peak_kv_blocks=float(peak_kv),
        iterations=iterations,
        step_start_s=steps[0],
        step_duration_s=steps[1],
        step_iterations=steps[2],
        step_decode_batch=steps[3],
        step_prefill_tokens=steps[4],
        step_queue=steps[5],
        step_kv_blocks=steps[6],
    )


def arrival_times(
    rng: np.random.Generator, *, count: int, rate_per_s: float, process: str, cv: float = 1.0
) -> FloatArray:
    """Arrival times (s) of `count` requests: Poisson (exponential gaps) or gamma gaps of coefficient of
    variation `cv` (shape 1/cv^2, mean 1/rate; cv > 1 is burstier than Poisson)."""
    if process == "gamma":
        shape = 1.0 / (cv * cv)
        gaps = rng.gamma(shape, 1.0 / (shape * rate_per_s), size=count)
    else:
        gaps = rng.exponential(1.0 / rate_per_s, size=count)
    return np.cumsum(gaps)


def lognormal_lengths(
    rng: np.random.Generator,
    *,
    count: int,
    mean_prompt: float,
    mean_output: float,
    median_context: float,
    mean_context: float,
    max_context: float,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Prompt and output lengths, each log-normal with its published mean and the spread of the context law
    (sigma = sqrt(2 ln(mean/median)) of the context fit), capped so prompt + output <= max_context."""
    sigma = math.sqrt(max(2.0 * math.log(max(mean_context / median_context, 1.0)), 1e-6))

    def draw(mean: float) -> FloatArray:
        mu = math.log(mean) - sigma * sigma / 2.0
        return rng.lognormal(mu, sigma, size=count)

    prompt = np.clip(np.round(draw(mean_prompt)), 1, max(max_context - 1, 1)).astype(np.int64)
    output = np.clip(np.round(draw(mean_output)), 1, None).astype(np.int64)
    output = np.maximum(np.minimum(output, (max_context - prompt).astype(np.int64)), 1)
    return prompt, output


def percentile(values: FloatArray, q: float) -> float:
    """The q-th percentile of the finite values (NaN when none)."""
    finite = values[np.isfinite(values)]
    return float(np.percentile(finite, q)) if finite.size else float("nan")
