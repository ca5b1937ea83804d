"""Context parallelism (CP): the sequence split over `context_parallel` GPUs in 2 x CP load-balanced chunks
(rank r holds chunks r and 2*CP-1-r, so every rank does the same causal-attention work), a rank dimension of
its own beside TP (Megatron-Core `--context-parallel-size`; the rank order tp -> cp -> dp -> pp).

Every rank runs all layers on its s/CP tokens; only attention needs the other ranks' keys and values.
Two exchanges (NVIDIA/TransformerEngine, transformer_engine/pytorch/attention/dot_product_attention/
context_parallel.py):
- ring P2P (`AttnFuncWithCPAndKVP2P`, Megatron-Core `cp_comm_type="p2p"`): CP attention steps; at step i a
  rank posts the send of the K/V block it holds and receives the next one while it computes step i, so each
  of the CP-1 sends hides behind one step's attention (1/CP of the layer's attention: every step is half a
  block of the load-balanced mask); what a step's send takes beyond its attention is exposed. The backward
  circulates K/V with their gradients dK/dV (twice the bytes per step) and, after the last step, sends the
  accumulated dK/dV home: that hop has no attention left to hide behind.
- all-gather (`AttnFuncWithCPAndKVAllGather`; Llama 3, Dubey et al. arXiv:2407.21783, Section 3.3.2: "we
  first all-gather the key (K) and value (V) tensors, and then compute attention output for the local query
  (Q) tensor chunk ... the exposed all-gather latency is small as the communicated K and V tensors are much
  smaller than Q tensor thanks to the use of GQA"): the all-gather is exposed; the backward gathers K/V again
  and reduce-scatters dK/dV.
Full recomputation repeats the forward exchange. The collectives are priced by `dse.engines.collectives` on
the link `links.group_link` gives a group of CP ranks TP apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dse.engines.collectives import all_gather_time, point_to_point_time, reduce_scatter_time
from dse.engines.training.codes import ContextParallelExchange
from dse.engines.training.inputs import Array, as_array
from dse.specs.common import Num


@dataclass(frozen=True)
class ContextParallelCommunication:
    """Exposed context-parallel communication of one layer and one micro-batch on one GPU."""

    #: Exposed in the forward pass.
    forward_s: Array
    #: Exposed in forward, backward and (full recomputation) the recomputed forward.
    per_layer_s: Array
    #: Bytes a GPU sends per layer in the forward pass.
    forward_bytes: Array
    #: K/V buffers held while a layer's attention runs (received blocks, or the gathered K/V and their gradients).
    buffer_bytes: Array


def context_parallel_communication(
    *,
    degree: Num,
    exchange: Num,
    kv_bytes: Num,
    attention_forward_s: Num,
    attention_backward_s: Num,
    full_recompute: Num,
    p2p_bandwidth_bytes_per_s: Num,
    p2p_latency_s: Num,
    ring_bandwidth_bytes_per_s: Num,
    ring_latency_s: Num,
) -> ContextParallelCommunication:
    """`kv_bytes`: the K and V a rank holds for its s/CP tokens (its TP shard); `attention_*_s`: the layer's
    attention kernels on this rank (all CP steps together). Zero for a degree of 1."""
    cp, on = as_array(degree), as_array(degree) > 1
    kv, full = as_array(kv_bytes), as_array(full_recompute)
    steps = np.maximum(cp - 1.0, 0.0)
    send = point_to_point_time(
        message_bytes=kv, bandwidth_bytes_per_s=p2p_bandwidth_bytes_per_s, latency_s=p2p_latency_s
    )
    send_with_grads = point_to_point_time(
        message_bytes=2.0 * kv, bandwidth_bytes_per_s=p2p_bandwidth_bytes_per_s, latency_s=p2p_latency_s
    )
    step_fwd = as_array(attention_forward_s) / np.maximum(cp, 1.0)
    step_bwd = as_array(attention_backward_s) / np.maximum(cp, 1.0)
    p2p_fwd = steps * np.maximum(send - step_fwd, 0.0)
    p2p_bwd = steps * np.maximum(send_with_grads - step_bwd, 0.0) + send  # the last dK/dV hop home
    gathered = cp * kv
    gather = all_gather_time(
        bytes_per_rank=gathered, ranks=cp, bandwidth_bytes_per_s=ring_bandwidth_bytes_per_s, latency_s=ring_latency_s
    )
    scatter = reduce_scatter_time(
        bytes_per_rank=gathered, ranks=cp, bandwidth_bytes_per_s=ring_bandwidth_bytes_per_s, latency_s=ring_latency_s
    )
    all_gather = as_array(exchange) == ContextParallelExchange.ALL_GATHER
    forward = np.where(all_gather, gather, p2p_fwd)
    backward = np.where(all_gather, gather + scatter, p2p_bwd)
    return ContextParallelCommunication(
        forward_s=np.asarray(np.where(on, forward, 0.0)),
        per_layer_s=np.asarray(np.where(on, (1.0 + full) * forward + backward, 0.0)),
        forward_bytes=np.asarray(np.where(on, steps * kv, 0.0)),  # both exchanges: (CP-1) blocks in, (CP-1) out
        # P2P: the block being received beside the one in use, and in backward their gradients; all-gather:
        # the gathered K/V and, in backward, their gathered gradients.
        buffer_bytes=np.asarray(np.where(on, np.where(all_gather, 2.0 * gathered, 4.0 * kv), 0.0)),
    )
