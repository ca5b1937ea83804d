"""Prompt-routed pruning of text-to-image diffusion models (APTP, Ganjdanesh et al., ICLR'25).

Three pieces, all plain numpy and broadcasting:

* a **layer table** of a latent-diffusion pipeline (UNet, text encoder, VAE decoder), built once
  from the block structure of a diffusers configuration: one row per weight layer, norm or
  attention matmul, with its fan-in/out, kernel, token count and which keep-fraction scales it;
* a **counter** that turns the table, the latent side and per-block keep fractions into
  parameters, MACs and activation traffic per row (so per block and per category: convolution,
  linear, self-attention matmul, cross-attention matmul), vectorised over resolution and codes;
* **routing and serving**: entropic optimal transport (Sinkhorn, log domain) of a prompt mix
  onto K architecture codes, and the roofline time of N denoising steps with classifier-free
  guidance plus text encoder and VAE decoder, for static, dynamic and APTP serving.

An architecture code keeps, per prunable block, a fraction of the ResNet inner channels, of the
attention heads and of the GEGLU feed-forward width; the residual stream width is untouched
(APTP's width gates sit inside the blocks). MAC = one multiply-accumulate; FLOP = 2 MAC.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import NDArray

from dse.engines.roofline import roofline_cost
from dse.specs.common import Num
from dse.specs.diffusion import DiffusionPipelineSpec, TextEncoderSpec, UNetSpec, VAEDecoderSpec

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

#: Row categories of a layer table.
CONV, LINEAR, SELF_ATTENTION, CROSS_ATTENTION, NORM, EMBEDDING = range(6)
CATEGORY_NAMES: tuple[str, ...] = ("conv", "linear", "self_attention", "cross_attention", "norm", "embedding")
#: Which keep fraction scales a fan-in or fan-out: none, ResNet inner channels, attention heads, FFN width.
KEEP_NONE, KEEP_CHANNELS, KEEP_HEADS, KEEP_FFN = range(4)


@dataclass(frozen=True, eq=False)
class LayerTable:
    """One row per layer of a network; the arrays have one entry per row (hashed by identity).

    tokens of a row = area_coef * latent_side**2 + fixed_tokens (output positions); key/value
    tokens of an attention matmul likewise with kv_area_coef / kv_fixed_tokens.
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
            tuple[str, int, int, float, float, float, int, int, float, float, float, float, float, float]
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
            )
        )

    def norm(
        self, name: str, block: int, width: float, area_coef: float, keep: int = KEEP_NONE, fixed: float = 0.0
    ) -> None:
        """GroupNorm / LayerNorm: 2*width affine parameters, one read and one write of the tensor."""
        self.add(name, block, NORM, fan_in=width, fan_out=width, out_keep=keep, area_coef=area_coef, fixed_tokens=fixed)

    def resnet(self, name: str, block: int, c_in: int, c_out: int, temb: int, area: float, prunable: bool) -> None:
        """diffusers ResnetBlock2D: norm1, conv1 3x3, time projection, norm2, conv2 3x3, 1x1 shortcut."""
        inner = KEEP_CHANNELS if prunable else KEEP_NONE
        self.norm(f"{name}.norm1", block, c_in, area)
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
        self.norm(f"{name}.norm2", block, c_out, area, keep=inner)
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

    def transformer(self, name: str, block: int, unet: UNetSpec, channels: int, area: float, text_tokens: int) -> None:
        """diffusers Transformer2DModel: GroupNorm, proj_in, BasicTransformerBlock(s), proj_out."""
        proj = LINEAR if unet.use_linear_projection else CONV
        self.norm(f"{name}.norm", block, channels, area)
        self.add(f"{name}.proj_in", block, proj, fan_in=channels, fan_out=channels, bias=True, area_coef=area)
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
        self.add(f"{name}.proj_out", block, proj, fan_in=channels, fan_out=channels, bias=True, area_coef=area)

    def build(self, prunable: tuple[int, ...]) -> LayerTable:
        cols = list(zip(*self.rows, strict=True))

        def f(i: int) -> FloatArray:
            return np.asarray(cols[i], dtype=np.float64)

        def n(i: int) -> IntArray:
            return np.asarray(cols[i], dtype=np.intp)

        return LayerTable(
            block_names=tuple(self.block_names),
            prunable_blocks=prunable,
            row_names=tuple(str(x) for x in cols[0]),
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
    b.add("time_embedding.linear_1", stem, LINEAR, fan_in=channels[0], fan_out=temb, bias=True, fixed_tokens=1)
    b.add("time_embedding.linear_2", stem, LINEAR, fan_in=temb, fan_out=temb, bias=True, fixed_tokens=1)

    prunable: list[int] = []
    c_prev = channels[0]
    for i, (kind, c_out) in enumerate(zip(unet.down_block_types, channels, strict=True)):
        blk = b.new_block(f"down_{i}")
        prunable.append(blk)
        area = 4.0**-i
        for j in range(unet.layers_per_block):
            c_in = c_prev if j == 0 else c_out
            b.resnet(f"down_blocks.{i}.resnets.{j}", blk, c_in, c_out, temb, area, prunable=True)
            if kind == "CrossAttnDownBlock2D":
                b.transformer(f"down_blocks.{i}.attentions.{j}", blk, unet, c_out, area, text_tokens)
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
    b.transformer("mid_block.attentions.0", mid, unet, c_mid, area_mid, text_tokens)
    b.resnet("mid_block.resnets.1", mid, c_mid, c_mid, temb, area_mid, prunable=True)

    rev = channels[::-1]
    c_prev = rev[0]
    for i, (up_kind, c_out) in enumerate(zip(unet.up_block_types, rev, strict=True)):
        blk = b.new_block(f"up_{i}")
        prunable.append(blk)
        level = levels - 1 - i
        area = 4.0**-level
        c_skip_in = rev[min(i + 1, levels - 1)]  # channels of the deepest skip of this block
        for j in range(unet.layers_per_block + 1):
            res_skip = c_skip_in if j == unet.layers_per_block else c_out
            res_in = c_prev if j == 0 else c_out
            b.resnet(f"up_blocks.{i}.resnets.{j}", blk, res_in + res_skip, c_out, temb, area, prunable=True)
            if up_kind == "CrossAttnUpBlock2D":
                b.transformer(f"up_blocks.{i}.attentions.{j}", blk, unet, c_out, area, text_tokens)
        if i < levels - 1:  # nearest x2 then a 3x3 convolution at the finer level
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
    b.norm("conv_norm_out", head, channels[0], 1.0)
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
        b.add(f"{name}.self_attn.matmuls", blk, SELF_ATTENTION, fan_in=h, fan_out=h, fixed_tokens=m, kv_fixed_tokens=m)
        b.add(f"{name}.self_attn.out_proj", blk, LINEAR, fan_in=h, fan_out=h, bias=True, fixed_tokens=m)
        b.norm(f"{name}.layer_norm2", blk, h, 0.0, fixed=m)
        b.add(f"{name}.mlp.fc1", blk, LINEAR, fan_in=h, fan_out=text.intermediate_size, bias=True, fixed_tokens=m)
        b.add(f"{name}.mlp.fc2", blk, LINEAR, fan_in=text.intermediate_size, fan_out=h, bias=True, fixed_tokens=m)
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
    b.norm("mid_block.attentions.0.group_norm", blk, c, 1.0)
    for proj_name in ("to_q", "to_k", "to_v"):
        b.add(f"mid_block.attentions.0.{proj_name}", blk, LINEAR, fan_in=c, fan_out=c, bias=True, area_coef=1.0)
    b.add("mid_block.attentions.0.matmuls", blk, SELF_ATTENTION, fan_in=c, fan_out=c, area_coef=1.0, kv_area_coef=1.0)
    b.add("mid_block.attentions.0.to_out", blk, LINEAR, fan_in=c, fan_out=c, bias=True, area_coef=1.0)
    b.resnet("mid_block.resnets.1", blk, c, c, 0, 1.0, prunable=False)
    c_prev = c
    for i, c_out in enumerate(rev):
        up = b.new_block(f"vae_up_{i}")
        area = 4.0**i
        for j in range(vae.layers_per_block + 1):
            b.resnet(f"up_blocks.{i}.resnets.{j}", up, c_prev if j == 0 else c_out, c_out, 0, area, prunable=False)
        if i < levels - 1:
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
    b.norm("conv_norm_out", out, rev[-1], top_area)
    b.add("conv_out", out, CONV, fan_in=rev[-1], fan_out=vae.out_channels, kernel_area=9, bias=True, area_coef=top_area)
    return b.build(())


@dataclass(frozen=True)
class LayerCounts:
    """Per-row counts for one sample (broadcast leading dims ..., then rows)."""

    params: FloatArray
    macs: FloatArray
    #: Activation elements a row reads and writes for one sample (weights excluded).
    activation_elements: FloatArray


def _keep_with_ones(table: LayerTable, keep: Num | None) -> FloatArray:
    """(..., num_blocks, 4) fractions: column 0 is 1 (unscaled); prunable blocks take `keep`.

    `keep` is (..., num_prunable, 3) (channels, heads, FFN), or None for the full network.
    """
    n_blocks = table.num_blocks
    if keep is None:
        return np.ones((n_blocks, 4))
    k = np.asarray(keep, dtype=np.float64)
    lead = k.shape[:-2]
    full = np.ones((*lead, n_blocks, 4))
    full[..., list(table.prunable_blocks), 1:] = k
    return full


def count_layers(table: LayerTable, *, latent_side: Num, keep: Num | None = None) -> LayerCounts:
    """Parameters, MACs and activation elements of each row for one sample.

    latent_side broadcasts against keep's leading dimensions (keep is (..., num_prunable, 3)).
    conv/linear: MACs = k * fan_in * fan_out * keep_in * keep_out * tokens;
    attention matmuls: MACs = 2 * tokens_q * tokens_kv * width * keep_heads (QK^T and PV).
    """
    fractions = _keep_with_ones(table, keep)
    s_in = fractions[..., table.block, table.in_keep]
    s_out = fractions[..., table.block, table.out_keep]
    side2 = np.asarray(latent_side, dtype=np.float64)[..., None] ** 2
    tokens = table.area_coef * side2 + table.fixed_tokens
    kv_tokens = table.kv_area_coef * side2 + table.kv_fixed_tokens
    cat = table.category
    is_weight = ((cat == CONV) | (cat == LINEAR)).astype(np.float64)
    is_attention = ((cat == SELF_ATTENTION) | (cat == CROSS_ATTENTION)).astype(np.float64)
    is_norm = (cat == NORM).astype(np.float64)
    is_embedding = (cat == EMBEDDING).astype(np.float64)
    width_in = table.fan_in * s_in
    width_out = table.fan_out * s_out
    weights = table.kernel_area * width_in * width_out
    params = (
        is_weight * (weights + table.bias * width_out)
        + is_norm * 2.0 * width_out
        + is_embedding * table.fan_in * table.fan_out
    )
    macs = is_weight * weights * tokens + is_attention * 2.0 * tokens * kv_tokens * width_in
    activations = (
        is_weight * (width_in * tokens * table.input_token_ratio + width_out * tokens)
        + is_attention * 2.0 * (tokens + kv_tokens) * width_in
        + is_norm * 2.0 * width_out * tokens
        + is_embedding * width_out * tokens
    )
    return LayerCounts(params=params, macs=macs, activation_elements=activations)


@dataclass(frozen=True)
class BlockCounts:
    """Per block and category counts for one sample: (..., num_blocks, 6 categories)."""

    params: FloatArray
    macs: FloatArray


@cache
def _block_coefficients(table: LayerTable) -> tuple[FloatArray, FloatArray]:
    """The table folded into polynomial coefficients, so counts per block need no per-row work.

    Every count is a sum of coef * f_in * f_out, f the keep fraction of the row's fan-in and
    fan-out (1 when unscaled), and MACs are a polynomial in latent_side**2 of degree <= 2 (the
    self-attention matmuls). Returns params[b, c, i, o] and macs[p, b, c, i, o] (p = power of side**2).
    """
    n_b, n_c = table.num_blocks, len(CATEGORY_NAMES)
    params = np.zeros((n_b, n_c, 4, 4))
    macs = np.zeros((3, n_b, n_c, 4, 4))
    for r in range(table.num_rows):  # once per architecture, not per design point
        b, c, i, o = int(table.block[r]), int(table.category[r]), int(table.in_keep[r]), int(table.out_keep[r])
        fi, fo, k = table.fan_in[r], table.fan_out[r], table.kernel_area[r]
        area, fixed = table.area_coef[r], table.fixed_tokens[r]
        if c in (CONV, LINEAR):
            params[b, c, i, o] += k * fi * fo
            params[b, c, KEEP_NONE, o] += table.bias[r] * fo
            macs[1, b, c, i, o] += k * fi * fo * area
            macs[0, b, c, i, o] += k * fi * fo * fixed
        elif c in (SELF_ATTENTION, CROSS_ATTENTION):
            kv_area, kv_fixed = table.kv_area_coef[r], table.kv_fixed_tokens[r]
            macs[2, b, c, i, KEEP_NONE] += 2.0 * fi * area * kv_area
            macs[1, b, c, i, KEEP_NONE] += 2.0 * fi * (area * kv_fixed + fixed * kv_area)
            macs[0, b, c, i, KEEP_NONE] += 2.0 * fi * fixed * kv_fixed
        elif c == NORM:
            params[b, c, KEEP_NONE, o] += 2.0 * fo
        else:
            params[b, c, KEEP_NONE, KEEP_NONE] += fi * fo
    return params, macs


def count_blocks(table: LayerTable, *, latent_side: Num, keep: Num | None = None) -> BlockCounts:
    """Parameters and MACs per block and category; the same numbers as summing `count_layers`,
    from the folded coefficients (cost independent of the number of rows)."""
    coef_params, coef_macs = _block_coefficients(table)
    fractions = _keep_with_ones(table, keep)
    n_b, n_c = table.num_blocks, len(CATEGORY_NAMES)
    lead = fractions.shape[:-2]
    pair = (fractions[..., :, :, None] * fractions[..., :, None, :]).reshape(-1, n_b, 16)
    stacked = np.concatenate([coef_params[None], coef_macs]).reshape(4, n_b, n_c, 16).transpose(1, 3, 0, 2)
    coef = stacked.reshape(n_b, 16, 4 * n_c)
    # One GEMM per block of the architecture over all design points: params and the 3 MAC powers.
    folded = np.stack([pair[:, b, :] @ coef[b] for b in range(n_b)], axis=1).reshape(*lead, n_b, 4, n_c)
    params = folded[..., 0, :]
    side2 = np.asarray(latent_side, dtype=np.float64)[..., None, None] ** 2
    macs = folded[..., 1, :] + side2 * (folded[..., 2, :] + side2 * folded[..., 3, :])
    return BlockCounts(params=params, macs=macs)


def total_macs(
    table: LayerTable, *, latent_side: Num, keep: Num | None = None, include_attention_matmuls: bool = True
) -> FloatArray:
    """MACs per sample of the whole network (conv + linear, plus attention matmuls when asked).

    The fast path for many codes: per block a quadratic form f^T W f of the keep fractions,
    W folded from the table, so a million codes cost a few (N, blocks, 4) arrays.
    """
    _, coef_macs = _block_coefficients(table)
    cats = [CONV, LINEAR, SELF_ATTENTION, CROSS_ATTENTION] if include_attention_matmuls else [CONV, LINEAR]
    weights = coef_macs[:, :, cats].sum(axis=2)  # (power, block, in, out)
    fractions = _keep_with_ones(table, keep)
    lead = fractions.shape[:-2]
    flat = fractions.reshape(-1, table.num_blocks, 4)
    per_power = np.zeros((flat.shape[0], 3))
    for b in range(table.num_blocks):  # blocks of the architecture; each a GEMM over all points
        f_b = flat[:, b, :]
        left = (f_b @ weights[:, b].transpose(1, 0, 2).reshape(4, 12)).reshape(-1, 3, 4)
        per_power += np.einsum("npo,no->np", left, f_b)
    per_power = per_power.reshape(*lead, 3)
    side2 = np.asarray(latent_side, dtype=np.float64) ** 2
    out: FloatArray = per_power[..., 0] + side2 * (per_power[..., 1] + side2 * per_power[..., 2])
    return out


def _one_hot(index: IntArray, size: int) -> FloatArray:
    return np.eye(size)[index]


def sum_by_block_and_category(table: LayerTable, per_row: Num) -> FloatArray:
    """(..., rows) -> (..., num_blocks, 6 categories)."""
    x = np.asarray(per_row, dtype=np.float64)
    onehot = (
        _one_hot(table.block, table.num_blocks)[:, :, None] * _one_hot(table.category, len(CATEGORY_NAMES))[:, None, :]
    )
    out: FloatArray = np.einsum("...r,rbc->...bc", x, onehot)
    return out


def latent_side(image_side_px: Num, unet: UNetSpec) -> Num:
    """Latent side = image side / the VAE's down-sampling factor."""
    return np.asarray(image_side_px, dtype=np.float64) / unet.vae_scale_factor


def resource_ratio(
    spec: DiffusionPipelineSpec, *, image_side_px: Num, keep: Num, include_attention_matmuls: bool = True
) -> FloatArray:
    """R = UNet MACs per denoising step of the pruned network / the full network's (APTP's R_k).

    keep is (..., num_prunable, 3); image_side_px broadcasts with its leading dims. APTP's own
    op counter includes the QK^T and PV matmuls, hence the default.
    """
    table = unet_layer_table(spec.unet, spec.text_encoder.max_position_embeddings)
    side = latent_side(image_side_px, spec.unet)
    pruned = total_macs(table, latent_side=side, keep=keep, include_attention_matmuls=include_attention_matmuls)
    full = total_macs(table, latent_side=side, include_attention_matmuls=include_attention_matmuls)
    out: FloatArray = pruned / full
    return out


def uniform_keep_for_ratio(
    spec: DiffusionPipelineSpec,
    *,
    target_ratio: Num,
    image_side_px: Num,
    include_attention_matmuls: bool = True,
    iterations: int = 50,
) -> FloatArray:
    """The one uniform keep fraction whose R equals target_ratio (bisection, vectorised).

    R is increasing in a uniform keep fraction, so 50 halvings of [0, 1] pin it to 1e-15.
    """
    target = np.asarray(target_ratio, dtype=np.float64)
    side_px = np.asarray(image_side_px, dtype=np.float64)
    shape = np.broadcast_shapes(target.shape, side_px.shape)
    lo, hi = np.zeros(shape), np.ones(shape)
    n = len(unet_layer_table(spec.unet, spec.text_encoder.max_position_embeddings).prunable_blocks)
    for _ in range(iterations):  # bisection steps, not design points
        mid = 0.5 * (lo + hi)
        keep = np.broadcast_to(mid[..., None, None], (*shape, n, 3))
        r = resource_ratio(spec, image_side_px=side_px, keep=keep, include_attention_matmuls=include_attention_matmuls)
        above = r > target
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    out: FloatArray = 0.5 * (lo + hi)
    return out


# ---------------------------------------------------------------------------------------------
# Routing: entropic optimal transport of prompt categories onto codes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransportPlan:
    """Sinkhorn result: plan[..., i, k] = share of all prompts from category i sent to code k."""

    plan: FloatArray
    iterations: int
    #: Largest deviation of the row sums from the category shares before the final rounding.
    marginal_error: float
    #: Problems that reached max_iterations before the tolerance (their plans are still rounded).
    unconverged: int = 0


def _logsumexp(x: FloatArray, axis: int) -> FloatArray:
    peak = np.max(x, axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    out: FloatArray = np.log(np.sum(np.exp(x - peak), axis=axis)) + np.squeeze(peak, axis=axis)
    return out


def _round_to_marginals(plan: FloatArray, a: FloatArray, b: FloatArray) -> FloatArray:
    """The nearest-by-construction plan with exactly the marginals a and b (Altschuler, Weed and
    Rigollet, NeurIPS 2017, Algorithm 2): scale rows then columns down to their targets, and
    spread what is missing as a rank-one correction. Moves at most the marginal error."""
    with np.errstate(divide="ignore", invalid="ignore"):
        row_scale = np.where(plan.sum(axis=-1) > 0, np.minimum(a / plan.sum(axis=-1), 1.0), 0.0)
        x = plan * row_scale[..., :, None]
        col_scale = np.where(x.sum(axis=-2) > 0, np.minimum(b / x.sum(axis=-2), 1.0), 0.0)
        y = x * col_scale[..., None, :]
    missing_rows = a - y.sum(axis=-1)
    missing_cols = b - y.sum(axis=-2)
    total = np.sum(missing_cols, axis=-1)[..., None, None]
    correction = np.where(
        total > 0, missing_rows[..., :, None] * missing_cols[..., None, :] / np.where(total > 0, total, 1.0), 0.0
    )
    out: FloatArray = y + correction
    return out


def sinkhorn(
    *,
    cost: Num,
    row_marginal: Num,
    col_marginal: Num,
    epsilon: Num,
    max_iterations: int = 2000,
    tolerance: float = 1e-9,
) -> TransportPlan:
    """Entropic OT: argmin_P <P, C> - epsilon * H(P) with P 1 = a and P^T 1 = b (log domain).

    cost is (..., C, K); row_marginal (..., C), col_marginal (..., K) each sum to 1, epsilon
    (...); every leading index is its own problem, all solved together, each iterating until
    its row marginals hold to `tolerance` (or max_iterations); converged problems drop out of
    the batch. Zero marginals are allowed (their rows / columns stay empty). The plan is then
    rounded onto the exact marginals; `marginal_error` is the largest error before rounding.
    """
    c0 = np.asarray(cost, dtype=np.float64)
    a0 = np.asarray(row_marginal, dtype=np.float64)
    b0 = np.asarray(col_marginal, dtype=np.float64)
    e0 = np.asarray(epsilon, dtype=np.float64)
    lead = np.broadcast_shapes(c0.shape[:-2], a0.shape[:-1], b0.shape[:-1], e0.shape)
    n_rows, n_cols = c0.shape[-2], c0.shape[-1]
    c = np.broadcast_to(c0, (*lead, n_rows, n_cols)).reshape(-1, n_rows, n_cols)
    a = np.broadcast_to(a0, (*lead, n_rows)).reshape(-1, n_rows)
    b = np.broadcast_to(b0, (*lead, n_cols)).reshape(-1, n_cols)
    eps = np.broadcast_to(e0, lead).reshape(-1)
    with np.errstate(divide="ignore"):
        log_a, log_b = np.log(a), np.log(b)
    f = np.zeros_like(a)
    g = np.zeros_like(b)
    active = np.arange(len(eps))
    error = np.full(len(eps), np.inf)
    iterations = 0
    with np.errstate(invalid="ignore"):
        while active.size and iterations < max_iterations:  # iterations of the batched solve
            iterations += 1
            ca, ea = c[active], eps[active][:, None]
            fa = ea * (log_a[active] - _logsumexp((g[active][:, None, :] - ca) / ea[..., None], axis=-1))
            fa = np.where(np.isfinite(fa), fa, -np.inf)
            ga = ea * (log_b[active] - _logsumexp((fa[:, :, None] - ca) / ea[..., None], axis=-2))
            ga = np.where(np.isfinite(ga), ga, -np.inf)
            f[active], g[active] = fa, ga
            rows = np.exp((fa[:, :, None] + ga[:, None, :] - ca) / ea[..., None])
            error[active] = np.max(np.abs(np.where(np.isfinite(rows), rows, 0.0).sum(axis=-1) - a[active]), axis=-1)
            active = active[error[active] >= tolerance]
        plan = np.exp((f[:, :, None] + g[:, None, :] - c) / eps[:, None, None])
    plan = np.where(np.isfinite(plan), plan, 0.0)
    rounded = _round_to_marginals(plan, a, b).reshape(*lead, n_rows, n_cols)
    return TransportPlan(
        plan=rounded,
        iterations=iterations,
        marginal_error=float(np.max(error, initial=0.0)),
        unconverged=int(active.size),
    )


def routing_cost(*, code_ratio: Num, category_capacity: Num) -> FloatArray:
    """C[i, k] = (R_k - q_i)^2: squared mismatch between a code's resource ratio and the capacity
    a prompt category needs. Too little capacity costs quality, too much wastes compute; the
    squared form is submodular, so the exact plan is the monotone (sorted) coupling."""
    r = np.asarray(code_ratio, dtype=np.float64)
    q = np.asarray(category_capacity, dtype=np.float64)
    out: FloatArray = (r[..., None, :] - q[..., :, None]) ** 2
    return out


@dataclass(frozen=True)
class Routing:
    plan: TransportPlan
    #: Share of prompts each code serves (..., K).
    code_share: FloatArray
    #: Mean resource ratio over prompts, sum_k share_k * R_k.
    mean_ratio: FloatArray
    #: Mean capacity shortfall, sum_ik P_ik * max(0, q_i - R_k): prompts under-served.
    mean_shortfall: FloatArray
    budget_met: NDArray[np.bool_]


def route_prompts(
    *,
    category_share: Num,
    category_capacity: Num,
    code_ratio: Num,
    code_capacity: Num,
    budget_ratio: Num,
    epsilon: Num,
) -> Routing:
    """Assign a prompt mix to codes by entropic OT and check the compute budget (mean R <= budget)."""
    cost = routing_cost(code_ratio=code_ratio, category_capacity=category_capacity)
    plan = sinkhorn(cost=cost, row_marginal=category_share, col_marginal=code_capacity, epsilon=epsilon)
    r = np.asarray(code_ratio, dtype=np.float64)
    q = np.asarray(category_capacity, dtype=np.float64)
    share = plan.plan.sum(axis=-2)
    mean_ratio = np.sum(share * r, axis=-1)
    shortfall = np.sum(plan.plan * np.maximum(q[..., :, None] - r[..., None, :], 0.0), axis=(-2, -1))
    # Round-off of the Sinkhorn marginals must not flip a budget that holds exactly.
    met = mean_ratio <= np.asarray(budget_ratio, dtype=np.float64) + 1e-9
    return Routing(plan=plan, code_share=share, mean_ratio=mean_ratio, mean_shortfall=shortfall, budget_met=met)


# ---------------------------------------------------------------------------------------------
# Serving cost on an accelerator (roofline per row)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accelerator:
    """The roofline terms of one accelerator (SI units)."""

    peak_flops_per_s: Num
    memory_bandwidth_bytes_per_s: Num
    compute_efficiency: Num
    memory_efficiency: Num
    kernel_overhead_s: Num

    def with_trailing_axes(self, count: int) -> Accelerator:
        """The same terms with `count` unit axes appended, to broadcast against (..., codes, rows)."""

        def expand(x: Num) -> FloatArray:
            return np.asarray(x, dtype=np.float64).reshape(np.shape(x) + (1,) * count)

        return Accelerator(
            peak_flops_per_s=expand(self.peak_flops_per_s),
            memory_bandwidth_bytes_per_s=expand(self.memory_bandwidth_bytes_per_s),
            compute_efficiency=expand(self.compute_efficiency),
            memory_efficiency=expand(self.memory_efficiency),
            kernel_overhead_s=expand(self.kernel_overhead_s),
        )


def network_time_s(counts: LayerCounts, *, batch: Num, bytes_per_element: Num, accelerator: Accelerator) -> FloatArray:
    """Time of one forward pass at `batch` samples: sum over rows of the roofline time.

    A row with batch 0 costs nothing (no launch). FLOP = 2 * MACs * batch;
    bytes = (params + batch * activation elements) * bytes per element. batch, bytes_per_element
    and the accelerator's terms broadcast against the counts without their last (rows) axis.
    """
    n = np.asarray(batch, dtype=np.float64)[..., None]
    width = np.asarray(bytes_per_element, dtype=np.float64)[..., None]
    accelerator = accelerator.with_trailing_axes(1)  # the rows axis
    cost = roofline_cost(
        flop=2.0 * counts.macs * n,
        bytes_moved=(counts.params + n * counts.activation_elements) * width,
        peak_flops_per_s=accelerator.peak_flops_per_s,
        memory_bandwidth_bytes_per_s=accelerator.memory_bandwidth_bytes_per_s,
        compute_efficiency=accelerator.compute_efficiency,
        memory_efficiency=accelerator.memory_efficiency,
        overhead_s=accelerator.kernel_overhead_s,
    )
    out: FloatArray = np.sum(np.where(n > 0, cost.time_s, 0.0), axis=-1)
    return out


@dataclass(frozen=True)
class ServingCost:
    """Seconds and images/s for a batch of `batch` prompts, per strategy (broadcast over inputs)."""

    static_latency_s: FloatArray
    dynamic_latency_s: FloatArray
    aptp_latency_s: FloatArray
    static_images_per_s: FloatArray
    dynamic_images_per_s: FloatArray
    aptp_images_per_s: FloatArray
    #: Parts of the APTP time: text encoder, all UNet steps, VAE decoder.
    aptp_text_encoder_s: FloatArray
    aptp_unet_s: FloatArray
    aptp_vae_s: FloatArray
    #: The unpruned pipeline at the same batch, for the latency cut.
    full_latency_s: FloatArray


def serving_cost(
    spec: DiffusionPipelineSpec,
    *,
    code_keep: Num,
    code_share: Num,
    static_keep: Num,
    image_side_px: Num,
    batch: Num,
    denoising_steps: Num,
    guidance_copies: Num,
    bytes_per_element: Num,
    accelerator: Accelerator,
) -> ServingCost:
    """Serving a batch of prompts through text encoder, N UNet steps and VAE decoder.

    code_keep (K, num_prunable, 3), code_share (..., K) summing to 1; static_keep (..., num_prunable, 3).
    guidance_copies = 2 with classifier-free guidance (conditional + unconditional UNet and
    text-encoder passes per image), 1 without.
    * static: one pruned network for the whole batch;
    * dynamic: a per-prompt network, so every prompt runs alone (batch 1), each its code's cost;
    * APTP: the batch splits by code into sub-batches run one after another; code k is drawn with
      probability 1 - (1 - s_k)^B and then serves B s_k / that probability prompts on average
      (exact at B = 1, where APTP costs what dynamic pruning does, and B s_k for large B).
    Text encoder and VAE decoder are not pruned; they batch over the whole batch except in dynamic.
    """
    unet_table = unet_layer_table(spec.unet, spec.text_encoder.max_position_embeddings)
    side = np.asarray(latent_side(image_side_px, spec.unet), dtype=np.float64)
    b = np.asarray(batch, dtype=np.float64)
    steps = np.asarray(denoising_steps, dtype=np.float64)
    g = np.asarray(guidance_copies, dtype=np.float64)
    share = np.asarray(code_share, dtype=np.float64)
    keep = np.asarray(code_keep, dtype=np.float64)
    n_codes = keep.shape[-3]

    per_point = accelerator.with_trailing_axes(1)  # codes axis of the per-code calls
    width_per_point = np.asarray(bytes_per_element, dtype=np.float64)[..., None]

    def times(table: LayerTable, n: Num, keep_: Num | None, side_: Num, per_code: bool = False) -> FloatArray:
        counts = count_layers(table, latent_side=side_, keep=keep_)
        if per_code:
            return network_time_s(counts, batch=n, bytes_per_element=width_per_point, accelerator=per_point)
        return network_time_s(counts, batch=n, bytes_per_element=bytes_per_element, accelerator=accelerator)

    text_table = text_encoder_layer_table(spec.text_encoder)
    vae_table = vae_decoder_layer_table(spec.vae_decoder)
    text_b = times(text_table, g * b, None, 0.0)
    vae_b = times(vae_table, b, None, side)
    text_1 = times(text_table, g, None, 0.0)
    vae_1 = times(vae_table, 1.0, None, side)

    side_k = side[..., None]  # codes on the last axis
    # Prompts of code k in a batch of B are Binomial(B, s_k): the code runs (and reads its
    # weights) only when it is drawn, with B s_k / P(drawn) prompts on average when it is.
    drawn = 1.0 - (1.0 - share) ** b[..., None]
    sub_batch = np.where(drawn > 0, b[..., None] * share / np.where(drawn > 0, drawn, 1.0), 0.0)
    unet_code_sub = drawn * times(unet_table, g[..., None] * sub_batch, keep, side_k, per_code=True)
    unet_code_1 = times(unet_table, g[..., None] * np.ones(n_codes), keep, side_k, per_code=True)
    unet_static = times(unet_table, g * b, static_keep, side)
    unet_full = times(unet_table, g * b, None, side)

    aptp_unet = steps * np.sum(unet_code_sub, axis=-1)
    aptp = text_b + aptp_unet + vae_b
    static = text_b + steps * unet_static + vae_b
    dynamic = b * np.sum(share * (text_1[..., None] + steps[..., None] * unet_code_1 + vae_1[..., None]), axis=-1)
    full = text_b + steps * unet_full + vae_b
    return ServingCost(
        static_latency_s=static,
        dynamic_latency_s=dynamic,
        aptp_latency_s=aptp,
        static_images_per_s=b / static,
        dynamic_images_per_s=b / dynamic,
        aptp_images_per_s=b / aptp,
        aptp_text_encoder_s=np.broadcast_to(text_b, aptp.shape).copy(),
        aptp_unet_s=aptp_unet,
        aptp_vae_s=np.broadcast_to(vae_b, aptp.shape).copy(),
        full_latency_s=full,
    )
