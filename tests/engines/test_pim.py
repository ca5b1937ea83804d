"""PIM timing model: exact derivations from the memory presets, the NeuPIMs simulator's formulas, placement.

The published PIM figures (NeuPIMs' 184-cycle GEMV tile, Samsung HBM-PIM's 1.2 TFLOP/s, GDDR6-AiM's
512 GB/s and 16x) are records in dse/scenarios/kinds/inference/published.py, checked by
tests/validation/test_published_figures.py."""

from __future__ import annotations

import heapq
import math

import numpy as np
import pytest

from dse.catalog import default_catalog
from dse.engines import pim
from dse.engines.pim import (
    attention_request_cycles,
    greedy_channel_makespan,
    pim_numbers,
    uniform_channel_makespan,
)
from dse.specs.memory import MemorySpec


def _memory(memory_id: str) -> MemorySpec:
    spec: MemorySpec = default_catalog().get("memories", memory_id)
    return spec


def _derived(m: MemorySpec) -> tuple[float, float, float, float]:
    f = pim_numbers(m)
    return (
        float(f.external_bandwidth_bytes_per_s),
        float(f.internal_bandwidth_bytes_per_s),
        float(f.peak_flops_per_s),
        float(f.gemv_tile_cycles),
    )


def test_neupims_memory_derives_the_simulator_figures() -> None:
    """The NeuPIMs preset (casys-kaist/NeuPIMs configs/memory_configs/neupims.json and extern/NewtonSim/configs/
    HBM2_8Gb_x128_dualpim.ini: 32 channels x 32 banks, 128-bit bus, BL4, tCK 1 ns, 16 multipliers, tCCD_L 2)
    derives 1.024 TB/s external, 16.384 TB/s internal (16x) and 16.384 TFLOP/s of PIM compute. Exact arithmetic,
    so exact checks."""
    external, internal, flops, _ = _derived(_memory("neupims-hbm-pim"))
    assert external == pytest.approx(32 * 16 * 2 / 1e-9, rel=1e-12)  # 1.024e12 bytes/s
    assert internal == pytest.approx(32 * 32 * 16 * 2 / 2e-9, rel=1e-12)  # 16.384e12 bytes/s
    assert internal / external == pytest.approx(16.0, rel=1e-12)
    assert flops == pytest.approx(16.384e12, rel=1e-12)


def test_attention_request_cycles_is_the_simulator_formula() -> None:
    """The NeuPIMs simulator's Scheduler::estimate_mha_latency (casys-kaist/NeuPIMs src/scheduler/Scheduler.cc):
    GPT-3 7B TP4 shard (8 heads x 128), s = 216. Exact."""
    s, heads, dk, p, nb, gw, gemv = 216.0, 8.0, 128.0, 512.0, 32.0, 100.0, 184.0
    expected = math.ceil(heads * dk / p) * (gw + math.ceil(s / nb) * gemv) + math.ceil(s / p) * heads * (
        gw + math.ceil(dk / nb) * gemv
    )
    got = attention_request_cycles(
        context_tokens=s,
        heads=heads,
        head_dim=dk,
        elements_per_row=p,
        banks_per_channel=nb,
        global_write_cycles=gw,
        gemv_cycles=gemv,
    )
    assert float(got) == expected == 2 * (100 + 7 * 184) + 8 * (100 + 4 * 184)


def test_greedy_placement_known_case() -> None:
    """Longest-first onto the least-loaded channel: [5, 4, 3, 3, 3] on 2 channels ends at {8, 10}. Exact."""
    cycles = np.array([5.0, 4.0, 3.0, 3.0, 3.0])
    assert float(greedy_channel_makespan(cycles, 2.0)) == 10.0


def _reference_greedy(latencies: list[float], channels: int) -> float:
    heap = [(0.0, c) for c in range(channels)]
    for lat in sorted(latencies, reverse=True):
        load, c = heapq.heappop(heap)
        heapq.heappush(heap, (load + lat, c))
    return max(load for load, _ in heap)


def test_greedy_placement_is_vectorised_over_design_points() -> None:
    """One call over many design points equals a per-point reference placement (heap). Exact."""
    rng = np.random.default_rng(7)
    points, requests = 50, 40
    lat = -np.sort(-rng.integers(1, 1000, size=(points, requests)).astype(float), axis=1)
    counts = rng.integers(1, requests + 1, size=points)
    lat = np.where(np.arange(requests) < counts[:, None], lat, 0.0)
    channels = rng.integers(1, 9, size=points).astype(float)
    got = greedy_channel_makespan(lat.T, channels)
    expected = [_reference_greedy(list(lat[i, : counts[i]]), int(channels[i])) for i in range(points)]
    np.testing.assert_array_equal(got, expected)


def test_uniform_makespan_equals_greedy_for_equal_requests() -> None:
    """Equal requests: ceil(n / C) * t, the greedy result. Exact."""
    for n in (1, 31, 32, 33, 100):
        greedy = greedy_channel_makespan(np.full(n, 7.0), 32.0)
        assert float(uniform_channel_makespan(requests=float(n), channels=32.0, request_cycles=7.0)) == float(greedy)


def test_greedy_placement_heap_and_rank_loop_agree_exactly() -> None:
    """Few design points are placed on a heap per point, many by one loop over the rank: the same
    loads to the last bit, on real-valued latencies, fractional and zero channel counts. Exact."""
    rng = np.random.default_rng(11)
    points, requests = pim.HEAP_PLACEMENT_MAX_POINTS + 6, 300
    lat = -np.sort(-rng.lognormal(8.0, 1.0, size=(points, requests)), axis=1)
    lat = np.where(np.arange(requests) < rng.integers(0, requests + 1, size=points)[:, None], lat, 0.0)
    channels = np.concatenate([[0.0, 2.5], rng.integers(1, 40, size=points - 2).astype(float)])
    many = pim.greedy_channel_makespan(lat.T, channels)  # the rank loop
    few = np.concatenate(
        [pim.greedy_channel_makespan(lat[i : i + 4].T, channels[i : i + 4]) for i in range(0, points, 4)]
    )  # heaps
    np.testing.assert_array_equal(few, many)
    assert many[0] == 0.0


def test_greedy_placement_keeps_answers_as_copies() -> None:
    """A repeated placement is read back from the kept answers; changing one answer changes no other."""
    cycles = np.array([5.0, 4.0, 3.0, 3.0, 3.0])
    first = pim.greedy_channel_makespan(cycles, 2.0)
    first[...] = -1.0
    assert float(pim.greedy_channel_makespan(cycles, 2.0)) == 10.0
