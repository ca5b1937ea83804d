"""Scenario kind rl_scaling end to end: examples validate and evaluate, sweeps run in one call, the
charts and the published comparison are there, bad inputs name their field."""

from __future__ import annotations

import json
import math

import pytest
from pydantic import ValidationError

from dse.catalog import default_catalog
from dse.scenarios.base import InputError
from dse.scenarios.registry import KINDS
from dse.scenarios.sweep import SweepAxis, run_sweep

KIND = KINDS["rl_scaling"]
CATALOG = default_catalog()


def _resolve(**inputs):
    return KIND.resolve(KIND.inputs_model.model_validate(inputs), CATALOG)


@pytest.mark.parametrize("example", KIND.examples(), ids=lambda e: e["name"])
def test_examples_evaluate_to_finite_metrics(example):
    result = KIND.evaluate(KIND.resolve(KIND.inputs_model.model_validate(example["inputs"]), CATALOG))
    assert {m.key for m in result.metrics} == set(KIND.metric_specs)
    assert all(m.value is not None and math.isfinite(m.value) for m in result.metrics)
    json.dumps(result.model_dump())  # the API answer serialises


def test_default_shows_the_published_wall_time_beside_its_own():
    """The result carries the preset's published ~3.5 days as a typed comparison, judged by the same band as
    the kind's published-figure record (the schedule and the wall time themselves are records in
    kinds/rl_scaling/published.py, checked by tests/validation/test_published_figures.py)."""
    result = KIND.evaluate(_resolve())
    (comparison,) = result.published
    record = next(f for f in KIND.published_figures() if f.key == "carla_wall_time")
    assert comparison.published == pytest.approx(record.published) and comparison.unit == record.unit
    assert comparison.tolerance == record.tolerance and comparison.within_tolerance is True
    assert comparison.engine == pytest.approx(
        next(m.value for m in result.metrics if m.key == "wall_time_to_target_days")
    )
    assert "README" in comparison.source and comparison.role == "validation"


def test_a_workload_without_a_published_time_compares_nothing():
    assert KIND.evaluate(_resolve(workload="carl-nuplan")).published == []


def test_figures_show_one_to_eight_gpus_and_the_iteration_split():
    result = KIND.evaluate(_resolve())
    figures = {f.key: f.figure for f in result.charts}
    assert [t["name"] for t in figures["samples_vs_minibatch"]["data"]] == ["1 GPU"] + [
        f"{g} GPUs" for g in range(2, 9)
    ]
    split = figures["iteration_split"]["data"]
    assert len(split) == 5 and sum(t["x"][0] for t in split) == pytest.approx(
        next(m.value for m in result.metrics if m.key == "iteration_s")
    )


def test_sweep_minibatch_and_gpus_in_one_call():
    """A 2-D sweep over the main axes: samples/s rises with GPUs (fixed envs per GPU). Each axis's extremes
    are checked against the base document, so the base minibatch must fit one GPU's batch (8,192)."""
    inputs = KIND.inputs_model.model_validate({"minibatch_samples": 1024})
    sweep = run_sweep(
        KIND,
        inputs,
        CATALOG,
        [
            SweepAxis(path="num_gpus", values=[1, 2, 4, 8]),
            SweepAxis(path="minibatch_samples", values=[1024, 4096, 8192]),
        ],
    )
    assert sweep.shape == [4, 3]
    rates = sweep.metrics["samples_per_s"]
    assert all(rates[i][0] < rates[i + 1][0] for i in range(3))
    assert sweep.units["wall_time_to_target_days"] == "days"


def test_a_minibatch_larger_than_the_batch_names_its_field():
    with pytest.raises(InputError) as err:
        _resolve(minibatch_samples=10_000_000)
    assert err.value.field == "minibatch_samples"


def test_unknown_workload_names_its_field():
    with pytest.raises(InputError) as err:
        _resolve(workload="carl-mujoco")
    assert err.value.field == "workload"


def test_schema_refuses_nonsense():
    with pytest.raises(ValidationError):
        KIND.inputs_model.model_validate({"num_gpus": 0})
    with pytest.raises(ValidationError):
        KIND.inputs_model.model_validate({"link_bandwidth_gb_per_s": float("inf")})
    with pytest.raises(ValidationError):
        KIND.inputs_model.model_validate({"gpus": 8})


def test_sweep_refuses_an_impossible_minibatch():
    inputs = KIND.inputs_model.model_validate({})
    with pytest.raises(InputError) as err:
        run_sweep(KIND, inputs, CATALOG, [SweepAxis(path="minibatch_samples", values=[1024, 10_000_000])])
    assert err.value.field == "axes[0].values"


def test_inline_workload_is_accepted():
    spec = json.loads((CATALOG.root / "rl_workloads" / "carl-carla.json").read_text())
    spec.update(id="mine", envs_per_gpu=4)
    resolved = _resolve(workload=spec)
    assert resolved.envs_per_gpu == 4 and resolved.workload_id == "mine"


def test_link_presets_replace_the_numbers():
    """An interconnects preset sets the all-reduce bandwidth and latency (nvlink4: 450 GB/s, 5.7 µs per step)."""
    link = CATALOG.get("interconnects", "nvlink4")
    resolved = _resolve(link="nvlink4", host_link="pcie5")
    assert resolved.link_bandwidth_bytes_per_s == link.bandwidth_per_direction_bytes_per_s
    assert resolved.link_latency_s == link.latency_s
    with pytest.raises(InputError) as err:
        _resolve(link="carrier-pigeon")
    assert err.value.field == "link"


def test_sweeping_an_accelerator_rate_the_policy_does_not_use_changes_nothing():
    """The policy's kernels run on the matrix units: a swept vector peak (an array in the device) is
    accepted and leaves samples/s as they are (exact)."""
    inputs = KIND.inputs_model.model_validate({})
    sweep = run_sweep(KIND, inputs, CATALOG, [SweepAxis(path="accelerator.vector_flops_per_s", values=[1e13, 2e13])])
    base = KIND.compute(_resolve())["samples_per_s"]
    assert sweep.metrics["samples_per_s"] == [float(base)] * 2
