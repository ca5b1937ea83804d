"""SSD activation offload (SSDTrain, Wu et al. 2024; the rule of K-Wu/FlashTrain tensor_cache.py).

During the forward pass a stage writes the activations of its first layers to NVMe and reads
them back ahead of the backward pass. With the backward pass taken as twice the forward, the
adaptive rule keeps layer j and every later layer on the GPU at the first j where

    (sum_{i<j} A_i + 2*A_j) / (3*T_fwd - 2*sum_{i<j} t_i) > BW

(A_i activation bytes and t_i forward time of layer i, T_fwd the stage's forward time, BW the
GPU's share of the SSD bandwidth). With l equal layers this is the first j > x with
x = (3*l*BW*t - 2*A) / (A + 2*BW*t), so j = floor(x) + 1 layers go to the drives (at most l-1:
the last layer's activations are consumed at once by the backward pass).
"""

from __future__ import annotations

import numpy as np

from dse.engines.training.codes import Offload
from dse.engines.training.inputs import Array, as_array
from dse.specs.common import Num


def adaptive_offloaded_layers(
    *, layers: Num, layer_activation_bytes: Num, layer_forward_s: Num, ssd_bandwidth_bytes_per_s: Num
) -> Array:
    """Layers of a stage SSDTrain's adaptive rule sends to the SSDs (a whole number in [0, l-1])."""
    n_layers, A = as_array(layers), as_array(layer_activation_bytes)
    bw_t = as_array(ssd_bandwidth_bytes_per_s) * as_array(layer_forward_s)
    x = (3.0 * n_layers * bw_t - 2.0 * A) / (A + 2.0 * bw_t)
    first_kept = np.where(x >= 0.0, np.floor(x) + 1.0, 0.0)
    return np.asarray(np.clip(first_kept, 0.0, np.maximum(n_layers - 1.0, 0.0)))


def offloaded_layers(
    *, mode: Num, layers: Num, layer_activation_bytes: Num, layer_forward_s: Num, ssd_bandwidth_bytes_per_s: Num
) -> Array:
    """Layers per stage whose activations go to SSD under the plan's offload mode."""
    m, n_layers = as_array(mode), as_array(layers)
    adaptive = adaptive_offloaded_layers(
        layers=n_layers,
        layer_activation_bytes=layer_activation_bytes,
        layer_forward_s=layer_forward_s,
        ssd_bandwidth_bytes_per_s=np.maximum(as_array(ssd_bandwidth_bytes_per_s), 1e-30),
    )
    return np.asarray(
        np.where(m == Offload.ADAPTIVE, adaptive, np.where(m == Offload.ALL, np.maximum(n_layers - 1.0, 0.0), 0.0))
    )


def offload_stall_s(
    *,
    offloaded_bytes: Num,
    write_bandwidth_bytes_per_s: Num,
    read_bandwidth_bytes_per_s: Num,
    forward_s: Num,
    backward_s: Num,
) -> Array:
    """Per micro-batch stall when the drives cannot hide the I/O: writes must finish within the
    forward and backward passes and the reads with them (the rule's 3*T_fwd window)."""
    w = as_array(write_bandwidth_bytes_per_s)
    r = as_array(read_bandwidth_bytes_per_s)
    io = as_array(offloaded_bytes) * (1.0 / np.maximum(w, 1e-30) + 1.0 / np.maximum(r, 1e-30))
    return np.asarray(
        np.where(as_array(offloaded_bytes) > 0, np.maximum(io - as_array(forward_s) - as_array(backward_s), 0.0), 0.0)
    )
