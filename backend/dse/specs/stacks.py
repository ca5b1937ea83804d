"""Software stacks: how a framework runs a model's kernels, separate from the hardware.

The same GPU prices a layer differently under eager PyTorch (every op a host-launched kernel,
timed on the host), under CUDA graphs (launches replayed on the GPU) or under a compiler that
fuses element-wise ops into their neighbours. A stack says:
- what one element-wise kernel costs beyond its memory traffic (launch / host overhead),
- which element-wise ops are fused into a neighbouring kernel (they cost no launch of their own),
- which attention kernels it uses in prefill and in decode (and whether decode shares a KV head across
  the query heads of its group),
- which kernel calibration (`models_db/calibration/fits/`) its GEMMs and attention use, per dtype,
- for narrow (fp8) GEMMs: whether activations stay wider between kernels and attention computes in another dtype.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dse.specs.common import NonNegativeFloat
from dse.specs.hardware import BYTES_PER_ELEMENT

#: Element-wise ops of a decoder layer a stack may fuse into a neighbouring kernel.
FusableOp = Literal["norm_attn", "norm_ffn", "ffn_act", "softmax"]
#: Prefill attention: FlashAttention-1/2/3 (one fused kernel; v1 is what PyTorch 2.0 and 2.1 run behind
#: scaled_dot_product_attention) or unfused (two batched GEMMs + softmax).
PrefillAttentionKernel = Literal["flash-attention-1", "flash-attention-2", "flash-attention-3", "unfused"]
#: What a plan's selective recomputation redoes under the stack: the attention core (Korthikanti et al. 2022, as
#: Megatron-LM does) or every other matmul of a layer with every element-wise op (torchtitan's per-op policy).
SelectiveRecompute = Literal["attention-core", "every-other-matmul"]
#: Decode attention: one fused kernel over the paged KV cache (K and V in one pass) or two eager batched GEMVs.
DecodeAttentionKernel = Literal["paged-attention", "unfused-bmm"]
#: The host work of a serving engine's step, as vidur's CPU-overhead profiles split it (models_db/calibration/
#: fit_host_overhead.py): scheduling, preparing (and broadcasting) the inputs, sampling, processing the outputs
#: (appending tokens, stop checks, detokenising), and the driver-worker exchange of a Ray-run engine.
HostComponent = Literal["schedule", "prepare_inputs", "sampler", "process_outputs", "ray_comm"]


@dataclass(frozen=True)
class SoftwareStackSpec:
    """One software stack (framework + kernel libraries + launch mode)."""

    id: str
    name: str
    source: str
    #: Time one element-wise kernel costs beyond its memory traffic, seconds (launch + host overhead
    #: as the stack's timing sees it).
    elementwise_launch_overhead_s: NonNegativeFloat
    #: Element-wise ops that cost no launch of their own (fused into the neighbouring kernel).
    fused_ops: tuple[FusableOp, ...]
    prefill_attention_kernel: PrefillAttentionKernel
    decode_attention_kernel: DecodeAttentionKernel
    #: Calibration stack label of the GEMM fits, per dtype ("*" = any dtype not listed); the fit file is
    #: models_db/calibration/fits/<accelerator>.<dtype>.<label>.gemm.fit.json.
    gemm_fits: dict[str, str]
    #: Calibration stack label of the decode-attention fits (None: the roofline with the
    #: accelerator's attention memory efficiency).
    decode_attention_fit: str | None = None
    #: A graph compiler fuses chains of element-wise ops (activation after a norm, residual add, bias,
    #: gate product) into a neighbouring kernel: they cost no pass and no launch of their own.
    pointwise_fusion: bool = False
    #: The stack lays activations out channels-last itself (a TensorRT engine): its convolutions need no
    #: NCHW <-> NHWC transposes whatever memory format the framework model had.
    native_nhwc: bool = False
    #: Decode attention reads each KV head once for all the query heads of its group (grouped-query
    #: attention kernels: TensorRT-LLM's XQA, vLLM's paged attention). False: the kernel walks the cache once
    #: per query head, so a GQA model reads its KV cache heads / kv_heads times per step.
    decode_attention_shares_kv_heads: bool = True
    #: A gated FFN's gate and up projections run as one GEMM over the concatenated weights ([h, 2 ffn]). False:
    #: two GEMMs of [h, ffn] over the same input (TensorRT-LLM's GatedMLP unless the engine is built with
    #: --use_fused_mlp, "horizontal fusion in GatedMLP").
    fused_gate_up_gemm: bool = True
    #: Rotary position embedding and the write of the step's new keys and values into the KV cache run as kernels of
    #: their own in every layer, between the QKV GEMM and attention (vLLM's rotary_embedding and reshape_and_cache
    #: custom ops; vidur profiles them as attn_rope and attn_kv_cache_save). False: the stack fuses them into its
    #: attention kernels or the model has no such ops priced (today's numbers).
    rope_and_cache_write_kernels: bool = False
    #: The dtype activations are kept in between kernels when the GEMMs compute narrower (an fp8 recipe that
    #: quantizes each GEMM's input per tensor and writes its output in fp16): the residual stream, norms,
    #: activations, attention inputs and tensor-parallel all-reduces move this width. None: the work dtype.
    activation_storage_dtype: str | None = None
    #: The dtype the fused attention kernels compute in when the GEMMs run in another (an fp16 attention plugin
    #: beside fp8 GEMMs): prefill attention takes that dtype's kernel fit and peak. None: the work dtype.
    attention_dtype: str | None = None
    #: Training: every element-wise op of a layer is its own eager PyTorch kernel, in the dtype the model code
    #: casts it to (RMSNorm in fp32, rotary embeddings as complex fp32, SwiGLU's activation and gate product
    #: apart), its traffic counted op by op (`dse.engines.training.compute.eager_layer_traffic`); False: the fused
    #: kernels of Megatron-Core (the module docstring's counts).
    eager_elementwise: bool = False
    #: What selective recomputation redoes (`SelectiveRecompute`).
    selective_recompute: SelectiveRecompute = "attention-core"
    #: Bytes the optimizer step moves per parameter a GPU updates (training), gradient clipping included; None:
    #: a fused Adam kernel's 28 (`dse.engines.training.evaluate.OPTIMIZER_STEP_BYTES_PER_PARAM`). An unfused
    #: AdamW runs each of its element-wise updates as its own pass over the fp32 states.
    optimizer_step_bytes_per_param: NonNegativeFloat | None = None
    #: Bytes per gradient element the data-parallel reduction moves (ZeRO 0-2: the all-reduce, or the
    #: reduce-scatter before the weights' all-gather) and the tied-embedding all-reduce, per work dtype; a dtype
    #: not listed: 2 (the gradients' own width). Megatron-LM under bf16 accumulates and reduces them in fp32 (4).
    gradient_reduce_bytes_per_param: dict[str, NonNegativeFloat] = field(default_factory=dict)
    #: False: the runtime reduces gradients only once the whole backward has run, whatever a plan asks
    #: (Megatron-LM before `--overlap-grad-reduce`, added 2023-09); True: a plan's `overlap_grad_reduce` holds.
    overlaps_gradient_reduce: bool = True
    #: Serving: calibration label of the host-overhead fit (models_db/calibration/fits/*.<label>.host_overhead.
    #: host-fit.json) that prices the host work of each scheduler iteration; None: no host cost (the kernels only).
    host_overhead_fit: str | None = None
    #: The host components that run in series with the GPU every iteration (the rest overlap the GPU or run in
    #: another process).
    host_critical_path: tuple[HostComponent, ...] = ()
    #: Of those, the ones a multi-step scheduler runs once per block of scheduler steps (their time divided by the
    #: steps of a block).
    host_per_scheduler_block: tuple[HostComponent, ...] = ()
    #: The weight dtypes the stack's mixture-of-experts GEMMs take; None: any. With another weight dtype the
    #: routed experts keep the network's dtype (`moe_expert_dtype`): TensorRT-LLM v0.9.0's MoE plugin runs
    #: fp16/bf16/fp32 experts or int8/int4 weight-only ones, so an fp8 checkpoint quantizes the attention GEMMs
    #: alone and its experts stay fp16.
    moe_weight_dtypes: tuple[str, ...] | None = None
    #: The MoE grouped GEMMs are CUTLASS's Ampere (Sm80, mma.sync) kernels on every part, newer ones included
    #: (TensorRT-LLM v0.9.0's MoE plugin): on a newer part they keep the share of their Ampere efficiency that an
    #: Ampere-generation kernel measured on both parts keeps (`dse.catalog.calibration.ampere_kernel_share`).
    moe_gemm_ampere_kernels: bool = False
    #: Serving: a step's outputs are processed during the next step (asynchronous output processing) and reach the
    #: server only when that step's model call returns: a prefill's end, or a decode iteration's launch (its host
    #: work before the model). False: when the step that produced them ends.
    outputs_with_next_step: bool = False
    notes: str = ""
    field_sources: dict[str, str] = field(default_factory=dict)

    def gemm_fit_for(self, dtype: str) -> str | None:
        """The calibration stack label of this stack's GEMMs in `dtype`."""
        return self.gemm_fits.get(dtype, self.gemm_fits.get("*"))

    def moe_expert_dtype(self, weight_dtype: str, activation_dtype: str) -> str:
        """The dtype of the routed experts' weights (and their grouped GEMMs) for a model stored in
        `weight_dtype`: that dtype where the stack's MoE GEMMs take it, else the dtype activations are stored in
        between kernels (the network's dtype)."""
        if self.moe_weight_dtypes is None or weight_dtype in self.moe_weight_dtypes:
            return weight_dtype
        return self.stored_activation_dtype(activation_dtype)

    def stored_activation_dtype(self, work_dtype: str) -> str:
        """The dtype activations are stored in between kernels for work in `work_dtype`: the stack's storage
        dtype where it is wider than the work's, the work's own otherwise."""
        stored = self.activation_storage_dtype
        if stored is None or BYTES_PER_ELEMENT[stored] <= BYTES_PER_ELEMENT.get(work_dtype, 2.0):
            return work_dtype
        return stored
