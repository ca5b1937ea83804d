"""The five questions users ask, each answered by a question-named example of the right kind.

Each test evaluates the example and checks the answer's key numbers where they come from an exact
formula (bytes of a collective, a bisection's bracket, a ratio of two metrics) and otherwise the
structure that must hold (monotonic growth, a superset search never doing worse). Speed is
measured in benchmarks/questions.py, not here.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from dse.catalog import default_catalog
from dse.engines.temporal_batching import dataset_classes, discontinuity_rate
from dse.engines.training import sequence_parallel as sequence_parallel_engine
from dse.scenarios.kinds.training import studies as training_studies
from dse.scenarios.registry import KINDS

CATALOG = default_catalog()


def question(kind: str, starts: str) -> dict:
    """The kind's example whose name asks the question; it must be the first or second example."""
    examples = KINDS[kind].examples()
    index = next(i for i, e in enumerate(examples) if e["name"].startswith(starts))
    assert index <= 2 and examples[index]["name"].split("(")[0].rstrip().endswith("?")
    return examples[index]


def evaluate(kind: str, doc: dict):
    k = KINDS[kind]
    resolved = k.resolve(k.inputs_model.model_validate(doc["inputs"]), CATALOG)
    return resolved, k.evaluate(resolved)


def table(result, key: str):
    return next(t for t in result.tables if t.key == key)


def metric(result, key: str) -> float:
    return next(m.value for m in result.metrics if m.key == key)


# -- 1. NeuPIMs vs H100, GPT-3 30B, batch 512 ---------------------------------------------------------


def test_q1_neupims_vs_h100_names_the_h100_and_states_the_interleaving_crossover():
    """NeuPIMs' GPT-3 30B setting is TP4 PP2 (casys-kaist/NeuPIMs configs/model_configs/gpt3-30B.json);
    at batch 512 the Alpaca-like trace fits the 32 GB devices. The verdict's ratio is the systems
    table's throughput ratio (exact); the crossover note names the first batch of the interleaving table
    whose gain exceeds 1 (exact)."""
    doc = question("inference", "Does NeuPIMs beat an H100")
    assert doc["inputs"]["tensor_parallel"] == 4 and doc["inputs"]["pipeline_parallel"] == 2
    _, result = evaluate("inference", doc)
    assert result.feasible and metric(result, "max_batch_that_fits") >= 512
    rows = {row[0]: row for row in table(result, "systems").rows}
    assert rows["GPU-only"][1] == "h100-sxm"
    names = [
        trace["name"] for trace in next(f for f in result.charts if f.key == "throughput_vs_batch").figure["data"]
    ]
    assert "GPU-only (h100-sxm)" in names
    ratio = rows["NeuPIMs"][2] / rows["GPU-only"][2]
    verdict = next(n for n in result.notes if "GPU-only on h100-sxm" in n)
    assert f"({ratio:.2f}x)" in verdict
    gains = table(result, "interleaving").rows
    first = next(row[0] for row in gains if row[3] > 1.0)
    assert f"first beats no interleaving at batch {first:.0f}" in " ".join(result.notes)
    assert all(row[3] > 1.0 for row in gains if row[0] >= first)  # once it pays, it keeps paying here


def test_q1_sharegpt_lengths_do_not_fit_batch_512_on_32_gb():
    """The reason the example uses Alpaca: with ShareGPT lengths (median 216, mean 300) the KV cache
    of 512 requests exceeds NeuPIMs' 32 GB per device at TP4 PP2."""
    doc = question("inference", "Does NeuPIMs beat an H100")
    inputs = {**doc["inputs"], "request_lengths": "sharegpt-neupims"}
    _, result = evaluate("inference", {**doc, "inputs": inputs})
    assert not result.feasible and metric(result, "max_batch_that_fits") < 512


# -- 2. Plan search: 70B at 32K on 512 GPUs in two pods, and SSD offload ------------------------------


def test_q2_plan_search_finds_fitting_plans_on_all_512_gpus():
    doc = question("plan_search", "Which data/tensor/pipeline/sequence-parallel plan")
    resolved, result = evaluate("plan_search", doc)
    assert resolved.cluster.gpus == 512 and resolved.sequence_length_tokens == 32768
    assert resolved.model.id in ("llama2-70b", "llama3-70b")
    assert resolved.cluster.node_pair_bandwidth_bytes_per_s is not None  # the two pods, measured
    assert result.feasible and metric(result, "fitting_plans") > 0
    assert metric(result, "best_memory_total_bytes") <= resolved.cluster.accelerator.memory_capacity_bytes
    assert any(n.startswith("Fastest plan that fits") for n in result.notes)


def test_q2_ssd_offload_never_does_worse_than_the_search_without_it():
    """Offload allowed is a superset of offload off: at least as many plans fit and the best is no slower."""
    doc = question("plan_search", "What if activations go to NVMe SSDs?")
    _, result = evaluate("plan_search", doc)
    with_ssd, without = table(result, "offload_effect").rows
    assert with_ssd[1] >= without[1] > 0
    assert with_ssd[2] <= without[2] * (1 + 1e-12)
    assert any(n.startswith("Activation offload to SSDs") for n in result.notes)


# -- 3. Ring vs Ulysses as the sequence grows --------------------------------------------------------


def test_q3_ring_and_ulysses_bytes_per_layer_follow_their_formulas(monkeypatch):
    """Per GPU and layer in forward (bf16, 2 bytes): Ring sends its K and V chunks N-1 times,
    2*(N-1)*b*(s/N)*a_kv*d_h elements (Li et al. 2021); Ulysses all-to-alls Q, K, V and the output,
    4*(N-1)/N * b*(s/N)*h elements (Jacobs et al. 2023). Exact; the comparison is ONE engine call."""
    doc = question("training", "What do Ring Self-Attention and DeepSpeed-Ulysses")
    k = KINDS["training"]
    resolved = k.resolve(k.inputs_model.model_validate(doc["inputs"]), CATALOG)
    calls = []
    real = sequence_parallel_engine.evaluate_plans

    def counting(**kwargs):
        calls.append(1)
        return real(**kwargs)

    monkeypatch.setattr(sequence_parallel_engine, "evaluate_plans", counting)
    comparison = training_studies.sequence_parallel_comparison(resolved)
    assert len(calls) == 1
    n, b = comparison.degree, resolved.micro_batch_size
    spec = resolved.model
    d_h = spec.hidden_size / spec.num_heads
    s = np.asarray(comparison.sequence_lengths, dtype=float)
    ring = 2 * (n - 1) * b * (s / n) * spec.num_kv_heads * d_h * 2
    ulysses = 4 * (n - 1) / n * b * (s / n) * spec.hidden_size * 2
    np.testing.assert_allclose(comparison.series["ring"]["sp_bytes"], ring, rtol=1e-12)
    np.testing.assert_allclose(comparison.series["ulysses"]["sp_bytes"], ulysses, rtol=1e-12)


def test_q3_costs_grow_with_the_sequence_and_splitting_it_saves_memory():
    doc = question("training", "What do Ring Self-Attention and DeepSpeed-Ulysses")
    resolved, result = evaluate("training", doc)
    comparison = training_studies.sequence_parallel_comparison(resolved)
    for kind in ("none", "megatron", "ring", "ulysses"):
        values = comparison.series[kind]
        assert np.all(np.diff(values["iteration_s"]) > 0)
        assert np.all(np.diff(values["activation_bytes"]) > 0)
    for split in ("ring", "ulysses"):  # s/N tokens per GPU: less activation memory than the whole sequence
        assert np.all(
            np.asarray(comparison.series[split]["activation_bytes"])
            < np.asarray(comparison.series["none"]["activation_bytes"])
        )
    assert {f.key for f in result.charts} >= {"sequence_parallel"}
    rows = table(result, "sequence_parallel").rows
    assert len(rows) == 4 * len(comparison.sequence_lengths)


# -- 4. PPO samples/s vs minibatch; temporal batch vs staleness --------------------------------------


def test_q4_ppo_samples_per_s_do_not_fall_as_the_minibatch_grows():
    """The rollout does not depend on the minibatch; a larger one means fewer optimizer steps and
    all-reduces per epoch, so samples/s cannot fall."""
    doc = question("rl_scaling", "How many samples/s does PPO reach on 8 GPUs")
    resolved, result = evaluate("rl_scaling", doc)
    assert resolved.num_gpus == 8
    rates = [row[1] for row in table(result, "samples_vs_minibatch").rows]
    assert len(rates) >= 4 and all(b >= a * (1 - 1e-12) for a, b in itertools.pairwise(rates))
    assert any(n.startswith("On 8 GPUs PPO reaches") for n in result.notes)
    assert {f.key for f in result.charts} >= {"samples_vs_minibatch"}


@pytest.mark.parametrize("threshold", [0.2, 0.5])
def test_q4_largest_temporal_batch_under_the_threshold_is_bracketed_exactly(threshold):
    """rate(b*) <= threshold < rate(b* + 1), by the engine's closed-form rate (PRES, ICLR'24 setting)."""
    doc = question("temporal_batching", "How large can the temporal batch")
    inputs = {**doc["inputs"], "max_discontinuity_rate": threshold}
    resolved, result = evaluate("temporal_batching", {**doc, "inputs": inputs})
    best = metric(result, "largest_batch_under_threshold")
    source, destination = dataset_classes(resolved.dataset, exponent=resolved.zipf_exponent_override)
    assert discontinuity_rate(batch_events=best, source=source, destination=destination) <= threshold
    assert discontinuity_rate(batch_events=best + 1, source=source, destination=destination) > threshold
    assert f"{best:,.0f} events" in result.notes[0]


# -- 5. APTP at batch 16, budget 0.66 ----------------------------------------------------------------


def test_q5_aptp_note_states_images_per_s_and_latency_against_the_three_others():
    doc = question("pruning", "What does a 0.66 compute budget buy")
    resolved, result = evaluate("pruning", doc)
    assert resolved.batch_size == 16 and resolved.budget_ratio == 0.66 and resolved.pipeline.id == "sd21"
    assert result.feasible and metric(result, "mean_resource_ratio") <= 0.66
    note = result.notes[0]
    for key in ("aptp_images_per_s", "full_images_per_s", "static_images_per_s", "dynamic_images_per_s"):
        assert f"{metric(result, key):.2f} images/s" in note
    ratios = [float(x) for x in re.findall(r"\(([\d.]+)x APTP's", note)]
    aptp = metric(result, "aptp_latency_s")
    expected = [metric(result, k) / aptp for k in ("full_latency_s", "static_latency_s", "dynamic_latency_s")]
    np.testing.assert_allclose(ratios, expected, atol=0.005)  # printed to 2 decimals
