"""Scenario kind `pruning` end to end: examples validate and evaluate, sweeps, invalid inputs."""

from __future__ import annotations

import copy
import json
import math

import pytest
from pydantic import ValidationError

from dse.catalog import default_catalog
from dse.engines import pruning as pruning_engine
from dse.scenarios import pruning as pruning_kind
from dse.scenarios.base import InputError
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


def test_default_example_reproduces_the_sd21_reference_figures():
    """REFERENCE.md section 4: SD 2.1 865.9 M parameters; 339.1 / 402 GMACs at 512 px and
    760.5 / 1074.6 GMACs at 768 px per step. Tolerance 1% (the issue's), shown in references."""
    refs = KIND.evaluate(_resolve(_default_inputs())).references
    numeric = [r for r in refs if "relative_error" in r and r["source"] != pruning_kind.APTP_TABLE1_SOURCE]
    assert len(numeric) == 5
    assert all(abs(r["relative_error"]) < 0.01 for r in numeric)
    assert all(r["source"] for r in refs)
    budgets = {r["published"] for r in refs if "holds" in r}
    assert budgets == {0.85, 0.66}  # APTP-Base / APTP-Small (APTP, ICLR'25; REFERENCE.md section 4)


def test_default_example_meets_the_small_budget_and_codes_are_counted():
    """APTP-Small budget 0.66: the default's 8 uniform codes route to mean R <= 0.66; R_k of the
    first code (keep 0.95) is computed by the counter, strictly between 0.9 and 1."""
    result = KIND.evaluate(_resolve(_default_inputs()))
    metrics = {m.key: m.value for m in result.metrics}
    assert metrics["budget_met"] == 1.0 and metrics["mean_resource_ratio"] <= 0.66
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


# -- APTP's reported latencies (Table 1) -------------------------------------------------------
# Source: APTP (arXiv 2406.12042) Table 1 rows for SD 2.1 and APTP, as quoted (citing APTP) in
# ALTER (Yang et al., NeurIPS 2025, arXiv 2505.21817) Table 1: 768 px, 25 PNDM steps, batch 1, A100;
# SD 2.1 1384.2 GMACs/step, 4.0 s; APTP-Base CC3M 1182.8 G, 3.4 s; APTP-Small CC3M 916.3 G, 2.6 s;
# APTP-Base COCO 1076.6 G, 3.1 s; APTP-Small COCO 890.0 G, 2.5 s. The latency cuts these imply for
# CC3M Base (15%) and COCO Base (22.5%) agree with reviewers' summaries of APTP's own Table 1.
#
# Tolerance on a latency ratio (row / SD 2.1): 5%. The latencies are printed to 0.1 s, so a ratio
# carries up to 0.05/2.5 + 0.05/4.0 = 3.3% of rounding alone; the remaining ~1.7% allows for
# transferring R as a ratio between APTP's MAC counter and this one (they weigh attention differently).


def _table1():
    resolved = _resolve(_default_inputs())  # A100 80 GB, SD 2.1: the published hardware and model
    latencies = KIND.published_setting_latencies(resolved)
    rows = pruning_kind.APTP_TABLE1_ROWS
    published = [latency_s / pruning_kind.APTP_TABLE1_SD21_LATENCY_S for _, _, latency_s in rows]
    engine = [float(t) / latencies["full_latency_s"] for t in latencies["row_latency_s"]]
    return dict(zip([label for label, _, _ in rows], zip(published, engine, strict=True), strict=True)), latencies


def test_aptp_counter_is_this_counter_with_self_attention_counted_twice():
    """APTP Table 1 (via ALTER Table 1): SD 2.1 1384.2 GMACs per step at 768 px. This counter's split
    (conv+linear 760.5 G, self-attention 310.1 G, cross-attention 4.0 G) reproduces it to 0.1% only if
    the self-attention matmuls count twice: the two counters differ by that convention, nothing else."""
    pipeline = default_catalog().get("diffusion", "sd21")
    table = pruning_engine.unet_layer_table(pipeline.unet, pipeline.text_encoder.max_position_embeddings)
    macs = pruning_engine.count_blocks(table, latent_side=96.0).macs.sum(axis=0)
    by_category = dict(zip(pruning_engine.CATEGORY_NAMES, macs, strict=True))
    aptp_convention = (
        by_category["conv"]
        + by_category["linear"]
        + 2.0 * by_category["self_attention"]
        + by_category["cross_attention"]
    )
    published = pruning_kind.APTP_TABLE1_SD21_UNET_MACS_PER_STEP
    assert abs(aptp_convention - published) / published < 1e-3


@pytest.mark.parametrize("row", ["APTP-Base (0.85), CC3M", "APTP-Base (0.78), MS-COCO"])
def test_aptp_base_latency_cut_matches_table1(row):
    """APTP Table 1 (via ALTER Table 1): APTP-Base runs at 3.4 s (CC3M) and 3.1 s (COCO) vs SD 2.1's
    4.0 s, ratios 0.85 and 0.775. The engine (fp32 roofline, A100 preset, one pruned model with the
    row's published MACs ratio) gives 0.866 and 0.795. Tolerance 5% (see the block comment above)."""
    ratios, _ = _table1()
    published, engine = ratios[row]
    assert abs(engine - published) / published < 0.05


@pytest.mark.xfail(
    strict=True,
    reason="Engine's latency cut is smaller than published for the Small experts (ratio 0.688 vs 0.65, "
    "+5.8%; 0.670 vs 0.625, +7.3%). In the engine the unpruned VAE decoder is a fixed 0.42 s (5% of SD 2.1's "
    "8.4 s in fp32) and the pruned UNet's time falls a little less than its MACs (0.671 at R 0.662); the "
    "published latencies fall at least in proportion to MACs (0.65 at 0.662), as APTP's experts also drop "
    "whole blocks (depth), which one uniform width keep does not model.",
)
@pytest.mark.parametrize("row", ["APTP-Small (0.66), CC3M", "APTP-Small (0.64), MS-COCO"])
def test_aptp_small_latency_cut_matches_table1(row):
    """APTP Table 1 (via ALTER Table 1): APTP-Small 2.6 s (CC3M), 2.5 s (COCO) vs SD 2.1 4.0 s.
    Same 5% tolerance as the Base rows; recorded as a known miss, not tuned."""
    ratios, _ = _table1()
    published, engine = ratios[row]
    assert abs(engine - published) / published < 0.05


@pytest.mark.xfail(
    strict=True,
    reason="Absolute latency is not matched: SD 2.1 at 768 px, 25 steps, batch 1 on A100 is 4.0 s published; "
    "the roofline gives 8.4 s in fp32 (no TF32) and 0.72 s in fp16. The published precision is not stated "
    "(APTP's generation script runs the pipeline in fp32, where cuDNN convolutions may use TF32), and the "
    "presets have no mixed fp32/TF32 mode nor eager-mode overheads.",
)
def test_sd21_absolute_latency_matches_table1():
    """APTP Table 1 (via ALTER Table 1): SD 2.1 4.0 s per image. Tolerance 25% (a roofline with one
    calibration per accelerator; the LLM calibration reaches 14% at worst)."""
    _, latencies = _table1()
    published = pruning_kind.APTP_TABLE1_SD21_LATENCY_S
    assert abs(latencies["full_latency_s"] - published) / published < 0.25


def test_table1_comparison_is_in_the_references_with_its_source():
    """The Table 1 comparison (MACs, absolute latency, four latency ratios) is shown beside the
    budgets, each with its source and its test's tolerance; the ratios in the references are the
    ones tested above. Latencies are compared only on an A100 preset (the published hardware)."""
    refs = KIND.evaluate(_resolve(_default_inputs())).references
    table1 = [r for r in refs if r["source"] == pruning_kind.APTP_TABLE1_SOURCE]
    assert len(table1) == 6
    macs = next(r for r in table1 if r["unit"] == "MAC")
    assert abs(macs["relative_error"]) < macs["tolerance"] == 0.001
    h100_example = KIND.evaluate(_resolve(KIND.examples()[1]["inputs"])).references
    assert [r["unit"] for r in h100_example if r["source"] == pruning_kind.APTP_TABLE1_SOURCE] == ["MAC"]
    ratios, _ = _table1()
    shown = {r["quantity"].split(":")[0]: (r["published"], r["engine"]) for r in table1 if r["unit"] == ""}
    assert shown.keys() == ratios.keys()
    for label, (published, engine) in ratios.items():
        assert shown[label] == pytest.approx((published, engine), rel=1e-12)
