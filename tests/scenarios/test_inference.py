"""The inference kind end to end: examples validate and evaluate, sweeps, invalid inputs name their field."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from dse.catalog import default_catalog
from dse.engines.inference import PIM_SYSTEMS
from dse.engines.transformer import expected_distinct_experts
from dse.scenarios.base import InputError
from dse.scenarios.kinds.inference.metrics import MOE_METRICS, NEUPIMS_METRICS, PIM_METRICS
from dse.scenarios.registry import KINDS
from dse.scenarios.sweep import SweepAxis, run_sweep

KIND = KINDS["inference"]


@pytest.mark.parametrize("index", range(len(KIND.examples())))
def test_examples_evaluate_with_finite_metrics_tables_and_figures(index: int) -> None:
    doc = KIND.examples()[index]
    assert doc["schema_version"] == 1 and doc["kind"] == "inference"
    resolved = KIND.resolve(KIND.inputs_model.model_validate(doc["inputs"]), default_catalog())
    result = KIND.evaluate(resolved)
    assert result.feasible
    assert {m.key for m in result.metrics} == set(KIND.metric_specs)
    moe = resolved.model.is_moe
    # The mixture-of-experts metrics are defined for an MoE model only (undefined, None, for a dense one), the
    # PIM busy fraction for a PIM system only, the sub-batch share for NeuPIMs only (never "PIM busy 0 %").
    undefined = (
        (set() if moe else set(MOE_METRICS))
        | (set() if resolved.system in PIM_SYSTEMS else set(PIM_METRICS))
        | (set() if resolved.system == "neupims" else set(NEUPIMS_METRICS))
    )
    assert {m.key for m in result.metrics if m.value is None} == undefined
    assert all(math.isfinite(m.value) for m in result.metrics if m.key not in undefined)
    charts = {"throughput_vs_batch", "time_breakdown", "roofline"} | ({"moe_experts_vs_batch"} if moe else set())
    assert {f.key for f in result.charts} == charts
    assert ("moe" in {t.key for t in result.tables}) == moe
    # The NeuPIMs paper's figures are context for a PIM system only, never beside a GPU- or NPU-only run.
    assert bool(result.published) == (resolved.system in PIM_SYSTEMS)
    # every op of a decoder layer, the expert dispatch and combine with data-parallel attention, and the rope and
    # KV-cache write kernels of a stack that launches them (rope for a rotary model only)
    names = [row[0] for row in result.tables[0].rows]
    separate = {"kv_cache_write", "rope"} if resolved.model.position_embedding == "rope" else {"kv_cache_write"}
    assert set(names) & {"rope", "kv_cache_write"} in (set(), separate)
    expected = 12 + (2 if resolved.expert_exchange else 0) + len(set(names) & separate)
    assert result.tables[0].key == "ops" and len(names) == expected
    assert json.loads(result.model_dump_json())["kind"] == "inference"  # figures and tables are plain JSON
    # No op above the roof: an op priced inside another kernel (softmax in fused attention: FLOPs, no time) has
    # no rate of its own, so it is named in the chart's note and its bound says so, never drawn at FLOP / 0.
    roofline = next(f.figure for f in result.charts if f.key == "roofline")
    peak_tflops = resolved.accelerator.peak_for(resolved.activation_dtype) / 1e12
    points = [t for t in roofline["data"] if t["name"] != "roof"]
    assert all(y <= peak_tflops * (1 + 1e-9) for t in points for y in t["y"])
    fused = [row[0] for row in result.tables[0].rows if row[-1] == "fused into another kernel"]
    assert all(row[6] == 0.0 for row in result.tables[0].rows if row[0] in fused)
    if fused:
        note = roofline["layout"]["annotations"][0]["text"].split("<br>")
        assert all(f"{name} (inside another kernel)" in note for name in fused)
    assert not {t["name"] for t in points} & set(fused)
    # The time breakdown shows no unit that takes no time (the links of a single device: zero-length bars).
    breakdown = next(f.figure for f in result.charts if f.key == "time_breakdown")
    for trace in breakdown["data"]:
        assert trace["name"] == "busy per unit" or any(x > 0 for x in trace["x"]), trace["name"]
    busy = next(t for t in breakdown["data"] if t["name"] == "busy per unit")
    assert all(x > 0 for x in busy["x"])


def test_sweep_over_batch_and_context_returns_arrays() -> None:
    inputs = KIND.inputs_model.model_validate(
        {"model": "llama2-7b", "system": "gpu_only", "accelerator": "h100-sxm", "memory": None}
    )
    axes = [SweepAxis(path="batch_size", values=[1, 8, 64]), SweepAxis(path="prompt_tokens", values=[128, 1024])]
    result = run_sweep(KIND, inputs, default_catalog(), axes)
    assert result.shape == [3, 2]
    throughput = result.metrics["throughput_tokens_per_s"]
    assert all(v is not None and v > 0 for row in throughput for v in row)
    assert throughput[2][0] > throughput[0][0]  # batching raises throughput
    # A GPU-only system has no PIM: its PIM busy fraction is undefined at every point, not 0 %.
    assert result.metrics["pim_busy_fraction"] == [[None, None]] * 3


def test_sweep_over_a_pim_parameter() -> None:
    """Any numeric input by its path: more PIM multipliers per bank make NeuPIMs' attention faster."""
    inputs = KIND.inputs_model.model_validate(KIND.examples()[0]["inputs"])
    axes = [SweepAxis(path="memory.pim_multipliers_per_bank", values=[4, 16, 64])]
    attention = run_sweep(KIND, inputs, default_catalog(), axes).metrics["attention_time_s"]
    assert attention[0] > attention[1] > attention[2]


def _error(**inputs: Any) -> InputError:
    with pytest.raises(InputError) as info:
        KIND.resolve(KIND.inputs_model.model_validate(inputs), default_catalog())
    return info.value


def test_invalid_inputs_name_the_field() -> None:
    assert _error(model="gpt3-7b", tensor_parallel=3).field == "tensor_parallel"
    assert _error(model="gpt3-7b", pipeline_parallel=5).field == "pipeline_parallel"
    assert _error(system="gpu_only", accelerator="neupims-npu").field == "accelerator"
    assert _error(system="neupims", memory="samsung-hbm-pim").field == "memory"
    assert _error(system="npu_pim_blocked", memory="hbm3-stack").field == "memory"
    assert _error(model="gpt3-7b", prompt_tokens=2000, output_tokens=100).field == "output_tokens"
    assert _error(model="no-such-model").field == "model"


def test_software_stack_defaults_shows_in_notes_and_null_is_the_roofline() -> None:
    base = {
        "model": "llama2-7b",
        "system": "gpu_only",
        "accelerator": "a100-80gb",
        "memory": None,
        "batch_size": 1,
        "prompt_tokens": 128,
        "output_tokens": 128,
    }
    catalog = default_catalog()
    default = KIND.resolve(KIND.inputs_model.model_validate(base), catalog)
    assert default.software_stack is not None and default.software_stack.id == "vllm-cuda-graphs"
    result = KIND.evaluate(default)
    assert any("software stack vllm-cuda-graphs" in note for note in result.notes)
    roofline = KIND.resolve(KIND.inputs_model.model_validate({**base, "software_stack": None}), catalog)
    assert roofline.software_stack is None
    eager = KIND.resolve(KIND.inputs_model.model_validate({**base, "software_stack": "pytorch-eager"}), catalog)
    times = [float(KIND.compute(r)["time_per_output_token_s"]) for r in (default, roofline, eager)]
    assert len(set(times)) == 3 and times[2] > times[0]  # host overheads make eager slower


def test_sweep_over_the_stack_launch_cost() -> None:
    inputs = KIND.inputs_model.model_validate(
        {"model": "llama2-7b", "system": "gpu_only", "accelerator": "h100-sxm", "memory": None}
    )
    axes = [SweepAxis(path="software_stack.elementwise_launch_overhead_s", values=[1e-6, 3e-6, 30e-6])]
    result = run_sweep(KIND, inputs, default_catalog(), axes)
    tpot = result.metrics["time_per_output_token_s"]
    assert tpot[0] < tpot[1] < tpot[2]


def test_moe_metrics_follow_their_formulas_exactly() -> None:
    """Mixtral 8x7B (E = 8, k = 2, 32 MoE layers, swiglu experts of 14,336 on 4,096) at batch 32, TP2, fp8."""
    inputs = {
        "model": "mixtral-8x7b",
        "system": "gpu_only",
        "accelerator": "h100-sxm",
        "memory": None,
        "batch_size": 32,
        "tensor_parallel": 2,
        "weight_dtype": "fp8",
    }
    resolved = KIND.resolve(KIND.inputs_model.model_validate(inputs), default_catalog())
    metrics = {m.key: m for m in KIND.evaluate(resolved).metrics}
    expert = 3 * 4096 * 14336  # gate, up and down matrices of one expert
    touched = 8 * (1 - (1 - 2 / 8) ** 32)
    assert metrics["moe_experts_touched_per_step"].value == pytest.approx(touched, rel=1e-12)
    assert metrics["moe_expert_bytes_read_per_step"].value == pytest.approx(32 * touched * expert * 1 / 2, rel=1e-12)
    assert metrics["moe_expert_bytes_stored"].value == pytest.approx(32 * 8 * expert / 2, rel=1e-12)
    total = metrics["total_parameters"].value
    assert metrics["activated_parameters"].value == pytest.approx(total - 32 * (8 - 2) * expert, rel=1e-12)
    assert metrics["moe_experts_touched_per_step"].terms["E"] == 8.0
    # The sweep gets the same numbers, one per batch.
    axes = [SweepAxis(path="batch_size", values=[1, 4, 64])]
    swept = run_sweep(KIND, KIND.inputs_model.model_validate(inputs), default_catalog(), axes)
    assert swept.metrics["moe_experts_touched_per_step"] == pytest.approx(
        [float(expected_distinct_experts(8, 2, b)) for b in (1, 4, 64)], rel=1e-12
    )


def test_impossible_expert_parallel_is_refused_naming_the_field() -> None:
    gpu = {"system": "gpu_only", "accelerator": "h100-sxm", "memory": None}
    assert _error(model="llama2-7b", tensor_parallel=2, expert_parallel=2, **gpu).field == "expert_parallel"  # dense
    assert _error(model="mixtral-8x7b", tensor_parallel=8, expert_parallel=16, **gpu).field == "expert_parallel"
    assert _error(model="mixtral-8x7b", tensor_parallel=2, expert_parallel=4, **gpu).field == "expert_parallel"
    assert _error(model="deepseek-v3", tensor_parallel=8, expert_parallel=3, **gpu).field == "expert_parallel"


def test_expert_parallel_metrics_follow_their_formulas_exactly() -> None:
    """Mixtral 8x22B on 8 H100s, batch 64: EP 8 holds one whole expert per GPU and sees 64 * 2 * 1.25 / 8 pairs."""
    inputs = {
        "model": "mixtral-8x22b",
        "system": "gpu_only",
        "accelerator": "h100-sxm",
        "memory": None,
        "batch_size": 64,
        "tensor_parallel": 8,
        "weight_dtype": "fp8",
    }

    def metrics(**extra: Any) -> dict[str, Any]:
        resolved = KIND.resolve(KIND.inputs_model.model_validate({**inputs, **extra}), default_catalog())
        return {m.key: m.value for m in KIND.evaluate(resolved).metrics}

    tp, ep = metrics(), metrics(expert_parallel=8, expert_load_imbalance=1.25)
    assert (tp["moe_experts_per_device"], ep["moe_experts_per_device"]) == (8.0, 1.0)
    assert (tp["moe_routed_tokens_per_step"], ep["moe_routed_tokens_per_step"]) == (128.0, 64 * 2 * 1.25 / 8)
    # the same expert bytes stored and read per GPU (E/EP whole experts = E experts at 1/TP)
    for key in ("moe_expert_bytes_stored", "moe_expert_bytes_read_per_step", "weights_bytes_per_device"):
        assert ep[key] == pytest.approx(tp[key], rel=1e-12)
    assert ep["time_per_output_token_s"] != tp["time_per_output_token_s"]
    # an imbalance without EP is ignored (every GPU sees every token-expert pair)
    assert metrics(expert_load_imbalance=2.0) == tp


def test_data_parallel_attention_needs_an_moe_model_on_gpus_with_ep_over_every_gpu() -> None:
    catalog = default_catalog()
    base = {"model": "deepseek-v3", "system": "gpu_only", "accelerator": "h800-sxm", "memory": None}
    resolved = KIND.resolve(
        KIND.inputs_model.model_validate({**base, "attention_data_parallel": 16, "expert_parallel": 16}), catalog
    )
    exchange = resolved.expert_exchange
    assert exchange is not None and exchange.nvlink_bandwidth_bytes_per_s == 200e9  # nvlink4-h800
    assert exchange.network_bandwidth_bytes_per_s == 50e9 and exchange.ranks_per_node == 8.0  # ib-ndr
    assert (exchange.dispatch_bytes_per_element, exchange.combine_bytes_per_element) == (2.0, 2.0)  # fp16 activations
    for bad, field in (
        ({"model": "llama2-7b", "attention_data_parallel": 2, "expert_parallel": 2}, "attention_data_parallel"),
        ({"attention_data_parallel": 4, "expert_parallel": 1}, "expert_parallel"),
        ({"attention_data_parallel": 4, "expert_parallel": 4, "pipeline_parallel": 61}, "attention_data_parallel"),
        ({"attention_data_parallel": 4, "expert_parallel": 4, "network": "no-such-link"}, "network"),
    ):
        with pytest.raises(InputError) as info:
            KIND.resolve(KIND.inputs_model.model_validate({**base, **bad}), catalog)
        assert info.value.field == field


@pytest.mark.parametrize("kind_name", ["inference", "serving"])
@pytest.mark.parametrize("dp", [1, 2, 16])
def test_the_dp_attention_inputs_apply_exactly_where_the_all_to_alls_are_built(kind_name: str, dp: int) -> None:
    """The form disables gpus_per_node, network, two_batch_overlap and expert_node_limit by the same rule under
    which exchange_of reads them (DP attention of 2 or more): greyed out means ignored, and only then."""
    from dse.scenarios.base import condition_holds
    from dse.scenarios.shared.expert_exchange import exchange_of

    kind = KINDS[kind_name]
    properties = kind.inputs_model.model_json_schema()["properties"]
    inputs = kind.inputs_model.model_validate({"attention_data_parallel": dp})
    built = exchange_of(inputs, default_catalog(), default_catalog().get("accelerators", "h800-sxm"), 2.0) is not None
    for field in ("gpus_per_node", "network", "two_batch_overlap", "expert_node_limit"):
        rule = properties[field]["x-applies-when"]["when"]
        assert list(rule) == ["attention_data_parallel"]
        assert condition_holds(rule["attention_data_parallel"], dp) is built is (dp >= 2)
