"""Scenario kind `pruning` end to end: examples validate and evaluate, sweeps, invalid inputs."""

from __future__ import annotations

import copy
import dataclasses
import json
import math

import pytest
from pydantic import ValidationError

from dse.catalog import default_catalog
from dse.scenarios.base import InputError
from dse.scenarios.kinds.pruning import published as pruning_published
from dse.scenarios.registry import KINDS
from dse.scenarios.sweep import SweepAxis, run_sweep

KIND = KINDS["pruning"]


def _resolve(inputs):
    return KIND.resolve(KIND.inputs_model.model_validate(inputs), default_catalog())


def _default_inputs():
    return copy.deepcopy(KIND.examples()[0]["inputs"])


@pytest.mark.parametrize("example", KIND.examples(), ids=lambda e: e["name"])
def test_examples_evaluate_with_finite_metrics_tables_and_figures(example):
    assert example["kind"] == "pruning" and example["schema_version"] == 1
    result = KIND.evaluate(_resolve(example["inputs"]))
    assert {m.key for m in result.metrics} == set(KIND.metric_specs)
    assert all(m.value is not None and math.isfinite(m.value) for m in result.metrics)
    assert {f.key for f in result.charts} == {
        "macs_per_block",
        "macs_per_code",
        "routing_heatmap",
        "throughput_vs_batch",
    }
    assert {t.key for t in result.tables} == {"unet_blocks", "codes", "routing", "throughput"}
    assert result.feasible, "every example is written to meet its budget"
    json.dumps(result.model_dump())  # the API can serialise it


def test_default_example_shows_the_published_figures_of_its_pipeline_and_hardware():
    """SD 2.1 on an A100: the pipeline's own parameter count, then every SD 2.1 record of
    kinds/pruning/published.py (MACs per step, APTP Table 1) with the record's published figure,
    tolerance and source, and the engine's number for this scenario's presets (the records' own).
    APTP's budgets and the released K are context (a published setting beside this scenario's input)."""
    result = KIND.evaluate(_resolve(_default_inputs()))
    validation = [p for p in result.published if p.role == "validation"]
    context = [p for p in result.published if p.role == "context"]
    records = {f.quantity.replace("A100 80 GB preset", "NVIDIA A100 SXM 80 GB"): f for f in KIND.published_figures()}
    shown = validation[1:]
    assert validation[0].quantity == "Stable Diffusion 2.1 (768-v) UNet parameters"
    assert validation[0].within_tolerance and validation[0].engine == 865_910_724
    assert len(shown) == 10 and all(p.quantity in records for p in shown)
    catalog = default_catalog()
    for row in shown:
        record = records[row.quantity]
        assert (row.published, row.source, row.tolerance) == (record.published, record.source, record.tolerance)
        assert row.engine == record.compare(catalog).engine
        assert row.within_tolerance is (record.known_miss is None)
    assert all(p.source for p in result.published)
    assert {p.published for p in context if p.unit == ""} == {0.85, 0.66}  # APTP-Base / APTP-Small budgets
    assert {p.published for p in context if p.unit == "count"} == {16.0, 8.0}  # released experts
    assert all(p.tolerance is None and p.within_tolerance is None for p in context)


def test_published_parameter_counts_are_the_presets_own():
    """The records of the UNet parameter counts and the presets' published_unet_params_count are one figure."""
    records = {f.key: f.published for f in KIND.published_figures()}
    for preset in ("sd21", "sd15"):
        spec = default_catalog().get("diffusion", preset)
        assert records[f"{preset}_unet_params"] == spec.published_unet_params_count


def test_default_example_meets_the_small_budget_and_codes_are_counted():
    """APTP-Small budget 0.66: the default's 8 uniform codes route to mean R <= 0.66; R_k of the
    first code (keep 0.95) is computed by the counter, strictly between 0.9 and 1."""
    result = KIND.evaluate(_resolve(_default_inputs()))
    metrics = {m.key: m.value for m in result.metrics}
    assert metrics["budget_met"] is True and metrics["mean_resource_ratio"] <= 0.66
    codes = next(t for t in result.tables if t.key == "codes")
    ratios = [row[6] for row in codes.rows]
    assert 0.9 < ratios[0] < 1.0 and ratios == sorted(ratios, reverse=True)


def test_sweep_over_batch_size_is_one_vectorised_call():
    inputs = KIND.inputs_model.model_validate(KIND.examples()[1]["inputs"])
    axis = SweepAxis(path="batch_size", values=[1, 2, 4, 8, 16, 32, 64])
    result = run_sweep(KIND, inputs, default_catalog(), [axis])
    aptp = result.metrics["aptp_images_per_s"]
    dynamic = result.metrics["dynamic_images_per_s"]
    assert result.shape == [7]
    assert aptp == sorted(aptp), "throughput grows with the batch"
    assert len(set(dynamic)) == 1, "dynamic pruning runs at batch 1 whatever the batch"
    assert aptp[-1] > dynamic[-1]


def test_two_axis_sweep_over_resolution_and_budget():
    inputs = KIND.inputs_model.model_validate(_default_inputs())
    axes = [
        SweepAxis(path="image_size_px", values=[256, 512, 768]),
        SweepAxis(path="budget_ratio", values=[0.5, 0.66, 0.85]),
    ]
    result = run_sweep(KIND, inputs, default_catalog(), axes)
    met = result.metrics["budget_met"]
    assert result.shape == [3, 3]
    assert all(row[0] == 0.0 and row[2] == 1.0 for row in met)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.update(image_size_px=500), "image_size_px"),
        (lambda d: d["codes"][2].update(channel_keep=[0.5, 0.5]), "codes[2].channel_keep"),
        (lambda d: d["codes"][0].update(capacity_share=0.5), "codes"),
        (lambda d: d.update(pipeline="sd99"), "pipeline"),
        (lambda d: d.update(accelerator="tpu"), "accelerator"),
        (lambda d: d["codes"][1].update(name="code 0"), "codes"),
        (lambda d: d.update(software_stack="no-such-stack"), "software_stack"),
    ],
)
def test_invalid_inputs_raise_input_error_naming_the_field(change, field):
    inputs = _default_inputs()
    change(inputs)
    with pytest.raises(InputError) as err:
        _resolve(inputs)
    assert err.value.field == field


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["codes"][0].update(head_keep=1.5),
        lambda d: d.update(budget_ratio=0.0),
        lambda d: d["prompt_mix"][0].update(share=-1),
        lambda d: d.update(codes=[]),
        lambda d: d.update(unknown=1),
    ],
)
def test_schema_refuses_out_of_range_inputs(change):
    inputs = _default_inputs()
    change(inputs)
    with pytest.raises(ValidationError):
        KIND.inputs_model.model_validate(inputs)


def test_per_stage_codes_expand_to_blocks():
    """A per-stage list [s0, s1, s2, s3] keeps s_i on down_i and up_(3-i), and s3 on mid."""
    inputs = _default_inputs()
    inputs["codes"] = [{"name": "staged", "channel_keep": [0.1, 0.2, 0.3, 0.4]}]
    keep = _resolve(inputs).code_keep[0][:, 0]
    assert list(keep) == [0.1, 0.2, 0.3, 0.4, 0.4, 0.4, 0.3, 0.2, 0.1]


def test_sweep_over_an_accelerator_term_and_inline_pipeline():
    """An inline pipeline spec (a copy of the sd21 preset) evaluates like the preset; more HBM
    bandwidth never slows serving; structural fields (layer counts) cannot be swept and say so."""
    inputs = _default_inputs()
    spec = json.loads((default_catalog().root / "diffusion" / "sd21.json").read_text())
    inputs["pipeline"] = {**spec, "id": "my-sd21"}
    model = KIND.inputs_model.model_validate(inputs)
    axis = SweepAxis(path="accelerator.memory_bandwidth_bytes_per_s", values=[1e12, 2e12, 4e12])
    result = run_sweep(KIND, model, default_catalog(), [axis])
    tput = result.metrics["aptp_images_per_s"]
    assert tput == sorted(tput) and result.metrics["unet_params"][0] == 865_910_724
    with pytest.raises(InputError, match="cannot be swept"):
        run_sweep(KIND, model, default_catalog(), [SweepAxis(path="pipeline.unet.layers_per_block", values=[1, 2])])


# -- APTP's reported MACs and latencies (Table 1) ----------------------------------------------------
# The published figures (SD 2.1 MACs in APTP's counter, SD 2.1 latency, the four latency ratios with
# the Small rows and the absolute latency as known misses) are records in
# dse/scenarios/kinds/pruning/published.py, tested by tests/validation/test_published_figures.py.


def test_table1_comparison_is_shown_only_on_the_published_hardware():
    """The Table 1 comparison (MACs, absolute latency, four latency ratios) is shown for SD 2.1 with
    each record's source; latencies only on an A100 preset (the published hardware)."""
    source = pruning_published.APTP_TABLE1_SOURCE
    a100 = [p for p in KIND.evaluate(_resolve(_default_inputs())).published if p.source == source]
    assert [p.unit for p in a100] == ["MAC", "s", "", "", "", ""]
    h100 = KIND.evaluate(_resolve(KIND.examples()[1]["inputs"])).published
    assert [p.unit for p in h100 if p.source == source] == ["MAC"]
    assert "secondary source" in source and "2406.12042" in source and "2505.21817" in source


def test_software_stack_is_an_input_and_the_notes_name_it():
    """The default is diffusers' eager stack; a compiling stack serves faster; null prices the roofline. The
    notes say which stack and fits priced the kernels."""
    latency = {}
    for stack in ("pytorch-eager-sdpa", "torch-compile", None):
        inputs = _default_inputs()
        if stack != "pytorch-eager-sdpa":
            inputs["software_stack"] = stack
        else:
            assert "software_stack" not in inputs  # the default
        r = _resolve(inputs)
        result = KIND.evaluate(r)
        values = {m.key: m.value for m in result.metrics}
        latency[stack] = values["full_latency_s"]
        named = f"software stack {stack}" if stack else "roofline with the accelerator's single efficiencies"
        assert any(named in note for note in result.notes)
    assert latency["torch-compile"] < latency["pytorch-eager-sdpa"]


@pytest.mark.parametrize("example", KIND.examples(), ids=lambda e: e["name"])
def test_one_serving_call_over_every_batch_gives_each_batch_its_own_numbers(example):
    """`evaluate` prices the metrics' batch and the charts' batches in one engine call: to the last bit what
    `compute` (the sweep path) and a call at the charts' batches alone give."""
    import numpy as np

    from dse.scenarios.kinds.pruning import metrics

    r = _resolve(example["inputs"])
    done = metrics.counted(r)
    together = metrics.core(r, np.asarray((r.batch_size, *r.figure_batch_sizes), dtype=np.float64), done)
    alone = metrics.compute(r, done)
    for key, value in metrics.values_of(r, metrics.at_batches(together, 0)).items():
        assert np.array_equal(value, alone[key]), key
    grid = metrics.core(r, np.asarray(r.figure_batch_sizes, dtype=np.float64), done).serving
    picked = metrics.at_batches(together, slice(1, None)).serving
    for field in dataclasses.fields(grid):
        assert np.array_equal(getattr(picked, field.name), getattr(grid, field.name)), field.name


def test_sd15_timing_records_price_the_loop_iterations_of_the_published_pipelines():
    """fal's diffusers rows run 51 PNDM iterations and the TensorRT demo 50 DDIM ones; every iteration is a UNet step
    plus the loop's other host-serialized ops (21 in diffusers, 24 in the demo), each an eager PyTorch element-wise
    launch on the guided latents; diffusers' it/s is 50 bar updates over 51 such iterations."""
    p = pruning_published
    catalog = default_catalog()
    eager = p._stack(catalog, p.SD15_EAGER_STACK)
    records = {r.key: r for r in p.PUBLISHED}

    def one_op_s(batch):  # 2 x batch guided latents of 4 x 64 x 64 fp16, read and written once
        return float(eager.elementwise_time_s(0.0, 2.0 * (2.0 * batch * 4 * 64 * 64 * 2.0)).time_s)

    trt = p._sd15_parts(catalog, "tensorrt", "tensorrt", 1.0, False)
    expected = 50.0 * (trt["unet_step_s"] + 24.0 * one_op_s(1.0)) + trt["text_encoder_s"] + trt["vae_decoder_s"]
    assert records["sd15_a100_tensorrt_seconds_per_image"].engine(catalog) == pytest.approx(expected, rel=1e-12)
    eager_parts = p._sd15_parts(catalog, p.SD15_EAGER_STACK, p.SD15_EAGER_STACK, 1.0, False)
    expected = (
        51.0 * (eager_parts["unet_step_s"] + 21.0 * one_op_s(1.0))
        + eager_parts["text_encoder_s"]
        + eager_parts["vae_decoder_s"]
    )
    assert records["sd15_a100_eager_sdpa_seconds_per_image"].engine(catalog) == pytest.approx(expected, rel=1e-12)
    step = p._sd15_parts(catalog, p.SD15_COMPILE_STACK, p.SD15_COMPILE_STACK, 4.0, True)["unet_step_s"]
    expected = 50.0 / (51.0 * (step + 21.0 * one_op_s(4.0)))
    assert records["sd15_a100_compiled_batch4_iterations_per_s"].engine(catalog) == pytest.approx(expected, rel=1e-12)
    assert one_op_s(1.0) > 1.5e-5  # the launch (15.3 us) dominates a 64 KiB pass
