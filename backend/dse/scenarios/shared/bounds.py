"""Physically sensible bounds shared by every kind's inputs (issue 17, "bounded work").

Each bound leaves headroom over what real systems and published runs used; anything outside is a
typo or an attack, and is refused by the schema (422) before any engine runs. The same bounds
apply to sweep axis values (`dse.scenarios.sweep` re-validates the extremes through the schema).
"""

from __future__ import annotations

from dse.scenarios.base import MAX_COUNT

__all__ = [
    "MAX_BANDWIDTH_GB_PER_S",
    "MAX_CLUSTER_GPUS",
    "MAX_COUNT",
    "MAX_GLOBAL_BATCH",
    "MAX_GPUS_PER_NODE",
    "MAX_LATENCY_US",
    "MAX_NODES",
    "MAX_PER_NODE_DEVICES",
    "MAX_SEQUENCE_TOKENS",
    "MIN_BANDWIDTH_GB_PER_S",
]
#: GPUs in one node: NVIDIA GB200 NVL72 puts 72 in one NVLink domain.
MAX_GPUS_PER_NODE = 72
#: Nodes in one cluster (the largest published training clusters have ~10^4-10^5 GPUs in ~10^4 nodes).
MAX_NODES = 100_000
#: GPUs in one cluster (nodes x GPUs per node): a few hundred thousand.
MAX_CLUSTER_GPUS = 2**19
#: Tokens in one sequence (2^21 = 2M; the longest-context published runs use 1M).
MAX_SEQUENCE_TOKENS = 2**21
#: Sequences per global batch (2^24; Llama 3 405B trained with 16M *tokens* per batch).
MAX_GLOBAL_BATCH = 2**24
#: Link bandwidths, GB/s: 1 MB/s (a trickle) to 100 TB/s (above any on-package link).
MIN_BANDWIDTH_GB_PER_S = 1e-3
MAX_BANDWIDTH_GB_PER_S = 1e5
#: Latencies, microseconds: up to one second per step.
MAX_LATENCY_US = 1e6
#: Network ports and SSDs per node.
MAX_PER_NODE_DEVICES = 64
