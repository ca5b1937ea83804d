"""`evaluate_plans`: memory, time and validity of many parallel training plans in one call.

Every field of the model, cluster and plan broadcasts (NumPy rules); there is no Python loop
over plans. Invalid plans get a non-zero `reasons` bitmask (see `validity`) and NaN metrics.

Time of one iteration (per data-parallel replica, all replicas in lock step):
    T = M * t_slowest_stage + bubble + DP gradient sync (exposed) + optimizer step
where a stage's time per micro-batch = forward + backward + recomputation + TP collectives +
sequence-parallel collectives + pipeline sends + ZeRO-3 gathers (exposed) + SSD stalls, the last
stage also runs the logits and the loss, and bubble = (p-1) * t_layers_stage / v.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dse.engines.collectives import all_gather_time, all_reduce_time, all_to_all_time, point_to_point_time
from dse.engines.training.codes import Offload, Recompute, SequenceParallel
from dse.engines.training.compute import BACKWARD_FACTOR, layer_forward_work, output_layer_work
from dse.engines.training.inputs import (
    Array,
    ClusterArrays,
    ModelArrays,
    PlanArrays,
    as_array,
    field_shapes,
    select_inputs,
)
from dse.engines.training.links import group_link
from dse.engines.training.memory import (
    GRADIENT_BYTES_PER_PARAM,
    WEIGHT_BYTES_PER_PARAM,
    layer_activation_bytes,
    model_state_bytes,
)
from dse.engines.training.offload import offload_stall_s, offloaded_layers
from dse.engines.training.schedules import first_stage_in_flight, last_stage_in_flight, pipeline_time
from dse.engines.training.validity import OUT_OF_MEMORY, plan_reasons

#: fp16 activations and gradients cross the links.
ACTIVATION_BYTES = 2.0
#: Adam step traffic per parameter the GPU updates: read and write fp32 master, momentum and
#: variance (12 + 12), read the fp16 gradient (2), write the fp16 weight (2).
OPTIMIZER_STEP_BYTES_PER_PARAM = 28.0
SECONDS_PER_YEAR = 365.0 * 86400.0


@dataclass(frozen=True)
class PlanEvaluation:
    """Results per plan (arrays broadcast over the inputs). Memory in bytes per GPU at the peak
    stage; times in seconds per iteration; NaN where the plan is invalid."""

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

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def evaluate_plans(
    *, model: ModelArrays, cluster: ClusterArrays, plan: PlanArrays, outputs: Collection[str] | None = None
) -> PlanEvaluation:
    """Memory, time and validity of every plan; all inputs broadcast together.

    Invalid plans are never computed: the validity bits are found first and, when some plans
    are invalid, only the valid ones are evaluated (their metrics come back NaN elsewhere).
    `outputs` (metric names; None: all) limits which metrics are written back into the full grid
    when some plans are invalid; the others come back as read-only NaN (False) placeholders. A
    search over millions of plans that ranks by time and memory skips ~40 full-grid copies.
    """
    reasons = plan_reasons(model=model, cluster=cluster, plan=plan)
    shape = np.broadcast_shapes(reasons.shape, *field_shapes(model), *field_shapes(cluster), *field_shapes(plan))
    reasons = np.broadcast_to(reasons, shape)
    valid = reasons == 0
    everything = bool(valid.all())
    if not everything:
        model, cluster, plan = select_inputs(model, valid), select_inputs(cluster, valid), select_inputs(plan, valid)
    with np.errstate(all="ignore"):
        raw = _evaluate(model, cluster, plan)
    subset_shape = shape if everything else (int(valid.sum()),)
    fits_subset = np.broadcast_to(raw["memory_total_bytes"] <= as_array(cluster.memory_capacity_bytes), subset_shape)
    out: dict[str, Any] = {}
    for key, value in raw.items():
        computed = np.broadcast_to(value, subset_shape)
        if everything:
            out[key] = computed
        elif outputs is not None and key not in outputs:
            out[key] = np.broadcast_to(np.zeros((), dtype=np.bool_) if computed.dtype == np.bool_ else np.nan, shape)
        else:
            full = np.zeros(shape, dtype=np.bool_) if computed.dtype == np.bool_ else np.full(shape, np.nan)
            full[valid] = computed
            out[key] = full
    fits = np.zeros(shape, dtype=np.bool_)
    fits[valid] = fits_subset.reshape(-1) if not everything else fits_subset[valid]
    reasons = reasons | np.where(valid & ~fits, np.int64(OUT_OF_MEMORY.bit), np.int64(0))
    return PlanEvaluation(reasons=reasons, valid=valid, fits=fits, **out)


def _evaluate(model: ModelArrays, cluster: ClusterArrays, plan: PlanArrays) -> dict[str, Array]:
    B, b, s = as_array(plan.global_batch_size), as_array(plan.micro_batch_size), as_array(plan.sequence_length)
    d, t, p = as_array(plan.data_parallel), as_array(plan.tensor_parallel), as_array(plan.pipeline_parallel)
    kind, v = as_array(plan.sequence_parallel), as_array(plan.virtual_stages)
    zero, rc = as_array(plan.zero_stage), as_array(plan.recompute)
    h, L, V = as_array(model.hidden_size), as_array(model.num_layers), as_array(model.vocab_size)
    a, a_kv = as_array(model.num_heads), as_array(model.num_kv_heads)
    ring = kind == SequenceParallel.RING
    ulysses = kind == SequenceParallel.ULYSSES
    megatron_sp = kind == SequenceParallel.MEGATRON
    n = np.where(ring | ulysses, as_array(plan.sequence_parallel_degree), 1.0)
    full = rc == Recompute.FULL
    flash = as_array(plan.flash_attention)
    uses_flash = flash > 0
    # FlashAttention's backward recomputes QK^T (Dao et al. 2022): half the forward attention FLOP
    # again; it already is selective recomputation, so `selective` adds nothing on top of it.
    selective = (rc == Recompute.SELECTIVE) & ~uses_flash
    M = B / (b * d)
    layers = L / p  # per stage
    zero_group = d * n
    s_local = s / n
    kv_width = a_kv * h / a

    # --- compute per layer (forward, one micro-batch, one GPU)
    work = layer_forward_work(
        sequence_length=s,
        micro_batch_size=b,
        hidden_size=h,
        num_heads=a,
        num_kv_heads=a_kv,
        ffn_hidden_size=model.ffn_hidden_size,
        gated_ffn=model.gated_ffn,
        tensor_parallel=t,
        sequence_parallel=kind,
        sequence_parallel_degree=n,
        flash_attention=flash,
    )
    flops = as_array(cluster.peak_flops_per_s) * as_array(cluster.compute_efficiency)
    bandwidth = as_array(cluster.memory_bandwidth_bytes_per_s) * as_array(cluster.memory_efficiency)
    layer_fwd = work.gemm_flop / flops + work.elementwise_bytes / bandwidth
    layer_selective = work.attention_flop / flops + work.attention_elementwise_bytes / bandwidth
    out_flop, out_fwd_bytes, out_bwd_bytes = output_layer_work(
        sequence_length=s, micro_batch_size=b, hidden_size=h, vocab_size=V, tensor_parallel=t, context=n
    )
    logits_fwd = out_flop / flops + out_fwd_bytes / bandwidth
    logits_bwd = BACKWARD_FACTOR * out_flop / flops + out_bwd_bytes / bandwidth

    # --- collectives per layer
    tp_link = group_link(cluster=cluster, stride=1.0, size=t, pattern="ring")
    message = ACTIVATION_BYTES * b * s_local * h
    tp_all_reduce = all_reduce_time(
        bytes_per_rank=message,
        ranks=t,
        bandwidth_bytes_per_s=tp_link.bandwidth_bytes_per_s,
        latency_s=tp_link.latency_s,
    )
    tp_bytes = 2.0 * 2.0 * (t - 1.0) / t * message  # two all-reduces (or AG + RS pairs) per forward
    tp_per_layer = (4.0 + 2.0 * full) * tp_all_reduce  # 2 forward, 2 backward, 2 more when recomputing

    sp_ring_link = group_link(cluster=cluster, stride=t, size=n, pattern="p2p")
    sp_a2a_link = group_link(cluster=cluster, stride=t, size=n, pattern="all_to_all")
    qkv_bytes = ACTIVATION_BYTES * b * s_local * (h + 2.0 * kv_width) / t
    out_bytes = ACTIVATION_BYTES * b * s_local * h / t
    ulysses_fwd = sum(
        all_to_all_time(
            bytes_per_rank=x,
            ranks=n,
            bandwidth_bytes_per_s=sp_a2a_link.bandwidth_bytes_per_s,
            latency_s=sp_a2a_link.latency_s,
        )
        for x in (qkv_bytes, out_bytes)
    )
    kv_chunk = ACTIVATION_BYTES * 2.0 * b * s_local * kv_width / t  # one K and one V chunk
    ring_fwd = (n - 1.0) * point_to_point_time(
        message_bytes=kv_chunk,
        bandwidth_bytes_per_s=sp_ring_link.bandwidth_bytes_per_s,
        latency_s=sp_ring_link.latency_s,
    )
    # Backward: Ulysses repeats both all-to-alls on gradients; a ring pass moves K, V and their gradients.
    sp_fwd = np.where(ulysses, ulysses_fwd, np.where(ring, ring_fwd, 0.0))
    sp_per_layer = np.where(ulysses, (2.0 + full) * ulysses_fwd, np.where(ring, (3.0 + full) * ring_fwd, 0.0))
    sp_bytes = np.where(ulysses, (n - 1.0) / n * (qkv_bytes + out_bytes), np.where(ring, (n - 1.0) * kv_chunk, 0.0))

    # --- model states per GPU
    layer_params_gpu = as_array(model.layer_sharded_params) / t + as_array(model.layer_replicated_params)
    embedding_gpu = as_array(model.word_embedding_params) / t
    positions = as_array(model.position_embedding_params)
    head_gpu = np.where(as_array(model.tied_embeddings) > 0, 0.0, embedding_gpu)
    final_norm = as_array(model.final_norm_params)
    single_stage = p == 1
    params_first = (
        layers * layer_params_gpu + embedding_gpu + positions + np.where(single_stage, head_gpu + final_norm, 0.0)
    )
    # A tied model's last stage keeps its own copy of the word embedding for the logits (Megatron-LM).
    params_last = np.where(single_stage, params_first, layers * layer_params_gpu + embedding_gpu + final_norm)
    states_first = model_state_bytes(params_per_gpu=params_first, zero_stage=zero, zero_group=zero_group)
    states_last = model_state_bytes(params_per_gpu=params_last, zero_stage=zero, zero_group=zero_group)

    # --- activations
    acts = layer_activation_bytes(
        sequence_length=s,
        micro_batch_size=b,
        hidden_size=h,
        num_heads=a,
        num_kv_heads=a_kv,
        ffn_hidden_size=model.ffn_hidden_size,
        gated_ffn=model.gated_ffn,
        tensor_parallel=t,
        sequence_parallel=kind,
        sequence_parallel_degree=n,
        recompute=rc,
        flash_attention=flash,
    )
    A = acts.kept
    schedule = as_array(plan.pipeline_schedule)
    in_flight_first = first_stage_in_flight(schedule=schedule, stages=p, micro_batches=M, virtual_stages=v)
    in_flight_last = last_stage_in_flight(schedule=schedule, stages=p, micro_batches=M, virtual_stages=v)
    in_flight_last = np.where(single_stage, in_flight_first, in_flight_last)

    # --- SSD offload (SSDTrain)
    write_bw = as_array(cluster.ssd_write_bandwidth_per_gpu_bytes_per_s)
    read_bw = as_array(cluster.ssd_read_bandwidth_per_gpu_bytes_per_s)
    layer_fwd_with_comm = layer_fwd + 2.0 * tp_all_reduce + sp_fwd
    mode = as_array(plan.activation_offload)
    offloaded = offloaded_layers(
        mode=mode,
        layers=layers,
        layer_activation_bytes=A,
        layer_forward_s=layer_fwd_with_comm,
        ssd_bandwidth_bytes_per_s=np.minimum(write_bw, read_bw),
    )
    in_transit = np.where(offloaded > 0, A, 0.0)  # the layer being written or prefetched

    def activation_memory(in_flight: Array) -> tuple[Array, Array]:
        kept = in_flight * (layers - offloaded) * A + in_transit
        removed = in_flight * offloaded * A - in_transit
        return kept, removed

    acts_first, removed_first = activation_memory(in_flight_first)
    acts_last, removed_last = activation_memory(in_flight_last)
    output_acts = in_flight_last * (
        ACTIVATION_BYTES * b * s_local * h / np.where(megatron_sp, t, 1.0) + 4.0 * b * s_local * V / t
    )  # final LayerNorm input and fp32 logits for the loss
    embedding_masks = in_flight_first * b * s_local * h / np.where(megatron_sp, t, 1.0)  # 1-byte dropout masks
    attention_buffers = np.where(ring, 2.0 * kv_chunk, np.where(ulysses, qkv_bytes, 0.0))
    zero3_buffers = np.where(zero >= 3, 2.0 * 2.0 * layer_params_gpu, 0.0)  # two gathered layers (prefetch)
    recompute_peak = acts.recompute_working_set  # one layer rebuilt at a time during backward
    buffers_first = embedding_masks + attention_buffers + zero3_buffers + recompute_peak
    buffers_last = output_acts + attention_buffers + zero3_buffers + recompute_peak
    total_first = states_first.total + acts_first + buffers_first
    total_last = states_last.total + acts_last + buffers_last
    last_peak = total_last > total_first

    def pick(first: Array, last: Array) -> Array:
        return np.asarray(np.where(last_peak, last, first))

    # --- stage time per micro-batch
    fwd_stage = layers * layer_fwd
    bwd_stage = BACKWARD_FACTOR * fwd_stage
    flash_backward = np.where(uses_flash, 0.5 * work.attention_flop / flops, 0.0)
    recompute_stage = layers * (np.where(full, layer_fwd, np.where(selective, layer_selective, 0.0)) + flash_backward)
    tp_stage = layers * tp_per_layer
    sp_stage = layers * sp_per_layer
    pp_link = group_link(cluster=cluster, stride=t * n * d, size=p, pattern="p2p")
    send = point_to_point_time(
        message_bytes=message / t, bandwidth_bytes_per_s=pp_link.bandwidth_bytes_per_s, latency_s=pp_link.latency_s
    ) + all_gather_time(  # scatter-gather: each TP rank sends 1/t, then the TP group all-gathers (Narayanan 2021)
        bytes_per_rank=message,
        ranks=t,
        bandwidth_bytes_per_s=tp_link.bandwidth_bytes_per_s,
        latency_s=tp_link.latency_s,
    )
    pp_stage = np.where(p > 1, 2.0 * v * send, 0.0)
    dp_link = group_link(cluster=cluster, stride=t, size=zero_group, pattern="ring")
    gather_params_bytes = WEIGHT_BYTES_PER_PARAM * params_last
    zero_gather = 2.0 * all_gather_time(
        bytes_per_rank=gather_params_bytes,
        ranks=zero_group,
        bandwidth_bytes_per_s=dp_link.bandwidth_bytes_per_s,
        latency_s=dp_link.latency_s,
    )
    overlap = as_array(plan.overlap_grad_reduce) > 0
    compute_stage = fwd_stage + bwd_stage + recompute_stage
    zero_exposed = np.where(
        zero >= 3, np.where(overlap, np.maximum(zero_gather - compute_stage, 0.0), zero_gather), 0.0
    )
    stage_forward = fwd_stage + layers * (2.0 * tp_all_reduce + sp_fwd)  # forward compute and its collectives
    stall = np.where(
        mode == Offload.ALL,
        offload_stall_s(
            offloaded_bytes=offloaded * A,
            write_bandwidth_bytes_per_s=write_bw,
            read_bandwidth_bytes_per_s=read_bw,
            forward_s=stage_forward,
            backward_s=bwd_stage + recompute_stage,
        ),
        0.0,
    )
    layers_stage = compute_stage + tp_stage + sp_stage + pp_stage + zero_exposed + stall
    slowest = layers_stage + logits_fwd + logits_bwd  # the last stage also runs the logits and the loss
    pipe = pipeline_time(
        slowest_stage_s=slowest,
        sum_of_stages_s=p * layers_stage + logits_fwd + logits_bwd,
        micro_batches=M,
        virtual_stages=v,
    )
    bubble = pipe - M * slowest

    # --- data-parallel gradient synchronisation and the optimizer step
    grad_bytes = GRADIENT_BYTES_PER_PARAM * params_last
    dp_sync = all_reduce_time(
        bytes_per_rank=grad_bytes,
        ranks=zero_group,
        bandwidth_bytes_per_s=dp_link.bandwidth_bytes_per_s,
        latency_s=dp_link.latency_s,
    )
    dp_sync = np.where(zero >= 3, dp_sync / 2.0, dp_sync)  # ZeRO-3: only the reduce-scatter half
    dp_exposed = np.where(overlap, np.maximum(dp_sync - (bwd_stage + recompute_stage), 0.0), dp_sync)
    tied_sync = np.where(
        (as_array(model.tied_embeddings) > 0) & (p > 1),
        all_reduce_time(
            bytes_per_rank=GRADIENT_BYTES_PER_PARAM * embedding_gpu,
            ranks=2.0,
            bandwidth_bytes_per_s=pp_link.bandwidth_bytes_per_s,
            latency_s=pp_link.latency_s,
        ),
        0.0,
    )
    dp_time = dp_exposed + tied_sync
    updated_params = np.maximum(params_first, params_last) / np.where(zero >= 1, zero_group, 1.0)
    optimizer_time = OPTIMIZER_STEP_BYTES_PER_PARAM * updated_params / bandwidth
    iteration = pipe + dp_time + optimizer_time

    # --- FLOP and rates
    whole = t * n  # per-GPU work x TP x sequence degree = the micro-batch's whole layer
    recompute_flop = np.where(full, work.gemm_flop, np.where(selective, work.attention_flop, 0.0))
    recompute_flop = recompute_flop + np.where(uses_flash, 0.5 * work.attention_flop, 0.0)
    executed_per_micro = L * whole * (3.0 * work.gemm_flop + recompute_flop) + 3.0 * out_flop * t * n
    executed = (B / b) * executed_per_micro
    non_embedding = as_array(model.total_params) - as_array(model.word_embedding_params) - positions
    model_flop = B * s * (6.0 * non_embedding + 12.0 * L * h * s)  # PaLM (Chowdhery et al. 2022), appendix B
    gpus = d * t * p * n
    peak = as_array(cluster.peak_flops_per_s)

    # --- SSD traffic and endurance
    written_per_iteration = M * offloaded * A  # per GPU
    write_rate_node = written_per_iteration / iteration * as_array(cluster.gpus_per_node)
    lifetime = as_array(cluster.ssd_endurance_bytes_per_node) / write_rate_node / SECONDS_PER_YEAR

    steady = M  # the slowest stage's M micro-batches; their parts are the breakdown
    return {
        "micro_batches": M,
        "memory_weights_bytes": pick(states_first.weights, states_last.weights),
        "memory_gradients_bytes": pick(states_first.gradients, states_last.gradients),
        "memory_optimizer_bytes": pick(states_first.optimizer, states_last.optimizer),
        "memory_activations_bytes": pick(acts_first, acts_last),
        "memory_buffers_bytes": pick(buffers_first, buffers_last),
        "memory_offloaded_bytes": pick(removed_first, removed_last),
        "memory_total_bytes": pick(total_first, total_last),
        "memory_headroom_bytes": as_array(cluster.memory_capacity_bytes) - pick(total_first, total_last),
        "peak_is_last_stage": np.asarray(last_peak),
        "time_forward_s": steady * (fwd_stage + logits_fwd),
        "time_backward_s": steady * (bwd_stage + logits_bwd),
        "time_recompute_s": steady * recompute_stage,
        "time_tensor_parallel_s": steady * tp_stage,
        "time_sequence_parallel_s": steady * sp_stage,
        "time_pipeline_send_s": steady * pp_stage,
        "time_zero_gather_s": steady * zero_exposed,
        "time_offload_stall_s": steady * stall,
        "time_bubble_s": bubble,
        "time_data_parallel_s": dp_time,
        "time_optimizer_s": optimizer_time,
        "iteration_time_s": iteration,
        "tokens_per_s": B * s / iteration,
        "model_flops_utilization": model_flop / (iteration * gpus * peak),
        "achieved_flops_per_gpu": executed / (iteration * gpus),
        "executed_flop_per_iteration": executed,
        "model_flop_per_iteration": model_flop,
        "bubble_fraction": bubble / pipe,
        "layer_activation_bytes": A,
        "tensor_parallel_bytes_per_layer": tp_bytes,
        "sequence_parallel_bytes_per_layer": sp_bytes,
        "offloaded_layers": offloaded,
        "ssd_write_bytes_per_s_per_node": write_rate_node,
        "ssd_lifetime_years": np.where(written_per_iteration > 0, lifetime, np.inf),
        "chunk_forward_s": stage_forward / v,
        "chunk_backward_s": (layers_stage - pp_stage - stage_forward) / v,
        "last_stage_extra_forward_s": logits_fwd,
        "last_stage_extra_backward_s": logits_bwd,
        "pipeline_send_s": np.where(p > 1, send, 0.0),
    }
