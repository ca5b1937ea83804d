"""Systems: NeuPIMs against its baselines, interleaving crossover, KV capacity, vectorised sweeps."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest

from dse.catalog import default_catalog
from dse.engines.inference import run_inference
from dse.scenarios.kinds.inference.inputs import InferenceResolved, engine_inputs
from dse.scenarios.kinds.inference.published import NEUPIMS_SETTINGS
from dse.scenarios.registry import KINDS

KIND = KINDS["inference"]


def _resolve(**inputs: Any) -> InferenceResolved:
    resolved: InferenceResolved = KIND.resolve(KIND.inputs_model.model_validate(inputs), default_catalog())
    return resolved


def _throughput(r: InferenceResolved, system: str | None = None, **replace: Any) -> Any:
    r = dataclasses.replace(r, **replace)
    device = r.comparison_gpu if system == "gpu_only" else r.accelerator
    return run_inference(**engine_inputs(r, system=system, accelerator=device)).throughput_tokens_per_s


def test_neupims_settings_fit() -> None:
    """The NeuPIMs setting (published.NEUPIMS_SETTINGS, where the paper's speed-ups are checked) fits: batch 768
    on the 32 GB devices at TP4."""
    r = _resolve(**NEUPIMS_SETTINGS)
    assert float(run_inference(**engine_inputs(r)).fits) == 1.0


def test_interleaving_loses_at_small_batch_and_wins_at_large_batch() -> None:
    """Halving the batch makes each sub-batch re-read the weights, so interleaving only pays at large batch.
    Here: loses at 32 and 128, wins at 768 by more than 1.2x (where the crossover falls against the public
    simulator's switch-on batch is the record 'neupims-interleaving-threshold' in published.py)."""
    r = _resolve(**NEUPIMS_SETTINGS)
    batches = np.array([32.0, 128.0, 256.0, 384.0, 512.0, 640.0, 768.0])
    on = _throughput(r, batch_size=batches, sub_batch_fraction=0.5)
    off = _throughput(r, batch_size=batches, sub_batch_fraction=0.0)
    assert on[0] < off[0] and on[1] < off[1]
    assert on[-1] > 1.2 * off[-1]
    evaluation = KIND.evaluate(r)
    assert any("first beats no interleaving at batch" in note for note in evaluation.notes)


def test_best_split_is_never_worse_than_a_fixed_split() -> None:
    """The best split searches k/32 (k = 0..16), so it is at least as fast as an even split or none. Exact order."""
    r = _resolve(**NEUPIMS_SETTINGS)
    batches = np.array([16.0, 256.0, 768.0])
    best = _throughput(r, batch_size=batches, sub_batch_fraction=None)
    for fixed in (0.0, 0.5):
        assert np.all(best >= _throughput(r, batch_size=batches, sub_batch_fraction=fixed) * (1 - 1e-12))


def test_kv_capacity_largest_batch_exact() -> None:
    """Llama-2-7B fp16 on A100 80GB, 512+512 tokens: floor((80 GiB - reserve - 2*N) / (1024 * 0.5 MiB)), the
    GPU runtime's reserve 1.5 GiB + 5% of 80 GiB = 5.5 GiB. Exact."""
    r = _resolve(model="llama2-7b", system="gpu_only", accelerator="a100-80gb", memory=None, batch_size=8)
    result = run_inference(**engine_inputs(r))
    weights = 6_738_415_616 * 2
    expected = (80 * 2**30 - 5.5 * 2**30 - weights) // (1024 * 524288)
    assert float(result.weights_bytes_per_device) == weights
    assert float(result.max_batch_that_fits) == expected == 123


def test_npu_of_a_simulated_system_keeps_no_runtime_reserve() -> None:
    """NeuPIMs' NPU runs no CUDA runtime: its largest batch is floor((capacity - weights) / KV per request)."""
    r = _resolve(**NEUPIMS_SETTINGS)
    device = engine_inputs(r)["device"]
    assert float(device.memory_reserve_bytes) == 0.0
    gpu = engine_inputs(r, system="gpu_only", accelerator=r.comparison_gpu)["device"]
    assert float(gpu.memory_reserve_bytes) == 1.5 * 2**30 + 0.05 * float(r.comparison_gpu.memory_capacity_bytes)


def test_scenario_that_does_not_fit_says_so_with_numbers() -> None:
    """A batch beyond capacity is infeasible, and the note names the footprint and the largest batch."""
    r = _resolve(model="llama2-7b", system="gpu_only", accelerator="a100-80gb", memory=None, batch_size=1000)
    evaluation = KIND.evaluate(r)
    assert not evaluation.feasible
    assert any(
        "Does not fit" in n and "5.50 GiB of it kept back by the runtime" in n and "largest batch that fits is 123" in n
        for n in evaluation.notes
    )


def test_sweep_equals_point_by_point() -> None:
    """A batch x context sweep in one call equals single evaluations (fixed and distribution workloads). Exact."""
    r = _resolve(**{**NEUPIMS_SETTINGS, "request_lengths": None, "prompt_tokens": 256, "output_tokens": 256})
    batches = np.array([[8.0], [96.0], [512.0]])
    prompts = np.array([[64.0, 256.0, 1024.0]])
    grid = _throughput(r, batch_size=batches, prompt_tokens=prompts)
    for i, b in enumerate(batches[:, 0]):
        for j, p in enumerate(prompts[0]):
            assert grid[i, j] == pytest.approx(
                float(_throughput(r, batch_size=float(b), prompt_tokens=float(p))), rel=1e-12
            )
    rd = _resolve(**NEUPIMS_SETTINGS)
    swept = _throughput(rd, batch_size=batches[:, 0])
    for i, b in enumerate(batches[:, 0]):
        assert swept[i] == pytest.approx(float(_throughput(rd, batch_size=float(b))), rel=1e-12)


def test_attention_dominates_npu_only_and_moves_to_pim() -> None:
    """NPU-only streams the KV cache over the 1 TB/s bus; with PIM the attention runs at 16x internal bandwidth,
    so at batch 768 the PIM system's attention time per layer is well below NPU-only's (at least 2x)."""
    r = _resolve(**NEUPIMS_SETTINGS)
    npu = run_inference(**engine_inputs(r, system="npu_only"))
    pim = run_inference(**engine_inputs(r, system="npu_pim_blocked"))
    assert float(pim.attention_time_s) * 2 < float(npu.attention_time_s)
    assert 0.0 < float(pim.pim_busy_fraction) < 1.0 and float(npu.pim_busy_fraction) == 0.0


def test_neupims_keeps_both_units_busier_than_blocked_mode() -> None:
    """NeuPIMs (ASPLOS'24) Section 7: overlapping GEMM and GEMV raises NPU and PIM utilisation over blocked mode.
    Order check at batch 768 (no published number used)."""
    r = _resolve(**NEUPIMS_SETTINGS)
    neupims = run_inference(**engine_inputs(r))
    blocked = run_inference(**engine_inputs(r, system="npu_pim_blocked"))
    assert float(neupims.npu_busy_fraction) > float(blocked.npu_busy_fraction)
    assert float(neupims.pim_busy_fraction) > float(blocked.pim_busy_fraction)


def test_blocked_layer_is_gemms_plus_pim_attention_exactly() -> None:
    """Blocked mode, fixed lengths: layer = NPU ops + softmax + tCK * ceil(B/C) * t_request, t_request the NeuPIMs
    simulator's estimate (casys-kaist/NeuPIMs src/scheduler/Scheduler.cc, Scheduler::estimate_mha_latency). Exact."""
    r = _resolve(**{**NEUPIMS_SETTINGS, "system": "npu_pim_blocked", "request_lengths": None, "batch_size": 100})
    result = run_inference(**engine_inputs(r))
    npu = sum(float(op.time_s) for name, op in result.decode_ops.items() if name not in ("score", "context"))
    per_request = 2 * (100 + 24 * 184) + 2 * 8 * (100 + 4 * 184)  # s = 512 + 256 = 768, E = 1024, 8 heads
    pim = 1e-9 * math.ceil(100 / 32) * per_request
    assert float(result.pim_attention_time_s) == pytest.approx(pim, rel=1e-12)
    assert float(result.layer_time_s) == pytest.approx(npu + pim, rel=1e-12)


def test_shared_work_gives_each_system_its_own_numbers_and_computes_common_parts_once() -> None:
    """Calls that share a SharedWork (studies.Runner) and the same inputs give, to the last bit, what each gives
    alone; the systems on one device share its whole-batch decode layer, prefill and footprint."""
    from dse.scenarios.kinds.inference import studies

    r = _resolve(**NEUPIMS_SETTINGS)
    runner = studies.Runner(r)
    systems = studies.comparable_systems(r)
    assert len({id(device) for device in systems.values()}) < len(systems)  # some systems share a device
    grid = np.asarray(studies.BATCH_GRID, dtype=np.float64)
    together: dict[str, Any] = {}
    for batch in (None, grid):
        for system, device in systems.items():
            shared = runner.run(system, device, batch=batch)
            alone = studies.run(r if batch is None else dataclasses.replace(r, batch_size=batch), system, device)
            for field in dataclasses.fields(alone):
                if field.name not in ("decode_ops", "decode_op_costs"):
                    assert np.array_equal(getattr(shared, field.name), getattr(alone, field.name)), field.name
            for name, op in alone.decode_ops.items():
                assert np.array_equal(shared.decode_ops[name].time_s, op.time_s), name
            together[system] = shared
    assert together["npu_only"].decode_ops is together["neupims"].decode_ops  # computed once, on the NPU
    assert together["npu_only"].time_to_first_token_s is together["npu_pim_blocked"].time_to_first_token_s
    assert together["gpu_only"].decode_ops is not together["npu_only"].decode_ops


def test_throughput_by_split_is_each_fixed_split_to_the_last_bit() -> None:
    """NeuPIMs searching its split reports the throughput of every candidate: each row is what the call with
    that split fixed gives (the interleaving study reads the even split and none from it)."""
    from dse.engines.inference import SPLIT_CANDIDATES

    r = _resolve(**NEUPIMS_SETTINGS)
    batches = np.array([1.0, 32.0, 256.0, 768.0])
    searched = run_inference(**engine_inputs(dataclasses.replace(r, batch_size=batches, sub_batch_fraction=None)))
    assert searched.throughput_by_split_tokens_per_s is not None
    for i, split in enumerate(SPLIT_CANDIDATES):
        fixed = _throughput(r, batch_size=batches, sub_batch_fraction=float(split))
        assert np.array_equal(searched.throughput_by_split_tokens_per_s[i], fixed), split
    assert np.array_equal(np.max(searched.throughput_by_split_tokens_per_s, axis=0), searched.throughput_tokens_per_s)
    assert run_inference(**engine_inputs(r)).throughput_by_split_tokens_per_s is not None
    gpu = run_inference(**engine_inputs(r, system="gpu_only", accelerator=r.comparison_gpu))
    assert gpu.throughput_by_split_tokens_per_s is None
