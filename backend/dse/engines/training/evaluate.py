"""`evaluate_plans`: memory, time and validity of many parallel training plans in one call.

Every field of the model, cluster and plan broadcasts (NumPy rules); there is no Python loop
over plans. Invalid plans get a non-zero `reasons` bitmask (see `validity`) and NaN metrics.

Time of one iteration (per data-parallel replica, all replicas in lock step):
    T = M * t_slowest_stage + bubble + DP gradient sync (exposed, bucketed) + optimizer step
where a stage's time per micro-batch = forward + backward + recomputation + TP collectives +
sequence-parallel collectives + pipeline sends + ZeRO-3 gathers (exposed) + SSD stalls, the last
stage also runs the logits and the loss, and bubble = (p-1) * t_layers_stage / v.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dse.engines.collectives import (
    all_gather_time,
    all_reduce_time,
    all_to_all_time,
    point_to_point_time,
    reduce_scatter_time,
    tree_all_reduce_time,
)
from dse.engines.device import Device, memory_reserve_bytes
from dse.engines.kernels import attention_flop
from dse.engines.training import experts
from dse.engines.training.codes import Offload, Recompute, SequenceParallel
from dse.engines.training.compute import (
    BACKWARD_FACTOR,
    FLASH_BACKWARD_FLOP_FACTOR,
    FLASH_RECOMPUTE_FLOP_FACTOR,
    FP8_CAST_TRANSPOSE_BYTES,
    UNFUSED_ATTENTION_KERNELS,
    Gemm,
    eager_layer_traffic,
    elementwise_pass_s,
    every_other_matmul_shares,
    gemm_pass_times,
    layer_forward_work,
    layer_gemms,
    output_layer_work,
    unfused_layer_kernels,
)
from dse.engines.training.context_parallel import ContextParallelCommunication, context_parallel_communication
from dse.engines.training.inputs import (
    Array,
    ClusterArrays,
    ModelArrays,
    PlanArrays,
    Selection,
    as_array,
    field_shapes,
    select_inputs,
)
from dse.engines.training.links import Link, group_link
from dse.engines.training.memory import (
    WEIGHT_BYTES_PER_PARAM,
    ModelStates,
    layer_activation_bytes,
    model_state_bytes,
)
from dse.engines.training.offload import offload_stall_s, offloaded_layers
from dse.engines.training.schedules import (
    dualpipe_bubble_s,
    first_stage_in_flight,
    last_stage_in_flight,
    pipeline_time,
)
from dse.engines.training.stages import stage_in_flight, stage_layers
from dse.engines.training.validity import OUT_OF_MEMORY, plan_reasons
from dse.engines.training.zero3 import (
    compute_stream_copies,
    gathered_params,
    largest_tensor_params,
    reduce_bytes_per_param,
    unsharded_gradient_params,
    zero3_exposed_s,
)
from dse.specs.common import Num

#: fp16 activations and gradients cross the links.
ACTIVATION_BYTES = 2.0
#: Adam step traffic per parameter the GPU updates: read and write fp32 master, momentum and
#: variance (12 + 12), read the fp16 gradient (2), write the fp16 weight (2).
OPTIMIZER_STEP_BYTES_PER_PARAM = 28.0
SECONDS_PER_YEAR = 365.0 * 86400.0
#: Gradients reduce in buckets of 25 MB: PyTorch DistributedDataParallel's default `bucket_cap_mb=25`
#: (torch/nn/parallel/distributed.py), the bucketing Megatron-LM's DDP also applies.
GRADIENT_BUCKET_BYTES = 25.0 * 2.0**20
#: The distributed optimizer (ZeRO-1/2) reduce-scatters gradients in buckets of max(4e7, 1e6 x DP size)
#: parameters, "larger DP sizes need larger buckets to ensure collectives do not become latency-bound"
#: (NVIDIA/Megatron-LM megatron/core/distributed/distributed_data_parallel_config.py, `bucket_size`), and in
#: one bucket without overlap; DeepSpeed's ZeRO-1/2 default `reduce_bucket_size` (5e8 elements) is larger still.
SHARDED_BUCKET_MIN_PARAMS = 4e7
SHARDED_BUCKET_PARAMS_PER_RANK = 1e6
#: The word-embedding lookup per output element: read the fp16 row, write the activation (2 + 2); its
#: backward reads the output gradient and adds it into the gradient row (2 + 2 + 2).
EMBEDDING_FORWARD_BYTES = 2.0 + 2.0
#: A multi-token-prediction module's element-wise traffic per token and hidden element (DeepSeek-V3,
#: arXiv:2412.19437 Section 2.2, Figure 3): RMSNorms of the previous depth's hidden state, of the next token's
#: embedding and of the output before the shared head (3 x (2 + 2)), and their concatenation (2 x (2 + 2));
#: four kernels. Its projection M (2h -> h) is a GEMM.
MTP_ELEMENTWISE_BYTES = 3.0 * (2.0 + 2.0) + 2.0 * (2.0 + 2.0)
MTP_ELEMENTWISE_KERNELS = 4.0
#: An RMSNorm recomputed in the backward (DeepSeek-V3 Section 3.2.3) reads its input and writes its output.
RECOMPUTED_NORM_BYTES = 2.0 + 2.0
EMBEDDING_BACKWARD_BYTES = 2.0 + 2.0 + 2.0


@dataclass(frozen=True)
class PlanEvaluation:
    """Results per plan (arrays broadcast over the inputs). Memory in bytes per GPU at the peak
    stage; times in seconds per iteration; NaN where the plan is invalid. `fits`: the peak stays
    within the capacity less `device.memory_reserve_bytes` (context, NCCL buffers, fragmentation);
    `memory_headroom_bytes` is what is left of that."""

    reasons: NDArray[np.int64]
    valid: NDArray[np.bool_]
    fits: NDArray[np.bool_]
    micro_batches: Array
    # memory at the stage with the highest peak
    memory_weights_bytes: Array
    memory_gradients_bytes: Array
    memory_optimizer_bytes: Array
    memory_activations_bytes: Array
    memory_buffers_bytes: Array
    memory_offloaded_bytes: Array
    memory_total_bytes: Array
    memory_headroom_bytes: Array
    peak_is_last_stage: NDArray[np.bool_]
    # time breakdown: they add up to iteration_time_s
    time_forward_s: Array
    time_backward_s: Array
    time_recompute_s: Array
    time_tensor_parallel_s: Array
    time_sequence_parallel_s: Array
    time_pipeline_send_s: Array
    time_zero_gather_s: Array
    time_offload_stall_s: Array
    time_bubble_s: Array
    time_data_parallel_s: Array
    time_optimizer_s: Array
    #: Mixture of experts: the EP token dispatch and combine all-to-alls (part of the iteration time).
    time_expert_all_to_all_s: Array
    iteration_time_s: Array
    # rates
    tokens_per_s: Array
    model_flops_utilization: Array
    achieved_flops_per_gpu: Array
    executed_flop_per_iteration: Array
    model_flop_per_iteration: Array
    bubble_fraction: Array
    # per-layer detail
    layer_activation_bytes: Array
    tensor_parallel_bytes_per_layer: Array
    sequence_parallel_bytes_per_layer: Array
    offloaded_layers: Array
    ssd_write_bytes_per_s_per_node: Array
    ssd_lifetime_years: Array
    # per-micro-batch stage times for the timeline (one chunk = layers/(p*v))
    chunk_forward_s: Array
    chunk_backward_s: Array
    last_stage_extra_forward_s: Array
    last_stage_extra_backward_s: Array
    pipeline_send_s: Array
    # context parallelism and uneven stages
    time_context_parallel_s: Array
    context_parallel_bytes_per_layer: Array
    #: The stage whose memory peaks (0 the first, 1 the second, p-1 the last).
    peak_stage: Array
    #: One micro-batch's forward + backward on the first, a middle and the last stage (no middle: NaN).
    first_stage_s: Array
    middle_stage_s: Array
    last_stage_s: Array
    #: Timeline: what the first stage adds to its first chunk (embedding, its layers above the middle stages');
    #: the exposed context-parallel part of each chunk's forward and backward.
    first_stage_extra_forward_s: Array
    first_stage_extra_backward_s: Array
    chunk_context_parallel_forward_s: Array
    chunk_context_parallel_backward_s: Array
    #: Mixture of experts: routed-expert weights, gradients and optimizer states per GPU (in the memory parts
    #: above), bytes one GPU sends in EP all-to-alls per MoE layer and micro-batch, and the all-to-all part
    #: of a chunk's forward and backward (for the timeline).
    memory_expert_states_bytes: Array
    expert_all_to_all_bytes_per_layer: Array
    chunk_forward_all_to_all_s: Array
    chunk_backward_all_to_all_s: Array

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def evaluate_plans(
    *,
    model: ModelArrays,
    cluster: ClusterArrays,
    plan: PlanArrays,
    outputs: Collection[str] | None = None,
    fitting_only: bool = False,
    priced_only: NDArray[np.bool_] | None = None,
) -> PlanEvaluation:
    """Memory, time and validity of every plan; all inputs broadcast together.

    Invalid plans are never computed: the validity bits are found first and, when some plans
    are invalid, only the valid ones are evaluated (their metrics come back NaN elsewhere).
    `outputs` (metric names; None: all) limits which metrics are written back into the full grid
    when some plans are invalid; the others come back as read-only NaN (False) placeholders. A
    search over millions of plans that ranks by time and memory skips ~40 full-grid copies.

    `fitting_only=True` prices only the plans that fit: the memory of every valid plan comes first (the same
    formulas), then everything else only where it fits, NaN (False) elsewhere as for an invalid plan; a search
    that keeps only the plans that fit skips the time of the many that do not. `priced_only` (a mask broadcast
    against the plans) likewise keeps the metrics to the valid plans where it is true. `reasons`, `valid` and
    `fits` are always those of every plan.
    """
    reasons = plan_reasons(model=model, cluster=cluster, plan=plan)
    shape = np.broadcast_shapes(reasons.shape, *field_shapes(model), *field_shapes(cluster), *field_shapes(plan))
    reasons = np.broadcast_to(reasons, shape)
    valid = reasons == 0
    with np.errstate(all="ignore"):  # priced at the shapes' own broadcast shape, before the plans are flattened
        compute = _distinct_rows_compute_times(_terms(model, cluster, plan), model, cluster)
    fits: NDArray[np.bool_] | None = None
    priced = valid
    if fitting_only or priced_only is not None:
        fits = _fits(model, cluster, plan, compute, valid)
        priced = valid & fits if fitting_only else valid
        if priced_only is not None:
            priced = priced & np.broadcast_to(priced_only, shape)
    everything = bool(priced.all())
    if not everything:
        selection = Selection(priced)
        model, cluster, plan = (
            select_inputs(model, selection),
            select_inputs(cluster, selection),
            select_inputs(plan, selection),
        )
        compute = compute.select(selection)
    with np.errstate(all="ignore"):
        raw = _evaluate(model, cluster, plan, compute)
    subset_shape = shape if everything else (selection.count,)
    flat = None if everything or not shape else selection.flat
    out: dict[str, Any] = {}
    for key, value in raw.items():
        computed = np.broadcast_to(value, subset_shape)
        if everything:
            out[key] = computed
        elif outputs is not None and key not in outputs:
            out[key] = np.broadcast_to(np.zeros((), dtype=np.bool_) if computed.dtype == np.bool_ else np.nan, shape)
        else:
            full = np.zeros(shape, dtype=np.bool_) if computed.dtype == np.bool_ else np.full(shape, np.nan)
            if flat is None:
                full[priced] = computed
            else:
                full.reshape(-1)[flat] = computed
            out[key] = full
    if fits is None:
        fits_subset = np.broadcast_to(raw["memory_headroom_bytes"] >= 0.0, subset_shape)
        fits = np.zeros(shape, dtype=np.bool_)
        fits[valid] = fits_subset.reshape(-1) if not everything else fits_subset[valid]
    reasons = np.array(reasons)  # a writable copy of the structural codes, at the plans' shape
    np.bitwise_or(reasons, np.int64(OUT_OF_MEMORY.bit), out=reasons, where=valid ^ fits)  # fits only where valid
    return PlanEvaluation(reasons=reasons, valid=valid, fits=fits, **out)


#: From this share of valid plans on, the memory pass prices the broadcast inputs rather than the valid plans
#: gathered out (measured on the GPT-3 175B search's chunks: 3.5 ms against 14.5 ms at a third valid; at a ninth
#: the gathered plans were still faster, 4.4 ms against 5.4 ms).
DENSE_VALID_SHARE = 0.15


def _fits(
    model: ModelArrays, cluster: ClusterArrays, plan: PlanArrays, compute: _ComputeTimes, valid: NDArray[np.bool_]
) -> NDArray[np.bool_]:
    """Whether each valid plan's peak memory fits (False where invalid): `_evaluate`'s memory steps alone (the
    compute times and the layer's collectives only where some plan offloads activations). On the valid plans
    alone when they are few; else on the inputs as they broadcast, every step at the shape of what it depends
    on (a search chunk's layouts, micro-batches, ZeRO stages ... each an axis), which is then cheaper than
    gathering the valid plans out first: the same values either way."""
    dense = valid.ndim == 0 or np.count_nonzero(valid) >= DENSE_VALID_SHARE * valid.size
    selection = None if dense else Selection(valid)
    if selection is not None:
        model, cluster, plan = (
            select_inputs(model, selection),
            select_inputs(cluster, selection),
            select_inputs(plan, selection),
        )
    with np.errstate(all="ignore"):
        x = _terms(model, cluster, plan)
        params = _parameters(x, model)
        qkv_bytes, _, kv_chunk = _attention_exchange_bytes(x)
        computed: list[_ComputeTimes] = []
        communicated: list[_LayerCommunication] = []

        def compute_here() -> _ComputeTimes:  # selected once, if at all
            if not computed:
                computed.append(compute if selection is None else compute.select(selection))
            return computed[0]

        def comm() -> _LayerCommunication:
            if not communicated:
                communicated.append(_layer_communication(x, cluster))
            return communicated[0]

        cp_buffer = _context_parallel(x, cluster, compute_here(), comm()).buffer_bytes if x.any_cp else np.zeros(())
        mem = _memory(
            x,
            model,
            cluster,
            plan,
            params,
            qkv_bytes=qkv_bytes,
            kv_chunk=kv_chunk,
            cp_buffer_bytes=cp_buffer,
            layer_forward_s=lambda: _layer_forward_with_comm(compute_here(), comm()),
        )
        fits_here = _headroom(cluster.device, mem) >= 0.0
    if selection is None:
        return np.asarray(np.broadcast_to(fits_here, valid.shape) & valid)
    fits = np.zeros(valid.shape, dtype=np.bool_)
    fits[valid] = np.broadcast_to(fits_here, (selection.count,))
    return fits


@dataclass(frozen=True)
class _Terms:
    """The plan's and model's symbols, shared by every step (arrays broadcast over the plans)."""

    B: Array
    b: Array
    s: Array
    d: Array
    t: Array
    p: Array
    variant: Array
    v: Array
    zero: Array
    rc: Array
    h: Array
    L: Array
    V: Array
    a: Array
    a_kv: Array
    ring: NDArray[np.bool_]
    ulysses: NDArray[np.bool_]
    megatron_sp: NDArray[np.bool_]
    #: GPUs the sequence is split over (Ring, Ulysses; 1 otherwise).
    n: Array
    full: NDArray[np.bool_]
    flash: Array
    uses_flash: NDArray[np.bool_]
    selective: NDArray[np.bool_]
    #: Micro-batches per replica, layers per stage, the ZeRO group, tokens per GPU, K/V width.
    M: Array
    layers: Array
    zero_group: Array
    s_local: Array
    kv_width: Array
    single_stage: NDArray[np.bool_]
    #: Transformer Engine fp8: the layers' GEMMs in fp8, fp8 copies of the weights.
    fp8: bool
    #: Context-parallel degree and exchange (`codes.ContextParallelExchange`); `n` includes the degree.
    cp: Array
    cp_exchange: Array
    #: Layers on the first and the last stage (`layers` is a middle stage's; all equal without uneven stages).
    layers_first: Array
    layers_last: Array
    #: Whether any plan of the call has context parallelism / uneven stages (else their terms are skipped:
    #: a search over millions of plans without them pays nothing for them).
    any_cp: bool
    any_uneven: bool
    #: The stack's selective recomputation redoes every other matmul and every element-wise op (torchtitan).
    every_other_matmul: bool
    #: Mixture of experts: EP degree and the busiest expert's load over the mean (`experts.load_factor`).
    ep: Array
    load: Array
    moe: bool
    #: The backward recomputes the norms and MLA's up-projections (`PlanArrays.recompute_norms_and_up_projections`)
    #: where no full recomputation redoes the whole layer.
    norm_up_recompute: NDArray[np.bool_]
    #: Multi-token-prediction modules (`ModelArrays.mtp_depth`); each is one more layer on the last stage.
    mtp: Array
    #: Bytes per element of the gradient buffer, the width the data-parallel reduction moves too
    #: (`ClusterArrays.gradient_reduce_bytes_per_param`: Megatron's fp32 main gradients under bf16).
    grad_bytes: Array


def _terms(model: ModelArrays, cluster: ClusterArrays, plan: PlanArrays) -> _Terms:
    B, b, s = as_array(plan.global_batch_size), as_array(plan.micro_batch_size), as_array(plan.sequence_length)
    d, t, p = as_array(plan.data_parallel), as_array(plan.tensor_parallel), as_array(plan.pipeline_parallel)
    variant, v = as_array(plan.sequence_parallel), as_array(plan.virtual_stages)
    zero, rc = as_array(plan.zero_stage), as_array(plan.recompute)
    h, L, V = as_array(model.hidden_size), as_array(model.num_layers), as_array(model.vocab_size)
    a, a_kv = as_array(model.num_heads), as_array(model.num_kv_heads)
    ring = variant == SequenceParallel.RING
    ulysses = variant == SequenceParallel.ULYSSES
    cp = as_array(plan.context_parallel)
    any_cp = bool(np.any(cp != 1.0))
    n = np.where(ring | ulysses, as_array(plan.sequence_parallel_degree), 1.0)
    n = n * cp if any_cp else n
    flash = as_array(plan.flash_attention)
    mtp = as_array(model.mtp_depth)
    norm_up, no = as_array(plan.recompute_norms_and_up_projections), np.zeros((), dtype=np.bool_)
    any_mtp = bool(np.any(mtp > 0))
    any_uneven = bool(np.any(as_array(plan.first_stage_layers) != 0) or np.any(as_array(plan.last_stage_layers) != 0))
    any_uneven = any_uneven or any_mtp  # the MTP modules' layers make the last stage longer than a middle one
    if any_uneven:
        layers_first, layers_middle, layers_last = stage_layers(
            num_layers=L,
            pipeline_parallel=p,
            first_stage_layers=plan.first_stage_layers,
            last_stage_layers=plan.last_stage_layers,
        )
    else:
        layers_first = layers_middle = layers_last = L / p
    if any_mtp:  # each MTP module runs one more layer on the last stage (on the only stage of one)
        layers_last = layers_last + mtp
        layers_first = np.where(p == 1, layers_first + mtp, layers_first)
    uses_flash = flash > 0
    stack = cluster.device.stack
    every_other = stack is not None and stack.selective_recompute == "every-other-matmul"
    return _Terms(
        B=B,
        b=b,
        s=s,
        d=d,
        t=t,
        p=p,
        variant=variant,
        v=v,
        zero=zero,
        rc=rc,
        h=h,
        L=L,
        V=V,
        a=a,
        a_kv=a_kv,
        ring=np.asarray(ring),
        ulysses=np.asarray(ulysses),
        megatron_sp=np.asarray(variant == SequenceParallel.MEGATRON),
        n=n,
        full=np.asarray(rc == Recompute.FULL),
        flash=flash,
        uses_flash=np.asarray(uses_flash),
        # FlashAttention's backward recomputes QK^T (Dao et al. 2022): half the forward attention FLOP
        # again; it already is Megatron's selective recomputation, so `selective` adds nothing on top of it
        # (a stack recomputing every other matmul still has those to redo).
        selective=np.asarray((rc == Recompute.SELECTIVE) & (~uses_flash | every_other)),
        every_other_matmul=every_other,
        M=B / (b * d),
        layers=layers_middle,  # per stage (a middle stage's with uneven stages)
        zero_group=d * n,
        s_local=s / n,
        kv_width=a_kv * h / a,
        single_stage=np.asarray(p == 1),
        fp8=cluster.fp8_gemm_device is not None,
        cp=cp,
        cp_exchange=as_array(plan.context_parallel_exchange),
        layers_first=layers_first,
        layers_last=layers_last,
        any_cp=any_cp,
        any_uneven=any_uneven,
        ep=as_array(plan.expert_parallel),
        load=experts.load_factor(plan),
        moe=experts.is_moe(model),
        norm_up_recompute=np.asarray((norm_up > 0) & (rc != Recompute.FULL)) if bool(np.any(norm_up > 0)) else no,
        mtp=mtp,
        grad_bytes=as_array(cluster.gradient_reduce_bytes_per_param),
    )


@dataclass(frozen=True)
class _ComputeTimes:
    """Compute of one layer and of the output layer, one micro-batch, one GPU, priced op by op by the Device.

    Depends on the shapes alone (micro-batch, sequence, TP and sequence degrees, attention kernel, precision),
    so `evaluate_plans` prices it at their broadcast shape before it flattens the valid plans."""

    #: Forward GEMM FLOP of a layer, its attention part (QK^T and AV) and the logits' (Narayanan's counts).
    gemm_flop: Array
    attention_flop: Array
    out_flop: Array
    layer_fwd: Array
    #: Data- and weight-gradient GEMMs, attention backward and element-wise backward of a layer.
    layer_bwd: Array
    #: What selective recomputation redoes: the unfused attention's scores, softmax, dropout and context, or under
    #: an every-other-matmul stack those matmuls and the layer's element-wise ops; and its GEMM FLOP.
    layer_selective: Array
    selective_flop: Array
    #: FlashAttention's backward recomputing the scores, booked as recomputation (zero without FlashAttention).
    flash_recompute: Array
    logits_fwd: Array
    logits_bwd: Array
    #: The attention kernels of a layer alone (what a context-parallel K/V send can hide behind).
    attention_fwd: Array
    attention_bwd: Array
    #: The word-embedding lookup on the first stage (gather rows; backward: accumulate their gradients).
    embedding_fwd: Array
    embedding_bwd: Array
    #: The norms and MLA up-projections of a layer recomputed in the backward (DeepSeek-V3), and their GEMM FLOP;
    #: forward GEMM FLOP of the MTP modules' projections and output-head passes (their layers are stage layers).
    #: None where no plan of the call asks for them (a plan search gathers no column for them).
    norm_up_recompute: Array | None = None
    norm_up_flop: Array | None = None
    mtp_flop: Array | None = None

    def select(self, mask: NDArray[np.bool_] | Selection) -> _ComputeTimes:
        """The values at the plans where `mask` is true, flat (as `select_inputs` flattens the inputs)."""
        selection = mask if isinstance(mask, Selection) else Selection(mask)
        names = [f.name for f in fields(self) if getattr(self, f.name) is not None]  # None: no plan asks for it
        return _ComputeTimes(**{name: selection.take(getattr(self, name)) for name in names})


#: The terms `_compute_times` reads (besides the model's and the cluster's fields, which it reads directly).
_COMPUTE_TERMS = (
    *("b", "s", "t", "n", "cp", "variant", "uses_flash", "h", "a", "a_kv", "kv_width", "V", "ep", "load"),
    *("norm_up_recompute", "mtp"),
)


def _distinct_rows_compute_times(x: _Terms, model: ModelArrays, cluster: ClusterArrays) -> _ComputeTimes:
    """`_compute_times`, priced once per distinct row of the first axis of the terms it reads and gathered back.

    A plan-search chunk's first axis is its layouts: hundreds of them, but only tens of distinct (TP, sequence
    split, CP, EP) combinations, which is all the compute depends on there. The same values as `_compute_times`
    (each element priced by the same arithmetic); every other case (no such axis, few repeats, the model or the
    devices varying along it) prices the whole. A term `_compute_times` reads that is missing from
    `_COMPUTE_TERMS` and varies along the axis fails loudly (its rows and the distinct rows do not broadcast)."""
    terms = {name: np.asarray(getattr(x, name)) for name in _COMPUTE_TERMS}
    ndim = max(value.ndim for value in terms.values())
    rows = max(value.shape[0] for value in terms.values() if value.ndim == ndim) if ndim else 1

    def along_first(shape: tuple[int, ...]) -> bool:
        return 0 < ndim == len(shape) and shape[0] > 1

    if rows < 32:
        return _compute_times(x, model, cluster)
    varying = [name for name, value in terms.items() if along_first(value.shape)]
    devices = [d for d in (cluster.device, cluster.fp8_gemm_device) if d is not None]  # of the cluster, all it reads
    read = [*field_shapes(model), *(shape for d in devices for shape in field_shapes(d))]
    if any(along_first(shape) for shape in read):
        return _compute_times(x, model, cluster)
    if any(any(size > 1 for size in terms[name].shape[1:]) for name in varying):  # not the first axis alone
        return _compute_times(x, model, cluster)
    # Each row as one whole number (the rank of its value in each column): a 1-D unique, many times faster than
    # np.unique(axis=0) on a small table.
    columns = [np.unique(terms[name].reshape(rows), return_inverse=True) for name in varying]
    if float(np.prod([float(values.size) for values, _ in columns])) > 2.0**62:  # too many to number: price all
        return _compute_times(x, model, cluster)
    key = np.ravel_multi_index([inverse.reshape(-1) for _, inverse in columns], [values.size for values, _ in columns])
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    if 2 * first.size > rows:
        return _compute_times(x, model, cluster)
    reduced = dataclasses.replace(x, **{name: terms[name][first] for name in varying})  # type: ignore[arg-type]
    priced = _compute_times(reduced, model, cluster)
    back = inverse.reshape(-1)

    def expand(value: Array) -> Array:
        array = np.asarray(value)
        return array[back] if along_first(array.shape) else array

    names = [f.name for f in fields(priced) if getattr(priced, f.name) is not None]  # None: no plan asks for it
    return _ComputeTimes(**{name: expand(getattr(priced, name)) for name in names})


def _compute_times(x: _Terms, model: ModelArrays, cluster: ClusterArrays) -> _ComputeTimes:
    """Every GEMM at its own shape (forward, data gradient, weight gradient; `Device.gemm_time_s`), attention
    by the fused kernel model (FlashAttention) or as batched GEMMs plus softmax and dropout, element-wise ops
    at the achieved bandwidth plus the stack's launches; with fp8 the layers' GEMMs on the fp8 device plus
    their cast-transpose traffic (attention, element-wise ops and the logits stay in bf16)."""
    device = cluster.device
    shape = dict(
        sequence_length=x.s,
        micro_batch_size=x.b,
        hidden_size=x.h,
        num_heads=x.a,
        num_kv_heads=x.a_kv,
        ffn_hidden_size=model.ffn_hidden_size,
        gated_ffn=model.gated_ffn,
        tensor_parallel=x.t,
    )
    g = layer_gemms(**shape, context=x.n)
    own_attention = experts.has_own_attention(model)
    attention = experts.attention_shapes(g=g, model=model, b=x.b, s=x.s, t=x.t, n=x.n) if own_attention else None
    g = attention.layer if attention is not None else g
    fp8_device = cluster.fp8_gemm_device
    ffn = None
    if x.moe:  # the mean layer's FFN: dense layers, router, shared and routed experts (`experts.ffn_times`)
        ffn = experts.ffn_times(
            device=device if fp8_device is None else fp8_device,
            model=model,
            b=x.b,
            s=x.s,
            t=x.t,
            n=x.n,
            expert_parallel=x.ep,
            load=x.load,
            dense_ffn=(g.ffn_in, g.ffn_out),
        )
        shape["ffn_hidden_size"] = ffn.activation_width  # element-wise work of the activation function
    work = layer_forward_work(
        **shape, sequence_parallel=x.variant, sequence_parallel_degree=x.n / x.cp, context_parallel=x.cp
    )

    logits_gemm = Gemm(x.b * x.s / x.n, x.V / x.t, x.h, np.ones(()))
    weights = list(g.weight_gemms) if attention is None else [*attention.weights, g.ffn_in, g.ffn_out]
    if ffn is not None:
        weights = weights[:-2]  # the FFN is priced by `experts.ffn_times`
    in_bf16 = [g.scores, g.context, logits_gemm] + (weights if fp8_device is None else [])
    (scores_fwd, scores_bwd), (context_fwd, context_bwd), (logits_fwd, logits_bwd), *layer = gemm_pass_times(
        device, in_bf16
    )
    if fp8_device is not None:
        layer = gemm_pass_times(fp8_device, weights)
    gemm_fwd, gemm_bwd = sum(f for f, _ in layer), sum(b for _, b in layer)
    casts = float(len(weights))
    cast_fwd: Array | float = 0.0
    cast_bwd: Array | float = 0.0
    if ffn is not None:
        gemm_fwd, gemm_bwd = gemm_fwd + ffn.forward_s, gemm_bwd + ffn.backward_s
    if fp8_device is not None:  # the input activations of each fp8 GEMM, and its output gradients
        cast_in = sum(w.m * w.k for w in weights) + (0.0 if ffn is None else ffn.cast_in_elements)
        cast_out = sum(w.m * w.n for w in weights) + (0.0 if ffn is None else ffn.cast_out_elements)
        casts += 0.0 if ffn is None else ffn.casts
        cast_fwd = elementwise_pass_s(device, FP8_CAST_TRANSPOSE_BYTES * cast_in, casts)
        cast_bwd = elementwise_pass_s(device, FP8_CAST_TRANSPOSE_BYTES * cast_out, casts)

    # attention unfused: two batched GEMMs, scale-mask-softmax and dropout (every score element stored)
    score_bytes = work.attention_elementwise_bytes
    unfused_fwd = scores_fwd + context_fwd + elementwise_pass_s(device, score_bytes, UNFUSED_ATTENTION_KERNELS)
    unfused_bwd = (
        scores_bwd + context_bwd + elementwise_pass_s(device, BACKWARD_FACTOR * score_bytes, UNFUSED_ATTENTION_KERNELS)
    )
    # attention fused (FlashAttention, causal): the fitted kernel; the backward is 2.5x its forward FLOP
    kernel = device.prefill_attention_time_s(
        g.attention_batch, g.attention_heads, g.attention_q_len, g.attention_kv_len, g.head_dim, causal=True
    )
    if kernel is None:  # no kernel model: Narayanan's attention FLOP (no masked blocks skipped) and Q, K, V, O bytes
        heads_tokens = g.attention_batch * g.attention_heads * g.attention_q_len
        flop = attention_flop(
            g.attention_batch, g.attention_heads, g.attention_q_len, g.attention_kv_len, g.head_dim, causal=False
        )
        kernel = device.op_time_s(flop, 4.0 * heads_tokens * g.head_dim * device.element_bytes)
    busy = as_array(kernel.time_s - kernel.overhead_s)
    flash_fwd = as_array(kernel.time_s)
    pair = device.attention_fwd_bwd_time_s(
        g.attention_batch, g.attention_heads, g.attention_q_len, g.attention_kv_len, g.head_dim, causal=True
    )
    if pair is not None:  # a forward + backward table: the backward's kernels take what the forward leaves
        busy = np.maximum(as_array(pair.time_s) - flash_fwd, 0.0) / (
            FLASH_BACKWARD_FLOP_FACTOR + FLASH_RECOMPUTE_FLOP_FACTOR
        )
    flash_bwd = FLASH_BACKWARD_FLOP_FACTOR * busy + kernel.overhead_s
    flash_rc = FLASH_RECOMPUTE_FLOP_FACTOR * busy
    flash = x.uses_flash

    rest_bytes: Array = work.elementwise_bytes - score_bytes  # norms, dropout-adds, activation
    kernels: Array | float = unfused_layer_kernels(device)
    if device.stack is not None and device.stack.eager_elementwise:  # every op its own kernel and traffic
        rest_bytes, kernels = eager_layer_traffic(**shape, rms_norm=model.rms_norm, rotary=model.rotary, context=x.n)
    if ffn is not None:  # token permutation and unpermutation around the experts, and the router's kernels
        rest_bytes = rest_bytes + ffn.permute_bytes + ffn.router_bytes
        kernels = kernels + (2.0 + experts.ROUTER_KERNELS) * as_array(model.moe_layer_fraction)
    layer_fwd = gemm_fwd + np.where(flash, flash_fwd, unfused_fwd) + elementwise_pass_s(device, rest_bytes, kernels)
    layer_bwd = (
        gemm_bwd
        + np.where(flash, flash_bwd, unfused_bwd)
        + elementwise_pass_s(device, BACKWARD_FACTOR * rest_bytes, kernels)
    )

    out_flop, out_fwd_bytes, out_bwd_bytes = output_layer_work(
        sequence_length=x.s, micro_batch_size=x.b, hidden_size=x.h, vocab_size=x.V, tensor_parallel=x.t, context=x.n
    )
    logits_fwd = logits_fwd + elementwise_pass_s(device, out_fwd_bytes, 1.0)
    logits_bwd = logits_bwd + elementwise_pass_s(device, out_bwd_bytes, 1.0)
    tokens = x.b * x.s / x.n
    embedding_fwd = elementwise_pass_s(device, EMBEDDING_FORWARD_BYTES * tokens * x.h, 1.0)
    embedding_bwd = elementwise_pass_s(device, EMBEDDING_BACKWARD_BYTES * tokens * x.h, 1.0)

    # DeepSeek-V3's recomputation in the backward (Section 3.2.3): the layer's RMSNorms (two of h, MLA's two
    # latent norms) and the MLA up-projections' forward, with their inputs cast to fp8 again
    up_device = device if fp8_device is None else fp8_device
    norm_up: Array | None = None
    up_flop: Array | float | None = None
    if bool(np.any(x.norm_up_recompute)):
        up_projections = [] if attention is None else attention.up_projections
        latent = 0.0 if attention is None else attention.latent_norm_width
        up_fwd = sum(f for f, _ in gemm_pass_times(up_device, up_projections)) if up_projections else 0.0
        up_flop = sum(2.0 * w.m * w.n * w.k * w.count for w in up_projections) if up_projections else 0.0
        norm_elements = tokens * (2.0 * x.h + latent)
        norm_kernels = np.where(as_array(latent) > 0, 4.0, 2.0)
        norm_up = up_fwd + elementwise_pass_s(device, RECOMPUTED_NORM_BYTES * norm_elements, norm_kernels)
        if fp8_device is not None and up_projections:
            up_inputs = sum(w.m * w.k for w in up_projections)
            casts = float(len(up_projections))
            norm_up = norm_up + elementwise_pass_s(device, FP8_CAST_TRANSPOSE_BYTES * up_inputs, casts)

    # multi-token prediction (Section 2.2): per module the next token's embedding, three RMSNorms and a concat,
    # the projection M (2h -> h, a linear layer, so fp8 with fp8 GEMMs: Section 3.3.1) and another pass through
    # the shared output head and the loss; its layer is one more stage layer (`_terms`)
    mtp_flop: Array | None = None
    if bool(np.any(x.mtp > 0)):
        projection = Gemm(tokens, x.h / x.t, 2.0 * x.h, np.ones(()))
        ((proj_fwd, proj_bwd),) = gemm_pass_times(up_device, [projection])
        if fp8_device is not None:
            proj_fwd = proj_fwd + elementwise_pass_s(device, FP8_CAST_TRANSPOSE_BYTES * tokens * 2.0 * x.h, 1.0)
            proj_bwd = proj_bwd + elementwise_pass_s(device, FP8_CAST_TRANSPOSE_BYTES * tokens * x.h / x.t, 1.0)
        mtp_bytes = MTP_ELEMENTWISE_BYTES * tokens * x.h
        mtp_fwd = embedding_fwd + proj_fwd + elementwise_pass_s(device, mtp_bytes, MTP_ELEMENTWISE_KERNELS)
        mtp_bwd = embedding_bwd + proj_bwd
        mtp_bwd = mtp_bwd + elementwise_pass_s(device, BACKWARD_FACTOR * mtp_bytes, MTP_ELEMENTWISE_KERNELS)
        mtp_flop = np.asarray(x.mtp * (2.0 * projection.m * projection.n * projection.k + out_flop))
        logits_fwd, logits_bwd = (
            logits_fwd + x.mtp * (mtp_fwd + logits_fwd),
            logits_bwd + x.mtp * (mtp_bwd + logits_bwd),
        )
    selective = np.where(flash, 0.0, unfused_fwd)
    selective_flop = np.where(flash, 0.0, work.attention_flop)
    if x.every_other_matmul:  # torchtitan's per-op policy: every other matmul and every element-wise op again
        shares = every_other_matmul_shares(hidden_size=x.h, kv_width=x.kv_width, gated_ffn=model.gated_ffn)
        redone = sum(share * f for share, (f, _) in zip(shares, layer, strict=True))
        selective = selective + redone + elementwise_pass_s(device, rest_bytes, kernels)
        selective_flop = selective_flop + sum(
            share * 2.0 * w.m * w.n * w.k * w.count for share, w in zip(shares, weights, strict=True)
        )
    gemm_flop, core_flop = work.gemm_flop, work.attention_flop
    if attention is not None or ffn is not None:  # the FLOP of the GEMMs as priced
        core_flop = attention.core_flop if attention is not None else work.attention_flop
        projections = (
            attention.projection_flop
            if attention is not None
            else sum(2.0 * w.m * w.n * w.k for w in (g.qkv, g.projection))
        )
        dense_ffn = sum(2.0 * w.m * w.n * w.k for w in (g.ffn_in, g.ffn_out))
        gemm_flop = np.asarray(projections + core_flop + (dense_ffn if ffn is None else ffn.forward_flop))
    return _ComputeTimes(
        gemm_flop=gemm_flop,
        attention_flop=core_flop,
        out_flop=out_flop,
        layer_fwd=np.asarray(layer_fwd + cast_fwd),
        layer_bwd=np.asarray(layer_bwd + cast_bwd),
        layer_selective=np.asarray(selective),
        selective_flop=np.asarray(selective_flop),
        flash_recompute=np.asarray(np.where(flash, flash_rc, 0.0)),
        logits_fwd=np.asarray(logits_fwd),
        logits_bwd=np.asarray(logits_bwd),
        attention_fwd=np.asarray(np.where(flash, flash_fwd, unfused_fwd)),
        attention_bwd=np.asarray(np.where(flash, flash_bwd + flash_rc, unfused_bwd)),
        embedding_fwd=embedding_fwd,
        embedding_bwd=embedding_bwd,
        norm_up_recompute=None if norm_up is None else np.asarray(norm_up),
        norm_up_flop=None if up_flop is None else np.asarray(up_flop),
        mtp_flop=mtp_flop,
    )


@dataclass(frozen=True)
class _LayerCommunication:
    """Tensor- and sequence-parallel collectives of one layer and one micro-batch."""

    tp_link: Link
    #: One micro-batch's activations of a layer on one GPU (bytes).
    message: Array
    tp_all_reduce: Num
    tp_bytes: Array
    tp_per_layer: NDArray[np.floating[Any]]
    qkv_bytes: Array
    kv_chunk: Array
    sp_fwd: Array
    sp_per_layer: Array
    sp_bytes: Array


def _attention_exchange_bytes(x: _Terms) -> tuple[Array, Array, Array]:
    """Bytes one GPU exchanges per layer and micro-batch for sequence-split attention: Ulysses' Q, K, V and its
    output, and a Ring pass's K and V chunk."""
    qkv_bytes = ACTIVATION_BYTES * x.b * x.s_local * (x.h + 2.0 * x.kv_width) / x.t
    out_bytes = ACTIVATION_BYTES * x.b * x.s_local * x.h / x.t
    kv_chunk = ACTIVATION_BYTES * 2.0 * x.b * x.s_local * x.kv_width / x.t  # one K and one V chunk
    return qkv_bytes, out_bytes, kv_chunk


def _layer_communication(x: _Terms, cluster: ClusterArrays) -> _LayerCommunication:
    tp_link = group_link(cluster=cluster, stride=1.0, size=x.t, pattern="ring")
    message = ACTIVATION_BYTES * x.b * x.s_local * x.h
    tp_all_reduce = all_reduce_time(
        bytes_per_rank=message,
        ranks=x.t,
        bandwidth_bytes_per_s=tp_link.bandwidth_bytes_per_s,
        latency_s=tp_link.latency_s,
    )
    tp_bytes = 2.0 * 2.0 * (x.t - 1.0) / x.t * message  # two all-reduces (or AG + RS pairs) per forward
    tp_per_layer = (4.0 + 2.0 * x.full) * tp_all_reduce  # 2 forward, 2 backward, 2 more when recomputing

    sp_ring_link = group_link(cluster=cluster, stride=x.t, size=x.n, pattern="p2p")
    sp_a2a_link = group_link(cluster=cluster, stride=x.t, size=x.n, pattern="all_to_all")
    qkv_bytes, out_bytes, kv_chunk = _attention_exchange_bytes(x)
    ulysses_fwd = sum(
        all_to_all_time(
            bytes_per_rank=y,
            ranks=x.n,
            bandwidth_bytes_per_s=sp_a2a_link.bandwidth_bytes_per_s,
            latency_s=sp_a2a_link.latency_s,
        )
        for y in (qkv_bytes, out_bytes)
    )
    ring_fwd = (x.n - 1.0) * point_to_point_time(
        message_bytes=kv_chunk,
        bandwidth_bytes_per_s=sp_ring_link.bandwidth_bytes_per_s,
        latency_s=sp_ring_link.latency_s,
    )
    ring, ulysses, full, n = x.ring, x.ulysses, x.full, x.n
    # Backward: Ulysses repeats both all-to-alls on gradients; a ring pass moves K, V and their gradients.
    return _LayerCommunication(
        tp_link=tp_link,
        message=message,
        tp_all_reduce=tp_all_reduce,
        tp_bytes=tp_bytes,
        tp_per_layer=tp_per_layer,
        qkv_bytes=qkv_bytes,
        kv_chunk=kv_chunk,
        sp_fwd=np.where(ulysses, ulysses_fwd, np.where(ring, ring_fwd, 0.0)),
        sp_per_layer=np.where(ulysses, (2.0 + full) * ulysses_fwd, np.where(ring, (3.0 + full) * ring_fwd, 0.0)),
        sp_bytes=np.where(ulysses, (n - 1.0) / n * (qkv_bytes + out_bytes), np.where(ring, (n - 1.0) * kv_chunk, 0.0)),
    )


def _context_parallel(
    x: _Terms, cluster: ClusterArrays, c: _ComputeTimes, comm: _LayerCommunication
) -> ContextParallelCommunication:
    """Context-parallel K/V exchange of one layer (`dse.engines.training.context_parallel`): CP ranks sit TP
    apart (tp -> cp -> dp -> pp), ring neighbours for P2P, a ring for the all-gather."""
    if not x.any_cp:
        zero = np.zeros(())
        return ContextParallelCommunication(forward_s=zero, per_layer_s=zero, forward_bytes=zero, buffer_bytes=zero)
    p2p_link = group_link(cluster=cluster, stride=x.t, size=x.cp, pattern="p2p")
    ring_link = group_link(cluster=cluster, stride=x.t, size=x.cp, pattern="ring")
    return context_parallel_communication(
        degree=x.cp,
        exchange=x.cp_exchange,
        kv_bytes=comm.kv_chunk,
        attention_forward_s=c.attention_fwd,
        attention_backward_s=c.attention_bwd,
        full_recompute=x.full.astype(np.float64),
        p2p_bandwidth_bytes_per_s=p2p_link.bandwidth_bytes_per_s,
        p2p_latency_s=p2p_link.latency_s,
        ring_bandwidth_bytes_per_s=ring_link.bandwidth_bytes_per_s,
        ring_latency_s=ring_link.latency_s,
    )


@dataclass(frozen=True)
class _Parameters:
    """Parameters per GPU of the first and the last pipeline stage, and their model states."""

    layer_params_gpu: Array
    embedding_gpu: Array
    positions: Array
    params_first: Array
    params_last: Array
    states_first: ModelStates
    states_last: ModelStates
    #: A middle stage's (uneven stages; without them the same layers as the first, without the embedding).
    params_middle: Array
    states_middle: ModelStates
    #: Routed-expert parameters on one GPU of the last stage and per layer (in params_first / params_last /
    #: params_middle; 0 for a dense model), the (first, last, middle) stages' expert states (in their states)
    #: and the group those states are sharded over.
    expert_params_gpu: Array | float = 0.0
    expert_params_per_layer: Array | float = 0.0
    expert_states: tuple[ModelStates, ModelStates, ModelStates] | None = None
    expert_group: Array | float = 1.0


def _parameters(x: _Terms, model: ModelArrays) -> _Parameters:
    layer_params_gpu = as_array(model.layer_sharded_params) / x.t + as_array(model.layer_replicated_params)
    if x.moe:
        return _moe_parameters(x, model, layer_params_gpu)
    embedding_gpu = as_array(model.word_embedding_params) / x.t
    positions = as_array(model.position_embedding_params)
    head_gpu = np.where(as_array(model.tied_embeddings) > 0, 0.0, embedding_gpu)
    final_norm = as_array(model.final_norm_params)
    single_stage, layers = x.single_stage, x.layers
    params_first = (
        x.layers_first * layer_params_gpu
        + embedding_gpu
        + positions
        + np.where(single_stage, head_gpu + final_norm, 0.0)
    )
    # A tied model's last stage keeps its own copy of the word embedding for the logits (Megatron-LM).
    params_last = np.where(single_stage, params_first, x.layers_last * layer_params_gpu + embedding_gpu + final_norm)
    params_middle = layers * layer_params_gpu if x.any_uneven else np.zeros(())  # only read with uneven stages
    fp8_params = layers * as_array(model.layer_sharded_params) / x.t if x.fp8 else 0.0  # the layers' GEMMs
    states_first = model_state_bytes(
        params_per_gpu=params_first,
        zero_stage=x.zero,
        zero_group=x.zero_group,
        fp8_params_per_gpu=fp8_params,
        gradient_bytes_per_param=x.grad_bytes,
    )
    return _Parameters(
        layer_params_gpu=layer_params_gpu,
        embedding_gpu=embedding_gpu,
        positions=positions,
        params_first=params_first,
        params_last=params_last,
        states_first=states_first,
        states_last=model_state_bytes(
            params_per_gpu=params_last,
            zero_stage=x.zero,
            zero_group=x.zero_group,
            fp8_params_per_gpu=fp8_params,
            gradient_bytes_per_param=x.grad_bytes,
        ),
        params_middle=params_middle,
        states_middle=model_state_bytes(
            params_per_gpu=params_middle,
            zero_stage=x.zero,
            zero_group=x.zero_group,
            fp8_params_per_gpu=fp8_params,
            gradient_bytes_per_param=x.grad_bytes,
        )
        if x.any_uneven
        else states_first,  # never the peak without uneven stages
    )


def _moe_parameters(x: _Terms, model: ModelArrays, dense_layer_params_gpu: Array) -> _Parameters:
    """The dense layout's parameters plus each stage's routed experts, split by TP and EP; the experts' states
    shard over the expert-data-parallel group (DP*CP/EP ranks), the others' over DP*CP."""
    dense = _parameters(dataclasses.replace(x, moe=False), model)
    per_layer = experts.expert_params_per_gpu(model=model, layers=1.0, t=x.t, expert_parallel=x.ep)
    group = experts.expert_data_parallel_group(zero_group=x.zero_group, expert_parallel=x.ep)

    def on_stage(layers: Array) -> tuple[Array, ModelStates]:
        expert = np.asarray(layers * per_layer)
        fp8_expert = expert if x.fp8 else 0.0
        return expert, model_state_bytes(
            params_per_gpu=expert,
            zero_stage=x.zero,
            zero_group=group,
            fp8_params_per_gpu=fp8_expert,
            gradient_bytes_per_param=x.grad_bytes,
        )

    expert_first, states_first = on_stage(x.layers_first)
    expert_last, states_last = expert_middle, states_middle = expert_first, states_first
    if x.any_uneven:
        expert_last, states_last = on_stage(x.layers_last)
        expert_middle, states_middle = on_stage(x.layers)

    def plus(a: ModelStates, states: ModelStates) -> ModelStates:
        return ModelStates(
            weights=np.asarray(a.weights + states.weights),
            gradients=np.asarray(a.gradients + states.gradients),
            optimizer=np.asarray(a.optimizer + states.optimizer),
        )

    return _Parameters(
        layer_params_gpu=np.asarray(dense_layer_params_gpu + per_layer),
        embedding_gpu=dense.embedding_gpu,
        positions=dense.positions,
        params_first=np.asarray(dense.params_first + expert_first),
        params_last=np.asarray(dense.params_last + expert_last),
        states_first=plus(dense.states_first, states_first),
        states_last=plus(dense.states_last, states_last),
        params_middle=np.asarray(dense.params_middle + expert_middle) if x.any_uneven else dense.params_middle,
        states_middle=plus(dense.states_middle, states_middle) if x.any_uneven else dense.states_middle,
        expert_params_gpu=expert_last,
        expert_params_per_layer=per_layer,
        expert_states=(states_first, states_last, states_middle),
        expert_group=group,
    )


@dataclass(frozen=True)
class _Offload:
    """SSDTrain activation offload: layers moved to the drives and their bandwidth per GPU."""

    mode: Array
    write_bw: Array
    read_bw: Array
    offloaded: Array
    #: The layer being written or prefetched (bytes).
    in_transit: Array


def _layer_forward_with_comm(c: _ComputeTimes, comm: _LayerCommunication) -> Array:
    """A layer's forward with its TP and sequence-parallel collectives (what the adaptive offload rule weighs)."""
    return np.asarray(c.layer_fwd + 2.0 * comm.tp_all_reduce + comm.sp_fwd)


def _offload(
    x: _Terms, cluster: ClusterArrays, plan: PlanArrays, layer_bytes: Array, layer_forward_s: Callable[[], Array]
) -> _Offload:
    write_bw = as_array(cluster.ssd_write_bandwidth_per_gpu_bytes_per_s)
    read_bw = as_array(cluster.ssd_read_bandwidth_per_gpu_bytes_per_s)
    mode = as_array(plan.activation_offload)
    if not bool(np.any(mode != Offload.NONE)):  # nothing leaves the GPU: no layer time needed, zeros
        zero = np.zeros(())
        return _Offload(mode=mode, write_bw=write_bw, read_bw=read_bw, offloaded=zero, in_transit=zero)
    offloaded = offloaded_layers(
        mode=mode,
        layers=x.layers,
        layer_activation_bytes=layer_bytes,
        layer_forward_s=layer_forward_s(),
        ssd_bandwidth_bytes_per_s=np.minimum(write_bw, read_bw),
    )
    return _Offload(
        mode=mode,
        write_bw=write_bw,
        read_bw=read_bw,
        offloaded=offloaded,
        in_transit=np.where(offloaded > 0, layer_bytes, 0.0),
    )


@dataclass(frozen=True)
class _Memory:
    """Memory per GPU of the first and the last stage; the peak is the larger."""

    layer_bytes: Array
    acts_first: Array
    acts_last: Array
    removed_first: Array
    removed_last: Array
    buffers_first: Array
    buffers_last: Array
    total_first: Array
    total_last: Array
    last_peak: NDArray[np.bool_]
    offload: _Offload
    #: The second stage (uneven stages: it may hold more than the first); -inf where there is no middle stage.
    acts_middle: Array
    removed_middle: Array
    buffers_middle: Array
    total_middle: Array
    middle_peak: NDArray[np.bool_]
    #: Whether any plan has uneven stages (else the middle stage is never the peak and is not computed).
    any_middle: bool = False

    def pick(self, first: Array, last: Array, middle: Array | None = None) -> Array:
        worst_of_two = np.where(self.last_peak, last, first)
        if middle is None or not self.any_middle:
            return np.asarray(worst_of_two)
        return np.asarray(np.where(self.middle_peak, middle, worst_of_two))


def _memory(
    x: _Terms,
    model: ModelArrays,
    cluster: ClusterArrays,
    plan: PlanArrays,
    params: _Parameters,
    *,
    qkv_bytes: Array,
    kv_chunk: Array,
    cp_buffer_bytes: Array,
    layer_forward_s: Callable[[], Array],
) -> _Memory:
    """Model states + activations (Korthikanti per layer x micro-batches in flight, less offload) + buffers.
    `layer_forward_s` (a layer's forward with its collectives) is asked for only where some plan offloads."""
    acts = layer_activation_bytes(
        sequence_length=x.s,
        micro_batch_size=x.b,
        hidden_size=x.h,
        num_heads=x.a,
        num_kv_heads=x.a_kv,
        ffn_hidden_size=experts.activation_ffn_width(model, x.load) if x.moe else model.ffn_hidden_size,
        gated_ffn=model.gated_ffn,
        tensor_parallel=x.t,
        sequence_parallel=x.variant,
        sequence_parallel_degree=x.n,
        recompute=x.rc,
        flash_attention=x.flash,
        context_parallel=x.cp,
    )
    A = acts.kept
    if x.moe:  # the experts' FFN activations (in the width above) and their dispatched inputs
        dispatched = experts.dispatched_bytes_per_layer(model=model, b=x.b, s=x.s, t=x.t, n=x.n, load=x.load)
        A = np.asarray(A + np.where(x.full, 0.0, dispatched))
    schedule = as_array(plan.pipeline_schedule)
    p, M, v = x.p, x.M, x.v
    in_flight_first = first_stage_in_flight(schedule=schedule, stages=p, micro_batches=M, virtual_stages=v)
    in_flight_last = last_stage_in_flight(schedule=schedule, stages=p, micro_batches=M, virtual_stages=v)
    in_flight_last = np.where(x.single_stage, in_flight_first, in_flight_last)
    off = _offload(x, cluster, plan, A, layer_forward_s)
    layers, in_transit = x.layers, off.in_transit

    def activation_memory(in_flight: Array, stage_layers: Array = layers) -> tuple[Array, Array]:
        # "all" offloads every layer of a stage but its last; the adaptive rule at most the middle stages' count
        offloaded = (
            np.where(
                off.mode == Offload.ALL,
                np.clip(off.offloaded + stage_layers - layers, 0.0, stage_layers),
                np.minimum(off.offloaded, stage_layers),
            )
            if x.any_uneven
            else off.offloaded
        )
        kept = in_flight * (stage_layers - offloaded) * A + in_transit
        removed = in_flight * offloaded * A - in_transit
        return kept, removed

    acts_first, removed_first = activation_memory(in_flight_first, x.layers_first)
    acts_last, removed_last = activation_memory(in_flight_last, x.layers_last)
    b, s_local, h, t, megatron_sp = x.b, x.s_local, x.h, x.t, x.megatron_sp
    output_acts = in_flight_last * (
        ACTIVATION_BYTES * b * s_local * h / np.where(megatron_sp, t, 1.0) + 4.0 * b * s_local * x.V / t
    )  # final LayerNorm input and fp32 logits for the loss
    embedding_masks = in_flight_first * b * s_local * h / np.where(megatron_sp, t, 1.0)  # 1-byte dropout masks
    attention_buffers = np.where(x.ring, 2.0 * kv_chunk, np.where(x.ulysses, qkv_bytes, 0.0))
    if x.any_cp:
        attention_buffers = attention_buffers + cp_buffer_bytes
    gathered = gathered_params(
        runtime=plan.zero3_runtime, layer_params=params.layer_params_gpu, largest_tensor=_largest_tensor(x, model)
    )
    unsharded_grads = unsharded_gradient_params(runtime=plan.zero3_runtime, layer_params=params.layer_params_gpu)
    zero3_buffers = np.where(
        x.zero >= 3,
        WEIGHT_BYTES_PER_PARAM * gathered + reduce_bytes_per_param(plan.zero3_runtime) * unsharded_grads,
        0.0,
    )
    recompute_peak = acts.recompute_working_set  # one layer rebuilt at a time during backward
    buffers_first = embedding_masks + attention_buffers + zero3_buffers + recompute_peak
    buffers_last = output_acts + attention_buffers + zero3_buffers + recompute_peak
    total_first = params.states_first.total + acts_first + buffers_first
    total_last = params.states_last.total + acts_last + buffers_last
    # Without uneven stages the second stage holds fewer layers' worth than the first and no embedding: never the peak.
    no_middle = np.full((), -np.inf)
    acts_middle, removed_middle, buffers_middle, total_middle = no_middle, no_middle, no_middle, no_middle
    if x.any_uneven:
        in_flight_second = stage_in_flight(schedule=schedule, stages=p, stage=1.0, micro_batches=M, virtual_stages=v)
        acts_middle, removed_middle = activation_memory(in_flight_second)
        buffers_middle = attention_buffers + zero3_buffers + recompute_peak
        total_middle = np.where(p > 2, params.states_middle.total + acts_middle + buffers_middle, -np.inf)
    last_peak = (total_last > total_first) & (total_last >= total_middle) if x.any_uneven else total_last > total_first
    return _Memory(
        layer_bytes=A,
        acts_first=acts_first,
        acts_last=acts_last,
        removed_first=removed_first,
        removed_last=removed_last,
        buffers_first=buffers_first,
        buffers_last=buffers_last,
        total_first=total_first,
        total_last=total_last,
        last_peak=np.asarray(last_peak),
        offload=off,
        acts_middle=acts_middle,
        removed_middle=removed_middle,
        buffers_middle=buffers_middle,
        total_middle=np.asarray(total_middle),
        middle_peak=np.asarray((total_middle > total_first) & ~last_peak) if x.any_uneven else np.zeros((), bool),
        any_middle=x.any_uneven,
    )


@dataclass(frozen=True)
class _StageTimes:
    """Time of a stage per micro-batch, by part, and the pipeline it makes."""

    fwd_stage: Array
    bwd_stage: Array
    recompute_stage: Array
    tp_stage: Array
    sp_stage: Array
    pp_link: Link
    dp_link: Link
    send: Num
    pp_stage: Array
    zero_exposed: Array
    stage_forward: Array
    stall: Array
    layers_stage: Array
    slowest: Array
    pipe: Array
    bubble: Array
    #: Exposed context-parallel exchanges of a (middle) stage per micro-batch, and their forward part.
    cp_stage: Array
    cp_forward: Array
    #: The first, a middle (-inf: none) and the last stage per micro-batch, and which is the slowest:
    #: its layers over a middle stage's and whether it runs the embedding / the logits.
    first_stage: Array
    middle_stage: Array
    last_stage: Array
    slow_ratio: Array
    slow_embedding: Array
    slow_logits: Array
    #: The vocabulary-parallel embedding's TP all-reduce (first stage, forward).
    embedding_tp: Array
    #: EP all-to-alls of the stage per micro-batch (all, and the forward's), bytes per MoE layer.
    a2a_stage: Array | float = 0.0
    a2a_forward_stage: Array | float = 0.0
    a2a_bytes: Array | float = 0.0


#: Share of the GPU's compute a TP collective takes while it overlaps a GEMM: Calculon's A100 NVLink
#: `processor_usage` (calculon-ai/calculon systems/a100_80g.json @ caa4b11f; Isaev et al., SC'23).
TP_OVERLAP_COMPUTE_SHARE = 0.15
#: The same for a collective whose group crosses nodes: Calculon's InfiniBand network `processor_usage`
#: (same file; Calculon prices a group on the smallest network that holds it, NVLink up to 8 GPUs).
NETWORK_OVERLAP_COMPUTE_SHARE = 0.02


def _overlap_compute_share(link: Link) -> Array:
    """Share of the GPU a data-parallel or ZeRO collective takes from the compute it hides under: NVLink's
    inside a node, the network's once the group crosses nodes (Calculon's rule)."""
    return np.asarray(np.where(link.crosses_nodes, NETWORK_OVERLAP_COMPUTE_SHARE, TP_OVERLAP_COMPUTE_SHARE))


def _tp_overlapped_per_layer(
    x: _Terms, comm: _LayerCommunication, forward_s: Array, backward_s: Array
) -> tuple[Array, Array]:
    """TP collective time a layer adds when each collective is split into t tiles that overlap t tiles of
    its adjacent GEMM (Calculon's ring overlap, calculon/llm/layers.py `LinearOverlapped` @ caa4b11f):
    (t-1)(comm tile - GEMM tile) when the comm tile outlasts the slowed GEMM tile, else the compute the
    comm takes from the GEMM, (t-1) comm tile x share. Each of a pass's two collectives overlaps half
    of that pass's compute (the layer's forward or backward as priced). Returns (forward part, whole layer)."""
    t, u = x.t, TP_OVERLAP_COMPUTE_SHARE

    def added(gemm_s: Array) -> Array:
        comm_tile, gemm_tile = comm.tp_all_reduce / t, gemm_s / t
        exposed = comm_tile > gemm_tile / (1.0 - u)
        return np.asarray((t - 1.0) * np.where(exposed, comm_tile - gemm_tile, u * comm_tile))

    forward = 2.0 * added(forward_s / 2.0)
    return forward, np.asarray((1.0 + x.full) * forward + 2.0 * added(backward_s / 2.0))


def _largest_tensor(x: _Terms, model: ModelArrays) -> Array:
    return largest_tensor_params(
        hidden_size=x.h,
        kv_width=x.kv_width,
        ffn_hidden_size=model.ffn_hidden_size,
        gated_ffn=model.gated_ffn,
        tensor_parallel=x.t,
    )


def _zero3_exposed(
    x: _Terms,
    model: ModelArrays,
    cluster: ClusterArrays,
    plan: PlanArrays,
    params: _Parameters,
    dp_link: Link,
    fwd: Array,
    bwd: Array,
) -> Array:
    """ZeRO-3 collectives left exposed per micro-batch (`dse.engines.training.zero3`), plus the runtime's copies
    around them on the compute stream (`zero3.compute_stream_copies`, memory-bound passes with the stack's
    launches); a MoE layer's routed experts are gathered over the expert-data-parallel group (ranks t*EP apart)."""
    expert: dict[str, Any] = {}
    if x.moe and bool(np.any(x.zero >= 3)):
        link = group_link(cluster=cluster, stride=x.t * x.ep, size=params.expert_group, pattern="ring")
        expert = dict(
            expert_layer_params=params.expert_params_gpu / x.layers,
            expert_group=params.expert_group,
            expert_bandwidth_bytes_per_s=link.bandwidth_bytes_per_s,
            expert_latency_s=link.latency_s,
        )
    rest_params = np.maximum(params.params_last - x.layers * params.layer_params_gpu, 0.0)
    copy_bytes, copy_kernels = compute_stream_copies(
        runtime=plan.zero3_runtime, layers=x.layers, layer_params=params.layer_params_gpu, rest_params=rest_params
    )
    copies = elementwise_pass_s(cluster.device, copy_bytes, copy_kernels)
    return copies + zero3_exposed_s(
        runtime=plan.zero3_runtime,
        layers=x.layers,
        layer_params=params.layer_params_gpu,
        largest_tensor_params=_largest_tensor(x, model),
        rest_params=rest_params,
        zero_group=x.zero_group,
        bandwidth_bytes_per_s=dp_link.bandwidth_bytes_per_s,
        latency_s=dp_link.latency_s,
        forward_layer_s=fwd,
        backward_layer_s=bwd,
        full_recompute=x.full.astype(np.float64),
        overlap=plan.overlap_grad_reduce,
        compute_share=_overlap_compute_share(dp_link),
        **expert,
    )


def _stage_times(
    x: _Terms,
    model: ModelArrays,
    cluster: ClusterArrays,
    plan: PlanArrays,
    c: _ComputeTimes,
    comm: _LayerCommunication,
    params: _Parameters,
    memory: _Memory,
    cp: ContextParallelCommunication,
) -> _StageTimes:
    """Compute, recomputation, collectives, pipeline sends, ZeRO-3 gathers and SSD stalls of a stage;
    then the pipeline (schedule) and its bubble. With uneven stages a stage's layer work scales with its
    layers; the first stage adds the embedding, the last the logits and the loss; the slowest sets the pace."""
    layers, t, n, d, p, v = x.layers, x.t, x.n, x.d, x.p, x.v
    fwd_stage = layers * c.layer_fwd
    bwd_stage = layers * c.layer_bwd
    recompute_stage = layers * (
        np.where(x.full, c.layer_fwd, np.where(x.selective, c.layer_selective, 0.0)) + c.flash_recompute
    )
    if c.norm_up_recompute is not None:  # DeepSeek-V3's norms and MLA up-projections (none in a plan search)
        recompute_stage = recompute_stage + layers * np.where(x.norm_up_recompute, c.norm_up_recompute, 0.0)
    tp_overlap = as_array(plan.tp_comm_overlap) > 0
    tp_fwd_overlapped, tp_overlapped = _tp_overlapped_per_layer(x, comm, c.layer_fwd, c.layer_bwd)
    tp_stage = layers * np.where(tp_overlap, tp_overlapped, comm.tp_per_layer)
    tp_forward = np.where(tp_overlap, tp_fwd_overlapped, 2.0 * comm.tp_all_reduce)
    sp_stage = layers * comm.sp_per_layer
    cp_stage = layers * cp.per_layer_s if x.any_cp else np.zeros(())
    pp_link = group_link(cluster=cluster, stride=t * n * d, size=p, pattern="p2p")
    send = point_to_point_time(
        message_bytes=comm.message / t,
        bandwidth_bytes_per_s=pp_link.bandwidth_bytes_per_s,
        latency_s=pp_link.latency_s,
    ) + all_gather_time(  # scatter-gather: each TP rank sends 1/t, then the TP group all-gathers (Narayanan 2021)
        bytes_per_rank=comm.message,
        ranks=t,
        bandwidth_bytes_per_s=comm.tp_link.bandwidth_bytes_per_s,
        latency_s=comm.tp_link.latency_s,
    )
    pp_stage = np.where(p > 1, 2.0 * v * send, 0.0)
    dp_link = group_link(cluster=cluster, stride=t, size=x.zero_group, pattern="ring")
    zero_exposed = np.where(
        x.zero >= 3,
        _zero3_exposed(x, model, cluster, plan, params, dp_link, c.layer_fwd, (bwd_stage + recompute_stage) / layers),
        0.0,
    )
    compute_stage = fwd_stage + bwd_stage + recompute_stage
    stage_forward = fwd_stage + layers * (tp_forward + comm.sp_fwd + cp.forward_s)  # forward compute and comm
    cp_forward = layers * cp.forward_s if x.any_cp else np.zeros(())
    a2a_stage: Array | float = 0.0
    a2a_forward_stage: Array | float = 0.0
    a2a_bytes: Array | float = 0.0
    if x.moe:
        ec = experts.expert_communication(
            cluster=cluster,
            model=model,
            b=x.b,
            s=x.s,
            t=t,
            n=n,
            expert_parallel=x.ep,
            load=x.load,
            full=x.full,
            node_limit=plan.expert_node_limit,
            dedup=plan.expert_dispatch_dedup,
            fp8_dispatch=plan.expert_dispatch_fp8,
        )
        whole = layers * ec.per_layer_s
        a2a_stage = experts.overlapped_all_to_all_s(
            all_to_all_s=whole, compute_s=compute_stage, overlap=plan.expert_comm_overlap
        )
        # the forward's share of what the all-to-alls add (for the timeline)
        a2a_forward_stage = layers * ec.forward_per_layer_s * np.where(whole > 0, a2a_stage / whole, 0.0)
        a2a_bytes = ec.bytes_per_moe_layer
        stage_forward = stage_forward + a2a_forward_stage
    off = memory.offload
    stall: Array = np.zeros(())  # only "all" offload stalls
    if bool(np.any(off.mode == Offload.ALL)):
        stall = np.where(
            off.mode == Offload.ALL,
            offload_stall_s(
                offloaded_bytes=off.offloaded * memory.layer_bytes,
                write_bandwidth_bytes_per_s=off.write_bw,
                read_bandwidth_bytes_per_s=off.read_bw,
                forward_s=stage_forward,
                backward_s=bwd_stage + recompute_stage,
            ),
            0.0,
        )
    layers_stage = compute_stage + tp_stage + sp_stage + pp_stage + zero_exposed + stall
    if x.any_cp:
        layers_stage = layers_stage + cp_stage
    if x.moe:
        layers_stage = layers_stage + a2a_stage
    body = layers_stage - pp_stage  # a middle stage's layer work; the first and last scale it by their layers
    ratio_first: Array | float = x.layers_first / layers if x.any_uneven else 1.0
    ratio_last: Array | float = x.layers_last / layers if x.any_uneven else 1.0
    single = x.single_stage
    embedding_tp = as_array(comm.tp_all_reduce)  # the vocabulary-parallel lookup's all-reduce (0 at TP 1)
    embedding = c.embedding_fwd + c.embedding_bwd + embedding_tp
    logits = c.logits_fwd + c.logits_bwd
    if x.any_uneven:
        first_stage = ratio_first * body + pp_stage + embedding + np.where(single, logits, 0.0)
        last_stage = ratio_last * body + pp_stage + logits + np.where(single, embedding, 0.0)
        middle_stage = np.where(p > 2, layers_stage, -np.inf)
        slow_last = last_stage >= np.maximum(first_stage, middle_stage)
        slow_middle = ~slow_last & (middle_stage >= first_stage)
        slowest = np.maximum(np.maximum(first_stage, last_stage), middle_stage)
        sum_of_stages = np.where(
            single, last_stage, first_stage + last_stage + np.maximum(p - 2.0, 0.0) * np.maximum(middle_stage, 0.0)
        )
        slow_ratio = np.where(slow_last, ratio_last, np.where(slow_middle, 1.0, ratio_first))
    else:  # even stages: a middle stage runs neither the embedding nor the logits, so it is never the slowest
        both = embedding + logits  # a single stage runs both
        first_stage = layers_stage + np.where(single, both, embedding)
        last_stage = layers_stage + np.where(single, both, logits)
        middle_stage = layers_stage
        slow_last = np.asarray(logits >= embedding)
        slow_middle = np.zeros((), dtype=bool)
        slowest = np.maximum(first_stage, last_stage)
        sum_of_stages = np.where(single, slowest, p * layers_stage + both)
        slow_ratio = np.ones(())
    pipe = pipeline_time(
        slowest_stage_s=slowest,
        sum_of_stages_s=sum_of_stages,
        micro_batches=x.M,
        virtual_stages=v,
    )
    slow_embedding = np.asarray(single | (~slow_last & ~slow_middle), dtype=np.float64)
    slow_logits = np.asarray(single | slow_last, dtype=np.float64)
    if bool(np.any(as_array(plan.dualpipe) > 0)):
        # Micro-batches enter from both ends: rank i runs half of them as stage i and half as stage p-1-i
        # (arXiv:2412.19437 Section 3.2.1, Figure 5), so a rank's pace is the mean of its two stages; the rank
        # of the first and the last stage holds the embedding and the output head (and the MTP modules) together.
        dual_plan = (as_array(plan.dualpipe) > 0) & ~single
        pair = (first_stage + last_stage) / 2.0
        pair_slow = pair >= middle_stage
        slowest = np.where(dual_plan, np.where(pair_slow, pair, middle_stage), slowest)
        both_ends = dual_plan & pair_slow
        slow_ratio = np.where(
            dual_plan, np.where(pair_slow, (np.asarray(ratio_first) + np.asarray(ratio_last)) / 2.0, 1.0), slow_ratio
        )
        slow_embedding = np.where(dual_plan, np.where(both_ends, 0.5, 0.0), slow_embedding)
        slow_logits = np.where(dual_plan, np.where(both_ends, 0.5, 0.0), slow_logits)
        # F&B: the stage's forward and backward with their communication as overlapped above; W: the share of
        # the backward GEMM FLOP (2x the forward's) that is weight gradients (the attention core has none).
        weight_share = (c.gemm_flop - c.attention_flop) / (2.0 * c.gemm_flop)
        backward = bwd_stage + recompute_stage
        dual = x.M * slowest + dualpipe_bubble_s(
            stages=p,
            forward_and_backward_s=layers_stage,
            backward_s=backward,
            weight_gradient_s=weight_share * bwd_stage,
        )
        pipe = np.where(as_array(plan.dualpipe) > 0, dual, pipe)
    return _StageTimes(
        fwd_stage=fwd_stage,
        bwd_stage=bwd_stage,
        recompute_stage=recompute_stage,
        tp_stage=tp_stage,
        sp_stage=sp_stage,
        pp_link=pp_link,
        dp_link=dp_link,
        send=send,
        pp_stage=pp_stage,
        zero_exposed=zero_exposed,
        stage_forward=stage_forward,
        stall=stall,
        layers_stage=layers_stage,
        slowest=slowest,
        pipe=pipe,
        bubble=pipe - x.M * slowest,
        cp_stage=cp_stage,
        cp_forward=cp_forward,
        first_stage=first_stage,
        middle_stage=middle_stage,
        last_stage=last_stage,
        slow_ratio=slow_ratio,
        slow_embedding=slow_embedding,
        slow_logits=slow_logits,
        embedding_tp=embedding_tp,
        a2a_stage=a2a_stage,
        a2a_forward_stage=a2a_forward_stage,
        a2a_bytes=a2a_bytes,
    )


def _data_parallel_time(
    x: _Terms,
    model: ModelArrays,
    plan: PlanArrays,
    params: _Parameters,
    stage: _StageTimes,
    cluster_gpus_per_node: Num,
    cluster: ClusterArrays,
) -> Array:
    """Gradient synchronisation left exposed after the backward, plus the tied-embedding all-reduce, in the
    stack's gradient width (`ClusterArrays.gradient_reduce_bytes_per_param`); a stack that cannot overlap never does.

    ZeRO-0 all-reduces the stage's gradients; ZeRO-1/2 reduce-scatter them (rings only, in the gradient
    width) and, after the optimizer step, all-gather the updated 2-byte weights.
    Both in buckets (DDP's 25 MB; the distributed optimizer's max(4e7, 1e6 d) parameters, one bucket
    without overlap). Only the backward of the last micro-batch hides the gradient reduction (with
    pipelining too: the stage's last backward), never the last bucket; ZeRO-2 reduces after every micro-batch's
    backward instead; the weights' all-gather waits for the step, exposed unless ZeRO-1 overlaps it with the next
    forward (`overlap_param_gather`). A plain all-reduce (ZeRO-0) runs
    as NCCL's ring or tree, whichever NCCL's cost model finds faster: across many nodes the ring's
    2(n-1) step latencies make the tree faster for a bucket."""
    stack = cluster.device.stack
    reduce_bytes = as_array(cluster.gradient_reduce_bytes_per_param)
    sharded = x.zero >= 1
    dense_params = params.params_last - params.expert_params_gpu if x.moe else params.params_last
    grad_bytes = reduce_bytes * dense_params
    overlap = (as_array(plan.overlap_grad_reduce) > 0) & (stack is None or stack.overlaps_gradient_reduce)
    sharded_bucket = reduce_bytes * np.maximum(SHARDED_BUCKET_MIN_PARAMS, SHARDED_BUCKET_PARAMS_PER_RANK * x.zero_group)
    bucket_bytes = np.where(sharded, np.where(overlap, sharded_bucket, np.inf), GRADIENT_BUCKET_BYTES)
    buckets = np.maximum(np.ceil(grad_bytes / bucket_bytes), 1.0)
    link_bw, link_lat = stage.dp_link.bandwidth_bytes_per_s, stage.dp_link.latency_s
    ring = all_reduce_time(
        bytes_per_rank=grad_bytes / buckets, ranks=x.zero_group, bandwidth_bytes_per_s=link_bw, latency_s=link_lat
    )
    tree = tree_all_reduce_time(
        bytes_per_rank=grad_bytes / buckets,
        ranks=x.zero_group,
        ranks_per_node=np.clip(as_array(cluster_gpus_per_node) / x.t, 1.0, x.zero_group),
        bus_bandwidth_bytes_per_s=link_bw,
    )
    scatter = reduce_scatter_time(
        bytes_per_rank=grad_bytes / buckets, ranks=x.zero_group, bandwidth_bytes_per_s=link_bw, latency_s=link_lat
    )
    per_bucket = np.asarray(np.where(sharded, scatter, np.minimum(ring, tree)))
    dp_sync = buckets * per_bucket
    # ZeRO-1/2 all-gather the updated 2-byte weights after the optimizer step, exposed: Megatron-Core's distributed
    # optimizer launches them in `step_with_ready_grads` after the step, "If not overlapping all-gather for
    # parameters, launch synchronous all-gather communication calls here" (NVIDIA/Megatron-LM @
    # 001199898c4badd01eaf0785c212d8ed7ce83042 megatron/core/optimizer/distrib_optimizer.py), and
    # `overlap_param_gather` ("overlap param all-gather with forward compute") defaults to False
    # (megatron/core/distributed/distributed_data_parallel_config.py, same commit); DeepSpeed's ZeRO-1/2 step
    # ends "Gather the updated weights from everyone" (all_gather_dp_groups, microsoft/DeepSpeed @
    # 38327e07f6cd39b63418f60cedd1651b0be3e7c3 deepspeed/runtime/zero/stage_1_and_2.py, step). It cannot overlap
    # the backward, which runs before the step. Until training-8 it was priced inside the gradient reduction that
    # the last backward hides.
    # Megatron-Core gathers bucket by bucket; DeepSpeed (ZeRO-2 here) in one all_gather_into_tensor of the flat
    # weights per parameter group (deepspeed/runtime/utils.py all_gather_into_tensor_dp_groups, same commit).
    gather_buckets = np.where(x.zero == 2, 1.0, buckets)
    gather_bucket = all_gather_time(
        bytes_per_rank=WEIGHT_BYTES_PER_PARAM * dense_params / gather_buckets,
        ranks=x.zero_group,
        bandwidth_bytes_per_s=link_bw,
        latency_s=link_lat,
    )
    param_gather = gather_buckets * gather_bucket
    # With `overlap_param_gather` (ZeRO-1 only: the distributed optimizer) "the first all-gather is launched
    # asynchronously in the next optimizer.zero_grad() call and subsequent all-gathers are launched in the forward
    # pre-hook" (distrib_optimizer.py, same commit): the first micro-batch's forward hides all but the first bucket.
    gather_window = stage.fwd_stage * (buckets - 1.0) / buckets
    gather_overlapped = np.maximum(
        param_gather - gather_window,
        gather_bucket + _overlap_compute_share(stage.dp_link) * (param_gather - gather_bucket),
    )
    gather_overlap = (as_array(plan.overlap_param_gather) > 0) & (x.zero == 1) & overlap
    param_gather = np.where(sharded & (x.zero < 3), np.where(gather_overlap, gather_overlapped, param_gather), 0.0)
    if x.moe:  # the experts' gradients reduce over the expert-data-parallel group
        dp_sync = dp_sync + experts.expert_gradient_sync_s(
            cluster=cluster,
            grad_bytes=reduce_bytes * params.expert_params_gpu,
            t=x.t,
            expert_parallel=x.ep,
            zero_group=x.zero_group,
        )
    # Buckets fill as the last micro-batch's backward runs (earlier micro-batches only accumulate);
    # a bucket reduces once it is full, so the backward hides all but the last bucket at best.
    window = (stage.bwd_stage + stage.recompute_stage) * (buckets - 1.0) / buckets
    # A hidden bucket still takes its compute share from the backward it hides under (`_overlap_compute_share`).
    share = _overlap_compute_share(stage.dp_link)
    dp_exposed = np.where(overlap, np.maximum(dp_sync - window, per_bucket + share * (dp_sync - per_bucket)), dp_sync)
    # ZeRO-2 keeps only its shard of the gradients, so every micro-batch's backward reduces its own: "ZeRO stage >= 2
    # communicates during non gradient accumulation boundaries as well" (microsoft/DeepSpeed @
    # 38327e07f6cd39b63418f60cedd1651b0be3e7c3 deepspeed/runtime/engine.py, allreduce_gradients), each hidden by
    # its own backward but its last bucket (ZeRO-2 does not pipeline, so every micro-batch is the stage's).
    dp_exposed = np.where(x.zero == 2, x.M * dp_exposed, dp_exposed)
    dp_exposed = np.where(x.zero >= 3, 0.0, dp_exposed)  # ZeRO-3 reduce-scatters per layer (`_zero3_exposed`)
    tied_sync = np.where(
        (as_array(model.tied_embeddings) > 0) & (x.p > 1),
        all_reduce_time(
            bytes_per_rank=reduce_bytes * params.embedding_gpu,
            ranks=2.0,
            bandwidth_bytes_per_s=stage.pp_link.bandwidth_bytes_per_s,
            latency_s=stage.pp_link.latency_s,
        ),
        0.0,
    )
    return np.asarray(dp_exposed + param_gather + tied_sync)


def _optimizer_time(x: _Terms, params: _Parameters, device: Device) -> Array:
    """The Adam step streams 28 bytes per parameter the GPU updates (or the stack's own count: an unfused AdamW)
    at the achieved bandwidth; with fp8 the
    stage's layer weights are cast (with their transposes) to fp8 once per step (Transformer Engine casts
    weights on the first micro-batch and reuses them for the others)."""
    sharded = x.zero >= 1
    if x.moe:  # the experts' states shard over the expert-data-parallel group instead (each stage its own layers')
        zero_share = 1.0 / np.where(sharded, x.zero_group, 1.0)
        expert_share = 1.0 / np.where(sharded, params.expert_group, 1.0) - zero_share

        def updated(stage_params: Array, stage_layers: Array) -> Array:
            return np.asarray(stage_params * zero_share + stage_layers * params.expert_params_per_layer * expert_share)

        updated_params = np.maximum(
            updated(params.params_first, x.layers_first), updated(params.params_last, x.layers_last)
        )
        if x.any_uneven:
            updated_params = np.maximum(updated_params, updated(params.params_middle, x.layers))
    else:
        stage_params = np.maximum(params.params_first, params.params_last)
        if x.any_uneven:
            stage_params = np.maximum(stage_params, params.params_middle)
        updated_params = stage_params / np.where(sharded, x.zero_group, 1.0)
    stack_bytes = None if device.stack is None else device.stack.optimizer_step_bytes_per_param
    step_bytes = (OPTIMIZER_STEP_BYTES_PER_PARAM if stack_bytes is None else stack_bytes) * updated_params
    cast_bytes = FP8_CAST_TRANSPOSE_BYTES * x.layers * params.layer_params_gpu if x.fp8 else 0.0
    return np.asarray((step_bytes + cast_bytes) / as_array(device.achieved_memory_bytes_per_s))


def _flop(x: _Terms, model: ModelArrays, c: _ComputeTimes, params: _Parameters) -> tuple[Array, Array]:
    """(FLOP executed per iteration, recomputation included; model FLOP per iteration, PaLM's count)."""
    full, selective = x.full, x.selective
    whole = x.t * x.n  # per-GPU work x TP x sequence degree = the micro-batch's whole layer
    recompute_flop = np.where(full, c.gemm_flop, np.where(selective, c.selective_flop, 0.0))
    recompute_flop = recompute_flop + np.where(x.uses_flash, 0.5 * c.attention_flop, 0.0)
    if c.norm_up_flop is not None:
        recompute_flop = recompute_flop + np.where(x.norm_up_recompute, c.norm_up_flop, 0.0)
    executed_per_micro = x.L * whole * (3.0 * c.gemm_flop + recompute_flop) + 3.0 * c.out_flop * whole
    if c.mtp_flop is not None:  # each multi-token-prediction module: one more layer, its projection, the head
        mtp_flop = x.mtp * (3.0 * c.gemm_flop + recompute_flop) + 3.0 * c.mtp_flop
        executed_per_micro = executed_per_micro + whole * mtp_flop
    executed = (x.B / x.b) * executed_per_micro
    non_embedding = as_array(model.total_params) - as_array(model.word_embedding_params) - params.positions
    width = x.h
    if x.moe or experts.has_own_attention(model):  # activated parameters; attention a*(d_qk + d_v)/2 wide
        non_embedding, width = non_embedding - as_array(model.inactive_params), experts.attention_width(model)
    model_flop = x.B * x.s * (6.0 * non_embedding + 12.0 * x.L * width * x.s)  # PaLM (Chowdhery et al. 2022), app. B
    return executed, model_flop


def _headroom(device: Device, mem: _Memory) -> Array:
    """What the peak stage leaves of the capacity less the reserve (context, NCCL buffers, fragmentation)."""
    capacity = as_array(device.memory_capacity_bytes)
    usable = capacity - memory_reserve_bytes(capacity)
    return np.asarray(usable - mem.pick(mem.total_first, mem.total_last, mem.total_middle))


def _evaluate(model: ModelArrays, cluster: ClusterArrays, plan: PlanArrays, c: _ComputeTimes) -> dict[str, Array]:
    """Every metric of every plan, step by step: terms, compute, collectives, parameters, memory,
    stage times and pipeline, data-parallel sync, optimizer, FLOP, SSD traffic."""
    device = cluster.device
    x = _terms(model, cluster, plan)
    comm = _layer_communication(x, cluster)
    cp = _context_parallel(x, cluster, c, comm)
    params = _parameters(x, model)
    mem = _memory(
        x,
        model,
        cluster,
        plan,
        params,
        qkv_bytes=comm.qkv_bytes,
        kv_chunk=comm.kv_chunk,
        cp_buffer_bytes=cp.buffer_bytes,
        layer_forward_s=lambda: _layer_forward_with_comm(c, comm),
    )
    stage = _stage_times(x, model, cluster, plan, c, comm, params, mem, cp)
    dp_time = _data_parallel_time(x, model, plan, params, stage, cluster.gpus_per_node, cluster)
    optimizer_time = _optimizer_time(x, params, device)
    iteration = stage.pipe + dp_time + optimizer_time
    executed, model_flop = _flop(x, model, c, params)
    gpus = x.d * x.t * x.p * x.n
    peak = as_array(device.matrix_flops_per_s) / as_array(cluster.sustained_clock_fraction)  # the datasheet's

    # SSD traffic and endurance
    written_per_iteration = x.M * mem.offload.offloaded * mem.layer_bytes  # per GPU
    write_rate_node = written_per_iteration / iteration * as_array(cluster.gpus_per_node)
    lifetime = as_array(cluster.ssd_endurance_bytes_per_node) / write_rate_node / SECONDS_PER_YEAR

    pick = mem.pick
    middle = params.states_middle
    states_first, states_last = params.states_first, params.states_last
    steady = x.M  # the slowest stage's M micro-batches; their parts are the breakdown
    with_embedding, with_logits = stage.slow_embedding, stage.slow_logits

    def r(per_stage: Array) -> Array:  # a middle stage's part scaled to the slowest stage's layers
        return np.asarray(stage.slow_ratio * per_stage) if x.any_uneven else per_stage

    # A stage's layers over a middle stage's: what the first and last stages add to (or take from) a chunk.
    extra_first: Array | float = x.layers_first / x.layers - 1.0 if x.any_uneven else 0.0
    extra_last: Array | float = x.layers_last / x.layers - 1.0 if x.any_uneven else 0.0
    layer_backward = stage.layers_stage - stage.pp_stage - stage.stage_forward if x.any_uneven else 0.0
    return {
        "micro_batches": x.M,
        "memory_weights_bytes": pick(states_first.weights, states_last.weights, middle.weights),
        "memory_gradients_bytes": pick(states_first.gradients, states_last.gradients, middle.gradients),
        "memory_optimizer_bytes": pick(states_first.optimizer, states_last.optimizer, middle.optimizer),
        "memory_activations_bytes": pick(mem.acts_first, mem.acts_last, mem.acts_middle),
        "memory_buffers_bytes": pick(mem.buffers_first, mem.buffers_last, mem.buffers_middle),
        "memory_offloaded_bytes": pick(mem.removed_first, mem.removed_last, mem.removed_middle),
        "memory_total_bytes": pick(mem.total_first, mem.total_last, mem.total_middle),
        # what is left once the context, NCCL buffers and allocator fragmentation are set aside
        "memory_headroom_bytes": _headroom(device, mem),
        "peak_is_last_stage": np.asarray(mem.last_peak),
        "time_forward_s": steady * (r(stage.fwd_stage) + with_logits * c.logits_fwd + with_embedding * c.embedding_fwd),
        "time_backward_s": steady
        * (r(stage.bwd_stage) + with_logits * c.logits_bwd + with_embedding * c.embedding_bwd),
        "time_recompute_s": steady * r(stage.recompute_stage),
        "time_tensor_parallel_s": steady * (r(stage.tp_stage) + with_embedding * stage.embedding_tp),
        "time_sequence_parallel_s": steady * r(stage.sp_stage),
        "time_pipeline_send_s": steady * stage.pp_stage,
        "time_zero_gather_s": steady * r(stage.zero_exposed),
        "time_offload_stall_s": steady * r(stage.stall),
        "time_bubble_s": stage.bubble,
        "time_data_parallel_s": dp_time,
        "time_optimizer_s": optimizer_time,
        "time_expert_all_to_all_s": steady * r(np.asarray(stage.a2a_stage)) if x.moe else np.zeros(()),
        "iteration_time_s": iteration,
        "tokens_per_s": x.B * x.s / iteration,
        "model_flops_utilization": model_flop / (iteration * gpus * peak),
        "achieved_flops_per_gpu": executed / (iteration * gpus),
        "executed_flop_per_iteration": executed,
        "model_flop_per_iteration": model_flop,
        "bubble_fraction": stage.bubble / stage.pipe,
        "layer_activation_bytes": mem.layer_bytes,
        "tensor_parallel_bytes_per_layer": comm.tp_bytes,
        "sequence_parallel_bytes_per_layer": comm.sp_bytes,
        "offloaded_layers": mem.offload.offloaded,
        "ssd_write_bytes_per_s_per_node": write_rate_node,
        "ssd_lifetime_years": np.where(written_per_iteration > 0, lifetime, np.inf),
        "chunk_forward_s": stage.stage_forward / x.v,
        "chunk_backward_s": (stage.layers_stage - stage.pp_stage - stage.stage_forward) / x.v,
        "last_stage_extra_forward_s": c.logits_fwd + (extra_last * stage.stage_forward if x.any_uneven else 0.0),
        "last_stage_extra_backward_s": c.logits_bwd + extra_last * layer_backward,
        "pipeline_send_s": np.where(x.p > 1, stage.send, 0.0),
        "time_context_parallel_s": steady * r(stage.cp_stage) if x.any_cp else np.zeros(()),
        "context_parallel_bytes_per_layer": cp.forward_bytes,
        "peak_stage": np.where(mem.last_peak, x.p - 1.0, np.where(mem.middle_peak, 1.0, 0.0) if x.any_uneven else 0.0),
        "first_stage_s": stage.first_stage,
        "middle_stage_s": np.where(x.p > 2, stage.middle_stage, np.nan),
        "last_stage_s": stage.last_stage,
        "first_stage_extra_forward_s": c.embedding_fwd
        + stage.embedding_tp
        + (extra_first * stage.stage_forward if x.any_uneven else 0.0),
        "first_stage_extra_backward_s": c.embedding_bwd + extra_first * layer_backward,
        "chunk_context_parallel_forward_s": stage.cp_forward / x.v if x.any_cp else np.zeros(()),
        "chunk_context_parallel_backward_s": (stage.cp_stage - stage.cp_forward) / x.v if x.any_cp else np.zeros(()),
        # zeros (one scalar, broadcast) for a dense model
        "memory_expert_states_bytes": np.zeros(())
        if params.expert_states is None
        else pick(*(states.total for states in params.expert_states)),
        "expert_all_to_all_bytes_per_layer": np.asarray(stage.a2a_bytes),
        "chunk_forward_all_to_all_s": np.asarray(stage.a2a_forward_stage / x.v if x.moe else 0.0),
        "chunk_backward_all_to_all_s": np.asarray((stage.a2a_stage - stage.a2a_forward_stage) / x.v if x.moe else 0.0),
    }
