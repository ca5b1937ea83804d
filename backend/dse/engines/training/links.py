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
Per-step latency of a ring that crosses nodes, as NCCL's cost model prices it (NVIDIA/nccl
src/graph/tuning.cc @ b6475625f, NCCL 2.20.3, ncclTopoTuneModel): of the ring's n-1 steps
(all-gather, reduce-scatter; 2(n-1) for all-reduce) nNodes-1 (2(nNodes-1)) cross the network at
hwLat[NET][Ring][Simple] and the others stay on the intra-node link at its own latency, but at least
NCCL's network proxy overhead (`ring_step_overhead_s` of the network preset), so a ring of n ranks over
N nodes pays per step intra' + (inter - intra') (N - 1) / (n - 1). All-to-all and
point-to-point steps that cross nodes pay the network latency.
With a measured node-pair bandwidth matrix (Pipette), a GPU's share is the smallest measured
bandwidth between the node pairs the group's ring neighbours sit on (pairs of the plan's first
`cluster.nodes` nodes, inside one group; which physical node is which is the mapping plan search
chooses by permuting the matrix; a stack of permuted matrices with `cluster.node_order` per plan prices
several orders in one call). A measured bandwidth is taken as is; the nominal share is the ports'
bandwidth times the network preset's `bus_bandwidth_fraction` (what a ring reaches on them).
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


def _group_pairs_min(symmetric: Array, node_stride: int, block: int, nodes: int) -> float:
    """Slowest bandwidth between ring neighbours of groups that tile the first `nodes` nodes in
    blocks of `block` nodes, members `node_stride` nodes apart (neighbours and the wrap-around pair);
    pairs between two different groups do not count. NaN when no pair crosses nodes."""
    start = np.arange(max(nodes - node_stride, 0))
    near = start[(start % block) < block - node_stride]
    wrap_distance = block - node_stride
    start = np.arange(max(nodes - wrap_distance, 0))
    wrap = start[(start % block) < node_stride] if wrap_distance > 0 else start[:0]
    values = np.concatenate([symmetric[near, near + node_stride], symmetric[wrap, wrap + wrap_distance]])
    return float(values.min()) if values.size else float("nan")


def _measured_share(cluster: ClusterArrays, node_stride: Array, block_nodes: Array) -> Array:
    """The slowest measured per-GPU bandwidth between the node pairs a group's ring neighbours sit on.

    Ranks fill nodes in order, so groups of `block_nodes` consecutive nodes (members `node_stride`
    nodes apart) tile the plan's nodes; only pairs inside a group count. One lookup per distinct
    group shape (a handful per call), not per plan.
    """
    nominal = as_array(cluster.inter_node_bandwidth_per_gpu_bytes_per_s)
    matrix = cluster.node_pair_bandwidth_bytes_per_s
    if matrix is None or matrix.shape[-1] < 2:
        return np.asarray(nominal + 0.0 * node_stride)
    # the slower direction of each pair; a stack of matrices (several node orders) on its first axis
    symmetric = np.minimum(matrix, np.swapaxes(matrix, -1, -2)).reshape(-1, *matrix.shape[-2:])
    total = matrix.shape[-1]
    used = np.clip(np.ceil(as_array(cluster.nodes)), 1, total)
    order = as_array(cluster.node_order) if matrix.ndim == 3 else np.zeros(())
    stride, block, used, order = np.broadcast_arrays(
        np.maximum(np.floor(node_stride), 1.0), np.clip(np.ceil(block_nodes), 1.0, total), used, order
    )
    # One whole-number key per (order, stride, block, nodes), stride, block and nodes each in 1..total: a 1-D
    # unique is many times faster than np.unique(axis=1), which sorts the tuples as opaque byte records.
    base = total + 1
    whole_order, whole_stride, whole_block, whole_used = (
        a.ravel().astype(np.int64) for a in (order, stride, block, used)
    )
    keys = ((whole_order * base + whole_stride) * base + whole_block) * base + whole_used
    distinct, inverse = np.unique(keys, return_inverse=True)
    per_shape = np.array(
        [  # distinct group shapes (a handful per node order)
            _group_pairs_min(
                symmetric[int(k // base**3)], int(k // (base * base) % base), int(k // base % base), int(k % base)
            )
            for k in distinct
        ]
    )
    share = per_shape[inverse.reshape(-1)].reshape(stride.shape)
    return np.asarray(np.where(np.isnan(share), nominal, share))


def group_link(*, cluster: ClusterArrays, stride: Num, size: Num, pattern: str) -> Link:
    """The link a group of `size` ranks `stride` apart uses; pattern is 'ring', 'all_to_all' or 'p2p'."""
    if pattern not in ("ring", "all_to_all", "p2p"):
        raise ValueError(f"unknown pattern {pattern!r}")
    g, st, sz = as_array(cluster.gpus_per_node), as_array(stride), np.maximum(as_array(size), 1.0)
    crosses = st * sz > g
    intra = as_array(cluster.intra_node_bandwidth_bytes_per_s)
    intra_lat = as_array(cluster.intra_node_latency_s)
    if not bool(np.any(crosses)):  # inside one node everywhere (a TP group): no network share to look up
        return Link(
            bandwidth_bytes_per_s=np.asarray(np.where(crosses, 0.0, intra)),
            latency_s=np.asarray(np.where(crosses, 0.0, intra_lat)),
            crosses_nodes=np.asarray(crosses),
        )
    members_per_node = np.clip(g / st, 1.0, sz)
    node_stride = np.maximum(st / g, 1.0)
    nodes_spanned = np.maximum(st * sz / g, 1.0)
    share = _measured_share(cluster, node_stride, nodes_spanned)
    if pattern == "ring":
        crossing_bw = np.minimum(intra, members_per_node * share)
    elif pattern == "all_to_all":
        off_node = np.maximum(sz - members_per_node, 1.0)
        crossing_bw = np.minimum(intra, share * (sz - 1.0) / off_node)
    else:  # p2p
        crossing_bw = np.minimum(intra, share)
    bandwidth = np.where(crosses, crossing_bw, intra)
    inter_lat = as_array(cluster.inter_node_latency_s)
    if pattern == "ring":  # only (nodes - 1) of the ring's (size - 1) steps leave a node
        network_steps = (sz / members_per_node - 1.0) / np.maximum(sz - 1.0, 1.0)  # nodes the group sits on
        intra_step = np.maximum(intra_lat, as_array(cluster.inter_node_ring_step_overhead_s))
        crossing_lat = intra_step + (inter_lat - intra_step) * network_steps
    else:
        crossing_lat = inter_lat
    latency = np.where(crosses, crossing_lat, intra_lat)
    return Link(
        bandwidth_bytes_per_s=np.asarray(bandwidth), latency_s=np.asarray(latency), crosses_nodes=np.asarray(crosses)
    )
