"""Scenario kind "training" end to end: examples, sweeps, invalid inputs naming their field."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dse.catalog import default_catalog
from dse.scenarios.base import InputError
from dse.scenarios.registry import KINDS
from dse.scenarios.sweep import SweepAxis, run_sweep

KIND = KINDS["training"]
CATALOG = default_catalog()
EXAMPLES = KIND.examples()


def resolve(inputs):
    return KIND.resolve(KIND.inputs_model.model_validate(inputs), CATALOG)


@pytest.mark.parametrize("example", EXAMPLES, ids=[e["name"][:40] for e in EXAMPLES])
def test_examples_evaluate_with_finite_metrics_and_figures(example):
    assert example["kind"] == "training" and example["schema_version"] == 1
    # The quick answer holds the metrics and the breakdown charts; scenarios/test_every_kind.py evaluates every
    # example whole (its deferred studies too).
    result = KIND.evaluate_quick(resolve(example["inputs"]))
    values = {m.key: m.value for m in result.metrics}
    for key in ("iteration_time_s", "tokens_per_s", "model_flops_utilization", "memory_total_bytes"):
        assert values[key] is not None and math.isfinite(values[key]) and values[key] > 0
    assert {f.key for f in result.charts} >= {"memory", "time"}
    metrics = KIND.compute(resolve(example["inputs"]))
    assert set(metrics) <= set(KIND.metric_specs)


def test_default_example_is_narayanan_145b_row_and_draws_the_timeline():
    """Narayanan et al. SC'21 Table 1, 145.6B row: 148 TFLOP/s per GPU published; within 12% (see the engine test)."""
    result = KIND.evaluate(resolve(EXAMPLES[0]["inputs"]))
    assert result.feasible
    comparison = next(c for c in result.published if "Narayanan" in c.source)
    assert comparison.role == "validation" and comparison.within_tolerance  # the paper's plan, within 12%
    assert abs(comparison.engine / comparison.published - 1) < 0.12
    timeline = next(f for f in result.charts if f.key == "timeline").figure
    assert {trace["name"] for trace in timeline["data"]} >= {"forward", "backward", "send", "bubble"}
    table = next(t for t in result.tables if t.key == "timeline")
    forwards = [row for row in table.rows if row[1] == "forward"]
    assert len(forwards) == 8 * 48 * 2  # stages x micro-batches x chunks


def test_sweep_over_the_micro_batch_size():
    """One engine call over the micro-batch axis; sizes that do not divide the batch come back empty (None)."""
    # 1.7B: batch 512 over 32 replicas = 16 sequences per replica
    example = next(e for e in EXAMPLES if e["inputs"]["model"] == "megatron-gpt-1.7b")["inputs"]
    inputs = KIND.inputs_model.model_validate(example)
    result = run_sweep(KIND, inputs, CATALOG, [SweepAxis(path="micro_batch_size", values=[1, 2, 4, 8, 16])])
    times = result.metrics["iteration_time_s"]
    assert all(t is not None and t > 0 for t in times)
    assert result.metrics["memory_activations_bytes"][0] < result.metrics["memory_activations_bytes"][-1]
    fewer = run_sweep(KIND, inputs, CATALOG, [SweepAxis(path="sequence_length_tokens", values=[1024, 2048])])
    assert fewer.metrics["iteration_time_s"][0] < fewer.metrics["iteration_time_s"][1]


def test_two_axis_sweep_of_cluster_and_plan():
    inputs = KIND.inputs_model.model_validate(EXAMPLES[1]["inputs"])
    result = run_sweep(
        KIND,
        inputs,
        CATALOG,
        [
            SweepAxis(path="micro_batch_size", values=[1, 2, 4]),
            SweepAxis(path="cluster.accelerator.memory_capacity_bytes", values=[40 * 2**30, 80 * 2**30]),
        ],
    )
    assert np.array(result.metrics["fits"], dtype=float).shape == (3, 2)


BASE = {"model": "gpt3-7b", "cluster": {"nodes": 2}, "global_batch_size": 64, "micro_batch_size": 2}
BASE |= {"data_parallel": 4, "tensor_parallel": 2, "pipeline_parallel": 2}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"data_parallel": 2}, "data_parallel"),
        (
            {
                "tensor_parallel": 3,
                "data_parallel": 1,
                "pipeline_parallel": 1,
                "cluster": {"nodes": 1, "gpus_per_node": 3},
            },
            "tensor_parallel",
        ),
        ({"micro_batch_size": 3}, "micro_batch_size"),
        (
            {"pipeline_parallel": 24, "data_parallel": 1, "tensor_parallel": 1, "cluster": {"nodes": 3}},
            "pipeline_parallel",
        ),
        (
            {
                "sequence_parallel": "ulysses",
                "sequence_parallel_degree": 32,
                "tensor_parallel": 2,
                "data_parallel": 1,
                "pipeline_parallel": 1,
                "cluster": {"nodes": 8},
                "micro_batch_size": 64,
            },
            "sequence_parallel_degree",
        ),
        ({"sequence_parallel_degree": 2, "data_parallel": 2}, "sequence_parallel_degree"),
        ({"zero_stage": 3}, "zero_stage"),
        ({"virtual_stages": 2}, "virtual_stages"),
        ({"activation_offload": "adaptive"}, "activation_offload"),
        ({"model": "no-such-model"}, "model"),
        ({"cluster": {"nodes": 2, "node_pair_bandwidth_gb_per_s": [[1.0]]}}, "cluster.node_pair_bandwidth_gb_per_s"),
    ],
)
def test_invalid_plans_raise_input_error_naming_the_field(change, field):
    with pytest.raises(InputError) as info:
        resolve(BASE | change)
    assert info.value.field == field


def test_gpu_count_message_says_the_numbers():
    with pytest.raises(InputError, match=r"2 x 2 x 2 x 1 != 16 GPUs"):
        resolve(BASE | {"data_parallel": 2})


def test_a_plan_that_does_not_fit_is_infeasible_not_an_error():
    result = KIND.evaluate(resolve(BASE | {"tensor_parallel": 1, "data_parallel": 8, "micro_batch_size": 8}))
    assert not result.feasible and any("short" in note for note in result.notes)


def test_heterogeneous_cluster_slows_gradient_sync():
    """Pipette-style measured node-pair bandwidths (GB/s per GPU): a slow pair slows the DP ring that crosses it."""
    plan = BASE | {"overlap_grad_reduce": False}
    slow = plan | {"cluster": {"nodes": 2, "node_pair_bandwidth_gb_per_s": [[25.0, 5.0], [5.0, 25.0]]}}
    times = [KIND.compute(resolve(doc))["time_data_parallel_s"] for doc in (plan, slow)]
    assert float(times[1]) > float(times[0])


def test_ssd_offload_example_fits_only_with_offload():
    """SSDTrain's point (Wu et al. 2024): offloaded activations free enough memory for a larger micro-batch."""
    example = next(e for e in EXAMPLES if "SSD" in e["name"])["inputs"]
    with_offload = KIND.evaluate(resolve(example))
    without = KIND.evaluate(resolve(example | {"activation_offload": "none"}))
    assert with_offload.feasible and not without.feasible


def test_intra_node_link_defaults_to_the_accelerators_own():
    """A100 presets name NVLink 3 and H100 NVLink 4 (intra_node_link_id); an explicit link overrides it."""
    assert resolve(BASE).cluster.intra_node_link.id == "nvlink3"
    h100 = BASE | {"cluster": {"nodes": 2, "accelerator": "h100-sxm"}}
    assert resolve(h100).cluster.intra_node_link.id == "nvlink4"
    pcie = BASE | {"cluster": {"nodes": 2, "intra_node_link": "pcie4"}}
    assert resolve(pcie).cluster.intra_node_link.id == "pcie4"


MOE_PLAN = {
    "cluster": {"accelerator": "h100-sxm", "intra_node_link": "nvlink4", "inter_node_link": "ib-ndr", "nodes": 8},
    "global_batch_size": 256,
    "micro_batch_size": 1,
    "sequence_length_tokens": 4096,
    "data_parallel": 16,
    "pipeline_parallel": 4,
    "zero_stage": 1,
    "flash_attention": True,
}


@pytest.mark.parametrize("model", ["mixtral-8x7b", "deepseek-v3", "qwen3-235b-a22b"])
def test_moe_latent_attention_and_odd_head_models_are_trained_with_expert_parallelism(model):
    """MoE (Mixtral), MLA (DeepSeek-V3) and 128-wide heads (Qwen3) resolve and evaluate; EP 8 prices all-to-alls."""
    layers = {"mixtral-8x7b": 4, "deepseek-v3": 1, "qwen3-235b-a22b": 2}[model]
    inputs = MOE_PLAN | {"model": model, "pipeline_parallel": layers, "data_parallel": 64 // layers}
    values = KIND.compute(resolve(inputs | {"expert_parallel": 8}))
    assert values["reasons"] in (0.0, float(1 << 16))  # well formed (a 671B model may not fit 64 GPUs)
    assert values["time_expert_all_to_all_s"] > 0 and values["memory_expert_states_bytes"] > 0
    assert KIND.compute(resolve(inputs))["time_expert_all_to_all_s"] == 0.0  # EP 1: no all-to-all


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"model": "mixtral-8x7b", "expert_parallel": 3}, "expert_parallel"),  # 3 does not divide 8 experts
        ({"model": "mixtral-8x7b", "expert_parallel": 32}, "expert_parallel"),  # 32 does not divide d*n = 16
        ({"model": "llama2-7b", "expert_parallel": 2}, "expert_parallel"),  # a dense model has no experts
    ],
)
def test_impossible_expert_parallel_plans_are_refused_naming_the_field(changes, field):
    with pytest.raises(InputError) as refused:
        resolve(MOE_PLAN | changes)
    assert refused.value.field == field


def test_the_breakdown_charts_written_as_dicts_are_what_plotly_would_make():
    """The memory and time charts are written as plain dicts (they are in every quick answer): plotly's
    own validator takes each and gives back exactly the same figure."""
    import plotly.graph_objects as go

    from dse.scenarios.kinds.training.charts import memory_breakdown_chart, time_breakdown_chart

    memory = memory_breakdown_chart([("weights", 3.5 * 2**30), ("activations", 61.25 * 2**30)], 80 * 2**30)
    time = time_breakdown_chart([("compute", 1.25), ("pipeline bubble", 0.5), ("data parallel", 0.125)])
    for figure in (memory, time):
        assert go.Figure(figure).to_plotly_json() == figure
    assert [trace["y"] for trace in memory["data"]] == [[3.5], [61.25]]
    assert memory["layout"]["shapes"][0]["y0"] == 80.0 and memory["layout"]["height"] == 360
    assert [trace["x"] for trace in time["data"]] == [[1.25], [0.5], [0.125]] and time["layout"]["height"] == 300
    # A component that takes no time (a dense model's EP all-to-alls) gets no bar and no legend entry.
    dense = time_breakdown_chart([("compute", 1.25), ("EP all-to-alls (MoE)", 0.0)])
    assert [trace["name"] for trace in dense["data"]] == ["compute"]
    many = [(f"part {n}", 0.0 if n % 2 else 1.0) for n in range(13)]  # as tall as with every part drawn
    assert time_breakdown_chart(many)["layout"]["height"] == 110 + 21 * 13


def test_deepseek_dispatch_and_dualpipe_inputs_reach_the_engine():
    """Across 2 nodes (EP 16), deduplicated node-limited fp8 dispatch sends fewer bytes; DualPipe shrinks the bubble."""
    inputs = MOE_PLAN | {
        "model": "mixtral-8x7b",
        "expert_parallel": 8,
        "cluster": MOE_PLAN["cluster"] | {"gpus_per_node": 4, "nodes": 16},
    }
    plain = KIND.compute(resolve(inputs))
    deepseek = KIND.compute(
        resolve(
            inputs
            | {"expert_node_limit": 1, "expert_dispatch_dedup": True, "expert_dispatch_fp8": True, "dualpipe": True}
        )
    )
    assert deepseek["expert_all_to_all_bytes_per_layer"] < plain["expert_all_to_all_bytes_per_layer"]
    assert deepseek["time_bubble_s"] < plain["time_bubble_s"]


def test_dualpipe_on_an_interleaved_plan_is_refused_naming_the_field():
    with pytest.raises(InputError) as refused:
        resolve(
            MOE_PLAN
            | {"model": "mixtral-8x7b", "dualpipe": True, "pipeline_schedule": "interleaved", "virtual_stages": 2}
        )
    assert refused.value.field == "dualpipe"
