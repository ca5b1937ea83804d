"""ZeRO-3 / FSDP parameter gathers and gradient reduce-scatters, at the granularity a runtime issues them.

Every collective spans the whole ZeRO group (ring: n-1 steps, each paying the link's step latency),
so what a runtime costs at scale is set by how many collectives it issues per layer and pass, how
large each rank's chunk is, and whether the next gather is prefetched under the current compute:

- PyTorch FSDP (`Zero3Runtime.FSDP`): one flat parameter per wrap unit (a transformer layer), one
  `all_gather_into_tensor` per unit and pass and one `reduce_scatter_tensor` of its gradients, the
  next unit's gather prefetched (Zhao et al., "PyTorch FSDP", VLDB 2023, Sections 3.2-3.3); bf16 weights
  gathered, gradients reduce-scattered in fp32 as torchtitan configures it (twice the gather's bytes).
- PyTorch FSDP as Composer 0.16 sets it up (`Zero3Runtime.FSDP_COMPOSER`, mosaicml/composer v0.16.4
  composer/trainer/dist_strategy.py: `backward_prefetch` defaults to BACKWARD_POST; activation checkpointing
  applied after wrapping, to the block inside each FSDP unit): BACKWARD_POST "prefetches the next set of
  parameters after the current set of parameters' gradient computation [and] overlaps the current
  reduce-scatter and the next gradient computation" (torch.distributed.fsdp.BackwardPrefetch), so every
  backward gather waits in line; one gather serves a layer's recomputation and its backward.
- FairScale FSDP as of 2021 (`Zero3Runtime.FAIRSCALE_2021`, metaseq's OPT-175B run): one flat parameter per
  layer as PyTorch FSDP, but its all-gathers and reduce-scatters share one process group, so one NCCL
  communicator runs them in issue order: "next layer's computation is blocked by all_gather and all_gather is
  blocked by reduce_scatter" (pytorch/pytorch issue #64803, September 2021, on the FSDP ported from
  FairScale); FairScale gave the reduce-scatter its own process group in PR #897 (facebookresearch/fairscale,
  opened 2021-12-24: "all_gather and reduce_scatter NCCL operations do not overlap with other computation
  streams in FSDP backward propagation", +20% throughput on a 13B model once they did). Each backward layer
  then runs its reduce-scatter and the next layer's gather in series with its compute; the forward, with
  gathers alone on the communicator, stays prefetched by the host running ahead. fairseq's
  `build_decoder_layer` (which metaseq inherits) wraps `checkpoint_wrapper(layer)` in `fsdp_wrap`, so one
  backward gather serves a layer's recomputation and its backward.
- DeepSpeed ZeRO-3 as of 2021 (`Zero3Runtime.DEEPSPEED_2021`), the runtime of the Megatron-LM SC'21
  comparison (Narayanan et al. 2021, Table 2): one `torch.distributed.all_gather` per partitioned
  tensor, in its list form (microsoft/DeepSpeed deepspeed/runtime/zero/partition_parameters.py
  `_allgather_param`: the output is a Python list of world-size views of one flat buffer), which
  PyTorch's ProcessGroupNCCL serves by gathering into a flat buffer and copying each of the n
  outputs back one eager op at a time (the cost `_all_gather_base`, PyTorch 1.10, removed); tensors
  under `stage3_param_persistence_threshold` (1e5 elements: biases, norms) stay whole; a tensor
  larger than `stage3_prefetch_bucket_size` (5e7 elements) is not prefetched; gradients
  reduce-scatter in `reduce_bucket_size` buckets (5e8 elements) on a side stream (`overlap_comm`),
  each bucket a list reduce-scatter with its n copies. DeepSpeed defaults: DeepSpeed
  documentation, "DeepSpeed Configuration JSON", ZeRO optimizations.
"""

from __future__ import annotations

import numpy as np

from dse.engines.collectives import all_gather_time, reduce_scatter_time
from dse.engines.training.codes import Zero3Runtime
from dse.engines.training.inputs import Array, as_array
from dse.specs.common import Num

#: fp16/bf16 weights gathered, fp16/bf16 gradients reduce-scattered (Rajbhandari et al. 2020, Section 3.1).
GATHER_BYTES_PER_PARAM = 2.0
#: PyTorch FSDP reduce-scatters fp32 gradients as torchtitan sets it up: `--training.mixed_precision_reduce`
#: defaults to "float32", its only choice (pytorch/torchtitan torchtitan/config_manager.py @ 582fe7d1), passed as
#: FSDP2's `MixedPrecisionPolicy(reduce_dtype=...)`, "the dtype for gradient reduction (i.e. reduce-scatter or
#: all-reduce)" (torch.distributed.fsdp docs; Megatron-LM likewise forces fp32 gradient reduction under bf16). The
#: other runtimes keep the low-precision gradients of their records: DeepSpeed's fp16 gradients, FairScale's
#: `fp32_reduce_scatter=False` default, Composer's (0.16.3 in bf16, 0.16.4 in fp32: its records' version is unknown).
FSDP_REDUCE_BYTES_PER_PARAM = 4.0
#: Partitioned tensors per layer under DeepSpeed: the QKV, projection, FFN-in and FFN-out weights
#: (Megatron's fused QKV and fused gate/up); biases and norms stay whole below the persistence threshold.
DEEPSPEED_TENSORS_PER_LAYER = 4.0
#: `stage3_prefetch_bucket_size` default (elements).
DEEPSPEED_PREFETCH_BUCKET_PARAMS = 5e7
#: `reduce_bucket_size` default (elements).
DEEPSPEED_REDUCE_BUCKET_PARAMS = 5e8
#: `stage3_max_live_parameters` default (elements): what DeepSpeed keeps gathered at once.
DEEPSPEED_MAX_LIVE_PARAMS = 1e9
#: Host time of one eager PyTorch op: the per-rank copy of a list collective. The pytorch-eager stack's
#: launch cost (models_db/stacks/pytorch-eager.json, elementwise_launch_overhead_s: LLMCompass
#: real-hardware A100 wall-clock of an eager softmax, less its memory time).
EAGER_OP_HOST_S = 1.53e-05


#: FSDP2 (`Zero3Runtime.FSDP`, torchtitan's `fully_shard`) copies on the compute stream around its collectives
#: (pytorch/pytorch torch/distributed/_composable/fsdp/_fsdp_collectives.py, the FSDP2 of torchtitan's PyTorch
#: 1963fc83 (2024-12-23); the mechanism as in the stored copies @ 01d66d21 and, moved to
#: torch/distributed/fsdp/_fully_shard/, @ 010ae4a8): after each all-gather `foreach_all_gather_copy_out` waits
#: for it on the current stream and `split_with_sizes_copy`s the gathered bf16 buffer into the unsharded
#: parameters (read 2 + write 2 bytes per parameter, one kernel); before each reduce-scatter
#: `foreach_reduce_scatter_copy_in` `chunk_cat`s the unsharded bf16 gradients into the reduce-dtype input
#: (read 2 + write 4 bytes in fp32, one kernel), in the default stream since pytorch/pytorch PR #129721
#: (2024-06-27, "[FSDP2] Ran reduce-scatter copy-in in default stream"). The all-gather copy-in (the sharded
#: parameters cast and copied into the send buffer, a shard's worth) runs on its own copy-in stream under
#: implicit prefetching and the reduced shard is viewed out (as_strided), not copied: neither is priced.
FSDP2_COPY_OUT_BYTES_PER_PARAM = GATHER_BYTES_PER_PARAM + GATHER_BYTES_PER_PARAM
#: FSDP1 (`Zero3Runtime.FSDP_COMPOSER`, the FlatParameter FSDP of llm-foundry's PyTorch 2.0.1 image) all-gathers
#: straight into the padded unsharded flat parameter and hands the module views of it (`_use_unsharded_views`:
#: torch.split of the flat parameter, each piece .view'ed to its shape), so a gather copies nothing on the
#: compute stream; autograd's backward of that split concatenates the views' gradients into the flat gradient
#: (split_with_sizes_backward: one cat, read 2 + write 2 bytes per bf16 element). The low-precision shard cast
#: before the gather, the gradient's cast to the reduce dtype, its padding and the divides run on FSDP's
#: unshard / post-backward streams (pytorch/pytorch torch/distributed/fsdp/_runtime_utils.py and
#: _flat_param.py, v2.0.1): not priced.
FSDP1_GRADIENT_CAT_BYTES_PER_PARAM = GATHER_BYTES_PER_PARAM + GATHER_BYTES_PER_PARAM


def compute_stream_copies(*, runtime: Num, layers: Num, layer_params: Num, rest_params: Num) -> tuple[Array, Array]:
    """(bytes, kernels) a ZeRO-3 runtime's copies move on the compute stream per micro-batch on one stage: per
    wrap unit (each layer, and the rest of the stage's parameters as one more unit), FSDP2's copy-out after each
    of its two gathers and its reduce-scatter copy-in; FSDP1's gradient concatenation; nothing for DeepSpeed
    (its list copies are host time in `zero3_exposed_s`); FairScale 2021's flat parameter is left unpriced (its
    copies not examined)."""
    code = as_array(runtime)
    fsdp2, fsdp1 = code == Zero3Runtime.FSDP, code == Zero3Runtime.FSDP_COMPOSER
    fsdp2_per_param = 2.0 * FSDP2_COPY_OUT_BYTES_PER_PARAM + GATHER_BYTES_PER_PARAM + reduce_bytes_per_param(runtime)
    per_param = np.where(fsdp2, fsdp2_per_param, np.where(fsdp1, FSDP1_GRADIENT_CAT_BYTES_PER_PARAM, 0.0))
    kernels_per_unit = np.where(fsdp2, 3.0, np.where(fsdp1, 1.0, 0.0))
    params = as_array(layers) * as_array(layer_params) + as_array(rest_params)
    units = as_array(layers) + np.where(as_array(rest_params) > 0, 1.0, 0.0)
    return np.asarray(per_param * params), np.asarray(kernels_per_unit * units)


def largest_tensor_params(
    *, hidden_size: Num, kv_width: Num, ffn_hidden_size: Num, gated_ffn: Num, tensor_parallel: Num
) -> Array:
    """Elements of a layer's largest weight per TP rank (QKV, FFN-in with the gate fused, or FFN-out)."""
    h, ffn = as_array(hidden_size), as_array(ffn_hidden_size)
    ffn_in = ffn * np.where(as_array(gated_ffn) > 0, 2.0, 1.0)
    largest = np.maximum(np.maximum(h * (h + 2.0 * as_array(kv_width)), h * ffn_in), ffn * h)
    return np.asarray(largest / as_array(tensor_parallel))


def gathered_params(*, runtime: Num, layer_params: Num, largest_tensor: Num) -> Array:
    """Parameters held gathered at once: FSDP the current and the prefetched layer; DeepSpeed at most
    `stage3_max_live_parameters`, but never less than the tensor in use."""
    two_layers = 2.0 * as_array(layer_params)
    live = np.minimum(two_layers, np.maximum(DEEPSPEED_MAX_LIVE_PARAMS, as_array(largest_tensor)))
    return np.asarray(np.where(as_array(runtime) == Zero3Runtime.DEEPSPEED_2021, live, two_layers))


def reduce_bytes_per_param(runtime: Num) -> Array:
    """Bytes per gradient element a runtime reduce-scatters (and holds unsharded until it has)."""
    fsdp = as_array(runtime) == Zero3Runtime.FSDP
    return np.asarray(np.where(fsdp, FSDP_REDUCE_BYTES_PER_PARAM, GATHER_BYTES_PER_PARAM))


def unsharded_gradient_params(*, runtime: Num, layer_params: Num) -> Array:
    """Gradient elements held unsharded during the backward: FSDP's post-backward hook hands a layer's whole
    gradient, produced on the compute stream, to the reduce-scatter on its post-backward stream and frees it
    only when that finishes (pytorch/pytorch torch/distributed/fsdp/_runtime_utils.py @ 00ae0bc9,
    `_post_backward_hook`: "the unsharded gradient is produced in the computation stream and consumed in the
    post-backward stream"), one layer at least; DeepSpeed reduces from its own buckets (not counted here)."""
    fsdp = as_array(runtime) != Zero3Runtime.DEEPSPEED_2021
    return np.asarray(np.where(fsdp, as_array(layer_params), 0.0))


def _ring_gather(bytes_total: Array, ranks: Array, bandwidth: Array, latency: Array) -> Array:
    return np.asarray(
        all_gather_time(bytes_per_rank=bytes_total, ranks=ranks, bandwidth_bytes_per_s=bandwidth, latency_s=latency)
    )


def _ring_scatter(bytes_total: Array, ranks: Array, bandwidth: Array, latency: Array) -> Array:
    return np.asarray(
        reduce_scatter_time(bytes_per_rank=bytes_total, ranks=ranks, bandwidth_bytes_per_s=bandwidth, latency_s=latency)
    )


def zero3_exposed_s(
    *,
    runtime: Num,
    layers: Num,
    layer_params: Num,
    largest_tensor_params: Num,
    rest_params: Num,
    zero_group: Num,
    bandwidth_bytes_per_s: Num,
    latency_s: Num,
    forward_layer_s: Num,
    backward_layer_s: Num,
    full_recompute: Num,
    overlap: Num,
    compute_share: Num = 0.0,
    expert_layer_params: Num = 0.0,
    expert_group: Num = 1.0,
    expert_bandwidth_bytes_per_s: Num = 1.0,
    expert_latency_s: Num = 0.0,
) -> Array:
    """ZeRO-3 collective time left exposed per micro-batch on one stage (seconds).

    Each layer gathers its parameters in forward and again in backward (no caching across micro-batches),
    under DeepSpeed once more when recomputing (its checkpointed forward re-runs the fetch hooks); FSDP wraps
    the checkpointed layer (activation checkpointing applied to each block before sharding: pytorch/torchtitan
    torchtitan/parallelisms/parallelize_llama.py @ 582fe7d1, apply_ac before apply_fsdp; fairseq's
    build_decoder_layer), so its pre-backward gather also serves the recomputation. It reduce-scatters its
    gradients in backward. Prefetched
    (FSDP; DeepSpeed when every tensor fits its prefetch bucket), each pass exposes its first gather
    and the backward its last reduce-scatter, plus max(0, comm - compute) per further layer. Not
    prefetched, every gather waits in line with the compute; the reduce-scatters still run on their
    own stream under the backward. Without overlap every collective is exposed. The rest of the
    stage's parameters (embedding, head) gather unhidden, one tensor.

    A hidden collective still takes `compute_share` of the GPU from the compute it hides under (its
    kernels hold SMs and memory bandwidth): each overlapped window adds max(comm - compute, share x comm),
    Calculon's DP-overlap rule (calculon-ai/calculon calculon/llm/llm.py @ caa4b11f, `processor_usage`).

    Of a MoE layer's `layer_params`, the routed experts' `expert_layer_params` are sharded over the
    expert-data-parallel group (`experts.expert_data_parallel_group`, on its own link), so they are gathered and
    reduce-scattered there, one collective each after the dense part's (Megatron-Core's expert data parallelism).
    """
    deepspeed = as_array(runtime) == Zero3Runtime.DEEPSPEED_2021
    composer = as_array(runtime) == Zero3Runtime.FSDP_COMPOSER
    fairscale = as_array(runtime) == Zero3Runtime.FAIRSCALE_2021
    n, bw, lat = as_array(zero_group), as_array(bandwidth_bytes_per_s), as_array(latency_s)
    L, full = as_array(layers), as_array(full_recompute)
    P_expert = as_array(expert_layer_params)
    P = as_array(layer_params) - P_expert
    copies = np.where(deepspeed, n * EAGER_OP_HOST_S, 0.0)  # per list collective: one copy per rank
    gathers = np.where(deepspeed, DEEPSPEED_TENSORS_PER_LAYER, 1.0)
    scatters = np.where(deepspeed, np.maximum(np.ceil(P / DEEPSPEED_REDUCE_BUCKET_PARAMS), 1.0), 1.0)
    grad_bytes = reduce_bytes_per_param(runtime)
    ag = gathers * (_ring_gather(GATHER_BYTES_PER_PARAM * P / gathers, n, bw, lat) + copies)
    rs = scatters * (_ring_scatter(grad_bytes * P / scatters, n, bw, lat) + copies)
    if bool(np.any(P_expert > 0)):
        group, e_bw, e_lat = as_array(expert_group), as_array(expert_bandwidth_bytes_per_s), as_array(expert_latency_s)
        ag = ag + np.where(P_expert > 0, _ring_gather(GATHER_BYTES_PER_PARAM * P_expert, group, e_bw, e_lat), 0.0)
        rs = rs + np.where(P_expert > 0, _ring_scatter(grad_bytes * P_expert, group, e_bw, e_lat), 0.0)
    rest_p = as_array(rest_params)
    rest = (
        2.0 * _ring_gather(GATHER_BYTES_PER_PARAM * rest_p, n, bw, lat)
        + _ring_scatter(grad_bytes * rest_p, n, bw, lat)
        + 3.0 * copies
    )
    fwd, bwd = as_array(forward_layer_s), as_array(backward_layer_s)
    # DeepSpeed's recomputation re-runs its fetch hooks; FSDP units wrap the checkpointed layer, so one backward
    # gather serves the recomputation and the backward.
    regather = np.where(deepspeed, full, 0.0)
    bwd_comm = (1.0 + regather) * ag + rs
    steady = np.maximum(L - 1.0, 0.0)
    u = as_array(compute_share)
    prefetched = (
        ag + steady * np.maximum(ag - fwd, u * ag) + ag + rs + steady * np.maximum(bwd_comm - bwd, u * bwd_comm)
    )
    in_line = L * (2.0 + full) * ag + np.maximum(L * rs - steady * bwd, rs + u * steady * rs)
    serial_gathers = 2.0 + regather
    if np.any(composer):  # priced only where asked for: a plan search's runtime is one scalar
        backward_in_line = (
            ag
            + steady * np.maximum(ag - fwd, u * ag)
            + L * ag
            + np.maximum(L * rs - steady * bwd, rs + u * steady * rs)
        )
        prefetched = np.where(composer, backward_in_line, prefetched)
        serial_gathers = np.where(composer, 2.0, serial_gathers)
    if np.any(fairscale):  # one communicator: each backward gather behind the previous layer's reduce-scatter
        backward_in_series = ag + steady * np.maximum(ag - fwd, u * ag) + L * (ag + rs)
        prefetched = np.where(fairscale, backward_in_series, prefetched)
        serial_gathers = np.where(fairscale, 2.0, serial_gathers)
    serial = L * (serial_gathers * ag + rs)
    prefetches = ~deepspeed | (as_array(largest_tensor_params) <= DEEPSPEED_PREFETCH_BUCKET_PARAMS)
    overlapped = np.where(prefetches, prefetched, in_line)
    return np.asarray(np.where(as_array(overlap) > 0, overlapped, serial) + rest)
