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
