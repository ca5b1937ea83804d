"""The three inputs of `evaluate_plans`: a model, a cluster and a plan, each a bag of arrays.

Every field broadcasts against every other (NumPy rules), so one call may cover many plans,
many clusters and many models at once. Categorical plan fields hold the integer codes of
`dse.engines.training.codes`. Units are SI (bytes, s, bytes/s, FLOP/s).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from dse.engines.device import Device
from dse.engines.transformer import parameter_breakdown
from dse.specs.common import Num
from dse.specs.hardware import AcceleratorSpec
from dse.specs.llm import LLMSpec
from dse.specs.network import ClusterSpec

Array = NDArray[np.float64]


def as_array(value: Num | int | bool) -> Array:
    """A float64 array view of a scalar or an array input."""
    return np.asarray(value, dtype=np.float64)


@dataclass(frozen=True)
class ModelArrays:
    """A decoder-only transformer's shape, with its exact parameter counts (from `dse.engines.transformer`)."""

    hidden_size: Num
    num_layers: Num
    num_heads: Num
    num_kv_heads: Num
    ffn_hidden_size: Num
    vocab_size: Num
    #: 1.0 for a gated (SwiGLU) FFN with three matrices, 0.0 for GELU with two.
    gated_ffn: Num
    #: 1.0 when the LM head shares the word embedding.
    tied_embeddings: Num
    #: Parameters of one layer split by TP (attention and FFN matrices and their biases).
    layer_sharded_params: Num
    #: Parameters of one layer every TP rank holds whole (the norms).
    layer_replicated_params: Num
    #: Word-embedding parameters (V*h), split by TP.
    word_embedding_params: Num
    #: Learned position embeddings (0 with RoPE), held whole.
    position_embedding_params: Num
    #: Final norm parameters.
    final_norm_params: Num
    #: All parameters of the model.
    total_params: Num
    #: 1.0 for RMSNorm, 0.0 for LayerNorm; 1.0 for rotary position embeddings applied to Q and K in every layer.
    #: Only an eager stack's element-wise traffic depends on them (`compute.eager_layer_traffic`).
    rms_norm: Num = 0.0
    rotary: Num = 0.0
    # -- mixture of experts (`dse.engines.training.experts`); the defaults are a dense model --
    #: Routed experts per MoE layer (0: dense), experts each token goes to, shared experts, one expert's width.
    num_experts: Num = 0.0
    experts_per_token: Num = 0.0
    shared_experts: Num = 0.0
    expert_ffn_hidden_size: Num = 0.0
    #: Share of the layers that are MoE layers (the others are dense FFN layers of ffn_hidden_size).
    moe_layer_fraction: Num = 0.0
    #: Routed-expert parameters of one layer, the mean over all layers; split by TP and by EP.
    layer_expert_params: Num = 0.0
    #: Parameters a token does not go through (routed experts it is not sent to): total - activated.
    inactive_params: Num = 0.0
    # -- attention other than h/a-wide heads (0: none) --
    #: Width of one query/key head when it is not hidden / heads (Qwen3: 128); with MLA the no-RoPE part.
    attention_head_dim: Num = 0.0
    #: Multi-head latent attention (DeepSeek-V2/V3): query and KV ranks, RoPE width, value width per head.
    q_lora_rank: Num = 0.0
    kv_lora_rank: Num = 0.0
    qk_rope_head_dim: Num = 0.0
    v_head_dim: Num = 0.0
    #: Multi-token-prediction modules trained alongside (DeepSeek-V3's depth D; 0: none): each is a projection
    #: of 2h -> h, one more layer and another pass through the shared output head and loss, on the last stage.
    mtp_depth: Num = 0.0

    @classmethod
    def from_llm(cls, spec: LLMSpec) -> ModelArrays:
        """From a catalog architecture; its numeric fields may be arrays (a sweep over them)."""
        if spec.is_moe or spec.is_mla or spec.attention_head_dim is not None:
            from dse.engines.training.experts import moe_model_arrays  # here: experts imports this module

            return moe_model_arrays(cls, spec)
        h, L, V = as_array(spec.hidden_size), as_array(spec.num_layers), as_array(spec.vocab_size)
        positions = as_array(spec.max_context_tokens) if spec.position_embedding == "learned" else 0.0
        params = parameter_breakdown(
            hidden_size=h,
            num_layers=L,
            num_heads=as_array(spec.num_heads),
            num_kv_heads=as_array(spec.num_kv_heads),
            ffn_hidden_size=as_array(spec.ffn_hidden_size),
            vocab_size=V,
            gated_ffn=spec.ffn_activation == "swiglu",
            tied_embeddings=spec.tied_embeddings,
            learned_positions=positions,
            layernorm=spec.norm_type == "layernorm",
            linear_bias=spec.linear_bias,
        )
        layer_norms = as_array(params.layer_norms)
        return cls(
            hidden_size=h,
            num_layers=L,
            num_heads=as_array(spec.num_heads),
            num_kv_heads=as_array(spec.num_kv_heads),
            ffn_hidden_size=as_array(spec.ffn_hidden_size),
            vocab_size=V,
            gated_ffn=1.0 if spec.ffn_activation == "swiglu" else 0.0,
            tied_embeddings=1.0 if spec.tied_embeddings else 0.0,
            layer_sharded_params=as_array(params.layer_attention) + params.layer_ffn,
            layer_replicated_params=layer_norms,
            word_embedding_params=V * h,
            position_embedding_params=positions * h,
            final_norm_params=as_array(params.norms) - L * layer_norms,
            total_params=as_array(params.total),
            rms_norm=1.0 if spec.norm_type == "rmsnorm" else 0.0,
            rotary=1.0 if spec.position_embedding == "rope" else 0.0,
        )

    @classmethod
    def gpt(
        cls,
        *,
        hidden_size: Num,
        num_layers: Num,
        num_heads: Num,
        vocab_size: Num,
        sequence_length: Num,
    ) -> ModelArrays:
        """A GPT-2/3-style model (MHA, GELU FFN of 4h, biases, LayerNorm, learned positions, tied embeddings)
        from array shapes: the Megatron-LM configurations of Narayanan et al. (2021)."""
        params = parameter_breakdown(
            hidden_size=hidden_size,
            num_layers=num_layers,
            num_heads=num_heads,
            num_kv_heads=num_heads,
            ffn_hidden_size=4.0 * as_array(hidden_size),
            vocab_size=vocab_size,
            gated_ffn=False,
            tied_embeddings=True,
            learned_positions=sequence_length,
            layernorm=True,
            linear_bias=True,
        )
        h = as_array(hidden_size)
        return cls(
            hidden_size=h,
            num_layers=as_array(num_layers),
            num_heads=as_array(num_heads),
            num_kv_heads=as_array(num_heads),
            ffn_hidden_size=4.0 * h,
            vocab_size=as_array(vocab_size),
            gated_ffn=0.0,
            tied_embeddings=1.0,
            layer_sharded_params=as_array(params.layer_attention) + params.layer_ffn,
            layer_replicated_params=as_array(params.layer_norms),
            word_embedding_params=as_array(vocab_size) * h,
            position_embedding_params=as_array(sequence_length) * h,
            final_norm_params=2.0 * h,
            total_params=as_array(params.total),
        )


@dataclass(frozen=True)
class ClusterArrays:
    """Nodes of identical GPUs and the links between them, in SI units."""

    nodes: Num
    gpus_per_node: Num
    #: One GPU's rates for the plan's dtype: peak, bandwidth, capacity and their calibrated
    #: efficiencies, as `Device.from_accelerator` translates them (the only translation).
    device: Device
    intra_node_bandwidth_bytes_per_s: Num
    intra_node_latency_s: Num
    #: A GPU's share of its node's network, per direction.
    inter_node_bandwidth_per_gpu_bytes_per_s: Num
    inter_node_latency_s: Num
    #: The least each intra-node step of a ring that crosses nodes costs (NCCL's network proxy overhead).
    inter_node_ring_step_overhead_s: Num = 0.0
    #: A GPU's share of its node's SSD array (0 without drives).
    ssd_write_bandwidth_per_gpu_bytes_per_s: Num = 0.0
    ssd_read_bandwidth_per_gpu_bytes_per_s: Num = 0.0
    #: Rated bytes the node's drives may absorb over their warranty (0 without drives).
    ssd_endurance_bytes_per_node: Num = 0.0
    #: Optional measured nodes x nodes per-GPU bandwidth matrix (one cluster for all plans), or a stack of such
    #: matrices (orders x nodes x nodes: the same cluster under several node orders) that `node_order` picks from.
    node_pair_bandwidth_bytes_per_s: Array | None = None
    #: With a stack of measured matrices: the index of the one each plan runs on (broadcast like any per-plan
    #: field), so that a plan search judges its plans on several node orders in one call. Unused otherwise.
    node_order: Num = 0.0
    #: fp8 training (Transformer Engine): the device the layers' GEMMs run on in fp8 (attention, element-wise
    #: ops and the logits stay on `device`, in bf16; fp8 weight copies are kept). None: no GEMM runs in fp8.
    fp8_gemm_device: Device | None = None
    #: The share of its kernels' timed clock the GPU holds under a training step's sustained load, already in the
    #: devices' compute rates (`AcceleratorSpec.sustained_clock_fraction`); MFU divides it back out, so it stays
    #: against the datasheet peak.
    sustained_clock_fraction: Num = 1.0
    #: Bytes per gradient element the data-parallel reduction moves: the stack's width for the plan's dtype
    #: (`SoftwareStackSpec.gradient_reduce_bytes_per_param`: Megatron-LM's fp32 under bf16), else the
    #: 2 of `memory.GRADIENT_BYTES_PER_PARAM` (memory imports this module).
    gradient_reduce_bytes_per_param: Num = 2.0

    @classmethod
    def from_spec(
        cls,
        cluster: ClusterSpec,
        *,
        dtype: str = "bf16",
        device: Device | None = None,
        fp8_gemm_device: Device | None = None,
    ) -> ClusterArrays:
        """`device` (default: the accelerator's roofline rates for `dtype`) prices the work; give the device a
        software stack's kernel models make (`dse.catalog.calibration.stack_device`) to price kernels by shape."""
        acc: AcceleratorSpec = cluster.accelerator
        # a training step is a sustained load: the clock the part holds, not the one its kernels were timed at
        sustained = acc.sustained_clock_fraction
        device = Device.from_accelerator(acc, dtype) if device is None else device
        fp8_gemm_device = None if fp8_gemm_device is None else fp8_gemm_device.at_clock_fraction(sustained)
        ssd = cluster.ssd
        drives = float(cluster.ssds_per_node) if ssd is not None else 0.0
        matrix = cluster.node_pair_bandwidth_bytes_per_s
        return cls(
            nodes=float(cluster.nodes),
            gpus_per_node=float(cluster.gpus_per_node),
            device=device.at_clock_fraction(sustained),
            # what a large NCCL collective reaches on the link (its bus bandwidth), not the datasheet figure
            intra_node_bandwidth_bytes_per_s=cluster.intra_node_link.bandwidth_per_direction_bytes_per_s
            * cluster.intra_node_link.bus_bandwidth_fraction,
            intra_node_latency_s=cluster.intra_node_link.latency_s,
            inter_node_bandwidth_per_gpu_bytes_per_s=cluster.inter_node_bandwidth_per_gpu_bytes_per_s
            * cluster.inter_node_link.bus_bandwidth_fraction,
            inter_node_latency_s=cluster.inter_node_link.latency_s,
            inter_node_ring_step_overhead_s=cluster.inter_node_link.ring_step_overhead_s,
            ssd_write_bandwidth_per_gpu_bytes_per_s=(
                drives * ssd.write_bandwidth_bytes_per_s / cluster.gpus_per_node if ssd else 0.0
            ),
            ssd_read_bandwidth_per_gpu_bytes_per_s=(
                drives * ssd.read_bandwidth_bytes_per_s / cluster.gpus_per_node if ssd else 0.0
            ),
            ssd_endurance_bytes_per_node=drives * ssd.endurance_bytes_written if ssd else 0.0,
            node_pair_bandwidth_bytes_per_s=None if matrix is None else np.asarray(matrix, dtype=np.float64),
            fp8_gemm_device=fp8_gemm_device,
            sustained_clock_fraction=sustained,
            gradient_reduce_bytes_per_param=(
                2.0 if device.stack is None else device.stack.gradient_reduce_bytes_per_param.get(dtype, 2.0)
            ),
        )


@dataclass(frozen=True)
class PlanArrays:
    """One or many parallel training plans. Degrees and sizes are whole numbers (as floats);
    categorical choices are codes of `dse.engines.training.codes`."""

    global_batch_size: Num
    micro_batch_size: Num
    sequence_length: Num
    data_parallel: Num
    tensor_parallel: Num
    pipeline_parallel: Num
    sequence_parallel: Num = 0.0
    #: GPUs the sequence is split over for Ring / Ulysses (1 for none and Megatron-SP, which reuses TP).
    sequence_parallel_degree: Num = 1.0
    zero_stage: Num = 0.0
    recompute: Num = 0.0
    pipeline_schedule: Num = 1.0
    virtual_stages: Num = 1.0
    activation_offload: Num = 0.0
    #: 1.0 when the data-parallel gradient reduction overlaps the last micro-batch's backward.
    overlap_grad_reduce: Num = 1.0
    #: 1.0 when ZeRO-1's all-gather of the updated weights runs under the next forward (Megatron-Core
    #: `overlap_param_gather`, off by default); 0.0: it waits after the optimizer step. ZeRO-2 never overlaps it.
    overlap_param_gather: Num = 0.0
    #: 1.0 for FlashAttention (fused attention: no stored scores, QK^T recomputed in backward).
    flash_attention: Num = 0.0
    #: 1.0 when the TP collectives are split into tiles that overlap the adjacent GEMMs (Megatron-LM
    #: `--tp-comm-overlap`, Transformer Engine userbuffers).
    tp_comm_overlap: Num = 0.0
    #: How ZeRO-3 gathers parameters: a `codes.Zero3Runtime` (0 FSDP, 1 DeepSpeed as of 2021, 2 FSDP as Composer,
    #: 3 FairScale FSDP as of 2021).
    zero3_runtime: Num = 0.0
    #: Context parallelism (Megatron-Core `--context-parallel-size`): GPUs the sequence is split over in
    #: 2 x degree load-balanced chunks, a rank dimension of its own beside TP (1: none).
    context_parallel: Num = 1.0
    #: How the context-parallel ranks exchange K/V: a `codes.ContextParallelExchange` (0 ring P2P, 1 all-gather).
    context_parallel_exchange: Num = 0.0
    #: Transformer layers on the first and on the last pipeline stage (0: the even share, layers / stages);
    #: the other stages split the rest evenly (Llama 3 405B ran one layer fewer on each: Dubey et al. 2024).
    first_stage_layers: Num = 0.0
    last_stage_layers: Num = 0.0
    #: GPUs each MoE layer's routed experts are sharded over (EP; 1 for a dense model), drawn from the
    #: data- and context-parallel ranks as Megatron-Core does (`dse.engines.training.experts`).
    expert_parallel: Num = 1.0
    #: Tokens the busiest expert (EP rank) gets over the mean (1.0: perfectly balanced routing).
    expert_load_imbalance: Num = 1.0
    #: Megatron-Core `--moe-expert-capacity-factor` with padding to capacity: each expert runs capacity x
    #: mean tokens; 0 = dropless (each runs what it gets, the busiest one `expert_load_imbalance` x mean).
    expert_capacity_factor: Num = 0.0
    #: 1.0 when each micro-batch's EP all-to-alls run under another micro-batch's compute (DeepSeek-V3's
    #: DualPipe; Megatron-Core's `--overlap-moe-expert-parallel-comm`), on a share of the SMs.
    expert_comm_overlap: Num = 0.0
    #: Node-limited routing: a token's routed experts sit on at most this many nodes (DeepSeek-V3 M = 4);
    #: 0: no limit. It changes the traffic only with `expert_dispatch_dedup`.
    expert_node_limit: Num = 0.0
    #: 1.0 for DeepSeek-V3's dispatch kernels: a token crosses the network once per target node (to the
    #: same-index GPU) and NVLink forwards it to the node's experts; 0: every routed copy is sent itself.
    expert_dispatch_dedup: Num = 0.0
    #: 1.0 when the dispatch and the gradient sent before the down-projections' backward go in fp8 (with a
    #: scale per 128 elements); the combine and its gradient stay bf16 (DeepSeek-V3); 0: all bf16.
    expert_dispatch_fp8: Num = 0.0
    #: 1.0 for DeepSeek-V3's DualPipe on a 1F1B plan: micro-batches fed from both ends of the pipeline, a forward
    #: and a backward chunk overlapped, so the bubble is (p/2 - 1)(F&B + B - 3W) (`schedules.dualpipe_bubble_s`).
    dualpipe: Num = 0.0
    #: 1.0 when the backward recomputes every RMSNorm and the MLA up-projections instead of keeping their outputs
    #: (DeepSeek-V3, arXiv:2412.19437 Section 3.2.3); 0: kept. Full recomputation redoes them anyway.
    recompute_norms_and_up_projections: Num = 0.0

    def select(self, mask: NDArray[np.bool_]) -> PlanArrays:
        """The plans where `mask` is true, as flat arrays (scalar fields stay scalars).

        Plan search screens a large batch with `plan_reasons` and evaluates only the valid ones.
        """
        return select_inputs(self, mask)


#: Fields that describe the whole cluster rather than one value per plan.
NOT_BROADCAST = frozenset({"node_pair_bandwidth_bytes_per_s"})

InputsT = TypeVar("InputsT", ModelArrays, ClusterArrays, PlanArrays, Device)


def field_shapes(inputs: ModelArrays | ClusterArrays | PlanArrays | Device) -> list[tuple[int, ...]]:
    """Shapes of the per-plan fields (those of a nested Device too), for the broadcast shape of a call."""
    shapes: list[tuple[int, ...]] = []
    for f in fields(inputs):
        if f.name in NOT_BROADCAST:
            continue
        value = getattr(inputs, f.name)
        if isinstance(value, Device):
            shapes += field_shapes(value)
        else:
            shapes.append(np.shape(value))
    return shapes


class Selection:
    """The plans where a mask is true, found once and taken from any number of arrays that broadcast to it.

    `np.nonzero` runs once; each array is then gathered by the flat index of its own (small) shape, computed
    once per distinct shape (a search chunk's fields are layout- or inner-axis-shaped): one gather per field,
    not a pass of a boolean mask over a broadcast view of the whole grid per field. The order is the mask's
    (C order), as boolean indexing gives."""

    def __init__(self, mask: NDArray[np.bool_]) -> None:
        self.mask = mask
        self.shape = mask.shape
        #: Flat indices into the mask, and the position along each axis (`np.nonzero`'s, found faster for a mask
        #: of many dimensions: the flat indices first).
        self.flat = np.flatnonzero(mask)
        self.positions = np.unravel_index(self.flat, mask.shape) if mask.ndim else ()
        self.count = int(self.flat.size)
        self._flat: dict[tuple[int, ...], NDArray[np.intp]] = {}

    def _index(self, shape: tuple[int, ...]) -> NDArray[np.intp]:
        """The flat index into an array of `shape` (broadcastable to the mask) of each selected plan."""
        padded = (1,) * (len(self.shape) - len(shape)) + shape
        found = self._flat.get(padded)
        if found is None:
            found = np.zeros(self.count, dtype=np.intp)
            stride = 1
            for position, size in zip(self.positions[::-1], padded[::-1], strict=True):  # a loop over axes
                if size > 1:
                    found = found + position * stride if stride > 1 else found + position
                stride *= size
            self._flat[padded] = found
        return found

    def take(self, value: Any) -> Array:
        """`np.broadcast_to(value, mask.shape)[mask]` as float64, by one gather."""
        array = np.asarray(value, dtype=np.float64)
        if not self.shape:  # one plan
            return np.broadcast_to(array, self.shape)[self.mask]
        if 0 in array.strides:  # a broadcast view: its first row along each repeated axis holds every value
            array = array[tuple(slice(0, 1) if stride == 0 else slice(None) for stride in array.strides)]
        return array.reshape(-1)[self._index(array.shape)]


def select_inputs(inputs: InputsT, mask: NDArray[np.bool_] | Selection) -> InputsT:
    """The inputs at the plans where `mask` is true, as flat arrays (scalars stay scalars)."""
    selection = mask if isinstance(mask, Selection) else Selection(mask)
    picked: dict[str, Any] = {}
    for f in fields(inputs):  # a loop over the dataclass's fields, not over plans
        value = getattr(inputs, f.name)
        if isinstance(value, Device):
            picked[f.name] = select_inputs(value, selection)
        elif f.name in NOT_BROADCAST or np.ndim(value) == 0:
            picked[f.name] = value
        else:
            picked[f.name] = selection.take(value)
    return type(inputs)(**picked)
