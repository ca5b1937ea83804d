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


def nodes_per_token(*, experts_per_token: Num, nodes: Num, node_limit: Num) -> Num:
    """Distinct nodes a token's k routed copies land on, with balanced routing: its k experts fall uniformly
    on the min(M, N) nodes it may use (node-limited routing picks M of the EP group's N nodes), so
    D = m (1 - (1 - 1/m)^k), m = min(M, N) (M = 0: m = N)."""
    n, limit = np.maximum(np.asarray(nodes, dtype=np.float64), 1.0), np.asarray(node_limit, dtype=np.float64)
    m = np.where(limit > 0, np.minimum(limit, n), n)
    return np.asarray(m * (1.0 - (1.0 - 1.0 / m) ** np.asarray(experts_per_token, dtype=np.float64)))


def overlapped_time(*, communication_s: Num, compute_s: Num, sm_share: Num) -> Num:
    """What communication adds when it runs beside compute on a share u of the SMs (two micro-batches, one's
    all-to-all under the other's compute): the part longer than the compute left on the other SMs, else the
    SMs' share of it."""
    comm, compute, u = np.asarray(communication_s), np.asarray(compute_s), np.asarray(sm_share)
    added: Num = np.where(comm > compute / (1.0 - u), comm - compute, u * comm)
    return added


#: DeepEP's expert-parallel kernels on H800 (~160 GB/s NVLink) with a ConnectX-7 400 Gb/s NIC per GPU, fitted by
#: models_db/calibration/fit_deepep.py to the V1 tables of deepseek-ai/DeepEP README.md @ 567632dd59810d77b3cc
#: 05553df953cc0f779799 (models_db/calibration/data/h800-sxm.fp8.deepep.all_to_all.json; fit in
#: fits/h800-sxm.fp8.deepep.all_to_all.deepep-fit.json). Low-latency kernels (128 tokens, top-8, 7168 hidden,
#: each copy sent directly; decode): per launch 27.0 us and 0.870 of the NIC's nominal bandwidth across nodes
#: (EP 16-256, 10 rows: 2.5% mean, 6.9% largest error), 37.6 us and 0.841 of NVLink's within one node (EP 8).
#: Normal kernels (4096 tokens; one RDMA hop per remote node, NVLink forwarding; prefill): their bottleneck
#: bandwidth, 1.007 of the NIC (EP 16-64) and 0.778 of NVLink (EP 8); no latency is published for them, so
#: the low-latency kernels' is used.
DEEPEP_NETWORK_LATENCY_S = 2.701e-05
DEEPEP_NVLINK_LATENCY_S = 3.761e-05
DEEPEP_LOW_LATENCY_NETWORK_FRACTION = 0.8696
DEEPEP_LOW_LATENCY_NVLINK_FRACTION = 0.8408
DEEPEP_NORMAL_NETWORK_FRACTION = 1.007
DEEPEP_NORMAL_NVLINK_FRACTION = 0.7775


def expert_all_to_all_time(
    *,
    bytes_per_rank: Num,
    ranks: Num,
    ranks_per_node: Num,
    nvlink_bandwidth_bytes_per_s: Num,
    network_bandwidth_bytes_per_s: Num,
    experts_per_token: Num,
    node_limit: Num = 0.0,
    forwarded: bool = False,
) -> Num:
    """An expert-parallel dispatch or combine over `ranks` GPUs, `ranks_per_node` of them per node: each rank
    sends `bytes_per_rank` of token-expert copies spread evenly over the group (DeepEP's kernels).

    Direct (low-latency kernels, decode): the (m-1)/n of the copies bound for the m-1 other ranks of its node
    go over NVLink, the (n-m)/n bound for other nodes through the rank's own NIC, at once:
        t = alpha + max(nvlink bytes / (f_nvl B_nvl), network bytes / (f_net B_net))
    Forwarded (normal kernels, prefill; DeepSeek-V3 arXiv:2412.19437 Section 3.2.2): a token crosses the network
    once per remote node it reaches (`nodes_per_token`, node-limited routing bounding the nodes), NVLink
    carries the (m-1)/m of the copies bound for the node's other GPUs. alpha is the network's when the group
    crosses nodes, NVLink's otherwise; f and alpha are the DEEPEP_* fits. A group of one rank costs nothing."""
    n = np.maximum(np.asarray(ranks, dtype=np.float64), 1.0)
    m = np.clip(np.asarray(ranks_per_node, dtype=np.float64), 1.0, n)
    nodes = n / m
    data = np.asarray(bytes_per_rank, dtype=np.float64)
    if forwarded:
        reached = nodes_per_token(experts_per_token=experts_per_token, nodes=nodes, node_limit=node_limit)
        network = data / np.asarray(experts_per_token) * reached * (nodes - 1.0) / nodes
        nvlink = data * (m - 1.0) / m
        f_net, f_nvl = DEEPEP_NORMAL_NETWORK_FRACTION, DEEPEP_NORMAL_NVLINK_FRACTION
    else:
        network = data * (n - m) / n
        nvlink = data * (m - 1.0) / n
        f_net, f_nvl = DEEPEP_LOW_LATENCY_NETWORK_FRACTION, DEEPEP_LOW_LATENCY_NVLINK_FRACTION
    alpha = np.where(nodes > 1.0, DEEPEP_NETWORK_LATENCY_S, DEEPEP_NVLINK_LATENCY_S)
    time = alpha + np.maximum(
        nvlink / (f_nvl * np.asarray(nvlink_bandwidth_bytes_per_s)),
        network / (f_net * np.asarray(network_bandwidth_bytes_per_s)),
    )
    return np.where(n > 1.0, time, 0.0)
