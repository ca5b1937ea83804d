"""Architecture codes: the resource ratio R of a code (keep fractions of ResNet channels, attention
heads and FFN width per prunable block) and the uniform code with a given R.

An architecture code keeps, per prunable block, a fraction of the ResNet inner channels, of the
attention heads and of the GEGLU feed-forward width; the residual stream width is untouched
(APTP's width gates sit inside the blocks).
"""

from __future__ import annotations

import functools

import numpy as np

from dse.engines.pruning.counter import latent_side, total_macs, uniform_keep_macs
from dse.engines.pruning.layers import FloatArray, LayerTable, unet_layer_table
from dse.specs.common import Num
from dse.specs.diffusion import DiffusionPipelineSpec, UNetSpec


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
) -> FloatArray:
    """The one uniform keep fraction u in [0, 1] whose R equals target_ratio (vectorised), to 2**-51.

    With every prunable block keeping u, the MACs are c0 + c1 u + c2 u**2 (a term scales with u once per
    pruned side of its layer), so u is the positive root of a quadratic; c1, c2 >= 0 make R increasing.
    The answer is then the one 50 bisection halvings of [0, 1] give, to the last bit (see `_uniform_keep`):
    a target below R(0) gives 2**-51, above 1 gives 1 - 2**-51.
    An evaluation's answer (a few points, not a sweep's) is kept, most recently used last: it depends on
    the architecture, the target (the routing's mean R) and the resolution only. A kept answer is read-only.
    """
    target = np.asarray(target_ratio, dtype=np.float64)
    side_px = np.asarray(image_side_px, dtype=np.float64)
    table = unet_layer_table(spec.unet, spec.text_encoder.max_position_embeddings)
    if target.size + side_px.size > KEPT_MAX_POINTS:
        return _uniform_keep(table, spec.unet, target, side_px, include_attention_matmuls)
    keys = ((target.shape, target.tobytes()), (side_px.shape, side_px.tobytes()))
    return _kept_uniform_keep(table, spec.unet, *keys, include_attention_matmuls)


#: Largest solve (target and resolution points together) whose answer is kept, and how many are kept.
KEPT_MAX_POINTS = 256
KEPT_ANSWERS = 64

_Key = tuple[tuple[int, ...], bytes]


@functools.lru_cache(maxsize=KEPT_ANSWERS)
def _kept_uniform_keep(
    table: LayerTable, unet: UNetSpec, target: _Key, side_px: _Key, include_attention_matmuls: bool
) -> FloatArray:
    target_arr, side_arr = (np.frombuffer(data, dtype=np.float64).reshape(shape) for shape, data in (target, side_px))
    out = _uniform_keep(table, unet, target_arr, side_arr, include_attention_matmuls)
    out.setflags(write=False)
    return out


#: The answer's grid: the midpoint of a 2**-50 cell of [0, 1], where 50 bisection halvings leave it.
GRID_CELLS = 2.0**50
#: Cells tried around the exact root's (its round-off spans less than one).
_NEAR_CELLS = np.arange(-2.0, 3.0)


def _uniform_keep(
    table: LayerTable,
    unet: UNetSpec,
    target: FloatArray,
    side_px: FloatArray,
    include_attention_matmuls: bool,
) -> FloatArray:
    side = np.asarray(latent_side(side_px, unet), dtype=np.float64)
    c0, c1, c2 = np.moveaxis(
        uniform_keep_macs(table, latent_side=side, include_attention_matmuls=include_attention_matmuls), -1, 0
    )
    # `resource_ratio`'s denominator, the full network's MACs
    full = total_macs(table, latent_side=side, include_attention_matmuls=include_attention_matmuls)
    # MACs the pruned terms must reach: c1 u + c2 u**2 = deficit (none: u = 0)
    deficit = np.maximum(target * full - c0, 0.0)
    # The positive root in the form without cancellation (c1, c2 >= 0); no pruned MACs at all: u = 1.
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.clip(np.where(deficit > 0.0, 2.0 * deficit / (c1 + np.sqrt(c1 * c1 + 4.0 * c2 * deficit)), 0.0), 0, 1)
    # The answer is the bisection's, to the last bit: the midpoint of the last cell whose lower edge has R <= target
    # as `resource_ratio` computes it. A root on an exact keep (0.6 of 320 channels) sits on a cell edge, and
    # R's round-off there picks the cell; the GEMM tiles of the serving model see the difference.
    # Edges 0 and 1 are the bisection's starting bracket, never tested (below R(0): the first cell).
    edges = np.clip(np.floor(root * GRID_CELLS)[..., None] + _NEAR_CELLS, 1.0, GRID_CELLS - 1.0)
    n = len(table.prunable_blocks)
    keep = np.broadcast_to((edges / GRID_CELLS)[..., None, None], (*edges.shape, n, 3))
    r = (
        total_macs(table, latent_side=side[..., None], keep=keep, include_attention_matmuls=include_attention_matmuls)
        / full[..., None]
    )
    lower = np.max(np.where(r <= target[..., None], edges, 0.0), axis=-1)
    out: FloatArray = (lower + 0.5) / GRID_CELLS
    return out
