"""Which link a collective crosses under the plan's rank-to-GPU mapping.

Ranks are laid out as Megatron-LM does (tensor-parallel ranks innermost, then sequence-parallel
(context) ranks, then data-parallel, then pipeline stages outermost), so a group of `size` ranks
`stride` apart stays inside one node when stride*size <= GPUs per node, and is costed on the
slowest link it crosses otherwise:
- a ring (all-reduce, all-gather, reduce-scatter, ring attention) that crosses nodes enters and
  leaves each node once per ring; with k group members on a node their k network shares carry
  it in parallel, so it runs at min(intra-node, k x a GPU's network share);
- an all-to-all sends (size-k)/size of each buffer off the node through the GPU's own share;
- a pipeline send between stages on different nodes uses one GPU's share.
With a measured node-pair bandwidth matrix (Pipette), a GPU's share is the smallest measured
bandwidth between the node pairs the group's ring neighbours sit on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dse.engines.training.inputs import Array, ClusterArrays, as_array
from dse.specs.common import Num


@dataclass(frozen=True)
class Link:
    """Per-rank unidirectional bandwidth and per-step latency a group's collective sees."""

    bandwidth_bytes_per_s: Array
    latency_s: Array
    crosses_nodes: Array


def _min_edge_by_node_distance(matrix: Array) -> Array:
    """For each node distance d (index d), the smallest bandwidth between nodes d apart (either direction)."""
    nodes = matrix.shape[0]
    out = np.full(max(nodes, 1), np.inf)
    for distance in range(1, nodes):  # a loop over node distances of one cluster, not over plans
        forward = np.diagonal(matrix, offset=distance)
        backward = np.diagonal(matrix, offset=-distance)
        out[distance] = min(float(forward.min()), float(backward.min()))
    return out


def _measured_share(cluster: ClusterArrays, node_stride: Array, wrap_distance: Array) -> Array:
    """The slowest measured per-GPU bandwidth among the ring's neighbour and wrap-around node pairs."""
    nominal = as_array(cluster.inter_node_bandwidth_per_gpu_bytes_per_s)
    matrix = cluster.node_pair_bandwidth_bytes_per_s
    if matrix is None or matrix.shape[0] < 2:
        return np.asarray(nominal + 0.0 * node_stride)
    table = _min_edge_by_node_distance(matrix)
    top = matrix.shape[0] - 1
    near = table[np.clip(node_stride, 1, top).astype(np.int64)]
    wrap = table[np.clip(wrap_distance, 1, top).astype(np.int64)]
    return np.asarray(np.minimum(near, wrap))


def group_link(*, cluster: ClusterArrays, stride: Num, size: Num, pattern: str) -> Link:
    """The link a group of `size` ranks `stride` apart uses; pattern is 'ring', 'all_to_all' or 'p2p'."""
    g, st, sz = as_array(cluster.gpus_per_node), as_array(stride), np.maximum(as_array(size), 1.0)
    crosses = st * sz > g
    members_per_node = np.clip(g / st, 1.0, sz)
    node_stride = np.maximum(st / g, 1.0)
    nodes_spanned = np.maximum(st * sz / g, 1.0)
    wrap = np.where(st >= g, (sz - 1.0) * node_stride, nodes_spanned - 1.0)
    share = _measured_share(cluster, node_stride, wrap)
    intra = as_array(cluster.intra_node_bandwidth_bytes_per_s)
    if pattern == "ring":
        crossing_bw = np.minimum(intra, members_per_node * share)
    elif pattern == "all_to_all":
        off_node = np.maximum(sz - members_per_node, 1.0)
        crossing_bw = np.minimum(intra, share * (sz - 1.0) / off_node)
    elif pattern == "p2p":
        crossing_bw = np.minimum(intra, share)
    else:
        raise ValueError(f"unknown pattern {pattern!r}")
    bandwidth = np.where(crosses, crossing_bw, intra)
    latency = np.where(crosses, as_array(cluster.inter_node_latency_s), as_array(cluster.intra_node_latency_s))
    return Link(
        bandwidth_bytes_per_s=np.asarray(bandwidth), latency_s=np.asarray(latency), crosses_nodes=np.asarray(crosses)
    )
