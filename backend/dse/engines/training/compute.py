"""Work of one transformer layer and of the output layer, per GPU and micro-batch, forward pass.

GEMM FLOP (Narayanan et al. 2021, Section 5.1; the backward pass doubles them):
    QKV 2*b*s*h*(h + 2*kv_width), scores and context 4*b*s^2*h, projection 2*b*s*h^2,
    FFN 4*b*s*h*f (GELU) or 6*b*s*h*f (SwiGLU), logits 2*b*s*h*V;
each divided by the tensor-parallel degree t and, for Ring / Ulysses, by the sequence degree n.
For GPT (f = 4h) a layer is 24*b*s*h^2*(1 + s/(6h)) forward, so an iteration with full
recomputation executes Narayanan's 96*B*s*L*h^2*(1 + s/(6h) + V/(16*L*h)).

Element-wise kernels are memory bound; their fp16 traffic per forward pass, with Megatron's
fused kernels (bytes read + written per element):
    two LayerNorms 2 x (2 + 2) per s*b*h; two bias-dropout-residual adds 2 x (2 + 2 + 2 + 1);
    bias-GELU 2 + 2 per s*b*f (SwiGLU 2 + 2 + 2); scale-mask-softmax 2 + 2 and attention
    dropout 2 + 2 + 1 per score element; the backward pass moves twice the forward traffic.
The LayerNorm and dropout-add regions are whole on every TP rank unless Megatron-SP splits them.
Cross-entropy over fp32 logits: 10 bytes per logit forward (read fp16, write and re-read fp32
exponentials), 6 backward (read fp32, write fp16 gradient).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dse.engines.device import Device
from dse.engines.training.codes import SequenceParallel
from dse.engines.training.inputs import Array, as_array
from dse.specs.common import Num

#: Bytes per element of the element-wise kernels (see the module docstring).
LAYERNORM_BYTES = 2 * (2.0 + 2.0)
DROPOUT_ADD_BYTES = 2 * (2.0 + 2.0 + 2.0 + 1.0)
GELU_BYTES = 2.0 + 2.0
SWIGLU_BYTES = 2.0 + 2.0 + 2.0
SOFTMAX_BYTES = 2.0 + 2.0
ATTENTION_DROPOUT_BYTES = 2.0 + 2.0 + 1.0
CROSS_ENTROPY_FORWARD_BYTES = 2.0 + 4.0 + 4.0
CROSS_ENTROPY_BACKWARD_BYTES = 4.0 + 2.0
#: The backward pass of a layer moves twice the forward element-wise traffic and does twice the GEMM FLOP.
BACKWARD_FACTOR = 2.0


@dataclass(frozen=True)
class LayerWork:
    """Forward work of one layer on one GPU for one micro-batch."""

    gemm_flop: Array
    #: The part of gemm_flop in QK^T and AV (what selective recomputation redoes).
    attention_flop: Array
    elementwise_bytes: Array
    #: The part of elementwise_bytes in softmax and attention dropout.
    attention_elementwise_bytes: Array


def layer_forward_work(
    *,
    sequence_length: Num,
    micro_batch_size: Num,
    hidden_size: Num,
    num_heads: Num,
    num_kv_heads: Num,
    ffn_hidden_size: Num,
    gated_ffn: Num,
    tensor_parallel: Num,
    sequence_parallel: Num,
    sequence_parallel_degree: Num,
    flash_attention: Num = 0.0,
    context_parallel: Num = 1.0,
) -> LayerWork:
    """With FlashAttention the softmax and dropout run inside the attention kernel: no score traffic.
    Context parallelism splits the tokens like Ring (each rank: s/CP queries against the whole sequence)."""
    s, b, h, a = as_array(sequence_length), as_array(micro_batch_size), as_array(hidden_size), as_array(num_heads)
    f, t, variant = as_array(ffn_hidden_size), as_array(tensor_parallel), as_array(sequence_parallel)
    context = np.where(
        (variant == SequenceParallel.RING) | (variant == SequenceParallel.ULYSSES), sequence_parallel_degree, 1.0
    ) * as_array(context_parallel)
    s_local = s / context
    tokens = b * s_local
    kv_width = as_array(num_kv_heads) * h / a
    gated = as_array(gated_ffn) > 0
    qkv = 2.0 * tokens * h * (h + 2.0 * kv_width)
    attention = 4.0 * tokens * s * h
    projection = 2.0 * tokens * h * h
    ffn = np.where(gated, 6.0, 4.0) * tokens * h * f
    gemm = (qkv + attention + projection + ffn) / t
    replicated_regions = (LAYERNORM_BYTES + DROPOUT_ADD_BYTES) * tokens * h
    replicated_regions = replicated_regions / np.where(variant == SequenceParallel.MEGATRON, t, 1.0)
    activation_fn = np.where(gated, SWIGLU_BYTES, GELU_BYTES) * tokens * f / t
    unfused = as_array(flash_attention) <= 0
    attention_bytes = np.where(unfused, (SOFTMAX_BYTES + ATTENTION_DROPOUT_BYTES) * a * tokens * s / t, 0.0)
    return LayerWork(
        gemm_flop=np.asarray(gemm),
        attention_flop=np.asarray(attention / t),
        elementwise_bytes=np.asarray(replicated_regions + activation_fn + attention_bytes),
        attention_elementwise_bytes=np.asarray(attention_bytes),
    )


def output_layer_work(
    *,
    sequence_length: Num,
    micro_batch_size: Num,
    hidden_size: Num,
    vocab_size: Num,
    tensor_parallel: Num,
    context: Num,
) -> tuple[Array, Array, Array]:
    """(forward GEMM FLOP, forward element-wise bytes, backward element-wise bytes) of the logits and the loss."""
    tokens = as_array(micro_batch_size) * as_array(sequence_length) / as_array(context)
    logits = tokens * as_array(vocab_size) / as_array(tensor_parallel)
    flop = 2.0 * logits * as_array(hidden_size)
    return (
        np.asarray(flop),
        np.asarray(CROSS_ENTROPY_FORWARD_BYTES * logits),
        np.asarray(CROSS_ENTROPY_BACKWARD_BYTES * logits),
    )


# --- Pricing: every GEMM by its shape, attention by its kernel, element-wise ops memory-bound -----------------
#: Element-wise kernels of one layer's forward pass a stack may fuse into a neighbour (`SoftwareStackSpec.fused_ops`):
#: the two norms (into the following GEMM, Transformer Engine's LayerNormLinear / LayerNormMLP) and the FFN
#: activation. The two bias-dropout-residual adds are one kernel each under every stack, and so are the
#: unfused attention's scale-mask-softmax and its dropout (Megatron-LM fused_softmax.py, then torch dropout).
FUSABLE_LAYER_OPS = ("norm_attn", "norm_ffn", "ffn_act")
UNFUSED_LAYER_KERNELS = 2.0
UNFUSED_ATTENTION_KERNELS = 2.0
#: FlashAttention's backward recomputes the scores and runs 5 matmuls to the forward's 2: 2.5x the forward
#: FLOP (Dao 2023, FlashAttention-2, Section 3.1.2); the engine books 2x as backward and 0.5x as recomputation.
#: Where the stack's kernel has a forward + backward table (FlashAttention-2 on A100 and H100), backward and
#: recomputation together take that pair's time less the forward's, split 2 : 0.5; otherwise they run at the
#: forward model's rate (optimistic: the backward kernels run slower than the forward).
FLASH_BACKWARD_FLOP_FACTOR = 2.0
FLASH_RECOMPUTE_FLOP_FACTOR = 0.5
#: Transformer Engine's fp8 GEMM inputs come from a fused cast-transpose kernel: read bf16 (2 bytes), write the
#: fp8 copy and its transpose for the other GEMM of the backward (1 + 1) and reduce the amax in the same pass
#: (NVIDIA/TransformerEngine transformer_engine/common/transpose/cast_transpose.cu; docs "Using FP8 with
#: Transformer Engine": activations and gradients are cast per GEMM, weights once per step).
FP8_CAST_TRANSPOSE_BYTES = 2.0 + 1.0 + 1.0


@dataclass(frozen=True)
class Gemm:
    """C[m, n] = A[m, k] @ B[k, n], `count` times over (a batched GEMM: one per sequence and head)."""

    m: Array
    n: Array
    k: Array
    count: Array


@dataclass(frozen=True)
class LayerGemms:
    """The GEMMs of one layer's forward pass on one GPU for one micro-batch (tensor-parallel shards)."""

    qkv: Gemm
    projection: Gemm
    #: FFN up (and gate, one GEMM of twice the width when gated) and down.
    ffn_in: Gemm
    ffn_out: Gemm
    #: Unfused attention: scores Q K^T and context P V per sequence and head.
    scores: Gemm
    context: Gemm
    #: Attention as one fused kernel: sequences, heads on this GPU, queries, keys, head dim.
    attention_batch: Array
    attention_heads: Array
    attention_q_len: Array
    attention_kv_len: Array
    head_dim: Array

    @property
    def weight_gemms(self) -> tuple[Gemm, Gemm, Gemm, Gemm]:
        return (self.qkv, self.projection, self.ffn_in, self.ffn_out)


def layer_gemms(
    *,
    sequence_length: Num,
    micro_batch_size: Num,
    hidden_size: Num,
    num_heads: Num,
    num_kv_heads: Num,
    ffn_hidden_size: Num,
    gated_ffn: Num,
    tensor_parallel: Num,
    context: Num,
) -> LayerGemms:
    """Shapes of one layer's GEMMs per GPU: tokens b*s/n (Ring / Ulysses split s over n GPUs), weights split by t.

    Attention per GPU is 1/n of the sequence's attention over a/t heads; it is priced as a/(t*n) heads over the
    whole sequence (DeepSpeed-Ulysses' layout; a load-balanced ring does the same work)."""
    s, b, h, a = as_array(sequence_length), as_array(micro_batch_size), as_array(hidden_size), as_array(num_heads)
    f, t, n = as_array(ffn_hidden_size), as_array(tensor_parallel), as_array(context)
    tokens = b * s / n
    kv_width = as_array(num_kv_heads) * h / a
    d = h / a
    heads = a / t
    one = np.ones(())
    rows = b * heads * s / n  # score rows of the batched attention GEMMs
    return LayerGemms(
        qkv=Gemm(tokens, (h + 2.0 * kv_width) / t, h, one),
        projection=Gemm(tokens, h, h / t, one),
        ffn_in=Gemm(tokens, np.where(as_array(gated_ffn) > 0, 2.0, 1.0) * f / t, h, one),
        ffn_out=Gemm(tokens, h, f / t, one),
        scores=Gemm(rows, s, d, one),
        context=Gemm(rows, d, s, one),
        attention_batch=b,
        attention_heads=heads / n,
        attention_q_len=s,
        attention_kv_len=s,
        head_dim=d,
    )


def gemm_pass_times(device: Device, gemms: Sequence[Gemm]) -> list[tuple[Array, Array]]:
    """(forward, backward) seconds of each GEMM: C = A B; backward dA = dC B^T (m x k over n, the data gradient)
    and dB = A^T dC (k x n over m, the weight gradient), each priced by its own shape (`Device.gemm_time_s`).

    Every pass of every GEMM goes through the kernel model in one call (stacked on a leading axis): the
    model's cost is then per element, not per call, which keeps a plan-search chunk fast."""
    passes: list[tuple[Array, Array, Array]] = []
    for g in gemms:
        rows, inner_rows = g.count * g.m, g.count * g.k
        passes += [(rows, g.n, g.k), (rows, g.k, g.n), (inner_rows, g.n, g.m)]
    shape = np.broadcast_shapes(*(np.shape(x) for p in passes for x in p))
    m, n, k = (np.empty((len(passes), *shape)) for _ in range(3))
    for row, p in enumerate(passes):  # a loop over the passes (a few tens): each row filled by broadcasting
        m[row], n[row], k[row] = p
    times = np.asarray(device.gemm_time_s(m, n, k).time_s)
    return [(times[3 * i], times[3 * i + 1] + times[3 * i + 2]) for i in range(len(gemms))]


def elementwise_pass_s(device: Device, bytes_moved: Num, kernels: Num) -> Array:
    """A memory-bound pass: its bytes at the achieved bandwidth plus `kernels` launches of the stack (the
    accelerator's kernel overhead without a stack)."""
    launch = device.kernel_overhead_s if device.stack is None else device.stack.elementwise_launch_overhead_s
    memory = device.op_time_s(0.0, bytes_moved, kernels=0.0, op_class="vector").time_s
    return np.asarray(memory + as_array(kernels) * launch)


# --- Eager PyTorch (a stack with `eager_elementwise`): each element-wise op its own kernel, its own traffic --------
#: Bytes read + written per element by the eager ops of one layer's forward pass (bf16 activations; no dropout:
#: llm-foundry's MPT defaults resid_pdrop = emb_pdrop = attn_pdrop = 0, torchtitan's Llama has none).
#: F.layer_norm is one kernel (read 2, write 2).
EAGER_LAYERNORM_BYTES = 2.0 + 2.0
EAGER_LAYERNORM_KERNELS = 1.0
#: torchtitan's RMSNorm (torchtitan/models/norms.py @ 9dec370ad26b): x.float() (2 + 4), pow(2) (4 + 4), mean (4),
#: x * rsqrt (4 + 4), type_as (4 + 2), * weight (2 + 2); the eps add and the rsqrt touch one value per token.
EAGER_RMSNORM_BYTES = (2.0 + 4.0) + (4.0 + 4.0) + 4.0 + (4.0 + 4.0) + (4.0 + 2.0) + (2.0 + 2.0)
EAGER_RMSNORM_KERNELS = 8.0
#: torchtitan's apply_rotary_emb (torchtitan/models/llama/model.py @ 9dec370ad26b), per query or key element:
#: .float() (2 + 4), the complex multiply by freqs_cis (4 + 4), type_as (4 + 2); three kernels per tensor.
EAGER_ROTARY_BYTES = (2.0 + 4.0) + (4.0 + 4.0) + (4.0 + 2.0)
EAGER_ROTARY_KERNELS = 6.0
#: repeat_kv (same file): expand + reshape copies K and V to every query head when there are fewer KV heads,
#: reading kv_width and writing h elements per token for each of the two (2 bytes each).
EAGER_REPEAT_KV_KERNELS = 2.0
#: The two residual adds: read both operands, write the sum.
EAGER_RESIDUAL_BYTES = 2.0 + 2.0 + 2.0
#: Per FFN element: GELU (2 + 2); SwiGLU's silu (2 + 2) and gate product (2 + 2 + 2), two kernels.
EAGER_GELU_BYTES = 2.0 + 2.0
EAGER_SWIGLU_BYTES = (2.0 + 2.0) + (2.0 + 2.0 + 2.0)


def eager_layer_traffic(
    *,
    sequence_length: Num,
    micro_batch_size: Num,
    hidden_size: Num,
    num_heads: Num,
    num_kv_heads: Num,
    ffn_hidden_size: Num,
    gated_ffn: Num,
    rms_norm: Num,
    rotary: Num,
    tensor_parallel: Num,
    context: Num,
) -> tuple[Array, Array]:
    """(bytes, kernels) of one layer's forward element-wise ops outside attention under eager PyTorch, per GPU and
    micro-batch: two norms and two residual adds over the whole hidden width (as without Megatron-SP), the FFN
    activation, rotary embeddings on Q and K and the K/V head repeat over the TP shard's heads."""
    s, b, h, a = as_array(sequence_length), as_array(micro_batch_size), as_array(hidden_size), as_array(num_heads)
    f, t = as_array(ffn_hidden_size), as_array(tensor_parallel)
    tokens = b * s / as_array(context)
    kv_width = as_array(num_kv_heads) * h / a
    rms, gated = as_array(rms_norm) > 0, as_array(gated_ffn) > 0
    rope, grouped = as_array(rotary) > 0, kv_width < h
    norm_bytes = np.where(rms, EAGER_RMSNORM_BYTES, EAGER_LAYERNORM_BYTES)
    per_token = (
        2.0 * (norm_bytes + EAGER_RESIDUAL_BYTES) * h
        + np.where(gated, EAGER_SWIGLU_BYTES, EAGER_GELU_BYTES) * f / t
        + np.where(rope, EAGER_ROTARY_BYTES * (h + kv_width) / t, 0.0)
        + np.where(grouped, 2.0 * 2.0 * (kv_width + h) / t, 0.0)
    )
    kernels = (
        2.0 * np.where(rms, EAGER_RMSNORM_KERNELS, EAGER_LAYERNORM_KERNELS)
        + 2.0
        + np.where(gated, 2.0, 1.0)
        + np.where(rope, EAGER_ROTARY_KERNELS, 0.0)
        + np.where(grouped, EAGER_REPEAT_KV_KERNELS, 0.0)
    )
    return np.asarray(tokens * per_token), np.asarray(kernels)


#: torchtitan's per-op selective checkpointing (torchtitan/parallelisms/parallelize_llama.py @ 9dec370ad26b,
#: `_custom_policy`): within a layer it saves the outputs of the matmuls it counts odd and of attention, and
#: recomputes the even ones and every other op. A layer's matmuls run q, k, v, o, then w1, w3, w2 (gated) or w1, w2:
#: the recomputed ones are k, o and w3 (gated) or k, o and w2. Shares of the engine's GEMMs (QKV fused into one,
#: the gate and up projections into one) recomputed: of QKV the K part, the projection, half of the gated FFN-in,
#: the FFN-out when not gated.
def every_other_matmul_shares(*, hidden_size: Num, kv_width: Num, gated_ffn: Num) -> tuple[Array, Array, Array, Array]:
    """Shares of the (QKV, projection, FFN-in, FFN-out) forward GEMMs that torchtitan's per-op policy recomputes."""
    h, kv, gated = as_array(hidden_size), as_array(kv_width), as_array(gated_ffn) > 0
    return (
        np.asarray(kv / (h + 2.0 * kv)),
        np.asarray(np.ones(np.shape(h))),
        np.asarray(np.where(gated, 0.5, 0.0)),
        np.asarray(np.where(gated, 0.0, 1.0)),
    )


def unfused_layer_kernels(device: Device) -> float:
    """Element-wise kernels of one layer's forward pass outside attention, under the device's stack."""
    fused = () if device.stack is None else device.stack.fused_ops
    return UNFUSED_LAYER_KERNELS + sum(1.0 for op in FUSABLE_LAYER_OPS if op not in fused)
