"""Time of the collectives on one link class (alpha-beta model, bandwidth-optimal algorithms).

`bytes_per_rank` is the size of the buffer each rank holds; `bandwidth_bytes_per_s` is the
unidirectional per-rank bandwidth of the slowest link the collective crosses; `latency_s` the
per-step latency. Ring algorithms (Thakur, Rabenseifner & Gropp 2005; NCCL's defaults for large
messages). A group of one rank costs nothing.
"""

from __future__ import annotations

import numpy as np

from dse.specs.common import Num


def _steps(ranks: Num) -> Num:
    return np.maximum(np.asarray(ranks, dtype=np.float64) - 1.0, 0.0)


def all_reduce_time(*, bytes_per_rank: Num, ranks: Num, bandwidth_bytes_per_s: Num, latency_s: Num = 0.0) -> Num:
    """Ring all-reduce: 2(n-1)/n of the buffer crosses each link, in 2(n-1) steps."""
    steps = _steps(ranks)
    volume = 2.0 * steps / np.maximum(ranks, 1.0) * bytes_per_rank
    return volume / bandwidth_bytes_per_s + 2.0 * steps * latency_s


#: NCCL's tree all-reduce (a chain inside each node, a double binary tree across nodes), as NCCL's own
#: cost model prices it (NVIDIA/nccl src/graph/tuning.cc @ b6475625f, ncclTopoTuneModel): each hop of the
#: Simple protocol costs hwLat[NVLINK|NET][Tree][Simple] = 28 us, and the tree reaches 0.92 of the ring's
#: bus bandwidth (`busBw*.92`). NCCL runs trees for all-reduce only; all-gather and reduce-scatter are rings.
TREE_HOP_LATENCY_S = 28e-6
TREE_BANDWIDTH_FRACTION = 0.92


def tree_all_reduce_time(
    *, bytes_per_rank: Num, ranks: Num, ranks_per_node: Num, bus_bandwidth_bytes_per_s: Num
) -> Num:
    """Tree all-reduce: reduce up and broadcast down, 2 ((ranks per node - 1) + floor(log2 nodes)) hops of
    latency; the buffer crosses each link twice at 0.92 of the bus bandwidth (NCCL: algorithm bandwidth =
    bus bandwidth / 2)."""
    n = np.maximum(np.asarray(ranks, dtype=np.float64), 1.0)
    per_node = np.clip(np.asarray(ranks_per_node, dtype=np.float64), 1.0, n)
    nodes = np.maximum(n / per_node, 1.0)
    hops = 2.0 * ((per_node - 1.0) + np.floor(np.log2(nodes)))
    time = hops * TREE_HOP_LATENCY_S + 2.0 * np.asarray(bytes_per_rank) / (
        TREE_BANDWIDTH_FRACTION * np.asarray(bus_bandwidth_bytes_per_s)
    )
    return np.where(n > 1.0, time, 0.0)


def all_gather_time(*, bytes_per_rank: Num, ranks: Num, bandwidth_bytes_per_s: Num, latency_s: Num = 0.0) -> Num:
    """Ring all-gather of a result of `bytes_per_rank` (the gathered size): (n-1)/n of it per link."""
    steps = _steps(ranks)
    return steps / np.maximum(ranks, 1.0) * bytes_per_rank / bandwidth_bytes_per_s + steps * latency_s


def reduce_scatter_time(*, bytes_per_rank: Num, ranks: Num, bandwidth_bytes_per_s: Num, latency_s: Num = 0.0) -> Num:
    """Ring reduce-scatter of an input of `bytes_per_rank`: the mirror of all-gather."""
    return all_gather_time(
        bytes_per_rank=bytes_per_rank, ranks=ranks, bandwidth_bytes_per_s=bandwidth_bytes_per_s, latency_s=latency_s
    )


def all_to_all_time(*, bytes_per_rank: Num, ranks: Num, bandwidth_bytes_per_s: Num, latency_s: Num = 0.0) -> Num:
    """All-to-all: each rank keeps 1/n of its buffer and sends (n-1)/n of it away."""
    steps = _steps(ranks)
    return steps / np.maximum(ranks, 1.0) * bytes_per_rank / bandwidth_bytes_per_s + steps * latency_s


def point_to_point_time(*, message_bytes: Num, bandwidth_bytes_per_s: Num, latency_s: Num = 0.0) -> Num:
    """One send between two ranks."""
    return message_bytes / bandwidth_bytes_per_s + latency_s
