"""DRAM/PIM timing -> bandwidths, GEMV tile latency, per-request attention latency, channel placement.

Everything derives from the memory's organisation and timing (channels, banks, row size,
multipliers per bank, tCK, tCCD_L, tRCD, tRP), never from a typed-in speed-up:

    external bandwidth   = channels * bus_bits/8 * transfers_per_clock / tCK
    PIM peak bandwidth   = channels * banks * multipliers * element_bytes / (tCCD_L * tCK)
    PIM peak FLOP/s      = channels * banks * multipliers * 2 / (tCCD_L * tCK)
    GEMV tile (cycles)   = (banks / banks_per_activation_group)
                           * (tRCD + row_bytes / (multipliers * element_bytes) * tCCD_L + tRP)

A tile is one row in every bank of a channel: activate, stream the row through the multipliers
one column access (multipliers * element_bytes) per tCCD_L, precharge. With NeuPIMs' HBM2-PIM
(32 banks opened in two groups of 16, 1 KB rows, 16 multipliers, tRCD = tRP = 14, tCCD_L = 2)
this gives 2 * (14 + 32*2 + 14) = 184 cycles, the constant of the NeuPIMs simulator
(casys-kaist/NeuPIMs src/scheduler/Scheduler.cc, `_gemv_latency = 184`).

Attention latency of one request (the NeuPIMs simulator's estimate, casys-kaist/NeuPIMs
src/scheduler/Scheduler.cc `Scheduler::estimate_mha_latency`), in cycles, with P elements per
row, N_b banks, E = heads * d_k on this rank (t_gw: `_gwrite_latency` = 100, t_gemv: the tile):
    ceil(E/P) * (t_gw + ceil(s/N_b) * t_gemv) + ceil(s/P) * heads * (t_gw + ceil(d_k/N_b) * t_gemv)
Requests sit on channels; a channel serves its requests one after another, channels run in
parallel, so the most-loaded channel sets the attention time. Placement is greedy longest-first
onto the least-loaded channel (the simulator's channel load balancing, `Scheduler::allocate_pim_tile`),
vectorised over design points.
"""

from __future__ import annotations

import hashlib
import heapq
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dse.specs.common import Num
from dse.specs.memory import MemorySpec


def external_bandwidth_bytes_per_s(
    *, channels: Num, bus_width_bits_per_channel: Num, transfers_per_clock: Num, clock_period_s: Num
) -> Num:
    """Peak bandwidth of the memory bus: channels * bus_bits/8 * transfers_per_clock / tCK."""
    return channels * bus_width_bits_per_channel / 8.0 * transfers_per_clock / clock_period_s


def pim_peak_bandwidth_bytes_per_s(
    *,
    channels: Num,
    banks_per_channel: Num,
    multipliers_per_bank: Num,
    element_bytes: Num,
    t_ccd_l_cycles: Num,
    clock_period_s: Num,
) -> Num:
    """Bytes the PIM units of all banks read per second while streaming open rows."""
    return channels * banks_per_channel * multipliers_per_bank * element_bytes / (t_ccd_l_cycles * clock_period_s)


def pim_peak_flops_per_s(
    *, channels: Num, banks_per_channel: Num, multipliers_per_bank: Num, t_ccd_l_cycles: Num, clock_period_s: Num
) -> Num:
    """Multiply-accumulates (2 FLOP) of every bank's multipliers, one column access per tCCD_L."""
    return channels * banks_per_channel * multipliers_per_bank * 2.0 / (t_ccd_l_cycles * clock_period_s)


def gemv_tile_cycles(
    *,
    banks_per_channel: Num,
    banks_per_activation_group: Num,
    row_bytes: Num,
    multipliers_per_bank: Num,
    element_bytes: Num,
    t_rcd_cycles: Num,
    t_rp_cycles: Num,
    t_ccd_l_cycles: Num,
) -> Num:
    """Cycles of one GEMV tile: every bank of a channel multiplies one row (see module doc)."""
    column_accesses = np.ceil(row_bytes / (multipliers_per_bank * element_bytes))
    groups = np.ceil(banks_per_channel / banks_per_activation_group)
    return groups * (t_rcd_cycles + column_accesses * t_ccd_l_cycles + t_rp_cycles)


def attention_request_cycles(
    *,
    context_tokens: Num,
    heads: Num,
    head_dim: Num,
    elements_per_row: Num,
    banks_per_channel: Num,
    global_write_cycles: Num,
    gemv_cycles: Num,
) -> Num:
    """PIM cycles of one request's decode attention (score Q*K^T, then context P*V) on one channel.

    Score: the query (E = heads*head_dim elements) is written in ceil(E/P) chunks, each against
    ceil(s/N_b) tiles of keys; context: ceil(s/P) chunks of probabilities per head, each against
    ceil(d_k/N_b) tiles of values.
    """
    embed = heads * head_dim
    score = np.ceil(embed / elements_per_row) * (
        global_write_cycles + np.ceil(context_tokens / banks_per_channel) * gemv_cycles
    )
    context = (
        np.ceil(context_tokens / elements_per_row)
        * heads
        * (global_write_cycles + np.ceil(head_dim / banks_per_channel) * gemv_cycles)
    )
    return score + context


def uniform_channel_makespan(*, requests: Num, channels: Num, request_cycles: Num) -> Num:
    """Most-loaded channel when all requests take the same time: ceil(n / C) * t (exact for greedy)."""
    return np.ceil(np.maximum(requests, 0.0) / channels) * request_cycles


#: Up to this many design points each point's placement runs on a heap of its channel loads (well
#: under a microsecond a request); beyond, one loop over the request rank serves every point at once
#: (a few microseconds a rank, whatever the number of points). Both give the same loads exactly.
HEAP_PLACEMENT_MAX_POINTS = 64
#: Placements kept (the inference kind places one batch for every system it compares: same inputs).
PLACEMENT_CACHE_SIZE = 32
#: Largest placement (requests x design points) kept; an answer's batch grid is ~20,000 cells.
PLACEMENT_CACHE_MAX_CELLS = 2**17
_placements: OrderedDict[bytes, NDArray[np.float64]] = OrderedDict()
_placements_lock = threading.Lock()


def greedy_channel_makespan(request_cycles: NDArray[np.float64], channels: Num) -> NDArray[np.float64]:
    """Most-loaded channel after placing requests longest-first on the least-loaded channel.

    request_cycles: (R, ...) latencies sorted in decreasing order along the first axis, 0 where
    a design point has fewer than R requests; channels broadcasts with the remaining axes.
    A pure function of its inputs: the last PLACEMENT_CACHE_SIZE answers of up to PLACEMENT_CACHE_MAX_CELLS
    cells are kept.
    """
    cycles = np.asarray(request_cycles, dtype=np.float64)
    channel_count = np.asarray(channels, dtype=np.float64)
    if cycles.size > PLACEMENT_CACHE_MAX_CELLS:  # a sweep: hashing it would cost more than a repeat saves
        return _greedy_makespan(cycles, channel_count)
    key = hashlib.blake2b(
        repr((cycles.shape, channel_count.shape)).encode() + cycles.tobytes() + channel_count.tobytes(),
        digest_size=20,
    ).digest()
    with _placements_lock:
        kept = _placements.get(key)
        if kept is not None:
            _placements.move_to_end(key)
            return kept.copy()
    result = _greedy_makespan(cycles, channel_count)
    with _placements_lock:
        _placements[key] = result.copy()
        while len(_placements) > PLACEMENT_CACHE_SIZE:
            _placements.popitem(last=False)
    return result


def _greedy_makespan(cycles: NDArray[np.float64], channel_count: NDArray[np.float64]) -> NDArray[np.float64]:
    """`greedy_channel_makespan` computed. Only the multiset of channel loads matters (a tie between
    two least-loaded channels leaves the same loads whichever takes the request), so a heap of one
    point's loads and the argmin over every point's channel vector add the same numbers in the same order."""
    widest = int(np.max(channel_count))
    points = np.broadcast_shapes(cycles.shape[1:], channel_count.shape)
    exists = np.broadcast_to(np.arange(widest) < channel_count[..., None], (*points, widest)).reshape(-1, widest)
    per_rank = np.broadcast_to(cycles, (cycles.shape[0], *points)).reshape(cycles.shape[0], -1)
    if exists.shape[0] <= HEAP_PLACEMENT_MAX_POINTS:
        most = np.zeros(exists.shape[0])
        for point, (count, requests) in enumerate(zip(exists.sum(axis=1).tolist(), per_rank.T.tolist(), strict=True)):
            if count == 0:
                continue  # no channel: nothing is placed (as below, where the loads stay infinite)
            loads = [0.0] * count
            for request in requests:
                if request != 0.0:  # an absent request adds nothing
                    heapq.heapreplace(loads, loads[0] + request)
            most[point] = max(loads)
        return most.reshape(points)
    load = np.where(exists, 0.0, np.inf)
    rows = np.arange(load.shape[0])
    for rank in range(per_rank.shape[0]):
        least = np.argmin(load, axis=1)
        load[rows, least] += per_rank[rank]
    result: NDArray[np.float64] = np.max(np.where(np.isfinite(load), load, 0.0), axis=1).reshape(points)
    return result


@dataclass(frozen=True)
class PimNumbers:
    """The headline numbers a memory preset implies (broadcast over its fields)."""

    external_bandwidth_bytes_per_s: Num
    internal_bandwidth_bytes_per_s: Num
    peak_flops_per_s: Num
    gemv_tile_cycles: Num


def pim_numbers(memory: MemorySpec) -> PimNumbers:
    """External and PIM bandwidth, PIM compute and the GEMV tile of a memory preset, each from its timing."""
    m = memory
    return PimNumbers(
        external_bandwidth_bytes_per_s=external_bandwidth_bytes_per_s(
            channels=m.channels,
            bus_width_bits_per_channel=m.bus_width_bits_per_channel,
            transfers_per_clock=m.transfers_per_clock,
            clock_period_s=m.clock_period_s,
        ),
        internal_bandwidth_bytes_per_s=pim_peak_bandwidth_bytes_per_s(
            channels=m.channels,
            banks_per_channel=m.banks_per_channel,
            multipliers_per_bank=m.pim_multipliers_per_bank,
            element_bytes=m.pim_element_bytes,
            t_ccd_l_cycles=m.t_ccd_l_cycles,
            clock_period_s=m.clock_period_s,
        ),
        peak_flops_per_s=pim_peak_flops_per_s(
            channels=m.channels,
            banks_per_channel=m.banks_per_channel,
            multipliers_per_bank=m.pim_multipliers_per_bank,
            t_ccd_l_cycles=m.t_ccd_l_cycles,
            clock_period_s=m.clock_period_s,
        ),
        gemv_tile_cycles=gemv_tile_cycles(
            banks_per_channel=m.banks_per_channel,
            banks_per_activation_group=m.banks_per_activation_group,
            row_bytes=m.row_bytes,
            multipliers_per_bank=m.pim_multipliers_per_bank,
            element_bytes=m.pim_element_bytes,
            t_rcd_cycles=m.t_rcd_cycles,
            t_rp_cycles=m.t_rp_cycles,
            t_ccd_l_cycles=m.t_ccd_l_cycles,
        ),
    )
