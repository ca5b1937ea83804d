"""Layer tables of a latent-diffusion pipeline: one row per weight layer, norm or attention matmul.

Built once per architecture from the block structure of a diffusers configuration (UNet, CLIP
text encoder, VAE decoder): each row has its fan-in/out, kernel, token count and which keep
fraction scales it. `dse.engines.pruning.counter` turns a table into parameters, MACs and
activation traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import NDArray

from dse.specs.diffusion import TextEncoderSpec, UNetSpec, VAEDecoderSpec

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

#: Row categories of a layer table. ELEMENTWISE rows are the memory-bound ops between them (activation,
#: residual add, concatenation, up-sampling copy, gate product): no parameters, no MACs, only traffic.
CONV, LINEAR, SELF_ATTENTION, CROSS_ATTENTION, NORM, EMBEDDING, ELEMENTWISE = range(7)
CATEGORY_NAMES: tuple[str, ...] = (
    "conv",
    "linear",
    "self_attention",
    "cross_attention",
    "norm",
    "embedding",
    "elementwise",
)
#: Which keep fraction scales a fan-in or fan-out: none, ResNet inner channels, attention heads, FFN width.
KEEP_NONE, KEEP_CHANNELS, KEEP_HEADS, KEEP_FFN = range(4)
#: Tensor passes (reads + writes) of a norm row: LayerNorm reads and writes once; GroupNorm reads twice
#: (statistics, then normalization) and writes once (see `_TableBuilder.norm`).
LAYER_NORM_PASSES, GROUP_NORM_PASSES = 2.0, 3.0
#: The element-wise kernels of a diffusers UNet's sinusoidal timestep embedding, in launch order (`unet_layer_table`).
TIMESTEP_EMBEDDING_OPS: tuple[str, ...] = (
    "arange",
    "scale_log_period",
    "divide_half_dim",
    "exp",
    "timesteps_float",
    "outer_product",
    "scale",
    "sin",
    "cos",
    "concat_sin_cos",
    "flip_sin_to_cos",
    "to_unet_dtype",
)


@dataclass(frozen=True, eq=False)
class LayerTable:
    """One row per layer of a network; the arrays have one entry per row (hashed by identity).

    tokens of a row = area_coef * latent_side**2 + fixed_tokens (output positions); key/value
    tokens of an attention matmul likewise with kv_area_coef / kv_fixed_tokens. An ELEMENTWISE or NORM
    row moves kernel_area tensors of fan_out x tokens elements (reads + writes per output element).
    """

    block_names: tuple[str, ...]
    #: Blocks whose keep fractions a code sets (index into block_names), in code order.
    prunable_blocks: tuple[int, ...]
    row_names: tuple[str, ...]
    block: IntArray
    category: IntArray
    kernel_area: FloatArray
    fan_in: FloatArray
    fan_out: FloatArray
    in_keep: IntArray
    out_keep: IntArray
    bias: FloatArray
    area_coef: FloatArray
    fixed_tokens: FloatArray
    kv_area_coef: FloatArray
    kv_fixed_tokens: FloatArray
    #: Input positions per output position (4 for a stride-2 convolution).
    input_token_ratio: FloatArray
    #: Attention heads of an attention row (0 elsewhere); the head width is fan_in / heads.
    heads: FloatArray
    #: 1 where an attention row is causal (the CLIP text tower), else 0.
    causal: FloatArray

    @property
    def num_rows(self) -> int:
        return len(self.row_names)

    @property
    def num_blocks(self) -> int:
        return len(self.block_names)


class _TableBuilder:
    """Accumulates rows while walking a network's structure (once per architecture)."""

    def __init__(self) -> None:
        self.block_names: list[str] = []
        self.rows: list[
            tuple[str, int, int, float, float, float, int, int, float, float, float, float, float, float, float, float]
        ] = []

    def new_block(self, name: str) -> int:
        self.block_names.append(name)
        return len(self.block_names) - 1

    def add(
        self,
        name: str,
        block: int,
        category: int,
        *,
        fan_in: float,
        fan_out: float,
        kernel_area: float = 1.0,
        in_keep: int = KEEP_NONE,
        out_keep: int = KEEP_NONE,
        bias: bool = False,
        area_coef: float = 0.0,
        fixed_tokens: float = 0.0,
        kv_area_coef: float = 0.0,
        kv_fixed_tokens: float = 0.0,
        input_token_ratio: float = 1.0,
        heads: float = 0.0,
        causal: bool = False,
    ) -> None:
        self.rows.append(
            (
                name,
                block,
                category,
                kernel_area,
                fan_in,
                fan_out,
                in_keep,
                out_keep,
                1.0 if bias else 0.0,
                area_coef,
                fixed_tokens,
                kv_area_coef,
                kv_fixed_tokens,
                input_token_ratio,
                heads,
                1.0 if causal else 0.0,
            )
        )

    def pointwise(
        self,
        name: str,
        block: int,
        width: float,
        *,
        passes: float,
        area_coef: float = 0.0,
        fixed_tokens: float = 0.0,
        keep: int = KEEP_NONE,
    ) -> None:
        """A memory-bound element-wise op over width x tokens: `passes` tensors of that size read + written
        (2 for an activation, 3 for an add of two tensors)."""
        self.add(
            name,
            block,
            ELEMENTWISE,
            fan_in=width,
            fan_out=width,
            kernel_area=passes,
            out_keep=keep,
            area_coef=area_coef,
            fixed_tokens=fixed_tokens,
        )

    def norm(
        self,
        name: str,
        block: int,
        width: float,
        area_coef: float,
        keep: int = KEEP_NONE,
        fixed: float = 0.0,
        *,
        group: bool = False,
    ) -> None:
        """LayerNorm / GroupNorm (`group`): 2*width affine parameters. A LayerNorm row fits one thread block, so
        it reads and writes the tensor once (2 passes); a GroupNorm group spans channels x positions, so its
        statistics are one pass and the normalization a second one (3 passes: pytorch/pytorch
        aten/src/ATen/native/cuda/group_norm_kernel.cu, RowwiseMomentsCUDAKernel then the a * x + b kernel).
        The passes are the row's kernel_area."""
        self.add(
            name,
            block,
            NORM,
            fan_in=width,
            fan_out=width,
            kernel_area=GROUP_NORM_PASSES if group else LAYER_NORM_PASSES,
            out_keep=keep,
            area_coef=area_coef,
            fixed_tokens=fixed,
        )

    def resnet(self, name: str, block: int, c_in: int, c_out: int, temb: int, area: float, prunable: bool) -> None:
        """diffusers ResnetBlock2D: norm1, SiLU, conv1 3x3, time projection added, norm2, SiLU, conv2 3x3,
        1x1 shortcut, then (input + hidden) / output_scale_factor (an add and a division, each an op)."""
        inner = KEEP_CHANNELS if prunable else KEEP_NONE
        self.norm(f"{name}.norm1", block, c_in, area, group=True)
        self.pointwise(f"{name}.silu1", block, c_in, passes=2, area_coef=area)
        self.add(
            f"{name}.conv1",
            block,
            CONV,
            fan_in=c_in,
            fan_out=c_out,
            kernel_area=9,
            out_keep=inner,
            bias=True,
            area_coef=area,
        )
        if temb:
            self.pointwise(f"{name}.temb_silu", block, temb, passes=2, fixed_tokens=1)
            self.add(
                f"{name}.time_emb_proj",
                block,
                LINEAR,
                fan_in=temb,
                fan_out=c_out,
                out_keep=inner,
                bias=True,
                fixed_tokens=1,
            )
            self.pointwise(f"{name}.temb_add", block, c_out, passes=2, area_coef=area, keep=inner)
        self.norm(f"{name}.norm2", block, c_out, area, keep=inner, group=True)
        self.pointwise(f"{name}.silu2", block, c_out, passes=2, area_coef=area, keep=inner)
        self.add(
            f"{name}.conv2",
            block,
            CONV,
            fan_in=c_out,
            fan_out=c_out,
            kernel_area=9,
            in_keep=inner,
            bias=True,
            area_coef=area,
        )
        if c_in != c_out:
            self.add(f"{name}.conv_shortcut", block, CONV, fan_in=c_in, fan_out=c_out, bias=True, area_coef=area)
        self.pointwise(f"{name}.residual_add", block, c_out, passes=3, area_coef=area)
        self.pointwise(f"{name}.output_scale", block, c_out, passes=2, area_coef=area)

    def transformer(
        self, name: str, block: int, unet: UNetSpec, level: int, channels: int, area: float, text_tokens: int
    ) -> None:
        """diffusers Transformer2DModel: GroupNorm, proj_in, BasicTransformerBlock(s), proj_out, residual add.

        The (B, C, H, W) <-> (B, HW, C) permutes are copies (NCHW layout); each attention divides its output
        by rescale_output_factor, and each sub-block adds its residual.
        """
        proj = LINEAR if unet.use_linear_projection else CONV
        heads = float(unet.num_attention_heads[level])
        self.norm(f"{name}.norm", block, channels, area, group=True)
        self.add(f"{name}.proj_in", block, proj, fan_in=channels, fan_out=channels, bias=True, area_coef=area)
        self.pointwise(f"{name}.to_tokens", block, channels, passes=2, area_coef=area)
        ff_inner = unet.ff_mult * channels
        for depth in range(unet.transformer_layers_per_block):
            tb = f"{name}.transformer_blocks.{depth}"
            self.norm(f"{tb}.norm1", block, channels, area)
            for proj_name in ("to_q", "to_k", "to_v"):
                self.add(
                    f"{tb}.attn1.{proj_name}",
                    block,
                    LINEAR,
                    fan_in=channels,
                    fan_out=channels,
                    out_keep=KEEP_HEADS,
                    area_coef=area,
                )
            self.add(
                f"{tb}.attn1.matmuls",
                block,
                SELF_ATTENTION,
                fan_in=channels,
                fan_out=channels,
                in_keep=KEEP_HEADS,
                area_coef=area,
                kv_area_coef=area,
                heads=heads,
            )
            self.add(
                f"{tb}.attn1.to_out",
                block,
                LINEAR,
                fan_in=channels,
                fan_out=channels,
                in_keep=KEEP_HEADS,
                bias=True,
                area_coef=area,
            )
            self.pointwise(f"{tb}.attn1.rescale", block, channels, passes=2, area_coef=area)
            self.pointwise(f"{tb}.attn1.residual_add", block, channels, passes=3, area_coef=area)
            self.norm(f"{tb}.norm2", block, channels, area)
            self.add(
                f"{tb}.attn2.to_q",
                block,
                LINEAR,
                fan_in=channels,
                fan_out=channels,
                out_keep=KEEP_HEADS,
                area_coef=area,
            )
            for proj_name in ("to_k", "to_v"):
                self.add(
                    f"{tb}.attn2.{proj_name}",
                    block,
                    LINEAR,
                    fan_in=unet.cross_attention_dim,
                    fan_out=channels,
                    out_keep=KEEP_HEADS,
                    fixed_tokens=text_tokens,
                )
            self.add(
                f"{tb}.attn2.matmuls",
                block,
                CROSS_ATTENTION,
                fan_in=channels,
                fan_out=channels,
                in_keep=KEEP_HEADS,
                area_coef=area,
                kv_fixed_tokens=text_tokens,
                heads=heads,
            )
            self.add(
                f"{tb}.attn2.to_out",
                block,
                LINEAR,
                fan_in=channels,
                fan_out=channels,
                in_keep=KEEP_HEADS,
                bias=True,
                area_coef=area,
            )
            self.pointwise(f"{tb}.attn2.rescale", block, channels, passes=2, area_coef=area)
            self.pointwise(f"{tb}.attn2.residual_add", block, channels, passes=3, area_coef=area)
            self.norm(f"{tb}.norm3", block, channels, area)
            # GEGLU: one projection to 2 x inner (value and gate), then inner -> channels.
            self.add(
                f"{tb}.ff.geglu",
                block,
                LINEAR,
                fan_in=channels,
                fan_out=2 * ff_inner,
                out_keep=KEEP_FFN,
                bias=True,
                area_coef=area,
            )
            self.pointwise(f"{tb}.ff.gelu", block, ff_inner, passes=2, area_coef=area, keep=KEEP_FFN)
            self.pointwise(f"{tb}.ff.gate_product", block, ff_inner, passes=3, area_coef=area, keep=KEEP_FFN)
            self.add(
                f"{tb}.ff.out",
                block,
                LINEAR,
                fan_in=ff_inner,
                fan_out=channels,
                in_keep=KEEP_FFN,
                bias=True,
                area_coef=area,
            )
            self.pointwise(f"{tb}.ff.residual_add", block, channels, passes=3, area_coef=area)
        self.pointwise(f"{name}.to_image", block, channels, passes=2, area_coef=area)
        self.add(f"{name}.proj_out", block, proj, fan_in=channels, fan_out=channels, bias=True, area_coef=area)
        self.pointwise(f"{name}.residual_add", block, channels, passes=3, area_coef=area)

    def build(self, prunable: tuple[int, ...]) -> LayerTable:
        # One conversion of every number (small integers stay exact as doubles), then a column each
        numbers: FloatArray = np.array([row[1:] for row in self.rows], dtype=np.float64).T.copy()

        def f(i: int) -> FloatArray:
            column: FloatArray = numbers[i - 1]
            return column

        def n(i: int) -> IntArray:
            column: IntArray = numbers[i - 1].astype(np.intp)
            return column

        return LayerTable(
            block_names=tuple(self.block_names),
            prunable_blocks=prunable,
            row_names=tuple(row[0] for row in self.rows),
            block=n(1),
            category=n(2),
            kernel_area=f(3),
            fan_in=f(4),
            fan_out=f(5),
            in_keep=n(6),
            out_keep=n(7),
            bias=f(8),
            area_coef=f(9),
            fixed_tokens=f(10),
            kv_area_coef=f(11),
            kv_fixed_tokens=f(12),
            input_token_ratio=f(13),
            heads=f(14),
            causal=f(15),
        )


@cache
def unet_layer_table(unet: UNetSpec, text_tokens: int) -> LayerTable:
    """Rows of a diffusers UNet2DConditionModel, in forward order.

    Blocks: stem (conv_in, time embedding), down_0..down_{n-1}, mid, up_0..up_{n-1}, head
    (norm, conv_out); the down, mid and up blocks are prunable. `text_tokens` is the length of
    the text encoder's output that cross-attention reads (77 for CLIP).
    """
    b = _TableBuilder()
    channels = unet.block_out_channels
    levels = len(channels)
    temb = unet.time_embed_mult * channels[0]
    stem = b.new_block("stem")
    b.add("conv_in", stem, CONV, fan_in=unet.in_channels, fan_out=channels[0], kernel_area=9, bias=True, area_coef=1.0)
    # The sinusoidal timestep embedding, one fp32 kernel per op on (batch, 320) (launch-bound): diffusers
    # get_timestep_embedding (src/diffusers/models/embeddings.py): arange, the -log(max_period) and
    # 1/(half_dim - shift) scalings, exp, the timesteps' .float(), the outer product, `scale * emb`, sin, cos, their
    # concatenation and the flip_sin_to_cos concatenation; then UNet2DConditionModel.forward's t_emb.to(sample.dtype).
    for op in TIMESTEP_EMBEDDING_OPS:
        b.pointwise(f"time_proj.{op}", stem, channels[0], passes=2, fixed_tokens=1)
    b.add("time_embedding.linear_1", stem, LINEAR, fan_in=channels[0], fan_out=temb, bias=True, fixed_tokens=1)
    b.pointwise("time_embedding.silu", stem, temb, passes=2, fixed_tokens=1)
    b.add("time_embedding.linear_2", stem, LINEAR, fan_in=temb, fan_out=temb, bias=True, fixed_tokens=1)

    prunable: list[int] = []
    c_prev = channels[0]
    for i, (block_type, c_out) in enumerate(zip(unet.down_block_types, channels, strict=True)):
        blk = b.new_block(f"down_{i}")
        prunable.append(blk)
        area = 4.0**-i
        for j in range(unet.layers_per_block):
            c_in = c_prev if j == 0 else c_out
            b.resnet(f"down_blocks.{i}.resnets.{j}", blk, c_in, c_out, temb, area, prunable=True)
            if block_type == "CrossAttnDownBlock2D":
                b.transformer(f"down_blocks.{i}.attentions.{j}", blk, unet, i, c_out, area, text_tokens)
        if i < levels - 1:  # stride-2 3x3 convolution; its output is at the next level
            b.add(
                f"down_blocks.{i}.downsamplers.0",
                blk,
                CONV,
                fan_in=c_out,
                fan_out=c_out,
                kernel_area=9,
                bias=True,
                area_coef=4.0 ** -(i + 1),
                input_token_ratio=4.0,
            )
        c_prev = c_out

    mid = b.new_block("mid")
    prunable.append(mid)
    c_mid, area_mid = channels[-1], 4.0 ** -(levels - 1)
    b.resnet("mid_block.resnets.0", mid, c_mid, c_mid, temb, area_mid, prunable=True)
    b.transformer("mid_block.attentions.0", mid, unet, levels - 1, c_mid, area_mid, text_tokens)
    b.resnet("mid_block.resnets.1", mid, c_mid, c_mid, temb, area_mid, prunable=True)

    rev = channels[::-1]
    c_prev = rev[0]
    for i, (up_type, c_out) in enumerate(zip(unet.up_block_types, rev, strict=True)):
        blk = b.new_block(f"up_{i}")
        prunable.append(blk)
        level = levels - 1 - i
        area = 4.0**-level
        c_skip_in = rev[min(i + 1, levels - 1)]  # channels of the deepest skip of this block
        for j in range(unet.layers_per_block + 1):
            res_skip = c_skip_in if j == unet.layers_per_block else c_out
            res_in = c_prev if j == 0 else c_out
            # torch.cat of the running tensor and the skip: both read, the result written
            b.pointwise(f"up_blocks.{i}.concat.{j}", blk, res_in + res_skip, passes=2, area_coef=area)
            b.resnet(f"up_blocks.{i}.resnets.{j}", blk, res_in + res_skip, c_out, temb, area, prunable=True)
            if up_type == "CrossAttnUpBlock2D":
                b.transformer(f"up_blocks.{i}.attentions.{j}", blk, unet, level, c_out, area, text_tokens)
        if i < levels - 1:  # nearest x2 (reads a quarter of what it writes), then a 3x3 convolution
            b.pointwise(
                f"up_blocks.{i}.upsamplers.0.interpolate", blk, c_out, passes=1.25, area_coef=4.0 ** -(level - 1)
            )
            b.add(
                f"up_blocks.{i}.upsamplers.0",
                blk,
                CONV,
                fan_in=c_out,
                fan_out=c_out,
                kernel_area=9,
                bias=True,
                area_coef=4.0 ** -(level - 1),
            )
        c_prev = c_out

    head = b.new_block("head")
    b.norm("conv_norm_out", head, channels[0], 1.0, group=True)
    b.pointwise("conv_act", head, channels[0], passes=2, area_coef=1.0)
    b.add(
        "conv_out", head, CONV, fan_in=channels[0], fan_out=unet.out_channels, kernel_area=9, bias=True, area_coef=1.0
    )
    return b.build(tuple(prunable))


@cache
def text_encoder_layer_table(text: TextEncoderSpec) -> LayerTable:
    """Rows of a CLIP text transformer over its full context (max_position_embeddings tokens)."""
    b = _TableBuilder()
    h, m = text.hidden_size, float(text.max_position_embeddings)
    blk = b.new_block("text_encoder")
    b.add(
        "embeddings", blk, EMBEDDING, fan_in=text.vocab_size + text.max_position_embeddings, fan_out=h, fixed_tokens=m
    )
    for layer in range(text.num_hidden_layers):
        name = f"layers.{layer}"
        b.norm(f"{name}.layer_norm1", blk, h, 0.0, fixed=m)
        for proj_name in ("q_proj", "k_proj", "v_proj"):
            b.add(f"{name}.self_attn.{proj_name}", blk, LINEAR, fan_in=h, fan_out=h, bias=True, fixed_tokens=m)
        b.add(
            f"{name}.self_attn.matmuls",
            blk,
            SELF_ATTENTION,
            fan_in=h,
            fan_out=h,
            fixed_tokens=m,
            kv_fixed_tokens=m,
            heads=float(text.num_attention_heads),
            causal=True,
        )
        b.add(f"{name}.self_attn.out_proj", blk, LINEAR, fan_in=h, fan_out=h, bias=True, fixed_tokens=m)
        b.pointwise(f"{name}.attn_residual_add", blk, h, passes=3, fixed_tokens=m)
        b.norm(f"{name}.layer_norm2", blk, h, 0.0, fixed=m)
        b.add(f"{name}.mlp.fc1", blk, LINEAR, fan_in=h, fan_out=text.intermediate_size, bias=True, fixed_tokens=m)
        b.pointwise(f"{name}.mlp.act", blk, text.intermediate_size, passes=2, fixed_tokens=m)
        b.add(f"{name}.mlp.fc2", blk, LINEAR, fan_in=text.intermediate_size, fan_out=h, bias=True, fixed_tokens=m)
        b.pointwise(f"{name}.mlp_residual_add", blk, h, passes=3, fixed_tokens=m)
    b.norm("final_layer_norm", blk, h, 0.0, fixed=m)
    return b.build(())


@cache
def vae_decoder_layer_table(vae: VAEDecoderSpec) -> LayerTable:
    """Rows of a diffusers AutoencoderKL decoder (post-quant conv included); areas relative to the latent."""
    b = _TableBuilder()
    rev = vae.block_out_channels[::-1]
    levels = len(rev)
    blk = b.new_block("vae_mid")
    b.add(
        "post_quant_conv", blk, CONV, fan_in=vae.latent_channels, fan_out=vae.latent_channels, bias=True, area_coef=1.0
    )
    b.add("conv_in", blk, CONV, fan_in=vae.latent_channels, fan_out=rev[0], kernel_area=9, bias=True, area_coef=1.0)
    c = rev[0]
    b.resnet("mid_block.resnets.0", blk, c, c, 0, 1.0, prunable=False)
    b.norm("mid_block.attentions.0.group_norm", blk, c, 1.0, group=True)
    for proj_name in ("to_q", "to_k", "to_v"):
        b.add(f"mid_block.attentions.0.{proj_name}", blk, LINEAR, fan_in=c, fan_out=c, bias=True, area_coef=1.0)
    b.add(
        "mid_block.attentions.0.matmuls",
        blk,
        SELF_ATTENTION,
        fan_in=c,
        fan_out=c,
        area_coef=1.0,
        kv_area_coef=1.0,
        heads=1.0,  # diffusers AutoencoderKL: one head as wide as the block
    )
    b.add("mid_block.attentions.0.to_out", blk, LINEAR, fan_in=c, fan_out=c, bias=True, area_coef=1.0)
    b.pointwise("mid_block.attentions.0.residual_add", blk, c, passes=3, area_coef=1.0)
    b.pointwise("mid_block.attentions.0.rescale", blk, c, passes=2, area_coef=1.0)
    b.resnet("mid_block.resnets.1", blk, c, c, 0, 1.0, prunable=False)
    c_prev = c
    for i, c_out in enumerate(rev):
        up = b.new_block(f"vae_up_{i}")
        area = 4.0**i
        for j in range(vae.layers_per_block + 1):
            b.resnet(f"up_blocks.{i}.resnets.{j}", up, c_prev if j == 0 else c_out, c_out, 0, area, prunable=False)
        if i < levels - 1:
            b.pointwise(f"up_blocks.{i}.upsamplers.0.interpolate", up, c_out, passes=1.25, area_coef=4.0 ** (i + 1))
            b.add(
                f"up_blocks.{i}.upsamplers.0",
                up,
                CONV,
                fan_in=c_out,
                fan_out=c_out,
                kernel_area=9,
                bias=True,
                area_coef=4.0 ** (i + 1),
            )
        c_prev = c_out
    out = b.new_block("vae_out")
    top_area = 4.0 ** (levels - 1)
    b.norm("conv_norm_out", out, rev[-1], top_area, group=True)
    b.pointwise("conv_act", out, rev[-1], passes=2, area_coef=top_area)
    b.add("conv_out", out, CONV, fan_in=rev[-1], fan_out=vae.out_channels, kernel_area=9, bias=True, area_coef=top_area)
    return b.build(())
