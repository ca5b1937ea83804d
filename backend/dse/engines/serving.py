"""Serving under load: an iteration-level simulation of a continuous-batching LLM server (vLLM / Sarathi style).

One replica (tensor parallel over `tp` devices) serves a stream of requests. Each scheduler iteration
runs the decode tokens of the running requests plus, with chunked prefill, a chunk of waiting prompts
up to a token budget (Sarathi-Serve, Agrawal et al., OSDI'24); without it an iteration is either a
prefill of newly admitted prompts or a decode of the running requests (vLLM's default scheduler,
Kwon et al., SOSP'23). The KV cache is paged in blocks of 16 tokens; a request is admitted when its
prompt's blocks are free, and when a decode step needs a block that is not free the newest running
request is preempted by recompute (its blocks freed, its prompt and generated tokens prefilled again);
or, as TensorRT-LLM's GUARANTEED_NO_EVICT capacity scheduler, a request is admitted only when the blocks of
its prompt and whole output fit beside every running request's to completion, and none is ever preempted.
With multi-step scheduling (vLLM's --num-scheduler-steps) the scheduler runs once per block of decode iterations:
arrivals wait for the block under way, and requests that complete inside it decode on to its end. With asynchronous
output processing (vLLM 0.6.0) a prefill's first token is seen when the next step's model call returns: at the end of
the next prefill, or once the next decode block is launched (its host work before the model).

Iteration time comes from the same per-op model as the inference kind: one decoder layer priced as a
mixed batch through `decoder_layer_ops` / `price_layer_ops` on the `Device` (dense ops over every token
of the iteration, decode attention over the running requests' KV, prefill attention within each prompt of the
chunk),
times the layers, plus the logits. `iteration_time_table` prices a grid over (decode batch, prefill
tokens, mean context) in one vectorised call; the loop interpolates it (trilinear, by scalar lookups into
nested lists with the decode batch's grid bracket precomputed per integer batch).

With data-parallel attention (Deployment.attention_data_parallel) the table's decode batch and prefill tokens
are the replica's, split evenly over its DP ranks, and an iteration is one rank's (the ranks step together
through the expert all-to-alls, priced with DeepEP's direct kernels for every iteration: a co-located server
mixes prefill and decode tokens in one pass).

The loop advances over iterations, never over design points. Runs of identical decode-only iterations
(no prefill in flight, nothing admissible) are taken in one step of k iterations, k bounded by the
next completion, the next arrival and the free KV blocks, so a run costs O(events), not O(tokens);
each step is recorded (time, iterations, decode batch, prefill tokens, queue, KV blocks), and so is every
token's gap since the request's previous token (Sarathi-Serve's time between tokens), as (gap, count) pairs
per step: those whose previous token ended the last decode step, and those that joined since. Per step the
work is scalar and O(1): every decoding request gains the same tokens per iteration, so the decode set
is kept as aggregates (count, sum of KV offsets, a count per offset modulo the block size for the blocks
a step adds, a heap of completion points), never as arrays rebuilt per step.
Deterministic for a seed (numpy Generator).
"""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import math
from collections import deque
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dse.engines.decoder_ops import decoder_layer_ops, price_layer_ops
from dse.engines.device import Device
from dse.engines.inference import Deployment, ModelShape, fuses_gate_up, lm_head_time_s, rope_and_cache_write

FloatArray = NDArray[np.float64]

#: Tokens per KV-cache block (vLLM's default block size).
BLOCK_TOKENS = 16
BLOCK_SHIFT = 4
#: Ops priced per decode request / per prefill chunk (attention); the rest are priced over all tokens.
ATTENTION_OPS: tuple[str, ...] = ("score", "softmax", "context")
#: Decode batches whose grid bracket is precomputed (larger ones bisect the grid per lookup).
MAX_BRACKETED_BATCH = 4_096
#: A request's place in the loop: neither prefilling nor decoding, prefilling, decoding.
_IDLE, _PREFILLING, _DECODING = 0, 1, 2


@dataclass(frozen=True)
class SchedulerConfig:
    """The server's scheduler and cache."""

    token_budget: int
    chunked_prefill: bool
    max_running: int
    kv_capacity_blocks: int
    prefix_hit_rate: float = 0.0
    #: Tokens each decoding request gains per decode iteration on average (speculative decoding: the expected
    #: accepted tokens per step; 1 without it). Realised as floor(j * gain) after j iterations, the same for all.
    tokens_per_step: float = 1.0
    #: Requests arrive with their prompt's KV cache and first token (the decode pool of a disaggregated server).
    decode_only: bool = False
    #: Tokens a decoding request takes of an iteration's budget: 1, or k + 1 when a speculative step verifies k
    #: drafted tokens (the prefill chunks get what is left).
    budget_tokens_per_decode: int = 1
    #: TensorRT-LLM's GUARANTEED_NO_EVICT capacity policy: a request is admitted only when the blocks of its whole
    #: prompt and output fit beside those every running request holds to its completion, so no request is ever
    #: preempted; False: vLLM's policy (admit on the prompt's blocks, preempt the newest when a decode step runs
    #: out).
    guaranteed_no_evict: bool = False
    #: Without chunking: whole prompts join the decodes' iteration while they fit in the budget beside them
    #: (TensorRT-LLM's in-flight batching of context and generation requests); False: a prefill-only iteration
    #: (vLLM's unchunked scheduler).
    prompts_join_decodes: bool = False
    #: Multi-step scheduling (vLLM's --num-scheduler-steps, v0.6.0): the scheduler runs once per block of this many
    #: decode iterations over the decode set it chose, with every request's KV slots for the block taken up front;
    #: nothing is admitted or prefilled inside a block, and a request that completes inside one keeps decoding
    #: until it ends (its tokens returned, its slot and KV freed, at the block's end). An iteration with prefill
    #: tokens is a block of one. 1: the scheduler runs every iteration. Needs tokens_per_step = 1.
    scheduler_steps: int = 1
    #: Asynchronous output processing (vLLM 0.6.0): a request's first token reaches the server only when the next
    #: step's model call returns: at that step's end when it is a prefill or a single-step decode (its sampled tokens
    #: copied to the host), at its launch (its host work before the model, `HostCost.launch_s`) when it is a step of
    #: a multi-step decode block. Likewise a request that completes inside a multi-step decode block: its last token
    #: is seen once the block's next step is launched (`HostCost.step_launch_s`), or, from the block's last step,
    #: when the step after the block returns (its stop checked in that output processing; with no step after, at
    #: the block's end). False: at the end of its prefill (and a completion at its block's end).
    first_token_with_next_step: bool = False


@dataclass(frozen=True)
class Requests:
    """Requests in arrival order: arrival time (s), prompt and output tokens."""

    arrival_s: FloatArray
    prompt_tokens: NDArray[np.int64]
    output_tokens: NDArray[np.int64]
    #: Decode-only requests (a disaggregated decode pool): when each one's first token came out of its prefill
    #: instance, so that its first token gap counts from there; None: from its admission.
    first_token_s: FloatArray | None = None


@dataclass(frozen=True)
class HostCost:
    """Host (CPU) seconds an iteration spends on its critical path beside the GPU's kernels: scheduling, preparing
    the inputs, sampling, processing the outputs, as far as the software stack runs them in series with the model
    (`dse.catalog.calibration.host_cost`): fixed + per_sequence * n for an iteration of n requests (decodes plus the
    prompts of its prefill chunk), plus the part a multi-step scheduler runs once per block (block_fixed +
    block_per_sequence * n), spread over the `decode_block_steps` iterations of a decode block (a prefill is a block
    of one step). Zero: a stack whose host work is hidden or unmeasured."""

    fixed_s: float = 0.0
    per_sequence_s: float = 0.0
    block_fixed_s: float = 0.0
    block_per_sequence_s: float = 0.0
    decode_block_steps: float = 1.0

    def time_s(self, sequences: FloatArray, prefill: FloatArray | float = 0.0) -> FloatArray:
        """Seconds for iterations of `sequences` requests and `prefill` tokens (0 for an empty iteration)."""
        n = np.asarray(sequences, dtype=np.float64)
        block = np.where(np.asarray(prefill) > 0, 1.0, max(self.decode_block_steps, 1.0))
        per_block = (self.block_fixed_s + self.block_per_sequence_s * n) / block
        return np.where(n > 0, self.fixed_s + self.per_sequence_s * n + per_block, 0.0)

    def launch_s(self, sequences: float) -> float:
        """Host seconds before a multi-step decode block's first iteration returns to the server: the per-block part
        (scheduling, input preparation) in full and the per-iteration part (the sampler's launch), for `sequences`
        requests."""
        n = float(sequences)
        per_iteration = self.fixed_s + self.per_sequence_s * n
        return per_iteration + self.block_fixed_s + self.block_per_sequence_s * n if n > 0 else 0.0

    def step_launch_s(self, sequences: float) -> float:
        """Host seconds before a step inside a multi-step decode block returns to the server: the per-iteration part
        alone (the block's scheduling and inputs were paid at its launch), for `sequences` requests."""
        n = float(sequences)
        return self.fixed_s + self.per_sequence_s * n if n > 0 else 0.0


@dataclass(frozen=True)
class IterationTable:
    """Seconds of one iteration on a grid over (decode batch, prefill tokens, mean decode context)."""

    decode_batch: tuple[float, ...]
    prefill_tokens: tuple[float, ...]
    context_tokens: tuple[float, ...]
    time_s: FloatArray  # shape (decode, prefill, context); the host cost included
    #: The host cost `time_s` includes, and the prompt length that counts a prefill chunk's prompts.
    host: HostCost = field(default_factory=HostCost)
    prompt_tokens: float | None = None
    #: Schedulers that split an iteration's requests evenly (data-parallel attention: one per DP rank, stepping
    #: together), so that one rank's host work counts its share.
    host_ranks: float = 1.0

    def sequences(self, decode: FloatArray, prefill: FloatArray) -> FloatArray:
        """Requests of an iteration: its decodes plus the prompts of its prefill chunk (P / min(P, prompt), as
        the table prices prefill attention)."""
        b, p = np.asarray(decode, dtype=np.float64), np.asarray(prefill, dtype=np.float64)
        length = np.maximum(p, 1.0) if self.prompt_tokens is None else np.clip(p, 1.0, max(self.prompt_tokens, 1.0))
        return b + np.where(p > 0, np.maximum(p, 1.0) / length, 0.0)

    def host_time_s(self, decode: FloatArray, prefill: FloatArray) -> FloatArray:
        """Host seconds of one iteration of `decode` requests and `prefill` tokens (included in `time_s`): one
        scheduler's share of them."""
        return self.host.time_s(self.sequences(decode, prefill) / self.host_ranks, prefill)

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

    @cached_property
    def pricer(self) -> _Pricer:
        """The scalar lookups the simulation loop uses (built once per table)."""
        return _Pricer(self)


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


class _Pricer:
    """Scalar lookups into an IterationTable for the loop: nested lists and a bracket per integer decode batch,
    no numpy per call (the loop prices tens of thousands of iterations)."""

    def __init__(self, table: IterationTable) -> None:
        self.t: list[list[list[float]]] = table.time_s.tolist()
        self.pre = table.prefill_tokens
        self.ctx = table.context_tokens
        top = min(int(table.decode_batch[-1]), MAX_BRACKETED_BATCH)
        self.batch_grid = table.decode_batch
        self.b_bracket = [_bracket(table.decode_batch, float(b)) for b in range(top + 1)]

    def _b(self, b: int) -> tuple[int, float]:
        return self.b_bracket[b] if b < len(self.b_bracket) else _bracket(self.batch_grid, float(b))

    def decode(self, b: int, ctx: float) -> float:
        """A decode-only iteration (no prefill: the prefill axis's first point, 0, exactly)."""
        i, fi = self._b(b)
        k, fk = _bracket(self.ctx, ctx)
        r0, r1 = self.t[i][0], self.t[i + 1][0]
        return (r0[k] * (1 - fk) + r0[k + 1] * fk) * (1 - fi) + (r1[k] * (1 - fk) + r1[k + 1] * fk) * fi

    def mixed(self, b: int, p: int, ctx: float) -> float:
        """Trilinear, as IterationTable.at."""
        i, fi = self._b(b)
        j, fj = _bracket(self.pre, float(p))
        k, fk = _bracket(self.ctx, ctx)
        g = 1 - fk
        t0, t1 = self.t[i], self.t[i + 1]
        c0 = (t0[j][k] * g + t0[j][k + 1] * fk) * (1 - fj) + (t0[j + 1][k] * g + t0[j + 1][k + 1] * fk) * fj
        c1 = (t1[j][k] * g + t1[j][k + 1] * fk) * (1 - fj) + (t1[j + 1][k] * g + t1[j + 1][k + 1] * fk) * fj
        return c0 * (1 - fi) + c1 * fi


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
    query_tokens_per_request: int = 1,
    prompt_tokens: float | None = None,
    host: HostCost | None = None,
) -> IterationTable:
    """One mixed-batch iteration priced on the grid in one vectorised pass (see the module docstring).

    Dense ops (norms, QKV, out-projection, FFN, all-reduces) run over all q*B + P tokens; decode
    attention over B requests of q queries each against a mean context c; prefill attention over the P
    prefill tokens as P / L prompts of L = min(P, prompt_tokens) tokens, each causal against its own L keys
    (one chunk of P tokens against P keys when `prompt_tokens` is None: a single prompt or one chunk of it).
    Times `num_layers`, plus the logits of the q*B + 1 sampled tokens, plus the stack's host cost (`host`) for the
    iteration's B + P / L requests.
    q (`query_tokens_per_request`) is 1, or k + 1 when a speculative step verifies k drafted tokens.
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
        "fused_gate_up": fuses_gate_up(device),
        "rope": rope_and_cache_write(device) and shape.rotary,
        "kv_cache_write": rope_and_cache_write(device),
        # mixture-of-experts (distinct experts the iteration's tokens touch) and latent attention: as inference
        "head_dim": shape.head_dim,
        "moe": shape.moe,
        "moe_layer_fraction": shape.moe_layer_fraction,
        "mla": shape.mla,
        "expert_parallel": deployment.expert_parallel,
        "expert_load_imbalance": deployment.expert_load_imbalance,
        "attention_data_parallel": deployment.attention_data_parallel,
        "expert_exchange": deployment.expert_exchange,
        "expert_weight_bytes": deployment.expert_weight_bytes,
    }
    links: dict[str, Any] = {
        "tensor_parallel": deployment.tensor_parallel,
        "link_bandwidth_bytes_per_s": deployment.link_bandwidth_bytes_per_s,
        "link_latency_s": deployment.link_latency_s,
    }
    q = float(query_tokens_per_request)
    # data-parallel attention: the replica's requests and prompt tokens split evenly over its DP ranks, each
    # priced as one rank's iteration (the ranks step together through the expert all-to-alls)
    dp = deployment.attention_data_parallel
    spread = not (isinstance(dp, float) and dp == 1.0)
    tokens = np.maximum((q * b + p) / dp if spread else q * b + p, 1.0)
    dense = price_layer_ops(
        decoder_layer_ops(batch=tokens, query_tokens=1.0, context_tokens=c, **common), device, **links
    )
    decode = price_layer_ops(
        decoder_layer_ops(
            batch=np.maximum(b, 1.0) / dp if spread else np.maximum(b, 1.0), query_tokens=q, context_tokens=c, **common
        ),
        device,
        **links,
    )
    # attention is per prompt: a prefill iteration of several prompts attends within each, not across them
    prompt_length = np.maximum(p, 1.0) if prompt_tokens is None else np.clip(p, 1.0, max(prompt_tokens, 1.0))
    prefill = price_layer_ops(
        decoder_layer_ops(
            batch=np.maximum(p, 1.0) / prompt_length / dp if spread else np.maximum(p, 1.0) / prompt_length,
            query_tokens=prompt_length,
            context_tokens=prompt_length,
            prefill=True,
            **common,
        ),
        device,
        **links,
    )
    layer = np.zeros(np.broadcast_shapes(b.shape, p.shape, c.shape))
    for name in dense:  # OP_NAMES and the ops a deployment or stack adds
        if name in ATTENTION_OPS:
            layer = layer + np.where(b > 0, decode[name].time_s, 0.0) + np.where(p > 0, prefill[name].time_s, 0.0)
        else:
            layer = layer + dense[name].time_s
    sampled = q * b + np.minimum(p, 1.0)
    logits = lm_head_time_s(shape, device, deployment, np.maximum(sampled / dp if spread else sampled, 1.0))
    total = np.asarray(shape.num_layers * layer + logits, dtype=np.float64)
    total = np.broadcast_to(total, layer.shape).copy()
    table = IterationTable(
        decode_batch=dec,
        prefill_tokens=pre,
        context_tokens=ctx,
        time_s=total,
        host=HostCost() if host is None else host,
        prompt_tokens=prompt_tokens,
        host_ranks=float(dp) if spread else 1.0,
    )
    if host is not None:
        total += table.host_time_s(b, p)
    total[0, 0, :] = 0.0  # nothing to run
    return table


def expected_accepted_tokens(draft_tokens: int, acceptance_rate: float) -> float:
    """Tokens a speculative step yields on average: (1 - alpha^(k+1)) / (1 - alpha) for k drafted tokens, each
    accepted with probability alpha independently (Leviathan et al., ICML'23, eq. 1); k + 1 when alpha = 1."""
    k, alpha = int(draft_tokens), float(acceptance_rate)
    if alpha >= 1.0:
        return float(k + 1)
    return (1.0 - alpha ** (k + 1)) / (1.0 - alpha)


def speculative_table(target: IterationTable, draft: IterationTable, draft_tokens: int) -> IterationTable:
    """A speculative iteration (Leviathan et al., ICML'23; vLLM's draft-model speculation): the draft model runs
    k steps over the decode batch (its first with the prefill chunk), then the target verifies the k + 1 tokens of
    every request in one pass (`target` priced with query_tokens_per_request = k + 1, same grid):
    T(B, P, c) = T_target,k+1(B, P, c) + T_draft(B, P, c) + (k - 1) * T_draft(B, 0, c)."""
    if (target.decode_batch, target.prefill_tokens, target.context_tokens) != (
        draft.decode_batch,
        draft.prefill_tokens,
        draft.context_tokens,
    ):
        raise ValueError("the target and draft tables must share one grid")
    extra = max(int(draft_tokens) - 1, 0) * draft.time_s[:, :1, :]
    # the host cost is the target's (the draft's table is priced without one): one scheduler step per iteration
    return dataclasses.replace(target, time_s=target.time_s + draft.time_s + extra)


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
    #: Every inter-token gap of every request (token-level time between tokens, Sarathi-Serve's TBT: Agrawal
    #: et al., OSDI'24, section 2.3), as distinct gap values (s) and how many tokens had each; a request's first
    #: token is its TTFT, not a gap. A decode iteration's gap for a request is the time since its previous token:
    #: the iteration itself, plus any prefill-only iterations that stalled it, or its re-prefill after a preemption.
    tbt_gap_s: FloatArray = field(default_factory=lambda: np.empty(0))
    tbt_gap_count: FloatArray = field(default_factory=lambda: np.empty(0))

    def tbt_percentile_s(self, q: float) -> float:
        """The q-th percentile of the token gaps, each gap counted once per token: the smallest gap that at least
        q% of them do not exceed (NaN without gaps)."""
        return weighted_percentile(self.tbt_gap_s, self.tbt_gap_count, q)

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


def host_busy_s(table: IterationTable, sim: SimulationResult) -> float:
    """Host seconds on the critical path over a run's recorded steps (part of its busy time)."""
    per_iteration = table.host_time_s(sim.step_decode_batch, sim.step_prefill_tokens)
    return float(np.sum(sim.step_iterations * per_iteration))


def simulate(requests: Requests, table: IterationTable, config: SchedulerConfig) -> SimulationResult:
    """Run every request to completion (see the module docstring); deterministic, no randomness inside.

    The loop keeps per-request state in Python lists and the decode set as aggregates (its count, the sum
    of its KV offsets, a count per KV offset modulo the block size, a heap of completion targets), so an
    iteration costs O(1) scalar work, plus O(log n) per completion and O(1) per admission: every decoding
    request advances by the same tokens per iteration, so its KV length is its offset plus the advance.
    """
    n = len(requests.arrival_s)
    arrival_a = requests.arrival_s.astype(np.float64)
    prompt_a = requests.prompt_tokens.astype(np.int64)
    output_a = np.maximum(requests.output_tokens.astype(np.int64), 1)
    cached_a = np.floor(prompt_a * min(max(config.prefix_hit_rate, 0.0), 1.0)).astype(np.int64)
    cached_a = np.minimum(cached_a, prompt_a - 1)  # at least one prompt token is computed
    prior_first: list[float] | None = None if requests.first_token_s is None else requests.first_token_s.tolist()
    arrival: list[float] = arrival_a.tolist()
    prompt: list[int] = prompt_a.tolist()
    output: list[int] = output_a.tolist()
    prefill_len = list(prompt)  # KV tokens written by the prefill (prompt; + generated after a preemption)
    prefill_left: list[int] = (prompt_a - cached_a).tolist()  # tokens still to compute
    generated = [0] * n
    kv_off = [0] * n  # decoding: KV tokens = kv_off + advance (prefilling: prefill_len)
    gen_off = [0] * n  # decoding: generated tokens = gen_off + advance
    state = [_IDLE] * n
    epoch = [0] * n  # bumped when a request leaves the decode set: its heap entry is stale
    nan = float("nan")
    first = [nan] * n
    finish = [nan] * n
    capacity = int(config.kv_capacity_blocks)
    budget = max(int(config.token_budget), 1)
    max_running = max(int(config.max_running), 1)
    chunked = config.chunked_prefill
    per_decode = max(int(config.budget_tokens_per_decode), 1)
    decode_only = config.decode_only
    gain = max(float(config.tokens_per_step), 1.0)
    no_evict = config.guaranteed_no_evict
    mixed_whole = not chunked and config.prompts_join_decodes
    block_steps = max(int(config.scheduler_steps), 1)
    with_next_step = config.first_token_with_next_step
    undelivered: list[int] = []  # first tokens the next step's model call will deliver (`first_token_with_next_step`)
    finished_undelivered: list[int] = []  # completions in a multi-step block's last step, likewise delivered
    if block_steps > 1 and gain != 1.0:
        raise ValueError("multi-step scheduling is modelled with one token per decode iteration (no speculation)")
    # no-evict: the blocks each request holds to its completion (its last iteration may overshoot its output by
    # the tokens a decode takes of the budget, less one), and their sum over the running requests
    to_completion = [-(-(p + o + per_decode - 1) // BLOCK_TOKENS) for p, o in zip(prompt, output, strict=True)]
    reserved = 0
    unit = gain == 1.0
    price = table.pricer

    def advance_at(j: int) -> int:
        """Tokens each decoding request has gained after j decode iterations (floor(j * gain))."""
        return j if unit else int(j * gain + 1e-9)

    waiting: deque[int] = deque()
    running: dict[int, None] = {}  # admission order (the last is the newest)
    prefilling: deque[int] = deque()  # running requests with prompt tokens to compute, admission order
    heap: list[tuple[int, int, int]] = []  # (advance at which it completes, request, epoch)
    residue = [0] * BLOCK_TOKENS  # decoding requests per kv_off mod BLOCK_TOKENS
    b = off_sum = 0  # decoding requests, sum of their kv_off
    advance = iteration = 0  # tokens gained by a decoding request, decode iterations so far
    next_arrival = used = done = preemptions = iterations = peak_kv = 0
    t = busy = prefill_busy = in_system_area = kv_area = 0.0
    rows: list[tuple[float, float, int, int, int, int, int]] = []
    hold_admission = False
    run_gaps_at = -1  # index in gap_s of the last decode step's one-iteration gaps (-1: none)
    # token gaps: the decode set is those whose previous token came at the last decode step's end (`old`) and
    # those that joined since, by join time (`fresh`); a request leaving the decode set keeps its last token time
    gap_s: list[float] = []
    gap_n: list[int] = []
    old = decode_steps = zero_gaps = 0
    last_decode_end = 0.0
    fresh: dict[float, int] = {}
    join_step = [0] * n
    join_t = [0.0] * n
    last_token_t = [nan] * n

    def growth(d: int) -> int:
        """KV blocks the decode set needs to gain d tokens each: one at each length = 1 (mod BLOCK_TOKENS), i.e.
        q = d // 16 per request, plus one per request whose length is -j (mod 16) for some j < d mod 16."""
        q, rem = divmod(d, BLOCK_TOKENS)
        g = q * b
        for j in range(rem):
            g += residue[(-advance - j) % BLOCK_TOKENS]
        return g

    def leave_decode(r: int) -> int:
        """Take r out of the decode set; its KV tokens."""
        nonlocal b, off_sum, old
        if join_step[r] < decode_steps:
            old -= 1
            last_token_t[r] = last_decode_end
        else:
            fresh[join_t[r]] -= 1
            last_token_t[r] = join_t[r]
        b -= 1
        off_sum -= kv_off[r]
        residue[kv_off[r] % BLOCK_TOKENS] -= 1
        epoch[r] += 1
        generated[r] = gen_off[r] + advance
        state[r] = _IDLE
        return kv_off[r] + advance

    def join_decode(r: int, since: float | None = None) -> None:
        """Put r into the decode set; `since`: its previous token's time (default now)."""
        nonlocal b, off_sum
        kv_off[r] = prefill_len[r] - advance
        gen_off[r] = generated[r] - advance
        b += 1
        off_sum += kv_off[r]
        residue[kv_off[r] % BLOCK_TOKENS] += 1
        state[r] = _DECODING
        heapq.heappush(heap, (output[r] - gen_off[r], r, epoch[r]))
        join_step[r] = decode_steps
        join_t[r] = t if since is None else since
        fresh[join_t[r]] = fresh.get(join_t[r], 0) + 1

    while done < n:
        while next_arrival < n and arrival[next_arrival] <= t:
            waiting.append(next_arrival)
            next_arrival += 1
        # admission (FCFS): blocks for the prompt, a free running slot; without chunking, prompts up to the budget
        admitted_tokens = 0
        while waiting and len(running) < max_running and not hold_admission:
            r = waiting[0]
            need = -(-prefill_len[r] // BLOCK_TOKENS)
            if no_evict:
                if reserved + to_completion[r] > capacity:
                    break
            elif used + need > capacity:
                break
            if not chunked and admitted_tokens > 0 and admitted_tokens + prefill_left[r] > budget:
                break
            waiting.popleft()
            running[r] = None
            used += need
            reserved += to_completion[r]
            if decode_only and generated[r] == 0:  # arrives with its prompt's KV and first token (disaggregated)
                prefill_left[r] = 0
                generated[r] = 1
                first[r] = t
                if output[r] <= 1:
                    finish[r] = t
                    del running[r]
                    reserved -= to_completion[r]
                    used -= need
                    done += 1
                else:
                    join_decode(r, None if prior_first is None else prior_first[r])
                continue
            admitted_tokens += prefill_left[r]
            prefilling.append(r)
            state[r] = _PREFILLING
        if not running:
            if next_arrival >= n:  # nothing admissible ever again (a prompt larger than the cache)
                break
            idle = arrival[next_arrival] - t
            if idle > 0:
                in_system_area += idle * len(waiting)
                rows.append((t, idle, 0, 0, 0, len(waiting), used))
                t = arrival[next_arrival]
            continue
        # prefill chunks, in admission order
        chunks: list[int] = []
        p = 0
        if prefilling:
            room = budget - b * per_decode if chunked or mixed_whole else budget * n + 1
            for r in prefilling:
                if room <= 0:
                    break
                c = min(prefill_left[r], room) if chunked else prefill_left[r]
                if mixed_whole and c > room and (chunks or b):  # a whole prompt waits for room beside the decodes
                    break
                chunks.append(c)
                room -= c
                p += c
        bd = b if (chunked or mixed_whole or p == 0) else 0
        k = 1
        ctx = 1.0
        d = 0
        if bd:
            # the KV slots of the step's first iteration, or of the whole block of a multi-step decode
            d = advance_at(iteration + (block_steps if p == 0 else 1)) - advance
            if used + growth(d) > capacity:  # KV blocks for the decode step: preempt the newest until they fit
                if len(running) == 1:  # one request that outgrows the whole cache: it is dropped
                    gone = running.popitem()[0]
                    reserved -= to_completion[gone]
                    used -= -(-leave_decode(gone) // BLOCK_TOKENS)
                    done += 1
                    continue
                hold_admission = True  # no re-admission before the next iteration runs (no livelock)
                victim = running.popitem()[0]
                reserved -= to_completion[victim]
                if state[victim] == _DECODING:
                    used -= -(-leave_decode(victim) // BLOCK_TOKENS)
                else:
                    prefilling.remove(victim)
                    used -= -(-prefill_len[victim] // BLOCK_TOKENS)
                    state[victim] = _IDLE
                prefill_len[victim] = prompt[victim] + generated[victim]
                prefill_left[victim] = prefill_len[victim]
                waiting.appendleft(victim)
                preemptions += 1
                continue
            ctx = off_sum / b + advance
            if p == 0:
                # a run of identical decode iterations: until a completion, an arrival that could be admitted,
                # or the free KV blocks
                while epoch[heap[0][1]] != heap[0][2]:
                    heapq.heappop(heap)
                k = _iterations_to(heap[0][0] - advance, iteration, advance, gain)
                # a waiting request is blocked by KV blocks, which only a completion frees; an arrival
                # matters when the queue is empty and a running slot is free
                if not waiting and len(running) < max_running and next_arrival < n:
                    step0 = price.decode(b, ctx)
                    k = min(k, max(1, math.ceil((arrival[next_arrival] - t) / max(step0, 1e-12))))
                fitting = BLOCK_TOKENS * ((capacity - used) // b)  # tokens each that the free blocks surely hold
                within = _iterations_within(fitting, iteration, advance, gain)
                # multi-step: whole blocks, through the one in which a completion or the arrival falls, and beyond
                # the first (its KV slots checked above) only as many as the free blocks surely hold
                k = (
                    block_steps * max(1, min(-(-k // block_steps), within // block_steps))
                    if block_steps > 1
                    else max(1, min(k, within))
                )
                d = advance_at(iteration + k) - advance
                ctx += (d - d / k) / 2.0
        if p:
            dt = price.mixed(bd, p, ctx)
            t_dec = price.decode(bd, ctx) if bd else 0.0
            t_pre = price.mixed(0, p, ctx) if bd else 1.0
            share = t_pre / (t_pre + t_dec) if t_pre + t_dec > 0 else 0.0
        elif bd:
            dt = price.decode(bd, ctx) * k
            share = 0.0
        else:  # unreachable: a running request either decodes or has prompt tokens left
            break
        if undelivered or finished_undelivered:  # the last step's outputs, seen when this step's model call returns
            seen = t + dt / k if p or block_steps == 1 else t + min(table.host.launch_s(bd / table.host_ranks), dt / k)
            for r in undelivered:
                first[r] = seen
            for r in finished_undelivered:
                finish[r] = seen
            undelivered.clear()
            finished_undelivered.clear()
        if bd:
            used += growth(d)
            advance += d
            iteration += k
            # the token gaps of this step: the first iteration's since each request's previous token, then one
            # iteration each; the extra tokens a speculative iteration accepts come with no gap (counted at the end)
            first_end = t + dt / k
            if old:
                gap_s.append(first_end - last_decode_end)
                gap_n.append(old)
            for joined, count in fresh.items():
                if count:
                    gap_s.append(first_end - joined)
                    gap_n.append(count)
            run_gaps_at = -1
            if k > 1:
                run_gaps_at = len(gap_s)
                gap_s.append(dt / k)
                gap_n.append(bd * (k - 1))
            zero_gaps += bd * (d - k)
            old, last_decode_end = bd, t + dt
            fresh.clear()
            decode_steps += 1
        # the step's record, its areas and busy time
        waiting_n = len(waiting)
        rows.append((t, dt, k, bd, p, waiting_n, used))
        in_system_area += dt * (waiting_n + len(running))
        kv_area += dt * used
        if used > peak_kv:
            peak_kv = used
        busy += dt
        prefill_busy += dt * share
        iterations += k
        t += dt
        hold_admission = False
        # prefill completions: the first of the chunked requests (served in order)
        for c in chunks:
            r = prefilling[0]
            prefill_left[r] -= c
            if prefill_left[r]:
                break
            prefilling.popleft()
            if generated[r] == 0:
                first[r] = t
            else:  # a preempted request's next token, after its recompute
                gap_s.append(t - last_token_t[r])
                gap_n.append(1)
            generated[r] += 1
            if generated[r] >= output[r]:
                finish[r] = t
                del running[r]
                reserved -= to_completion[r]
                used -= -(-prefill_len[r] // BLOCK_TOKENS)
                state[r] = _IDLE
                done += 1
            else:
                join_decode(r)
                if with_next_step and generated[r] == 1:
                    undelivered.append(r)
        # decode completions
        while heap and heap[0][0] <= advance:
            target, r, e = heapq.heappop(heap)
            if e != epoch[r]:
                continue
            if block_steps > 1:  # the iterations of its block after its last token: no tokens emitted
                gap_n[run_gaps_at] -= advance - target
            else:
                zero_gaps -= advance - target  # tokens of its last speculative iteration beyond its output: not emitted
            used -= -(-leave_decode(r) // BLOCK_TOKENS)
            del running[r]
            reserved -= to_completion[r]
            finish[r] = t
            if first[r] != first[r]:
                first[r] = t
            if with_next_step and block_steps > 1 and not p:
                # asynchronous output processing: its last token is seen when the next step's model call returns,
                # inside the block (after that step's host launch) or, from the block's last step, the next step's
                step = target - (advance - d)  # the block's iteration that made its last token (1..k)
                if step < k:
                    finish[r] = t - dt + step * dt / k + min(table.host.step_launch_s(bd / table.host_ranks), dt / k)
                else:
                    finished_undelivered.append(r)
            done += 1
    if zero_gaps:
        gap_s.append(0.0)
        gap_n.append(zero_gaps)
    steps = np.asarray(rows, dtype=np.float64).reshape(-1, 7)
    makespan = max(t, 1e-12)
    return SimulationResult(
        arrival_s=arrival_a,
        first_token_s=np.asarray(first, dtype=np.float64),
        finish_s=np.asarray(finish, dtype=np.float64),
        prompt_tokens=prompt_a,
        output_tokens=output_a,
        preemptions=preemptions,
        makespan_s=makespan,
        busy_s=busy,
        prefill_busy_s=prefill_busy,
        mean_in_system=in_system_area / makespan,
        mean_kv_blocks=kv_area / makespan,
        peak_kv_blocks=float(peak_kv),
        iterations=iterations,
        step_start_s=steps[:, 0].copy(),
        step_duration_s=steps[:, 1].copy(),
        step_iterations=steps[:, 2].copy(),
        step_decode_batch=steps[:, 3].copy(),
        step_prefill_tokens=steps[:, 4].copy(),
        step_queue=steps[:, 5].copy(),
        step_kv_blocks=steps[:, 6].copy(),
        tbt_gap_s=np.asarray(gap_s, dtype=np.float64),
        tbt_gap_count=np.asarray(gap_n, dtype=np.float64),
    )


def _iterations_to(tokens: int, iteration: int, advance: int, gain: float) -> int:
    """Fewest decode iterations (>= 1) after which a decoding request has gained `tokens` more tokens."""
    if gain == 1.0:
        return max(tokens, 1)
    m = max(1, math.ceil((advance + tokens) / gain) - iteration)
    while int((iteration + m) * gain + 1e-9) - advance < tokens:
        m += 1
    while m > 1 and int((iteration + m - 1) * gain + 1e-9) - advance >= tokens:
        m -= 1
    return m


def _iterations_within(tokens: int, iteration: int, advance: int, gain: float) -> int:
    """Most decode iterations (>= 0) over which a decoding request gains at most `tokens` tokens."""
    if gain == 1.0:
        return tokens
    m = max(0, int((advance + tokens) / gain) - iteration + 1)
    while m > 0 and int((iteration + m) * gain + 1e-9) - advance > tokens:
        m -= 1
    return m


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
    median_prompt: float | None = None,
    median_output: float | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Prompt and output lengths, each log-normal with its published mean, capped so prompt + output <= max_context.
    A part whose median is given has its own spread, sigma = sqrt(2 ln(mean/median)); one without takes the spread of
    the context law (the same formula on the context's mean and median)."""

    def spread(mean: float, median: float) -> float:
        return math.sqrt(max(2.0 * math.log(max(mean / median, 1.0)), 1e-6))

    context_sigma = spread(mean_context, median_context)

    def draw(mean: float, median: float | None) -> FloatArray:
        sigma = context_sigma if median is None else spread(mean, median)
        mu = math.log(mean) - sigma * sigma / 2.0
        return rng.lognormal(mu, sigma, size=count)

    prompt = np.clip(np.round(draw(mean_prompt, median_prompt)), 1, max(max_context - 1, 1)).astype(np.int64)
    output = np.clip(np.round(draw(mean_output, median_output)), 1, None).astype(np.int64)
    output = np.maximum(np.minimum(output, (max_context - prompt).astype(np.int64)), 1)
    return prompt, output


def percentile(values: FloatArray, q: float) -> float:
    """The q-th percentile of the finite values (NaN when none)."""
    finite = values[np.isfinite(values)]
    return float(np.percentile(finite, q)) if finite.size else float("nan")


def weighted_percentile(values: FloatArray, counts: FloatArray, q: float) -> float:
    """The q-th percentile of `values`, each repeated `counts` times: the smallest value that at least q% of the
    repeated values do not exceed (the inverted CDF; NaN when the counts sum to zero)."""
    keep = counts > 0
    values, counts = values[keep], counts[keep]
    if not values.size:
        return float("nan")
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(counts[order])
    at = np.searchsorted(cumulative, q / 100.0 * cumulative[-1] * (1.0 - 1e-12), side="left")
    return float(values[order][min(int(at), values.size - 1)])
