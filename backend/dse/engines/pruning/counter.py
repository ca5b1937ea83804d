"""The UNet parameter and MAC counter: a layer table, a latent side and keep fractions in,
parameters, MACs and activation elements out (per row, per block and category, or in total),
vectorised over resolution and codes. MAC = one multiply-accumulate; FLOP = 2 MAC.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np

from dse.engines.pruning.layers import (
    CATEGORY_NAMES,
    CONV,
    CROSS_ATTENTION,
    ELEMENTWISE,
    EMBEDDING,
    KEEP_NONE,
    LINEAR,
    NORM,
    SELF_ATTENTION,
    FloatArray,
    IntArray,
    LayerTable,
)
from dse.specs.common import Num
from dse.specs.diffusion import UNetSpec


@dataclass(frozen=True)
class LayerCounts:
    """Per-row counts for one sample (broadcast leading dims ..., then rows)."""

    params: FloatArray
    macs: FloatArray
    #: Activation elements a row reads and writes for one sample (weights excluded).
    activation_elements: FloatArray
    #: The row's shape after its keep fractions: output positions, key/value positions, fan-in and
    #: fan-out widths (an attention row's width is its kept heads x head width).
    tokens: FloatArray
    kv_tokens: FloatArray
    width_in: FloatArray
    width_out: FloatArray


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


@cache
def _category_masks(table: LayerTable) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """1.0 on the rows of each kind (weights, attention, norms, embeddings, element-wise), once per table."""
    cat = table.category
    return (
        ((cat == CONV) | (cat == LINEAR)).astype(np.float64),
        ((cat == SELF_ATTENTION) | (cat == CROSS_ATTENTION)).astype(np.float64),
        (cat == NORM).astype(np.float64),
        (cat == EMBEDDING).astype(np.float64),
        (cat == ELEMENTWISE).astype(np.float64),
    )


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
    is_weight, is_attention, is_norm, is_embedding, is_elementwise = _category_masks(table)
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
        + is_norm * table.kernel_area * width_out * tokens
        + is_embedding * width_out * tokens
        + is_elementwise * table.kernel_area * width_out * tokens
    )
    return LayerCounts(
        params=params,
        macs=macs,
        activation_elements=activations,
        tokens=tokens,
        kv_tokens=kv_tokens,
        width_in=width_in,
        width_out=width_out,
    )


@dataclass(frozen=True)
class BlockCounts:
    """Per block and category counts for one sample: (..., num_blocks, categories)."""

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
    cat, block, keep_in, keep_out = table.category, table.block, table.in_keep, table.out_keep
    fi, fo, k = table.fan_in, table.fan_out, table.kernel_area
    area, fixed, kv_area, kv_fixed = table.area_coef, table.fixed_tokens, table.kv_area_coef, table.kv_fixed_tokens
    is_weight = (cat == CONV) | (cat == LINEAR)
    is_attention = (cat == SELF_ATTENTION) | (cat == CROSS_ATTENTION)
    none = np.full_like(keep_in, KEEP_NONE)
    weights = k * fi * fo
    # Parameters: per row a weight term (conv, linear), a norm's or an embedding's, then a bias term; np.add.at
    # adds them in this row order, as a loop over the rows would.
    params = np.zeros((n_b, n_c, 4, 4))
    term = np.where(is_weight, weights, np.where(cat == NORM, 2.0 * fo, np.where(cat == EMBEDDING, fi * fo, 0.0)))
    term_in = np.where(is_weight, keep_in, none)
    term_out = np.where(cat == EMBEDDING, none, keep_out)
    bias = np.where(is_weight, table.bias * fo, 0.0)
    pairs = ((block, block), (cat, cat), (term_in, none), (term_out, keep_out))  # (rows, 2) once stacked
    np.add.at(params, tuple(np.stack(pair, axis=-1) for pair in pairs), np.stack([term, bias], axis=-1))
    # MACs by power of side**2: a GEMM's tokens are linear in it, an attention matmul's (tokens x kv tokens) quadratic.
    macs = np.zeros((3, n_b, n_c, 4, 4))
    mac_out = np.where(is_attention, none, keep_out)
    by_power = [
        np.where(is_weight, weights * fixed, np.where(is_attention, 2.0 * fi * fixed * kv_fixed, 0.0)),
        np.where(
            is_weight, weights * area, np.where(is_attention, 2.0 * fi * (area * kv_fixed + fixed * kv_area), 0.0)
        ),
        np.where(is_attention, 2.0 * fi * area * kv_area, 0.0),
    ]
    for power, term_macs in enumerate(by_power):
        np.add.at(macs[power], (block, cat, keep_in, mac_out), term_macs)
    return params, macs


def count_blocks(table: LayerTable, *, latent_side: Num, keep: Num | None = None) -> BlockCounts:
    """Parameters and MACs per block and category; the same numbers as summing `count_layers`,
    from the folded coefficients (cost independent of the number of rows). The unpruned network at one
    latent side is kept (read-only arrays): a scenario's tables, metrics and published rows all ask for it."""
    if keep is None and np.ndim(latent_side) == 0:
        return _unpruned_blocks(table, float(latent_side))
    return _count_blocks(table, latent_side=latent_side, keep=keep)


@lru_cache(maxsize=64)
def _unpruned_blocks(table: LayerTable, latent_side: float) -> BlockCounts:
    counts = _count_blocks(table, latent_side=latent_side, keep=None)
    counts.params.flags.writeable = False
    counts.macs.flags.writeable = False
    return counts


@cache
def _folded_coefficients(table: LayerTable) -> FloatArray:
    """(blocks, 16 keep-fraction pairs, 4 x categories): params and the 3 MAC powers per pair (once per table)."""
    coef_params, coef_macs = _block_coefficients(table)
    n_b, n_c = table.num_blocks, len(CATEGORY_NAMES)
    stacked = np.concatenate([coef_params[None], coef_macs]).reshape(4, n_b, n_c, 16).transpose(1, 3, 0, 2)
    coef: FloatArray = stacked.reshape(n_b, 16, 4 * n_c)
    coef.setflags(write=False)
    return coef


def _count_blocks(table: LayerTable, *, latent_side: Num, keep: Num | None) -> BlockCounts:
    fractions = _keep_with_ones(table, keep)
    n_b, n_c = table.num_blocks, len(CATEGORY_NAMES)
    lead = fractions.shape[:-2]
    pair = (fractions[..., :, :, None] * fractions[..., :, None, :]).reshape(-1, n_b, 16)
    coef = _folded_coefficients(table)
    # One GEMM per block of the architecture over all design points: params and the 3 MAC powers.
    folded = np.stack([pair[:, b, :] @ coef[b] for b in range(n_b)], axis=1).reshape(*lead, n_b, 4, n_c)
    params = folded[..., 0, :]
    side2 = np.asarray(latent_side, dtype=np.float64)[..., None, None] ** 2
    macs = folded[..., 1, :] + side2 * (folded[..., 2, :] + side2 * folded[..., 3, :])
    return BlockCounts(params=params, macs=macs)


def _mac_weights(table: LayerTable, include_attention_matmuls: bool) -> FloatArray:
    """MAC coefficients (power of side**2, block, in, out) summed over the counted categories."""
    _, coef_macs = _block_coefficients(table)
    cats = [CONV, LINEAR, SELF_ATTENTION, CROSS_ATTENTION] if include_attention_matmuls else [CONV, LINEAR]
    out: FloatArray = coef_macs[:, :, cats].sum(axis=2)
    return out


@cache
def _block_mac_weights(table: LayerTable, include_attention_matmuls: bool) -> tuple[FloatArray, ...]:
    """Per block, the (in, power x out) MAC coefficients `total_macs` multiplies the keep fractions by
    (once per architecture)."""
    weights = _mac_weights(table, include_attention_matmuls)
    blocks = tuple(weights[:, b].transpose(1, 0, 2).reshape(4, 12) for b in range(table.num_blocks))
    for block in blocks:
        block.setflags(write=False)
    return blocks


#: Design points up to which `total_macs` stacks the blocks (faster for few points, slower for many).
FEW_POINTS = 64


def total_macs(
    table: LayerTable, *, latent_side: Num, keep: Num | None = None, include_attention_matmuls: bool = True
) -> FloatArray:
    """MACs per sample of the whole network (conv + linear, plus attention matmuls when asked).

    The fast path for many codes: per block a quadratic form f^T W f of the keep fractions,
    W folded from the table, so a million codes cost a few (N, blocks, 4) arrays.
    """
    weights = _block_mac_weights(table, include_attention_matmuls)
    fractions = _keep_with_ones(table, keep)
    lead = fractions.shape[:-2]
    flat = fractions.reshape(-1, table.num_blocks, 4)
    if flat.shape[0] <= FEW_POINTS:
        # Few points (one evaluation, a bisection step): every block in one stacked GEMM and one einsum; the
        # same per-block GEMMs and products as the loop below, summed over blocks in the same order.
        by_block = flat.transpose(1, 0, 2)
        left = np.matmul(by_block, np.stack(weights)).reshape(table.num_blocks, -1, 3, 4)
        per_power = np.einsum("bnpo,bno->bnp", left, by_block).sum(axis=0)
    else:
        per_power = np.zeros((flat.shape[0], 3))
        for b in range(table.num_blocks):  # blocks of the architecture; each a GEMM over all points
            f_b = flat[:, b, :]
            left = (f_b @ weights[b]).reshape(-1, 3, 4)
            per_power += np.einsum("npo,no->np", left, f_b)
    per_power = per_power.reshape(*lead, 3)
    side2 = np.asarray(latent_side, dtype=np.float64) ** 2
    out: FloatArray = per_power[..., 0] + side2 * (per_power[..., 1] + side2 * per_power[..., 2])
    return out


@cache
def _uniform_keep_weights(table: LayerTable, include_attention_matmuls: bool) -> FloatArray:
    """(power of side**2, power of u) MAC coefficients of the network whose prunable blocks all keep the
    fraction u: a term scales with u once per scaled side (fan-in, fan-out) in a prunable block."""
    weights = _mac_weights(table, include_attention_matmuls)
    prunable = np.zeros(table.num_blocks, dtype=bool)
    prunable[list(table.prunable_blocks)] = True
    scaled = (np.arange(4) != KEEP_NONE).astype(np.int64)
    degree = prunable[:, None, None] * (scaled[:, None] + scaled[None, :])  # (block, in, out)
    out = np.stack([weights[:, degree == d].sum(axis=1) for d in range(3)], axis=-1)
    out.setflags(write=False)
    return out


def uniform_keep_macs(table: LayerTable, *, latent_side: Num, include_attention_matmuls: bool = True) -> FloatArray:
    """(..., 3): c with MACs per sample = c0 + c1 u + c2 u**2 when every prunable block keeps the fraction u
    of its channels, heads and FFN width (`total_macs` of that code, as a polynomial in u)."""
    weights = _uniform_keep_weights(table, include_attention_matmuls)
    side2 = np.asarray(latent_side, dtype=np.float64)[..., None] ** 2
    out: FloatArray = weights[0] + side2 * (weights[1] + side2 * weights[2])
    return out


def _one_hot(index: IntArray, size: int) -> FloatArray:
    return np.eye(size)[index]


def sum_by_block_and_category(table: LayerTable, per_row: Num) -> FloatArray:
    """(..., rows) -> (..., num_blocks, categories)."""
    x = np.asarray(per_row, dtype=np.float64)
    onehot = (
        _one_hot(table.block, table.num_blocks)[:, :, None] * _one_hot(table.category, len(CATEGORY_NAMES))[:, None, :]
    )
    out: FloatArray = np.einsum("...r,rbc->...bc", x, onehot)
    return out


def latent_side(image_side_px: Num, unet: UNetSpec) -> Num:
    """Latent side = image side / the VAE's down-sampling factor."""
    return np.asarray(image_side_px, dtype=np.float64) / unet.vae_scale_factor
