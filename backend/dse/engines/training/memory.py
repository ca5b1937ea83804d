"""Memory per GPU: model states under ZeRO and activations per Korthikanti et al. (2022).

Activation bytes of one transformer layer for one micro-batch, fp16 activations with 1-byte
dropout masks (Korthikanti, Casper, Lym et al., "Reducing Activation Recomputation in Large
Transformer Models", 2022, Section 4 and Table 2). For a GPT layer (MHA, FFN 4h):

    no parallelism                    s*b*h*(34 + 5*a*s/h)
    tensor parallel t                 s*b*h*(10 + 24/t + 5*a*s/(h*t))
    + sequence parallel               s*b*h/t*(34 + 5*a*s/h)
    + selective recomputation         s*b*h*(10 + 24/t)         (with SP: 34*s*b*h/t)
    full recomputation                2*s*b*h                   (with SP the kept input is split: 2*s*b*h/t)

The engine counts the terms from the architecture (GQA key/value width, gated FFN), so these
are the GPT special case; Ring / Ulysses split s over their degree n (each GPU holds s/n tokens
and b*(a/t)*(s/n)*s attention scores, Li et al. 2021).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dse.engines.training.codes import Recompute, SequenceParallel
from dse.engines.training.inputs import Array, as_array
from dse.specs.common import Num

#: Mixed-precision Adam bytes per parameter (Rajbhandari et al., ZeRO, 2020, Section 3.1):
#: fp16 weights 2, fp16 gradients 2, fp32 master weights + momentum + variance 12.
WEIGHT_BYTES_PER_PARAM = 2.0
GRADIENT_BYTES_PER_PARAM = 2.0
OPTIMIZER_BYTES_PER_PARAM = 12.0
#: fp8 training (Transformer Engine) keeps the bf16 weights and the fp32 optimizer state as above and adds an
#: fp8 copy of each layer weight and its transpose (the forward GEMM reads one, the backward data-gradient
#: GEMM the other: Hopper's fp8 tensor-core GEMMs take only the TN layout), cached across the step's
#: micro-batches (Transformer Engine PyTorch API docs, docs.nvidia.com/deeplearning/transformer-engine/api/
#: pytorch.html, `Linear.forward(is_first_microbatch)`: "during FP8 training, it allows caching of the FP8
#: versions of the weights"; the cache lives in transformer_engine/pytorch/module/linear.py).
FP8_WEIGHT_COPY_BYTES_PER_PARAM = 1.0 + 1.0

@dataclass(frozen=True)
class LayerActivations:
    """Bytes one layer keeps for backward, per micro-batch, per GPU, by part."""

    #: LayerNorm inputs, attention and MLP inputs, dropout masks: whole on every TP rank unless Megatron-SP.
    replicated: Array
    #: Q, K, V, the projection input and the FFN activations: split by TP.
    tensor_parallel_split: Array
    #: Softmax output, its dropout mask and output (5 bytes per score): split by TP, dropped by selective recompute.
    attention_scores: Array
    #: What the layer keeps under the plan's recomputation choice.
    kept: Array
    #: What the backward of one layer re-materialises on top of `kept` (full: the whole layer;
    #: selective: the attention scores): a transient peak of one layer, not one per layer.
    recompute_working_set: Array


def layer_activation_bytes(
    *,
    sequence_length: Num,
    micro_batch_size: Num,
    hidden_size: Num,
    num_heads: Num,
    num_kv_heads: Num,
    ffn_hidden_size: Num,
    gated_ffn: Num,
    tensor_parallel: Num = 1.0,
    sequence_parallel: Num = SequenceParallel.NONE,
    sequence_parallel_degree: Num = 1.0,
    recompute: Num = Recompute.NONE,
    flash_attention: Num = 0.0,
    context_parallel: Num = 1.0,
) -> LayerActivations:
    """Activation bytes of one layer per GPU (Korthikanti Table 2, counted from the architecture).

    With FlashAttention (Dao et al. 2022) the scores are never stored: the kernel keeps only the
    fp32 log-sum-exp per query and head (4 bytes) and regenerates the dropout mask from its seed.
    """
    s, b, h = as_array(sequence_length), as_array(micro_batch_size), as_array(hidden_size)
    a, t = as_array(num_heads), as_array(tensor_parallel)
    variant = as_array(sequence_parallel)
    context = np.where(
        (variant == SequenceParallel.RING) | (variant == SequenceParallel.ULYSSES), sequence_parallel_degree, 1.0
    )
    cp = as_array(context_parallel)
    if np.any(cp != 1.0):  # context parallelism splits s like Ring (Megatron-Core: activations / CP)
        context = context * cp
    megatron_sp = variant == SequenceParallel.MEGATRON
    s_local = s / context
    sbh = s_local * b * h
    kv_width = as_array(num_kv_heads) * h / a
    ffn_factor = np.where(as_array(gated_ffn) > 0, 6.0, 4.0)  # GELU: input + output; SwiGLU: gate, up, product
    # 4 (two LayerNorm inputs) + 2 (QKV input) + 2 (MLP input) + 2 (two dropout masks) = 10 s*b*h.
    replicated = 10.0 * sbh / np.where(megatron_sp, t, 1.0)
    split = (
        2.0 * sbh + 4.0 * s_local * b * kv_width + 2.0 * sbh + ffn_factor * s_local * b * as_array(ffn_hidden_size)
    ) / t
    scores = np.where(as_array(flash_attention) > 0, 4.0 * a * s_local * b / t, 5.0 * a * s_local * s * b / t)
    rc = as_array(recompute)
    full_input = 2.0 * sbh / np.where(megatron_sp, t, 1.0)
    kept = np.where(
        rc == Recompute.FULL,
        full_input,
        np.where(rc == Recompute.SELECTIVE, replicated + split, replicated + split + scores),
    )
    everything = replicated + split + scores
    return LayerActivations(
        replicated=replicated,
        tensor_parallel_split=split,
        attention_scores=scores,
        kept=kept,
        recompute_working_set=everything - kept,
    )


def korthikanti_table2_bytes(*, s: Num, b: Num, h: Num, a: Num, t: Num, sequence_parallel: bool, recompute: str) -> Num:
    """Korthikanti et al. (2022) Table 2, literally, for tests and the math shown (GPT layer, fp16)."""
    if recompute == "full":
        return 2.0 * s * b * h
    core = 34.0 / t if sequence_parallel else 10.0 + 24.0 / t
    scores = 0.0 if recompute == "selective" else 5.0 * a * s / (h * t)
    return s * b * h * (core + scores)


@dataclass(frozen=True)
class ModelStates:
    """Weights, gradients and optimizer state per GPU (bytes)."""

    weights: Array
    gradients: Array
    optimizer: Array

    @property
    def total(self) -> Array:
        return np.asarray(self.weights + self.gradients + self.optimizer)


def model_state_bytes(
    *,
    params_per_gpu: Num,
    zero_stage: Num,
    zero_group: Num,
    fp8_params_per_gpu: Num = 0.0,
    gradient_bytes_per_param: Num = GRADIENT_BYTES_PER_PARAM,
) -> ModelStates:
    """ZeRO-1 shards the optimizer state over the data-parallel group, ZeRO-2 also the gradients,
    ZeRO-3 also the weights (Rajbhandari et al. 2020, Figure 1); `fp8_params_per_gpu` of them also keep
    fp8 copies (`FP8_WEIGHT_COPY_BYTES_PER_PARAM`), sharded like the weights. `gradient_bytes_per_param`: the
    stack's gradient buffer (Megatron's fp32 main gradients under bf16: 4)."""
    P, z, g = as_array(params_per_gpu), as_array(zero_stage), np.maximum(as_array(zero_group), 1.0)
    weight_bytes = WEIGHT_BYTES_PER_PARAM * P + FP8_WEIGHT_COPY_BYTES_PER_PARAM * as_array(fp8_params_per_gpu)
    return ModelStates(
        weights=weight_bytes / np.where(z >= 3, g, 1.0),
        gradients=as_array(gradient_bytes_per_param) * P / np.where(z >= 2, g, 1.0),
        optimizer=OPTIMIZER_BYTES_PER_PARAM * P / np.where(z >= 1, g, 1.0),
    )
