"""Batched LLM inference on GPU-only, NPU-only, NPU+PIM (blocked) and NeuPIMs systems.

One decode iteration moves every request of the batch by one token. Per layer and per
tensor-parallel rank (op counts in dse.engines.decoder_ops; the systems and schedules are those
Heo et al. compare in NeuPIMs, ASPLOS'24, and of its public simulator casys-kaist/NeuPIMs):

    G_QKV(B)  = norm + QKV projection                       (matrix unit)
    A(B)      = score + softmax + context                   (matrix unit, or PIM GEMVs + vector softmax)
    G_PF(B)   = out-proj + all-reduce + norm + FFN + all-reduce

    GPU-/NPU-only        layer = G_QKV(B) + A(B) + G_PF(B), attention streamed over the external bus
    NPU+PIM (blocked)    same sum with A on PIM: the memory is in PIM mode or in normal mode, never both
    NeuPIMs              dual row buffers let the NPU read weights while PIM runs, and the batch is split
                         in two sub-batches so that one's GEMMs overlap the other's attention:
                         period = max(G(B1), A(B2)) + max(G(B2), A(B1)), G = G_PF + G_QKV,
                         layers = (L - 1) * period + fill/drain
                         fill/drain = G_QKV(B1) + max(G_QKV(B2), A(B1)) + max(G_PF(B1), A(B2)) + G_PF(B2)

PIM attention time is the most-loaded channel's (dse.engines.pim). Every op on the NPU/GPU is
priced by the `dse.engines.device.Device`: its roofline `op_time_s`, or, when the device carries a
software stack with fitted kernel models, by each op's GEMM / attention shape
(dse.engines.decoder_ops.price_layer_ops). Pipeline parallelism keeps
`pipeline_parallel` batches in flight: throughput = B / stage time, time per output token =
stages * stage time. Every numeric input broadcasts; no Python loop over design points.

Mixture-of-experts models (ModelShape.moe) decode with expert FFNs that read the weights of the
distinct experts the batch touches and compute the k activated per token, the experts split by TP or held
whole by `expert_parallel` ranks of the TP group (decoder_ops); on the PIM
systems only the attention GEMVs move to PIM, the router and expert FFNs stay on the NPU. Multi-head
latent attention (ModelShape.mla) caches one latent per token and layer, replicated on every
tensor-parallel rank, and decodes with absorbed weights; the PIM systems do not model it.

Data-parallel attention with expert parallelism across nodes (Deployment.attention_data_parallel and
expert_exchange; decoder_ops): `batch` is each DP rank's, the replica decodes DP x B tokens per step on
TP x PP x DP GPUs, each GPU storing the non-routed weights / TP and the routed experts / (TP DP); the dispatch
and combine all-to-alls are ops of the layer.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from dse.engines.decoder_ops import (
    EXPERT_EXCHANGE_OPS,
    OP_CLASS,
    ROPE_CACHE_WRITE_OPS,
    ExpertExchange,
    OpCost,
    PricedOp,
    decoder_layer_ops,
    kv_cache_bytes_per_token,
    price_layer_ops,
)
from dse.engines.device import Device
from dse.engines.pim import (
    attention_request_cycles,
    gemv_tile_cycles,
    greedy_channel_makespan,
    uniform_channel_makespan,
)
from dse.engines.transformer import (
    MLAShape,
    MoEShape,
    ParameterBreakdown,
    mla_shape,
    moe_shape,
    parameter_breakdown,
)
from dse.specs.common import Num
from dse.specs.llm import LLMSpec
from dse.specs.memory import MemorySpec

T = TypeVar("T")

SYSTEMS: tuple[str, ...] = ("gpu_only", "npu_only", "npu_pim_blocked", "neupims", "gpu_pim")
#: Systems whose decode attention runs on the PIM units of the memory.
PIM_SYSTEMS: frozenset[str] = frozenset({"npu_pim_blocked", "neupims", "gpu_pim"})
#: Sub-batch fractions tried when the best split is asked for: B1 = f*B, f = k/32 (0 = no split).
SPLIT_CANDIDATES: NDArray[np.float64] = np.arange(0, 17, dtype=np.float64) / 32.0

OPS_QKV: tuple[str, ...] = ("norm_attn", "qkv", *ROPE_CACHE_WRITE_OPS)
OPS_ATTENTION: tuple[str, ...] = ("score", "softmax", "context")
OPS_LINK: tuple[str, ...] = ("all_reduce_attn", "all_reduce_ffn", *EXPERT_EXCHANGE_OPS)
#: The post-attention ops (the expert all-to-alls only with data-parallel attention: absent ops count nothing).
OPS_PF: tuple[str, ...] = (
    "out_proj",
    "all_reduce_attn",
    "norm_ffn",
    "expert_dispatch",
    "ffn_up",
    "ffn_act",
    "ffn_down",
    "expert_combine",
    "all_reduce_ffn",
)


@dataclass(frozen=True)
class ModelShape:
    """The architecture numbers the engine reads (broadcastable)."""

    hidden_size: Num
    num_layers: Num
    num_heads: Num
    num_kv_heads: Num
    ffn_hidden_size: Num
    vocab_size: Num
    gated_ffn: bool
    layernorm: bool
    linear_bias: bool
    tied_embeddings: bool
    learned_positions: Num
    #: Per-head width when it is not hidden_size / num_heads (None: it is).
    head_dim: Num | None = None
    qk_norm: bool = False
    moe: MoEShape | None = None
    mla: MLAShape | None = None
    #: Rotary position embeddings (applied to the queries and keys of every layer).
    rotary: bool = False

    @property
    def moe_layer_fraction(self) -> Num:
        """Share of the layers that are MoE layers (1 for a dense model: its FFN ops stay as they are)."""
        if self.moe is None:
            return 1.0
        return (self.num_layers - self.moe.dense_layers) / self.num_layers

    def parameters(self) -> ParameterBreakdown:
        """The model's parameters by part (every expert counted)."""
        return parameter_breakdown(
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            num_kv_heads=self.num_kv_heads,
            ffn_hidden_size=self.ffn_hidden_size,
            vocab_size=self.vocab_size,
            gated_ffn=self.gated_ffn,
            tied_embeddings=self.tied_embeddings,
            learned_positions=self.learned_positions,
            layernorm=self.layernorm,
            linear_bias=self.linear_bias,
            head_dim=self.head_dim,
            qk_norm=self.qk_norm,
            moe=self.moe,
            mla=self.mla,
        )


def model_shape(llm: LLMSpec) -> ModelShape:
    """The architecture numbers the engine reads, from a model spec (one translation for every kind)."""
    return ModelShape(
        hidden_size=llm.hidden_size,
        num_layers=llm.num_layers,
        num_heads=llm.num_heads,
        num_kv_heads=llm.num_kv_heads,
        ffn_hidden_size=llm.ffn_hidden_size,
        vocab_size=llm.vocab_size,
        gated_ffn=llm.ffn_activation == "swiglu",
        layernorm=llm.norm_type == "layernorm",
        linear_bias=llm.linear_bias,
        tied_embeddings=llm.tied_embeddings,
        learned_positions=float(llm.max_context_tokens) if llm.position_embedding == "learned" else 0.0,
        head_dim=llm.attention_head_dim,
        qk_norm=llm.qk_norm,
        moe=moe_shape(llm),
        mla=mla_shape(llm),
        rotary=llm.position_embedding == "rope",
    )


@dataclass(frozen=True)
class Deployment:
    """How the model is spread and which numbers it is stored in."""

    tensor_parallel: Num
    pipeline_parallel: Num
    link_bandwidth_bytes_per_s: Num
    link_latency_s: Num
    weight_bytes: Num
    activation_bytes: Num
    kv_cache_bytes: Num
    #: Expert parallelism of the MoE layers inside the TP group, and the busiest EP rank's routed tokens over
    #: the mean (dse.engines.decoder_ops); 1 and 1 for tensor-parallel experts.
    expert_parallel: Num = 1.0
    expert_load_imbalance: Num = 1.0
    #: Data-parallel attention (DeepSeek-V3's inference system, SGLang's DP attention): `attention_data_parallel`
    #: groups of `tensor_parallel` GPUs each run attention, the dense parts and the shared experts for their own
    #: requests (their own KV cache); the routed experts are spread over all of them (expert_parallel = DP x TP
    #: whole experts' holders) and each token's copies reach their experts by the `expert_exchange` all-to-alls.
    #: 1 and None: one TP group (today's layout).
    attention_data_parallel: Num = 1.0
    expert_exchange: ExpertExchange | None = None
    #: Bytes per element of the routed experts' weights where the stack keeps them in another dtype than the
    #: rest (`SoftwareStackSpec.moe_expert_dtype`: fp16 experts beside fp8 attention GEMMs); None: weight_bytes.
    expert_weight_bytes: Num | None = None


@dataclass(frozen=True)
class Workload:
    """A batch of requests: fixed lengths, or decode contexts drawn from a distribution.

    context_tokens is each request's mean KV length during decode (prompt + output/2 for a
    static batch); with `context_quantile_tokens` (lengths at quantiles 0..1, evenly spaced) the
    B requests take the quantiles (i + 1/2)/B instead and their mean replaces context_tokens.
    """

    batch: Num
    prompt_tokens: Num
    output_tokens: Num
    context_tokens: Num
    peak_context_tokens: Num
    context_quantile_tokens: tuple[float, ...] | None = None


@dataclass(frozen=True)
class InferenceResult:
    """Metrics of one system, broadcast over the inputs."""

    throughput_tokens_per_s: Num
    time_per_output_token_s: Num
    time_to_first_token_s: Num
    end_to_end_throughput_tokens_per_s: Num
    layer_time_s: Num
    npu_busy_fraction: Num
    pim_busy_fraction: Num
    attention_time_s: Num
    sub_batch_fraction: Num
    weights_bytes_per_device: Num
    kv_cache_bytes_per_device: Num
    memory_footprint_bytes_per_device: Num
    max_batch_that_fits: Num
    fits: Num
    decode_ops: dict[str, PricedOp]
    decode_op_costs: dict[str, OpCost]
    pim_attention_time_s: Num
    #: GPUs of one replica (TP x PP x DP attention), its decode tokens/s per GPU, its prefill tokens/s
    #: (B x DP prompts over TTFT) and the expert all-to-alls of a decode layer, whole (not only what they add).
    devices: Num = 1.0
    throughput_tokens_per_s_per_device: Num = 0.0
    prefill_throughput_tokens_per_s: Num = 0.0
    expert_all_to_all_time_s: Num = 0.0
    #: NeuPIMs searching its split (sub_batch_fraction None): the decode throughput with each of
    #: SPLIT_CANDIDATES on a leading axis (the best is `throughput_tokens_per_s`); None otherwise.
    throughput_by_split_tokens_per_s: Num | None = None


def _sum_times(priced: dict[str, PricedOp], names: tuple[str, ...]) -> Num:
    total: Num = 0.0
    for name in names:
        if name in priced:  # the expert all-to-alls exist only with data-parallel attention
            total = total + priced[name].time_s
    return total


def fuses_gate_up(device: Device) -> bool:
    """Whether the device's stack runs a gated FFN's gate and up projections as one GEMM (no stack: yes)."""
    return device.stack is None or device.stack.fused_gate_up_gemm


def rope_and_cache_write(device: Device) -> bool:
    """Whether the device's stack runs rotary embedding and the KV-cache write as kernels of their own."""
    return device.stack is not None and device.stack.rope_and_cache_write_kernels


def _layer_ops(
    shape: ModelShape,
    deployment: Deployment,
    *,
    batch: Num,
    query_tokens: Num,
    context_tokens: Num,
    fused_qkv: bool,
    fused_gate_up: bool,
    prefill: bool = False,
    separate_rope_and_cache_write: bool = False,
) -> dict[str, OpCost]:
    return decoder_layer_ops(
        batch=batch,
        query_tokens=query_tokens,
        context_tokens=context_tokens,
        hidden_size=shape.hidden_size,
        num_heads=shape.num_heads,
        num_kv_heads=shape.num_kv_heads,
        ffn_hidden_size=shape.ffn_hidden_size,
        gated_ffn=shape.gated_ffn,
        layernorm=shape.layernorm,
        tensor_parallel=deployment.tensor_parallel,
        weight_bytes=deployment.weight_bytes,
        activation_bytes=deployment.activation_bytes,
        kv_cache_bytes=deployment.kv_cache_bytes,
        fused_qkv=fused_qkv,
        prefill=prefill,
        head_dim=shape.head_dim,
        fused_gate_up=fused_gate_up,
        moe=shape.moe,
        moe_layer_fraction=shape.moe_layer_fraction,
        mla=shape.mla,
        expert_parallel=deployment.expert_parallel,
        expert_load_imbalance=deployment.expert_load_imbalance,
        attention_data_parallel=deployment.attention_data_parallel,
        expert_exchange=deployment.expert_exchange,
        expert_weight_bytes=deployment.expert_weight_bytes,
        rope=separate_rope_and_cache_write and shape.rotary,
        kv_cache_write=separate_rope_and_cache_write,
    )


def _price(ops: dict[str, OpCost], device: Device, deployment: Deployment) -> dict[str, PricedOp]:
    return price_layer_ops(
        ops,
        device,
        tensor_parallel=deployment.tensor_parallel,
        link_bandwidth_bytes_per_s=deployment.link_bandwidth_bytes_per_s,
        link_latency_s=deployment.link_latency_s,
    )


def lm_head_time_s(shape: ModelShape, device: Device, deployment: Deployment, tokens: Num) -> Num:
    """Logits of `tokens` tokens: 2*T*h*V/tp FLOP against h*V/tp weights, one kernel on the matrix units
    (the fitted GEMM [T, V/tp] = [T, h] @ [h, V/tp] when the device has one)."""
    if device.stack is not None and device.gemm is not None:
        vocab = shape.vocab_size / deployment.tensor_parallel
        return device.gemm_time_s(tokens, vocab, shape.hidden_size, b_bytes=deployment.weight_bytes).time_s
    flop = 2.0 * tokens * shape.hidden_size * shape.vocab_size / deployment.tensor_parallel
    bytes_moved = shape.hidden_size * shape.vocab_size / deployment.tensor_parallel * deployment.weight_bytes
    return device.op_time_s(flop, bytes_moved, kernels=1.0, op_class="matrix").time_s


@functools.lru_cache(maxsize=64)  # a pure function of three numbers, asked for by every engine call of an answer
def lognormal_quantile_table(
    *, median_tokens: float, mean_tokens: float, max_tokens: float, points: int = 129
) -> tuple[float, ...]:
    """Lengths at `points` evenly spaced quantiles of a log-normal through a median and a mean, capped.

    mu = ln(median), sigma = sqrt(2 ln(mean / median)); the 0 and 1 quantiles are taken at
    1/(2*points) from the ends so that the table stays finite.
    """
    sigma = math.sqrt(2.0 * math.log(max(mean_tokens / median_tokens, 1.0)))
    normal = NormalDist()
    edge = 0.5 / points
    quantiles = [edge + (1.0 - 2.0 * edge) * i / (points - 1) for i in range(points)]
    return tuple(min(max_tokens, median_tokens * math.exp(sigma * normal.inv_cdf(u))) for u in quantiles)


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def max_ndim(*groups: object) -> int:
    """Most dimensions among the numeric fields of some dataclasses or arrays (for extra axes)."""
    most = 0
    for group in groups:
        kind: type = type(group)
        values = [getattr(group, name) for name in _field_names(kind)] if dataclasses.is_dataclass(kind) else [group]
        for value in values:
            if isinstance(value, np.ndarray):
                most = max(most, value.ndim)
    return most


def request_contexts(workload: Workload, batch: Num, ndim: int) -> NDArray[np.float64]:
    """Context lengths of the batch's requests, longest first: (R, ...), 0 beyond each point's batch.

    Request i of a batch of B takes the distribution's quantile 1 - (i + 1/2)/B; the request
    axis comes first, followed by `ndim` axes that broadcast with the design points.
    Read-only: the table of one (distribution, batch) is built once and shared by the engine calls
    of an answer (every system compared over one batch grid places the same requests).
    """
    assert workload.context_quantile_tokens is not None
    batch_arr = np.maximum(np.round(np.asarray(batch, dtype=np.float64)), 1.0)
    if batch_arr.size > CONTEXT_TABLES_MAX_POINTS:  # a sweep's table is built, not kept
        return _request_contexts(workload.context_quantile_tokens, batch_arr, ndim)
    key = (workload.context_quantile_tokens, batch_arr.shape, batch_arr.tobytes(), ndim)
    with _contexts_lock:
        kept = _contexts.get(key)
        if kept is not None:
            _contexts.move_to_end(key)
            return kept
    result = _request_contexts(workload.context_quantile_tokens, batch_arr, ndim)
    result.setflags(write=False)
    with _contexts_lock:
        _contexts[key] = result
        while len(_contexts) > CONTEXT_TABLES_KEPT:
            _contexts.popitem(last=False)
    return result


def _request_contexts(
    quantile_tokens: tuple[float, ...], batch_arr: NDArray[np.float64], ndim: int
) -> NDArray[np.float64]:
    table = np.asarray(quantile_tokens, dtype=np.float64)
    widest = int(np.max(batch_arr))
    rank = np.arange(widest, dtype=np.float64).reshape((widest,) + (1,) * ndim)
    quantile = 1.0 - (rank + 0.5) / batch_arr
    lengths = np.interp(np.clip(quantile, 0.0, 1.0), np.linspace(0.0, 1.0, table.size), table)
    result: NDArray[np.float64] = np.where(rank < batch_arr, lengths, 0.0)
    return result


#: Request-context tables kept (`request_contexts`), most recently used last, for batches of up to
#: CONTEXT_TABLES_MAX_POINTS design points (an answer's batch grid; a sweep's are built each time).
CONTEXT_TABLES_KEPT = 16
CONTEXT_TABLES_MAX_POINTS = 256
_contexts: OrderedDict[tuple[object, ...], NDArray[np.float64]] = OrderedDict()
_contexts_lock = threading.Lock()


def pim_attention_cycles(
    *,
    memory: MemorySpec,
    shape: ModelShape,
    deployment: Deployment,
    workload: Workload,
    batch: Num,
    ndim: int,
) -> Callable[[Num], Num]:
    """Cycles of the most-loaded channel for the decode attention of a sub-batch of n of the batch's requests.

    Fixed lengths: ceil(n / C) * t(s). A distribution: the whole batch is placed greedily once and
    a sub-batch keeps the batch's length mix, so it takes n/B of that makespan.
    """
    gemv = gemv_tile_cycles(
        banks_per_channel=memory.banks_per_channel,
        banks_per_activation_group=memory.banks_per_activation_group,
        row_bytes=memory.row_bytes,
        multipliers_per_bank=memory.pim_multipliers_per_bank,
        element_bytes=memory.pim_element_bytes,
        t_rcd_cycles=memory.t_rcd_cycles,
        t_rp_cycles=memory.t_rp_cycles,
        t_ccd_l_cycles=memory.t_ccd_l_cycles,
    )

    def per_request(context: Num) -> Num:
        return attention_request_cycles(
            context_tokens=context,
            heads=shape.num_heads / deployment.tensor_parallel,
            head_dim=shape.hidden_size / shape.num_heads if shape.head_dim is None else shape.head_dim,
            elements_per_row=np.floor(memory.row_bytes / deployment.kv_cache_bytes),
            banks_per_channel=memory.banks_per_channel,
            global_write_cycles=memory.pim_global_write_cycles,
            gemv_cycles=gemv,
        )

    if workload.context_quantile_tokens is None:
        each = per_request(workload.context_tokens)

        def uniform(sub_batch: Num) -> Num:
            return uniform_channel_makespan(requests=np.round(sub_batch), channels=memory.channels, request_cycles=each)

        return uniform
    contexts = request_contexts(workload, batch, ndim)
    full = greedy_channel_makespan(np.where(contexts > 0.0, per_request(contexts), 0.0), memory.channels)
    count = np.maximum(np.round(np.asarray(batch, dtype=np.float64)), 1.0)

    def share(sub_batch: Num) -> Num:
        return full * sub_batch / count

    return share


def mean_context(workload: Workload, batch: Num, ndim: int) -> Num:
    """Mean decode context of the batch (the distribution's quantile mean when one is given)."""
    if workload.context_quantile_tokens is None:
        return workload.context_tokens
    contexts = request_contexts(workload, batch, ndim)
    count = np.maximum(np.round(np.asarray(batch, dtype=np.float64)), 1.0)
    result: Num = np.sum(contexts, axis=0) / count
    return result


@dataclass(frozen=True)
class _LayerPricer:
    """Prices one decode layer of a (sub-)batch on one system: the GEMM parts, attention and busy time."""

    shape: ModelShape
    device: Device
    deployment: Deployment
    context: Num
    fused_qkv: bool
    on_pim: bool
    clock_s: float
    pim_cycles: Callable[[Num], Num] | None

    def npu_parts(self, sub: Num) -> tuple[Num, Num, Num, dict[str, PricedOp], dict[str, OpCost]]:
        """(QKV part, post-attention part, link time within them, priced ops, op costs) of a (sub-)batch."""
        ops = _layer_ops(
            self.shape,
            self.deployment,
            batch=sub,
            query_tokens=1.0,
            context_tokens=self.context,
            fused_qkv=self.fused_qkv,
            fused_gate_up=fuses_gate_up(self.device),
            separate_rope_and_cache_write=rope_and_cache_write(self.device),
        )
        priced = _price(ops, self.device, self.deployment)
        return _sum_times(priced, OPS_QKV), _sum_times(priced, OPS_PF), _sum_times(priced, OPS_LINK), priced, ops

    def npu_busy(self, qkv: Num, pf: Num, link: Num, attention: Num, priced: dict[str, PricedOp]) -> Num:
        """Time the NPU/GPU computes: all but the links, and of attention only the softmax when PIM runs it."""
        return qkv + pf - link + (priced["softmax"].time_s if self.on_pim else attention)

    def attention_time(self, sub: Num, priced: dict[str, PricedOp]) -> tuple[Num, Num]:
        """(attention stage time, of which PIM GEMV time) for a (sub-)batch."""
        if not self.on_pim:
            return _sum_times(priced, OPS_ATTENTION), 0.0 * np.asarray(sub)
        assert self.pim_cycles is not None
        pim_s = self.clock_s * self.pim_cycles(sub)
        return pim_s + priced["softmax"].time_s, pim_s


@dataclass(frozen=True)
class _Stage:
    """Decode time of one pipeline stage's layers and how busy the units are during it."""

    stage_s: Num
    npu_busy_s: Num
    pim_busy_s: Num
    sub_batch_fraction: Num
    #: NeuPIMs searching its split: the stage time with each of SPLIT_CANDIDATES (leading axis).
    stage_s_by_split: Num | None = None


def _neupims_stage(
    pricer: _LayerPricer,
    batch: Num,
    layers_per_stage: Num,
    sequential: _Stage,
    sub_batch_fraction: Num | None,
    ndim: int,
) -> _Stage:
    """NeuPIMs' two interleaved sub-batches: the chosen split, or the best of SPLIT_CANDIDATES per design point."""
    searching = sub_batch_fraction is None
    # candidate splits on a leading axis, which broadcasts with every design-point axis
    fractions = (
        SPLIT_CANDIDATES.reshape((-1,) + (1,) * ndim) if searching else np.asarray(sub_batch_fraction, dtype=float)
    )
    b1 = np.round(batch * fractions)
    b2 = batch - b1
    q1, f1, l1, priced1, _ = pricer.npu_parts(b1)
    q2, f2, l2, priced2, _ = pricer.npu_parts(b2)
    a1, p1 = pricer.attention_time(b1, priced1)
    a2, p2 = pricer.attention_time(b2, priced2)
    period = np.maximum(q1 + f1, a2) + np.maximum(q2 + f2, a1)
    ends = q1 + np.maximum(q2, a1) + np.maximum(f1, a2) + f2
    split = b1 > 0.0
    stage = np.where(split, (layers_per_stage - 1.0) * period + ends, sequential.stage_s)
    busy_split = pricer.npu_busy(q1, f1, l1, a1, priced1) + pricer.npu_busy(q2, f2, l2, a2, priced2)
    npu = np.where(split, layers_per_stage * busy_split, sequential.npu_busy_s)
    pim = np.where(split, layers_per_stage * (p1 + p2), sequential.pim_busy_s)
    fraction = np.where(split, fractions, 0.0)
    if not searching:
        return _Stage(stage_s=stage, npu_busy_s=npu, pim_busy_s=pim, sub_batch_fraction=fraction)
    full_shape = np.broadcast_shapes(np.shape(stage), np.shape(npu), np.shape(pim), np.shape(fraction))
    best = np.argmin(np.broadcast_to(stage, full_shape), axis=0)[None]

    def pick(values: Num) -> Num:
        chosen: Num = np.take_along_axis(np.broadcast_to(values, full_shape), best, axis=0)[0]
        return chosen

    return _Stage(
        stage_s=pick(stage),
        npu_busy_s=pick(npu),
        pim_busy_s=pick(pim),
        sub_batch_fraction=pick(fraction),
        stage_s_by_split=stage,
    )


def _time_to_first_token_s(
    shape: ModelShape, device: Device, deployment: Deployment, workload: Workload, batch: Num, fused_qkv: bool
) -> Num:
    """The whole batch's prefill: every layer over the prompt, then the logits."""
    prefill_ops = _layer_ops(
        shape,
        deployment,
        batch=batch,
        query_tokens=workload.prompt_tokens,
        context_tokens=workload.prompt_tokens,
        fused_qkv=fused_qkv,
        fused_gate_up=fuses_gate_up(device),
        prefill=True,
        separate_rope_and_cache_write=rope_and_cache_write(device),
    )
    prefill_layer_s = _sum_times(_price(prefill_ops, device, deployment), tuple(prefill_ops))
    return shape.num_layers * prefill_layer_s + lm_head_time_s(shape, device, deployment, batch)


@dataclass(frozen=True)
class _Footprint:
    weights_bytes: Num
    kv_cache_bytes: Num
    max_batch: Num


def expert_weight_bytes(deployment: Deployment) -> Num:
    """Bytes per element of the routed experts' weights (the rest's unless the stack keeps them wider)."""
    return deployment.weight_bytes if deployment.expert_weight_bytes is None else deployment.expert_weight_bytes


def routed_expert_parameters(shape: ModelShape) -> Num:
    """Parameters of the routed experts over all MoE layers (0 for a dense model): the FFN parameters less the
    dense layers', shared by the E + S experts of each MoE layer, E of them routed."""
    moe = shape.moe
    if moe is None:
        return 0.0
    params = shape.parameters()
    dense_layer_ffn = dataclasses.replace(shape, moe=None).parameters().layer_ffn
    experts = params.ffn - moe.dense_layers * dense_layer_ffn
    return experts * moe.num_experts / (moe.num_experts + moe.shared_experts)


def _footprint(
    shape: ModelShape, device: Device, deployment: Deployment, workload: Workload, batch: Num, context: Num
) -> _Footprint:
    """Weights and KV cache per device, and the largest batch whose KV cache fits beside the weights in the
    capacity less the runtime's reserve (`Device.memory_reserve_bytes`)."""
    params = shape.parameters()
    tp, pp = deployment.tensor_parallel, deployment.pipeline_parallel
    weights = params.total * deployment.weight_bytes / (tp * pp)  # every expert is stored
    if shape.moe is not None and (deployment.expert_exchange is not None or deployment.expert_weight_bytes is not None):
        # data-parallel attention: each DP rank holds all but the routed experts, which the DP ranks share
        routed = routed_expert_parameters(shape)
        dp = deployment.attention_data_parallel if deployment.expert_exchange is not None else 1.0
        expert_bytes = expert_weight_bytes(deployment)
        weights = ((params.total - routed) * deployment.weight_bytes + routed / dp * expert_bytes) / (tp * pp)
    kv_per_token = kv_cache_bytes_per_token(
        num_layers=shape.num_layers,
        hidden_size=shape.hidden_size,
        num_heads=shape.num_heads,
        num_kv_heads=shape.num_kv_heads,
        kv_cache_bytes=deployment.kv_cache_bytes,
        head_dim=shape.head_dim,
        mla=shape.mla,
    )
    # pp stages each hold L/pp layers of pp batches in flight; an MLA latent is replicated on every TP rank
    kv_per_token_device = kv_per_token if shape.mla is not None else kv_per_token / tp
    reserved_context = (
        workload.peak_context_tokens if workload.context_quantile_tokens is None else context
    )  # paged KV follows the actual lengths of a distribution
    usable = device.memory_capacity_bytes - device.memory_reserve_bytes  # the runtime's share kept back
    max_batch = np.floor(np.maximum(usable - weights, 0.0) / (reserved_context * kv_per_token_device))
    return _Footprint(
        weights_bytes=weights, kv_cache_bytes=batch * reserved_context * kv_per_token_device, max_batch=max_batch
    )


class SharedWork:
    """What `run_inference` calls on the same inputs share: the parts that do not depend on the system
    (the whole batch's decode layer and logits on one device, its prefill, its footprint, the PIM
    channels' attention cycles), computed by the first call and reused by the others.

    Calls share a part when they pass the very same input objects (identity, not equality: the inputs
    may hold arrays); the objects are kept here, so an identity is never reused while this lives. Made
    for one answer (a comparison of systems on one model and workload), then dropped.
    """

    def __init__(self) -> None:
        self._kept: dict[tuple[object, ...], tuple[tuple[object, ...], object]] = {}

    def get(self, what: str, inputs: tuple[object, ...], options: tuple[object, ...], compute: Callable[[], T]) -> T:
        key = (what, *map(id, inputs), *options)
        kept = self._kept.get(key)
        if kept is None:
            kept = (inputs, compute())
            self._kept[key] = kept
        return kept[1]  # type: ignore[return-value]


def run_inference(
    *,
    system: str,
    shape: ModelShape,
    device: Device,
    deployment: Deployment,
    workload: Workload,
    memory: MemorySpec | None = None,
    sub_batch_fraction: Num | None = None,
    fused_qkv: bool = True,
    shared: SharedWork | None = None,
) -> InferenceResult:
    """Throughput, latencies, busy fractions and footprint of one system (see module doc).

    sub_batch_fraction (NeuPIMs only): share of the batch in the first sub-batch, in [0, 1/2];
    0 turns interleaving off; None picks the best of SPLIT_CANDIDATES per design point.
    shared: calls of one comparison pass one, with the same input objects, to compute what does not
    depend on the system once (the same numbers as computed alone).
    """
    if system not in SYSTEMS:
        raise ValueError(f"unknown system '{system}'; known: {', '.join(SYSTEMS)}")
    on_pim = system in PIM_SYSTEMS
    if on_pim and memory is None:
        raise ValueError(f"system '{system}' needs a PIM memory")
    if system == "neupims" and memory is not None and memory.pim_row_buffers_per_bank < 2:
        raise ValueError("NeuPIMs needs dual row buffers (pim_row_buffers_per_bank >= 2)")
    work = SharedWork() if shared is None else shared
    batch = np.asarray(workload.batch, dtype=np.float64)
    groups = (shape, device, deployment, workload, memory, sub_batch_fraction)
    ndim = work.get("ndim", groups, (), lambda: max_ndim(*groups))
    context = work.get("context", (workload,), (ndim,), lambda: mean_context(workload, batch, ndim))
    layers_per_stage = shape.num_layers / deployment.pipeline_parallel
    on_device = (shape, device, deployment, workload)  # what the device's parts depend on
    pricer = _LayerPricer(
        shape=shape,
        device=device,
        deployment=deployment,
        context=context,
        fused_qkv=fused_qkv,
        on_pim=on_pim,
        clock_s=memory.clock_period_s if memory is not None else 1.0,
        pim_cycles=(
            work.get(
                "pim_cycles",
                (memory, shape, deployment, workload),
                (ndim,),
                lambda: pim_attention_cycles(
                    memory=memory, shape=shape, deployment=deployment, workload=workload, batch=batch, ndim=ndim
                ),
            )
            if on_pim and memory is not None
            else None
        ),
    )

    # 1. The whole batch, layer after layer (every system but NeuPIMs' interleaving).
    qkv_s, pf_s, link_s, priced_full, ops_full = work.get(
        "decode_layer", on_device, (ndim, fused_qkv), lambda: pricer.npu_parts(batch)
    )
    attention_s, pim_s = pricer.attention_time(batch, priced_full)
    stage = _Stage(
        stage_s=layers_per_stage * (qkv_s + attention_s + pf_s),
        npu_busy_s=layers_per_stage * pricer.npu_busy(qkv_s, pf_s, link_s, attention_s, priced_full),
        pim_busy_s=layers_per_stage * pim_s,
        sub_batch_fraction=0.0 * batch,
    )
    # 2. NeuPIMs: two sub-batches interleaved.
    if system == "neupims":
        stage = _neupims_stage(pricer, batch, layers_per_stage, stage, sub_batch_fraction, ndim)
    # 3. Decode rate, first token and memory.
    logits_s = work.get("logits", on_device, (), lambda: lm_head_time_s(shape, device, deployment, batch))
    slowest_stage_s = stage.stage_s + logits_s  # the last stage adds logits
    tpot = deployment.pipeline_parallel * slowest_stage_s
    ttft = work.get(
        "prefill",
        on_device,
        (fused_qkv,),
        lambda: _time_to_first_token_s(shape, device, deployment, workload, batch, fused_qkv),
    )
    memory_use = work.get(
        "footprint", on_device, (ndim,), lambda: _footprint(shape, device, deployment, workload, batch, context)
    )
    dp = deployment.attention_data_parallel
    replica_batch = dp * batch  # every data-parallel attention rank decodes its own batch
    devices = deployment.tensor_parallel * deployment.pipeline_parallel * dp
    throughput = replica_batch / slowest_stage_s
    return InferenceResult(
        throughput_tokens_per_s=throughput,
        time_per_output_token_s=tpot,
        time_to_first_token_s=ttft,
        end_to_end_throughput_tokens_per_s=replica_batch
        * workload.output_tokens
        / (ttft + workload.output_tokens * tpot),
        layer_time_s=stage.stage_s / layers_per_stage,
        npu_busy_fraction=stage.npu_busy_s / slowest_stage_s,
        pim_busy_fraction=stage.pim_busy_s / slowest_stage_s,
        attention_time_s=attention_s,
        sub_batch_fraction=stage.sub_batch_fraction,
        weights_bytes_per_device=memory_use.weights_bytes,
        kv_cache_bytes_per_device=memory_use.kv_cache_bytes,
        memory_footprint_bytes_per_device=memory_use.weights_bytes + memory_use.kv_cache_bytes,
        max_batch_that_fits=memory_use.max_batch,
        fits=np.asarray(batch <= memory_use.max_batch, dtype=np.float64),
        decode_ops=priced_full,
        decode_op_costs=ops_full,
        pim_attention_time_s=pim_s,
        devices=devices,
        throughput_tokens_per_s_per_device=throughput / devices,
        prefill_throughput_tokens_per_s=replica_batch * workload.prompt_tokens / ttft,
        expert_all_to_all_time_s=sum(
            (priced_full[name].link_s for name in EXPERT_EXCHANGE_OPS if name in priced_full), start=0.0 * batch
        ),
        throughput_by_split_tokens_per_s=(
            None if stage.stage_s_by_split is None else replica_batch / (stage.stage_s_by_split + logits_s)
        ),
    )


def op_unit(system: str, op_name: str) -> str:
    """Which unit runs an op of the decode step in a system: 'npu'/'gpu', 'pim' or 'link'."""
    op_class = OP_CLASS[op_name]
    if op_class == "link":
        return "link"
    if system in PIM_SYSTEMS and op_name in ("score", "context"):
        return "pim"
    return "gpu" if system.startswith("gpu") else "npu"
