"""Architecture codes: the resource ratio R of a code (keep fractions of ResNet channels, attention
heads and FFN width per prunable block) and the uniform code with a given R.

An architecture code keeps, per prunable block, a fraction of the ResNet inner channels, of the
attention heads and of the GEGLU feed-forward width; the residual stream width is untouched
(APTP's width gates sit inside the blocks).
"""

from __future__ import annotations

import functools

import numpy as np

from dse.engines.pruning.counter import latent_side, total_macs
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
    iterations: int = 50,
) -> FloatArray:
    """The one uniform keep fraction whose R equals target_ratio (bisection, vectorised).

    R is increasing in a uniform keep fraction, so 50 halvings of [0, 1] pin it to 1e-15.
    An evaluation's answer (a few points, not a sweep's) is kept, most recently used last: it depends on
    the architecture, the target (the routing's mean R) and the resolution only. A kept answer is read-only.
    """
    target = np.asarray(target_ratio, dtype=np.float64)
    side_px = np.asarray(image_side_px, dtype=np.float64)
    table = unet_layer_table(spec.unet, spec.text_encoder.max_position_embeddings)
    if target.size + side_px.size > KEPT_MAX_POINTS:
        return _uniform_keep(table, spec.unet, target, side_px, include_attention_matmuls, iterations)
    keys = ((target.shape, target.tobytes()), (side_px.shape, side_px.tobytes()))
    return _kept_uniform_keep(table, spec.unet, *keys, include_attention_matmuls, iterations)


#: Largest bisection (target and resolution points together) whose answer is kept, and how many are kept.
KEPT_MAX_POINTS = 256
KEPT_ANSWERS = 64

_Key = tuple[tuple[int, ...], bytes]


@functools.lru_cache(maxsize=KEPT_ANSWERS)
def _kept_uniform_keep(
    table: LayerTable, unet: UNetSpec, target: _Key, side_px: _Key, include_attention_matmuls: bool, iterations: int
) -> FloatArray:
    target_arr, side_arr = (np.frombuffer(data, dtype=np.float64).reshape(shape) for shape, data in (target, side_px))
    out = _uniform_keep(table, unet, target_arr, side_arr, include_attention_matmuls, iterations)
    out.setflags(write=False)
    return out


def _uniform_keep(
    table: LayerTable,
    unet: UNetSpec,
    target: FloatArray,
    side_px: FloatArray,
    include_attention_matmuls: bool,
    iterations: int,
) -> FloatArray:
    shape = np.broadcast_shapes(target.shape, side_px.shape)
    lo, hi = np.zeros(shape), np.ones(shape)
    n = len(table.prunable_blocks)
    side = latent_side(side_px, unet)
    # `resource_ratio`'s denominator, the full network's MACs, is the same at every step
    full = total_macs(table, latent_side=side, include_attention_matmuls=include_attention_matmuls)
    for _ in range(iterations):  # bisection steps, not design points
        mid = 0.5 * (lo + hi)
        keep = np.broadcast_to(mid[..., None, None], (*shape, n, 3))
        r = total_macs(table, latent_side=side, keep=keep, include_attention_matmuls=include_attention_matmuls) / full
        above = r > target
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    out: FloatArray = 0.5 * (lo + hi)
    return out
