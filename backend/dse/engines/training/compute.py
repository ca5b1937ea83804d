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

from dataclasses import dataclass

import numpy as np

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
) -> LayerWork:
    """With FlashAttention the softmax and dropout run inside the attention kernel: no score traffic."""
    s, b, h, a = as_array(sequence_length), as_array(micro_batch_size), as_array(hidden_size), as_array(num_heads)
    f, t, variant = as_array(ffn_hidden_size), as_array(tensor_parallel), as_array(sequence_parallel)
    context = np.where(
        (variant == SequenceParallel.RING) | (variant == SequenceParallel.ULYSSES), sequence_parallel_degree, 1.0
    )
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
