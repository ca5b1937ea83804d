"""NCCL-style collectives: ring formulas and the tree all-reduce of NCCL's cost model, tested exactly."""

from __future__ import annotations

import numpy as np
import pytest

from dse.engines.collectives import (
    TREE_BANDWIDTH_FRACTION,
    TREE_HOP_LATENCY_S,
    all_reduce_time,
    tree_all_reduce_time,
)


def test_tree_all_reduce_is_nccl_s_model():
    """128 nodes of 8 ranks: 2 (7 + 7) hops of 28 us, the buffer twice at 0.92 of the bus bandwidth."""
    got = tree_all_reduce_time(bytes_per_rank=25e6, ranks=1024.0, ranks_per_node=8.0, bus_bandwidth_bytes_per_s=200e9)
    assert float(got) == pytest.approx(2.0 * 14.0 * 28e-6 + 2.0 * 25e6 / (0.92 * 200e9), rel=1e-12)
    assert TREE_HOP_LATENCY_S == 28e-6 and TREE_BANDWIDTH_FRACTION == 0.92
    assert (
        float(tree_all_reduce_time(bytes_per_rank=1e6, ranks=1.0, ranks_per_node=1.0, bus_bandwidth_bytes_per_s=1e9))
        == 0.0
    )


def test_tree_beats_the_ring_across_many_nodes_and_loses_inside_one():
    """A 25 MB bucket over 1,024 ranks: the ring pays 2 x 1023 step latencies, the tree 28 hops; inside a
    node (8 ranks) the ring's few short steps win."""
    kw = {"bytes_per_rank": 25e6, "bus_bandwidth_bytes_per_s": 200e9}
    ring = all_reduce_time(bytes_per_rank=25e6, ranks=1024.0, bandwidth_bytes_per_s=200e9, latency_s=6.6e-6)
    assert float(tree_all_reduce_time(ranks=1024.0, ranks_per_node=8.0, **kw)) < 0.2 * float(ring)
    ring_node = all_reduce_time(bytes_per_rank=25e6, ranks=8.0, bandwidth_bytes_per_s=235e9, latency_s=5.7e-6)
    tree_node = tree_all_reduce_time(
        bytes_per_rank=25e6, ranks=8.0, ranks_per_node=8.0, bus_bandwidth_bytes_per_s=235e9
    )
    assert float(ring_node) < float(tree_node)
    assert np.isfinite(float(tree_node))
