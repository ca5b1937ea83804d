"""The numbers the docs quote, generated from what the engines give now.

    python -m dse.docs           rewrites every generated block in README.md and docs/*.md
    python -m dse.docs --check   exits 1 (naming the blocks) when a file differs from what it would write

A generated block sits between two HTML comments, invisible on GitHub:

    <!-- generated: questions.q1-answer (python -m dse.docs; edit the words in backend/dse/docs.py) -->
    ...text written by BLOCKS["questions.q1-answer"]...
    <!-- end generated -->

Each block's words live below, in the function that writes it; its numbers come from three places only:
- the published-figure records (every kind's `published_figures()`, read as the Validation page reads
  them through `dse.services.validation`), selected by record key;
- the kinds' examples evaluated through the public document path
  (`evaluate_document(parse_document(doc), catalog)`), read by metric, table and note key;
- benchmarks/results.json (the last `python -m benchmarks.run`), for every speed a doc quotes.
The generators hold no expected values: whatever the engines give is written, and words that depend on
a verdict (wins / loses, within / outside) are chosen from the numbers. Published figures and inputs
stay literal in the docs. tests/test_docs.py fails when a doc differs from what this module writes, so
a quoted engine number cannot go stale: after an engine change, run `python -m dse.docs` and commit.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from dse.catalog import default_catalog
from dse.scenarios.documents import evaluate_document, parse_document
from dse.scenarios.registry import KINDS

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
RESULTS = ROOT / "benchmarks" / "results.json"
BEGIN = re.compile(r"<!-- generated: (?P<name>[\w.-]+) .*?-->\n")
END = "<!-- end generated -->"
MARKER_HINT = "(python -m dse.docs; edit the words in backend/dse/docs.py)"

# -- reading an evaluation by key --------------------------------------------------------------------


class Answer:
    """One evaluated example: metrics, tables (rows as dicts by column key) and notes, read by key."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.result = evaluate_document(parse_document(document), default_catalog())

    def metric(self, key: str) -> Any:
        for metric in self.result.metrics:
            if metric.key == key:
                return metric.value
        raise KeyError(f"{self.document['kind']} has no metric {key!r}")

    def table(self, key: str) -> list[dict[str, Any]]:
        for table in self.result.tables:
            if table.key == key:
                keys = [column.key for column in table.columns]
                return [dict(zip(keys, row, strict=True)) for row in table.rows]
        raise KeyError(f"{self.document['kind']} has no table {key!r}")

    def note(self, pattern: str) -> re.Match[str]:
        """The first match of `pattern` in the notes (for the few numbers only a note states)."""
        for note in self.result.notes:
            found = re.search(pattern, note)
            if found:
                return found
        raise KeyError(f"no note of {self.document['kind']} matches {pattern!r}")


def example(kind: str, starts: str) -> dict[str, Any]:
    """The kind's example whose name starts with `starts`."""
    for document in KINDS[kind].examples():
        if document["name"].startswith(starts):
            return dict(document)
    raise KeyError(f"{kind} has no example starting {starts!r}")


@cache
def answer(kind: str, starts: str, **inputs: Any) -> Answer:
    """The example evaluated, with `inputs` changed."""
    document = example(kind, starts)
    return Answer({**document, "inputs": {**document["inputs"], **inputs}})


def wrap(text: str, width: int = 108) -> str:
    """Prose refilled to `width` columns, paragraph by paragraph (blank lines kept)."""
    import textwrap

    paragraphs = text.strip("\n").split("\n\n")
    filled = [
        textwrap.fill(" ".join(p.split()), width, break_on_hyphens=False, break_long_words=False) for p in paragraphs
    ]
    return "\n\n".join(filled) + "\n"


def n0(value: float) -> str:
    return f"{value:,.0f}"


def tokens_k(length: float) -> str:
    return f"{length / 1024:.0f}K"


# -- docs/questions.md -------------------------------------------------------------------------------

Q1 = ("inference", "Does NeuPIMs beat an H100")
Q2 = ("plan_search", "Which data/tensor/pipeline/sequence-parallel plan")
Q2_SSD = ("plan_search", "What if activations go to NVMe SSDs?")
Q3 = ("training", "What do Ring Self-Attention and DeepSpeed-Ulysses")
Q4_PPO = ("rl_scaling", "How many samples/s does PPO reach on 8 GPUs")
Q4_TEMPORAL = ("temporal_batching", "How large can the temporal batch")
Q5 = ("pruning", "What does a 0.66 compute budget buy")
QUESTIONS = [
    (1, "`/k/inference`", [(Q1, "first")]),
    (2, "`/k/plan_search`", [(Q2, "second"), (Q2_SSD, "third, its twin")]),
    (3, "`/k/training`", [(Q3, "second")]),
    (4, "`/k/rl_scaling`, `/k/temporal_batching`", [(Q4_PPO, "first"), (Q4_TEMPORAL, "first")]),
    (5, "`/k/pruning`", [(Q5, "first")]),
]


def _evaluate_seconds() -> dict[str, float]:
    results: dict[str, Any] = json.loads(RESULTS.read_text())
    seconds: dict[str, float] = results["questions"]["evaluate_s"]
    return seconds


def _seconds(value: float) -> str:
    return "< 0.01 s" if value < 0.01 else f"{value:.2f} s"


def questions_table() -> str:
    seconds = _evaluate_seconds()
    lines = [
        "| # | Kind page | Example | Evaluate time (this machine, one core) |",
        "|---|-----------|---------|------|",
    ]
    for number, page, examples in QUESTIONS:
        names, times = [], []
        for (kind, starts), position in examples:
            name = example(kind, starts)["name"]
            names.append(f"{name.split(' (')[0]} ({position})")
            times.append(seconds[f"{kind}: {name}"])
        shown = [_seconds(t) for t in times]
        time_text = f"{shown[0]} each" if len(set(shown)) == 1 and len(shown) > 1 else "; ".join(shown)
        lines.append(f"| {number} | {page} | {'; '.join(names)} | {time_text} |")
    return "\n".join(lines) + "\n"


def q1_setting() -> str:
    fits = answer(*Q1)
    sharegpt = answer(*Q1, request_lengths="sharegpt-neupims")
    capacity = fits.note(r"of ([\d.]+) GiB")
    return (
        "**Setting.** The NeuPIMs simulator's own 30B configuration: hidden 7168, 56 heads, 48 layers, TP4\n"
        "PP2, i.e. 8 devices of 32 GiB (casys-kaist/NeuPIMs `configs/model_configs/gpt3-30B.json`). With\n"
        "ShareGPT-like lengths (median 216, mean 300 tokens) the KV cache of 512 requests does not fit those\n"
        f"32 GiB: the largest batch that fits is {n0(sharegpt.metric('max_batch_that_fits'))} "
        f"({sharegpt.metric('memory_footprint_bytes_per_device') / 2**30:.1f} GiB needed per device). The example "
        "therefore uses\nthe paper's other workload, Alpaca-like requests (mean 78 tokens), where batch 512 fits\n"
        f"({fits.metric('memory_footprint_bytes_per_device') / 2**30:.1f} GiB of {float(capacity.group(1)):.1f} GiB; "
        f"up to {n0(fits.metric('max_batch_that_fits'))} requests). `comparison_gpu` is `h100-sxm`.\n"
    )


def _systems(result: Answer) -> dict[str, dict[str, Any]]:
    return {row["system"]: row for row in result.table("systems")}


def q1_answer() -> str:
    h100 = _systems(answer(*Q1))
    a100 = _systems(answer(*Q1, comparison_gpu="a100-80gb"))
    neupims = h100["NeuPIMs"]["throughput"]
    gains = answer(*Q1).table("interleaving")
    first = next(row for row in gains if row["gain"] > 1.0)
    at = {row["batch"]: row["gain"] for row in gains}
    verdict = "Yes" if neupims > h100["GPU-only"]["throughput"] else "No"
    beats = [name for name in ("NPU-only", "NPU+PIM (blocked)") if neupims > h100[name]["throughput"]]
    if len(beats) == 2:
        others = (
            f"NeuPIMs beats NPU-only ({n0(h100['NPU-only']['throughput'])}) and\nthe blocked NPU+PIM "
            f"({n0(h100['NPU+PIM (blocked)']['throughput'])}) at this batch."
        )
    else:  # pragma: no cover - the words for a change of verdict
        others = "NeuPIMs does not beat every NPU baseline at this batch."
    a100_verb = "wins" if neupims > a100["GPU-only"]["throughput"] else "loses"
    return (
        f"**Answer.** {verdict}. At batch 512 on 8 devices NeuPIMs decodes {n0(neupims)} tokens/s, "
        "GPU-only on 8 H100s\n"
        f"{n0(h100['GPU-only']['throughput'])} tokens/s (NeuPIMs {neupims / h100['GPU-only']['throughput']:.2f}x). "
        "Against the A100 the paper compares with (`comparison_gpu:\n"
        f"a100-80gb`) NeuPIMs {a100_verb}, {n0(neupims)} vs {n0(a100['GPU-only']['throughput'])} tokens/s "
        f"({neupims / a100['GPU-only']['throughput']:.2f}x). {others} "
        "Sub-batch interleaving (even split) first beats no\ninterleaving at batch "
        f"{first['batch']:.0f} (gain {first['gain']:.2f}x; {at[512]:.2f}x at 512, {at[1024]:.2f}x at 1024); "
        "below that, splitting the batch\nmakes each half read the weights again and costs up to half the "
        "throughput. The public simulator\nturns interleaving on at batch >= 256.\n"
    )


def q1_limits() -> str:
    nvlink4 = _systems(answer(*Q1, link_bandwidth_gb_per_s=450.0))
    neupims, gpu = nvlink4["NeuPIMs"]["throughput"], nvlink4["GPU-only"]["throughput"]
    stays = "stays" if (neupims > gpu) == (neupims > _systems(answer(*Q1))["GPU-only"]["throughput"]) else "flips"
    return (
        "**Limits.** One link bandwidth (default NVLink 3, 300 GB/s) serves every row; with 450 GB/s\n"
        f"(NVLink 4) the H100 row reaches {n0(gpu)} tokens/s and the verdict {stays} ({neupims / gpu:.2f}x).\n"
    )


SEQUENCE_PARALLEL_NAMES = {"ring": "Ring attention", "ulysses": "Ulysses", "megatron": "Megatron-SP"}
RECOMPUTE_NAMES = {"full": "full recomputation", "selective": "selective recomputation", "none": "no recomputation"}


def _plan_words(plan: dict[str, Any]) -> str:
    words = f"dp {plan['data_parallel']} x tp {plan['tensor_parallel']} x pp {plan['pipeline_parallel']}"
    if plan["sequence_parallel"] in ("ring", "ulysses"):
        name = SEQUENCE_PARALLEL_NAMES[plan["sequence_parallel"]]
        words += f" with {name} over {plan['sequence_parallel_degree']} GPUs"
    recompute = RECOMPUTE_NAMES[plan["recompute"]]
    words += f", micro-batch {plan['micro_batch_size']}, ZeRO-{plan['zero_stage']}, {recompute}"
    return words + (" and\nFlashAttention" if plan["flash_attention"] else "")


def q2_answer() -> str:
    search = answer(*Q2)
    calls = search.note(r"judged in ([\d,]+) engine calls").group(1)
    capacity = float(search.note(r"per GPU of ([\d.]+) GiB").group(1))
    best, second = search.table("top_plans")[:2]
    memory = best["memory_total_gib"]
    gap = second["iteration_time_s"] / best["iteration_time_s"] - 1
    second_name = SEQUENCE_PARALLEL_NAMES.get(second["sequence_parallel"], second["sequence_parallel"])
    return (
        f"**Answer.** {n0(search.metric('candidates'))} candidate plans judged in {calls} engine calls, "
        f"{n0(search.metric('fitting_plans'))} fit in {capacity:.0f} GiB. The fastest is\n"
        f"{_plan_words(best)}: {best['iteration_time_s']:.1f} s per iteration "
        f"({best['tokens_per_s'] / 1e3:.0f}k tokens/s, MFU {100 * best['model_flops_utilization']:.1f}%), "
        f"{memory:.1f} GiB peak per GPU ({capacity - memory:.1f} GiB to\nspare). {second_name} over "
        f"{second['sequence_parallel_degree']} GPUs is within {100 * gap:.1f}% ({second['iteration_time_s']:.2f} s).\n"
    )


def q2_with_ssds() -> str:
    with_ssd, without = answer(*Q2_SSD).table("offload_effect")
    if with_ssd["best_iteration_time_s"] >= without["best_iteration_time_s"] * (1 - 1e-9):
        speed = (
            f"the best iteration\nstays {without['best_iteration_time_s']:.1f} s: the fastest plans already fit, "
            "so the drives buy no speed here; they cut the best\nplan's peak memory"
        )
    else:  # the drives let a slightly faster plan fit
        gain = 1.0 - with_ssd["best_iteration_time_s"] / without["best_iteration_time_s"]
        speed = (
            f"the best iteration\ndrops only from {without['best_iteration_time_s']:.3f} to "
            f"{with_ssd['best_iteration_time_s']:.3f} s ({gain:.1%}), and the best\nplan's peak memory changes"
        )
    return (
        "**With SSDs.** The twin example adds 8 Samsung PM1733 drives per node and lets the search choose\n"
        f"SSDTrain's adaptive offload. Offload lets {n0(with_ssd['fitting_plans'])} plans fit instead of "
        f"{n0(without['fitting_plans'])}, but {speed} "
        f"({without['best_memory_gib']:.1f} -> {with_ssd['best_memory_gib']:.1f} GiB per GPU).\n"
    )


def q3_answer() -> str:
    result = answer(*Q3)
    length = result.document["inputs"]["sequence_length_tokens"]
    rows = result.table("sequence_parallel")
    at = {(row["variant"], row["sequence_length"]): row for row in rows}
    ring, ulysses = at["ring", length], at["ulysses", length]
    degree = ring["degree"]
    longest = max(row["sequence_length"] for row in rows)

    def fits_up_to(variant: str) -> float:
        return max(float(row["sequence_length"]) for row in rows if row["variant"] == variant and row["fits"])

    split_fit = {fits_up_to("ring"), fits_up_to("ulysses")}
    both = (
        f"both fit up to {tokens_k(split_fit.pop())} tokens"
        if len(split_fit) == 1
        else f"Ring fits up to {tokens_k(fits_up_to('ring'))} and Ulysses up to "
        f"{tokens_k(fits_up_to('ulysses'))} tokens"
    )
    return (
        f"**Answer** (at {tokens_k(length)}, per GPU, per layer and micro-batch in forward). Ring sends "
        f"{ring['sp_bytes']:,.0f} MiB\n(K and V chunks, 2(N-1)/N * b*s*h_kv elements) and takes "
        f"{ring['iteration']:.2f} s per iteration; Ulysses sends\n{ulysses['sp_bytes']:,.0f} MiB "
        f"(all-to-all of Q, K, V and output, 4(N-1)/N^2 * b*s*h elements; N/2 = {degree // 2}x less with MHA) and\n"
        f"takes {ulysses['iteration']:.2f} s. Both grow in proportion to the sequence at a fixed degree "
        f"({ring['sp_bytes']:,.0f} -> {at['ring', longest]['sp_bytes']:,.0f} MiB for Ring\nfrom {tokens_k(length)} "
        f"to {tokens_k(longest)}), both cut activations per GPU by N, and {both}; without a\nsequence split "
        f"(none / Megatron-SP with tp 1) only {tokens_k(fits_up_to('none'))} fits.\n"
    )


def q4_ppo() -> str:
    result = answer(*Q4_PPO)
    rows = result.table("samples_vs_minibatch")
    first, last = rows[0], rows[-1]
    scenario = min(rows, key=lambda row: abs(row["samples_per_s"] - result.metric("samples_per_s")))
    cpu_share = result.metric("env_stepping_s") / result.metric("iteration_s")
    return (
        "**PPO (CaRL CARLA: 8 GPUs x 16 environments, 512-step rollouts, batch 65,536).** On 8 GPUs PPO\n"
        f"reaches {n0(first['samples_per_s'])} samples/s at minibatch {n0(first['minibatch'])} and "
        f"{n0(last['samples_per_s'])} samples/s at {n0(last['minibatch'])} "
        f"(x{last['samples_per_s'] / first['samples_per_s']:.2f}); the run's minibatch\n"
        f"{n0(scenario['minibatch'])} gives {n0(scenario['samples_per_s'])}. The curve is flat because "
        f"{100 * cpu_share:.0f}% of an iteration is the simulators' CPU time: a\nlarger minibatch only shortens "
        "the update (fewer optimizer steps and all-reduces). Where: note\n"
        '"On 8 GPUs PPO reaches ..."; table `samples_vs_minibatch`; chart `samples_vs_minibatch`\n'
        "(1 to 8 GPUs, one engine call).\n"
    )


def q4_temporal() -> str:
    result = answer(*Q4_TEMPORAL)
    strict = answer(*Q4_TEMPORAL, max_discontinuity_rate=0.2)
    batch = result.document["inputs"]["temporal_batch_events"]
    largest = result.metric("largest_batch_under_threshold")
    rate = result.metric("events_per_s_at_threshold_batch")
    return (
        "**Temporal batch (TGN on Wikipedia, A100).** A new input `max_discontinuity_rate` (default 0.5):\n"
        f"the largest temporal batch whose discontinuity rate stays at or under it is {n0(largest)} events "
        f"({largest / batch:.1f}x\nTGN's {batch}), training at {n0(rate)} events/s "
        f"({rate / result.metric('events_per_s'):.2f}x the batch of {batch}); a stricter 0.2 allows "
        f"{n0(strict.metric('largest_batch_under_threshold'))} events\n"
        f"({n0(strict.metric('events_per_s_at_threshold_batch'))} events/s). The batch is exact for the closed-form "
        "rate: rate(b) <= threshold < rate(b + 1),\nfound by a vectorised bisection (it sweeps over the threshold in "
        "one call). The rate assumes events\ndrawn independently from the degree law; bursty real streams run "
        "higher.\nWhere: metrics `largest_batch_under_threshold` and `events_per_s_at_threshold_batch`; the first "
        "note;\nchart `discontinuity_vs_batch` (threshold line and a marker at that batch).\n"
    )


def q5_answer() -> str:
    result = answer(*Q5)
    aptp = result.metric("aptp_latency_s")

    def system(name: str) -> str:
        latency = result.metric(f"{name}_latency_s")
        return f"{result.metric(f'{name}_images_per_s'):.2f} images/s, {latency:.1f} s"

    def ratio(name: str) -> str:
        return f"{result.metric(f'{name}_latency_s') / aptp:.2f}x"

    return (
        f"**Answer.** Routed mean R {result.metric('mean_resource_ratio'):.3f}. APTP serves "
        f"{result.metric('aptp_images_per_s'):.2f} images/s with a batch latency of {aptp:.1f} s; the\n"
        f"unpruned UNet {system('full')} ({ratio('full')} APTP's latency); static pruning at the same mean R\n"
        f"{system('static')} ({ratio('static')}: one batched model beats a batch split across 8 codes); dynamic\n"
        f"per-prompt pruning at batch 1 {system('dynamic')} ({ratio('dynamic')}). Where: the first note; metrics\n"
        "`*_images_per_s`, `*_latency_s`; table `throughput`; chart `throughput_vs_batch`.\n"
    )


# -- docs/inference.md -------------------------------------------------------------------------------

NEUPIMS_7B = ("inference", "NeuPIMs, GPT-3 7B TP4")  # the NeuPIMs records' setting is this example at batch 768
NEUPIMS_BATCH = 768

#: docs/inference.md's real-hardware table: (label, record keys); several keys share one line.
INFERENCE_REAL_HARDWARE: list[tuple[str, list[str]]] = [
    (
        "vidur Llama-2-7B linears, batch 1, A100 (`data/profiling/compute/a100/meta-llama/Llama-2-7b-hf/mlp.csv`)",
        ["vidur-a100-llama2-7b-1tok-tp1"],
    ),
    ("vidur same, H100 (`.../compute/h100/meta-llama/Llama-2-7b-hf/mlp.csv`)", ["vidur-h100-llama2-7b-1tok-tp1"]),
    (
        "LLMCompass GPT-3 175B, 4xA100 TP4, B 8, KV 3072 (PrincetonUniversity/LLMCompass "
        "`ae/figure5/ijkl/real_hardware/transformerAR_A100.csv`): Q+K+V (3 kernels)",
        ["llmcompass-gpt3-175b-tp4-qkv"],
    ),
    ("QK", ["llmcompass-gpt3-175b-tp4-score"]),
    ("AV", ["llmcompass-gpt3-175b-tp4-context"]),
    ("Wo", ["llmcompass-gpt3-175b-tp4-out_proj"]),
    ("W1 / W2", ["llmcompass-gpt3-175b-tp4-ffn_up", "llmcompass-gpt3-175b-tp4-ffn_down"]),
    ("softmax (the eager stack's launch-cost calibration point)", ["llmcompass-gpt3-175b-tp4-softmax"]),
    (
        "all-reduce x2 (calibration point)",
        ["llmcompass-gpt3-175b-tp4-all_reduce_attn", "llmcompass-gpt3-175b-tp4-all_reduce_ffn"],
    ),
    (
        "LayerNorm x2, GeLU",
        ["llmcompass-gpt3-175b-tp4-norm_attn", "llmcompass-gpt3-175b-tp4-norm_ffn", "llmcompass-gpt3-175b-tp4-ffn_act"],
    ),
    ("whole layer", ["llmcompass-gpt3-175b-tp4-layer"]),
]


def _joined(texts: list[str]) -> str:
    return " / ".join(dict.fromkeys(texts))


def labelled_table(kind: str, lines: list[tuple[str, list[str]]], *, head: str = "point") -> str:
    """One line per label: its records' published values, engine values and errors (repeats shown once)."""
    out = [f"| {head} | published | engine | error |", "| --- | --- | --- | --- |"]
    for label, keys in lines:
        rows = [records(kind)[key] for key in keys if key in records(kind)]
        if not rows:
            continue
        unit = _unit(rows[0].unit)
        miss = " (known miss, strict xfail)" if any(row.known_miss for row in rows) else ""
        cells = [
            label + miss,
            _joined([si(row.published) for row in rows]) + unit,
            _joined([si(row.engine) for row in rows]) + unit,
            _joined([pct(row.relative_error) for row in rows]),
        ]
        out.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(out) + "\n"


def inference_real_hardware() -> str:
    return labelled_table("inference", INFERENCE_REAL_HARDWARE)


def inference_neupims() -> str:
    result = answer(*NEUPIMS_7B, batch_size=NEUPIMS_BATCH)
    gpu = _systems(result)["GPU-only"]
    paper = records("inference")["neupims-over-gpu_only"].published
    lines = [
        "NeuPIMs (Heo et al., ASPLOS'24, abstract and Section 7) on its settings (Section 6.1; casys-kaist/NeuPIMs\n"
        "configs/) — GPT-3 7B, TP4, 8 x 128x128 NPU at 1 GHz on 32-channel HBM2-PIM, ShareGPT-like lengths\n"
        "(median 216, mean 300, max 2048: the simulator's trace "
        "request-traces/clb/share-gpt2-bs512-ms7B-tp4-clb-0.csv),"
        f"\nbatch {NEUPIMS_BATCH} ({n0(result.metric('max_batch_that_fits'))} fit in 32 GB), GPU-only on A100-80GB, "
        "same TP and link; tolerance 15%. The paper does not\nsay which software ran its GPU baseline, so these "
        "records keep the roofline (`software_stack: null`);\nunder the default `vllm-cuda-graphs` stack the A100 is "
        f"faster and NeuPIMs over GPU-only is {gpu['speedup']:.2f}x ({pct(gpu['speedup'] / paper - 1)}):",
        "",
    ]
    names = {"gpu_only": "GPU-only", "npu_only": "NPU-only", "npu_pim_blocked": "naive NPU+PIM"}
    table = labelled_table(
        "inference", [(name, [f"neupims-over-{key}"]) for key, name in names.items()], head="NeuPIMs over"
    )
    return wrap(lines[0]) + "\n" + table


def inference_interleaving() -> str:
    gains = {
        int(row["batch"]): row["gain"] for row in answer(*NEUPIMS_7B, batch_size=NEUPIMS_BATCH).table("interleaving")
    }
    shown = [batch for batch in (32, 128, 256, 384, 512, 768) if batch in gains]
    listed = ", ".join(f"{gains[b]:.2f}x at {'batch ' if i == 0 else ''}{b}" for i, b in enumerate(shown))
    crossover = records("inference")["neupims-interleaving-threshold"]
    return wrap(
        f"Sub-batch interleaving (even split vs none), same settings: {listed} — the crossover is batch\n"
        f"~{crossover.engine:.0f} (the public simulator turns interleaving on at batch >= 256, casys-kaist/NeuPIMs "
        "README.md; the record holds the\ncrossover within [256, 768]).\n"
    )


def inference_other_checks() -> str:
    samsung = records("inference")["samsung-hbm-pim-peak-flops"]
    gddr6 = [records("inference")[key] for key in ("gddr6-aim-internal-bandwidth", "gddr6-aim-internal-over-external")]
    gddr6_words = "exact" if all(abs(row.relative_error or 0) < 1e-9 for row in gddr6) else error_range(gddr6)
    tile = records("inference")["neupims-pim-gemv-tile"]
    return wrap(
        "Other checks: fp16 MHA decode attention is 1 FLOP/byte within 2% for B = 1..1024 (GQA: a/a_kv);\n"
        "the PIM derivations (1.024 TB/s, 16.4 TB/s, 16.4 TFLOP/s) are exact and the "
        f"{tile.engine:.0f}-cycle tile "
        f"{'equals' if tile.relative_error == 0 else 'is compared with'} the\nsimulator's `_gemv_latency` "
        f"({tile.published:.0f} cycles, record); Samsung HBM-PIM's derived {samsung.engine / 1e12:.3g} TFLOP/s is "
        f"{pct(samsung.relative_error)} from the published\n{samsung.published / 1e12:.2g} (record, "
        f"{samsung.tolerance_label}); GDDR6-AiM's internal {gddr6[0].engine / 1e9:.0f} GB/s and "
        f"{gddr6[1].engine:.0f}x are {gddr6_words} (records); greedy placement\nequals a per-point heap reference "
        "over random cases.\n"
    )


def inference_benchmark() -> str:
    bench = _results()["inference"]
    return wrap(
        '`PYTHONPATH=backend python -m benchmarks.bench_inference` (results under `"inference"` in\n'
        f"benchmarks/results.json). {bench['grid']}, one core of the development machine: "
        f"{bench['gpu_only_points_per_s'] / 1e6:.1f} M points/s for `gpu_only`,\n"
        f"{bench['neupims_even_split_points_per_s'] / 1e6:.1f} M points/s for `neupims` with an even split. One full "
        "in-process `evaluate` of the default example (metrics, tables, charts,\none run per comparable system "
        f"over the batch grid, crossover search): {bench['single_evaluation_s'] * 1e3:.0f} ms; through the API "
        f"(POST /api/v1/evaluate, in-process client)\n{bench['api_evaluation']['median_s'] * 1e3:.0f} ms median.\n"
    )


#: The engine's numbers for the inference records before the per-op kernel model (before commit dcb6245,
#: one compute/memory efficiency and one kernel overhead per accelerator): history, kept beside today's.
INFERENCE_BEFORE_KERNEL_MODEL: dict[str, float] = {
    "vidur-h100-llama2-7b-1tok-tp1": 0.1557,
    "vidur-h100-llama2-7b-8tok-tp1": 0.1561,
    "vidur-h100-llama2-7b-32tok-tp1": 0.1572,
    "vidur-h100-llama2-7b-64tok-tp1": 0.1586,
    "vidur-h100-llama2-7b-128tok-tp1": 0.1615,
    "vidur-h100-llama2-7b-256tok-tp1": 0.1674,
    "vidur-h100-llama2-7b-4096tok-tp1": 2.22,
    "vidur-h100-llama2-7b-1tok-tp2": 0.08547,
    "vidur-h100-llama2-7b-8tok-tp2": 0.08567,
    "vidur-h100-llama2-7b-32tok-tp2": 0.08636,
    "vidur-h100-llama2-7b-4096tok-tp2": 1.118,
    "vidur-h100-llama2-7b-1tok-tp4": 0.05034,
    "vidur-h100-llama2-7b-8tok-tp4": 0.05048,
    "vidur-h100-llama2-7b-4096tok-tp4": 0.5664,
    "vidur-h100-llama2-7b-4096tok-tp8": 0.2908,
    "vidur-h100-llama2-7b-4096tok-tp1-share-of-peak": 0.7548,
    "vidur-h100-llama2-70b-2tok-tp1": 0.6094,
    "vidur-h100-llama2-70b-8tok-tp1": 0.6099,
    "vidur-h100-llama2-70b-32tok-tp1": 0.6122,
    "vidur-h100-llama2-70b-128tok-tp1": 0.6214,
    "vidur-h100-llama2-70b-2tok-tp4": 0.1638,
    "vidur-h100-llama2-70b-8tok-tp4": 0.164,
    "vidur-h100-llama2-70b-32tok-tp4": 0.165,
    "vidur-h100-llama2-70b-128tok-tp4": 0.1689,
    "vidur-a100-llama2-7b-1tok-tp1": 0.303,
    "vidur-a100-llama2-7b-8tok-tp1": 0.3035,
    "vidur-a100-llama2-7b-32tok-tp1": 0.3054,
    "vidur-a100-llama2-7b-64tok-tp1": 0.3078,
    "vidur-a100-llama2-7b-4096tok-tp1": 7.552,
    "vidur-a100-llama2-7b-1tok-tp2": 0.1855,
    "vidur-a100-llama2-7b-8tok-tp2": 0.1858,
    "vidur-a100-llama2-7b-32tok-tp2": 0.187,
    "vidur-a100-llama2-7b-64tok-tp2": 0.1885,
    "vidur-a100-llama2-7b-4096tok-tp2": 3.81,
    "vidur-a100-llama2-7b-1tok-tp4": 0.1268,
    "vidur-a100-llama2-7b-8tok-tp4": 0.127,
    "vidur-a100-llama2-7b-32tok-tp4": 0.1278,
    "vidur-a100-llama2-7b-64tok-tp4": 0.1289,
    "vidur-a100-llama2-7b-4096tok-tp4": 1.939,
    "vidur-a100-llama2-7b-4096tok-tp8": 1.004,
    "vidur-a100-llama2-7b-4096tok-tp1-share-of-peak": 0.7036,
    "vidur-early-h100-llama2-13b-1tok-tp1": 0.2355,
    "vidur-early-h100-llama2-13b-8tok-tp1": 0.2359,
    "vidur-early-h100-llama2-13b-64tok-tp1": 0.2391,
    "vidur-early-h100-llama2-13b-256tok-tp1": 0.25,
    "vidur-early-h100-llama2-13b-1tok-tp4": 0.07027,
    "vidur-early-h100-llama2-13b-256tok-tp4": 0.07664,
    "vidur-early-h100-llama2-13b-64tok-over-1tok-tp1": 1.015,
    "vidur-early-h100-llama2-13b-tp1-over-tp4-1tok": 3.351,
    "vidur-early-a100-llama2-13b-1tok-tp1": 0.4363,
    "vidur-early-a100-llama2-13b-8tok-tp1": 0.437,
    "vidur-early-a100-llama2-13b-64tok-tp1": 0.4423,
    "vidur-early-a100-llama2-13b-1tok-tp4": 0.1601,
    "vidur-early-a100-llama2-13b-64tok-tp4": 0.1627,
    "llmcompass-gpt3-175b-tp4-qkv": 182.7,
    "llmcompass-gpt3-175b-tp4-score": 120.7,
    "llmcompass-gpt3-175b-tp4-context": 120.7,
    "llmcompass-gpt3-175b-tp4-out_proj": 60.96,
    "llmcompass-gpt3-175b-tp4-ffn_up": 192.5,
    "llmcompass-gpt3-175b-tp4-ffn_down": 192.5,
    "llmcompass-gpt3-175b-tp4-softmax": 18.37,
    "llmcompass-gpt3-175b-tp4-all_reduce_attn": 26.18,
    "llmcompass-gpt3-175b-tp4-all_reduce_ffn": 26.18,
    "llmcompass-gpt3-175b-tp4-norm_attn": 17.26,
    "llmcompass-gpt3-175b-tp4-norm_ffn": 17.26,
    "llmcompass-gpt3-175b-tp4-ffn_act": 17.23,
    "llmcompass-gpt3-175b-tp4-layer": 992.5,
    "neupims-over-gpu_only": 2.569,
    "neupims-over-npu_only": 2.701,
    "neupims-over-npu_pim_blocked": 1.468,
    "neupims-interleaving-threshold": 384.0,
    "neupims-pim-gemv-tile": 184.0,
    "samsung-hbm-pim-peak-flops": 1229000000000.0,
    "gddr6-aim-internal-bandwidth": 512000000000.0,
    "gddr6-aim-internal-over-external": 16.0,
}


def inference_records() -> str:
    """Every inference record: published, the engine before the kernel model, the engine now."""
    lines = [
        "| record | published | before (engine, error) | now (engine, error) | |",
        "| --- | --- | --- | --- | --- |",
    ]
    for key, row in records("inference").items():
        old = INFERENCE_BEFORE_KERNEL_MODEL.get(key)
        was = "" if old is None else f"{si(old)} ({pct(old / row.published - 1)})"
        cells = [
            key,
            si(row.published),
            was,
            f"{si(row.engine)} ({pct(row.relative_error)})",
            "known miss" if row.known_miss else "",
        ]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def inference_neupims_sources() -> str:
    over = records("inference")
    gpu, npu = over["neupims-over-gpu_only"], over["neupims-over-npu_only"]
    neupims = answer(*NEUPIMS_7B, batch_size=NEUPIMS_BATCH)
    blocked = answer(*NEUPIMS_7B, batch_size=NEUPIMS_BATCH, system="npu_pim_blocked")

    def busy(result: Answer) -> str:
        return f"{100 * result.metric('npu_busy_fraction'):.0f}% / {100 * result.metric('pim_busy_fraction'):.0f}%"

    inside = "inside" if gpu.within_tolerance else "outside"
    npu_agrees = "agrees" if abs(neupims.metric("npu_busy_fraction") - 0.65) <= 0.05 else "does not agree"
    pim_agrees = "agrees" if abs(neupims.metric("pim_busy_fraction") - 0.26) <= 0.05 else "does not"
    return wrap(
        "**NeuPIMs** (Heo et al., ASPLOS'24), what could be sourced here: the public text reachable (arXiv\n"
        "2403.00579 abstract and front matter; casys-kaist/NeuPIMs README and configs) neither names nor\n"
        "describes the GPU of the GPU-only baseline, so A100-80GB stays an explicit assumption and the ratio\n"
        f"test stays at {gpu.engine:.2f}x vs {gpu.published:.0f}x ({pct(gpu.relative_error)}, {inside} "
        f"{gpu.tolerance_label}). The arXiv v1 abstract gave 2.3x over NPU-only (engine\n{npu.engine:.2f}x, "
        f"{pct(npu.engine / 2.3 - 1)}); the ASPLOS version's {npu.published:g}x is the one tested. A secondary "
        "summary of the paper\n(study.space) quotes utilisation NPU 65% / PIM 26% for NeuPIMs vs 28% / 17% for "
        f"the baselines; the\nengine gives NPU / PIM {busy(neupims)} (NeuPIMs) and {busy(blocked)} (blocked "
        f"NPU+PIM) at batch {NEUPIMS_BATCH}:\nthe NPU figure {npu_agrees}, the PIM figure {pim_agrees} "
        "(the engine counts busy time, the paper probably "
        "MAC utilisation). Not tested: "
        "the primary text was not reachable.\nThe per-model/per-batch throughput curves (7B/13B/30B/175B, "
        "ShareGPT/Alpaca) and the interleaving ablation's numbers\nwere not reachable either.\n"
    )


# -- docs/training.md --------------------------------------------------------------------------------


def _joined_values(rows: list[Any], digits: int = 4) -> str:
    return " / ".join(si(row.engine, digits) for row in rows)


def training_validation() -> str:
    """The summary: exact checks (tests/engines) as they are; the record-backed lines from the records."""
    ssd = select("training", r"ssdtrain-")
    table1 = select("training", r"narayanan-table1-")
    table4 = select("training", r"korthikanti-table4-")
    t1_errors = [row.relative_error for row in table1 if row.relative_error is not None]
    mean_abs = sum(abs(e) for e in t1_errors) / len(t1_errors) if t1_errors else float("nan")
    lines = [
        "| what | source | tolerance | result |",
        "| --- | --- | --- | --- |",
        "| activation bytes, every TP / SP / recompute variant | Korthikanti 2022 Table 2 | exact | exact |",
        "| GPipe bubble (K-1)/(M+K-1), closed form and replayed timeline | Huang et al. 2019 | exact | exact |",
        "| replayed GPipe / 1F1B / interleaved makespans vs (M + (K-1)/v)(t_f+t_b) | Narayanan 2021 | exact | exact |",
        "| micro-batches in flight from the replayed orders vs the formulas | Korthikanti 4.2.3 | exact | exact |",
        "| executed FLOP with full recomputation | Narayanan 2021 eq. (3) | exact | exact |",
        "| Ulysses per-device volume constant as s and n grow together (8 -> 64), ring and TP grow 8x "
        "| Jacobs et al. 2023 | exact | 1.125x vs 9.0x (closed forms, tested exactly) |",
        "| SSDTrain rule closed form vs the literal rule | K-Wu/FlashTrain tensor_cache.py | exact "
        "| exact (200 random cases) |",
        "| FlashAttention: stored bytes s b h (10 + 24/t) + 4 a s b / t, backward +2 b s^2 h FLOP "
        "| Dao et al. 2022 | exact | exact |",
        f"| SSDTrain activation-peak cut, I/O hidden (micro-batch 1 / 2 / 4) | Wu et al. 2024: "
        f"{100 * ssd[0].published:.0f}% | {ssd[0].tolerance_label} | "
        f"{' / '.join(f'{100 * row.engine:.1f}%' for row in ssd)}, no stall |",
        f"| Megatron-LM Table 1, all {len(table1)} rows, achieved TFLOP/s per GPU | Narayanan SC'21 | each "
        f"{table1[0].tolerance_label}, mean 8% | {error_range(table1)}, mean abs. {100 * mean_abs:.1f}% |",
        f"| 22B layer forward / backward ms, {len(table4) // 2} variants | Korthikanti Table 4 | "
        f"{table4[0].tolerance_label} | {error_range(table4)} |",
    ]
    return "\n".join(lines) + "\n"


def training_table1() -> str:
    from dse.scenarios.kinds.training.published import TABLE1_ROWS, table1_evaluation
    from dse.scenarios.shared.megatron import NARAYANAN_TABLE1, RUN_TABLE_1

    memory = table1_evaluation(default_catalog()).memory_total_bytes / 2**30
    lines = [
        "| model | t | p | GPUs | micro-batch | v | published TFLOP/s | engine | error | memory (GiB) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for i, model_id in enumerate(TABLE1_ROWS):
        t, p, gpus, _batch, _published = NARAYANAN_TABLE1[model_id]
        micro, chunks, _overlap = RUN_TABLE_1[model_id]
        size = model_id.removeprefix("megatron-gpt-")
        row = records("training").get(f"narayanan-table1-{size}")
        if row is None:
            continue
        name = "1008.0B" if size == "1t" else size.upper()
        lines.append(
            f"| {name} | {t} | {p} | {gpus} | {micro} | {chunks} | {row.published:.0f} | {row.engine:.1f} | "
            f"{pct(row.relative_error)} | {float(memory[i]):.1f} |"
        )
    return "\n".join(lines) + "\n"


def training_table4() -> str:
    def side(direction: str) -> list[Any]:
        return [row for row in select("training", rf"korthikanti-table4-{direction}-")]

    forward, backward = side("forward"), side("backward")
    names = [row.key.removeprefix("korthikanti-table4-forward-").replace("-", " ") for row in forward]

    def values(rows: list[Any], attribute: str) -> str:
        return " / ".join(f"{getattr(row, attribute):.{2 if attribute == 'engine' else 1}f}" for row in rows)

    return wrap(
        "Korthikanti Table 4 (one 22B layer, t = 8, s 2048, micro-batch 4 read from their Table 3): "
        f"forward {values(forward, 'engine')} ms vs {values(forward, 'published')}; backward (with "
        f"recomputation) {values(backward, 'engine')} ms vs {values(backward, 'published')} ({', '.join(names)})."
    )


def training_ssdtrain() -> str:
    ssd = select("training", r"ssdtrain-")
    return wrap(
        "SSDTrain: the paper's exact model and drive count could not be retrieved in this environment. "
        "The cut follows r = (SSD bandwidth x layer time) / layer bytes as about 3r/(1+2r), so it varies widely "
        "over plausible settings (A100, 2-7 Optane P5800X per GPU, GPT 7B-30B shapes, 1-2K tokens). The records "
        "pin one disclosed setting (one A100, seven P5800X in RAID0, GPT-3 13B shapes, 2048 tokens, micro-batch "
        f"1 / 2 / 4: {' / '.join(f'{100 * row.engine:.1f}%' for row in ssd)}) within {ssd[0].tolerance_label} of "
        f"the published {100 * ssd[0].published:.0f}%, and the tests check exactly that the adaptive rule adds "
        "no time."
    )


def _setting(text: str) -> str:
    return re.sub(r",\s*random.*", "", text)


def training_benchmark() -> str:
    bench = _results()["training"]
    return wrap(
        "`PYTHONPATH=backend python benchmarks/bench_training.py` (key `training` in `benchmarks/results.json`): "
        f"{n0(bench['plans'])} random plans (dp/tp/pp/sp kind and degree/ZeRO/recompute/schedule/v/micro-batch/"
        f"sequence; {100 * bench['valid_fraction']:.0f}% of them valid, {100 * bench['feasible_fraction']:.1f}% "
        f"feasible), {_setting(bench['setting'])}, best of 5 single calls on the shared 2-core build "
        f"machine: {bench['plans_per_s'] / 1e6:.1f} M plans/s for `evaluate_plans` "
        f"({bench['seconds_best_of_5']:.2f} s per {n0(bench['plans'])}), "
        f"{bench['screened_plans_per_s'] / 1e6:.1f} M plans/s when the caller screens with `plan_reasons` and "
        "`select` first. Timings vary with the machine's load."
    )


#: docs/training.md's further-figures table: (source words, key pattern) per line; values from the records.
TRAINING_FURTHER: list[tuple[str, str]] = [
    (
        "Korthikanti 2022 Table 5, iteration time, full recompute (22B / 175B / 530B / 1T)",
        r"korthikanti-table5-.*-full-recompute$",
    ),
    ("Korthikanti 2022 Table 5, iteration time, SP + selective", r"korthikanti-table5-.*-present-work$"),
    ("Korthikanti 2022 Table 5, speed-up of SP + selective over full", r"korthikanti-table5-.*-speedup$"),
    (
        "Korthikanti 2022 abstract: 530B on 2240 A100s, MFU full recompute / SP + selective (global batch 2240 "
        "assumed: Table 3's 280 per replica x DP 8)",
        r"korthikanti-530b-",
    ),
    ("Korthikanti 2022 Figure 1, first-stage activations, TP only (GiB)", r"korthikanti-figure1-.*-tensor-parallel$"),
    (
        "Korthikanti 2022 Figure 1, first-stage activations, SP + selective (GiB)",
        r"korthikanti-figure1-.*-present-work$",
    ),
    (
        "Korthikanti 2022 Figure 7, % of TP-only activations (SP / sel / SP+sel / full), 22B",
        r"korthikanti-figure7-22b-",
    ),
    ("Korthikanti 2022 Figure 7, same, 175B", r"korthikanti-figure7-175b-"),
    ("Korthikanti 2022 Figure 7, same, 530B", r"korthikanti-figure7-530b-"),
    ("Korthikanti 2022 Figure 7, same, 1T", r"korthikanti-figure7-1t-"),
    ("GPipe 2019 Table 3, Transformer-24 on P100 without NVLink, M = 32, K = 4 / 8 (over K = 2)", r"gpipe-table3-"),
    ("Li et al. 2021: max batch Ring-64 / TP (BERT-Base, TP at the 12-head limit)", r"li2021-ring64-vs-tp-max-batch$"),
    (
        "Li et al. 2021: max sequence Ring-64 / TP (BERT-Base batch 16 / 64, BERT-Large batch 16 / 64)",
        r"li2021-ring64-vs-tp-max-sequence-",
    ),
    (
        "NVIDIA NeMo 24.12 performance summary, H100 fp8 pre-training, tokens/s per GPU (Llama-2 7B on 8, Llama-2 "
        "70B on 64, GPT-3 175B on 128 GPUs)",
        r"nemo-2412-",
    ),
    (
        "MosaicML llm-foundry benchmarking README, MPT 760M-70B bf16 training with PyTorch FSDP on H100, tokens/s "
        "per GPU",
        r"llm-foundry-h100-sxm-",
    ),
    ("The same table's A100 80GB rows (MPT 760M-30B, 8 GPUs)", r"llm-foundry-a100-80gb-"),
    ("torchtitan end-2024 benchmarks, Llama 3.1 8B bf16 FSDP on 8 / 128 H100s (500 W, HBM2e)", r"torchtitan-"),
    ("OPT-175B (Zhang et al. 2022), fp16 FSDP x Megatron TP 8 on 992 A100 80GB, TFLOP/s per GPU", r"opt-175b-"),
    (
        "Llama 3 paper Table 4, 405B bf16 on 16,384 H100s at 128K context (TP 8, CP 16 all-gather, PP 16, 7/8/7 "
        "layers), model TFLOP/s per GPU",
        r"llama3-405b-h100-bf16-cp16-128k-",
    ),
    ("The same at 128K on CP 16 over the 8K row on CP 1 (Table 4 rows 3 / 2)", r"llama3-405b-h100-bf16-cp16-over-"),
    (
        "DeepSeek-V3 technical report, H800 GPU-hours per trillion pre-training tokens (2,048 H800s, EP 64)",
        r"deepseek-v3-",
    ),
    ("Megatron-Core MoE README, Mixtral 8x7B bf16 on 64 H100s (EP 8), model TFLOP/s per GPU", r"mcore-moe-"),
]


def training_further() -> str:
    lines = ["| source | figure | engine | error | tolerance |", "| --- | --- | --- | --- | --- |"]
    for words, pattern in TRAINING_FURTHER:
        rows = select("training", pattern)
        if not rows:
            continue
        unit = _unit(rows[0].unit)
        labels = list(dict.fromkeys(row.tolerance_label for row in rows))
        cells = [
            words,
            " / ".join(si(row.published) for row in rows) + unit,
            " / ".join(si(row.engine) for row in rows) + unit,
            " / ".join(pct(row.relative_error) for row in rows),
            labels[0] if len(labels) == 1 else "per figure",
        ]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    lines += [
        "| Korthikanti 2022 Figure 1, fits in 80 GB: TP only / SP + selective | no x4 / yes x4 | the same verdicts "
        "(`tests/engines/test_training_published.py`) | exact | exact |",
        "| GPipe 2019 Table 3 text: boundary-only communication survives PCIe | scaling without NVLink | pipeline "
        "sends under 1% of the iteration (same tests) | - | < 1% |",
        "| Li et al. 2021: Ring max batch scales with devices, TP saturates (BERT-Base, s 512, P100 16 GB) | trend "
        "| Ring near-linear to 64 GPUs, TP saturating by 12 (same tests) | - | >= 95% / <= 60% of linear |",
        "| Jacobs et al. 2023 (Ulysses) Figure 3 direction: longer sequences and not slower than Megatron-SP (30B, "
        "64 A100 40 GB) | 4x longer, 2.5x faster | longer and not slower (same tests) | magnitude missed | "
        "direction only |",
    ]
    return "\n".join(lines) + "\n"


#: Korthikanti Figure 1's parameters + optimizer per GPU (GiB) for 22B / 175B / 530B / 1T: published figures.
FIGURE1_STATES_GIB = (45.56, 45.56, 31.64, 32.96)


def training_figure1_states() -> str:
    from dse.scenarios.kinds.training.published import figure1_evaluation

    result = figure1_evaluation(default_catalog())
    states = (result.memory_weights_bytes + result.memory_gradients_bytes + result.memory_optimizer_bytes) / 2**30
    engine = [float(value) for value in states[:, 0]]
    return wrap(
        "- **Korthikanti Figure 1, parameters + optimizer ("
        + " / ".join(f"{value:.2f}" for value in FIGURE1_STATES_GIB)
        + " GiB)**: the figure counts 18 bytes per layer parameter (Megatron's fp32 gradient buffer) and no "
        "embedding; the engine counts the same 18 bytes (the default stack keeps fp32 gradients under bf16) plus "
        "the embedding on the first stage: "
        + " / ".join(f"{value:.1f}" for value in engine)
        + " GiB ("
        + " / ".join(pct(value / published - 1) for value, published in zip(engine, FIGURE1_STATES_GIB, strict=True))
        + "). Not tested; the fits verdicts agree.",
        width=110,
    )


# -- docs/pruning.md ---------------------------------------------------------------------------------

PRUNING_SMALL = ("pruning", "What does a 0.66 compute budget buy")
PRUNING_BASE = ("pruning", "APTP-Base budget")
PRUNING_SD15 = ("pruning", "SD 1.5, 512 px")

#: docs/pruning.md's count table: record key -> (words, source words). Values come from the records.
PRUNING_COUNTS: dict[str, tuple[str, str]] = {
    "sd21_unet_params": (
        "SD 2.1 UNet parameters",
        "diffusers `num_parameters()` of stabilityai/stable-diffusion-2-1 unet",
    ),
    "sd15_unet_params": (
        "SD 1.5 UNet parameters",
        "diffusers `num_parameters()` of runwayml/stable-diffusion-v1-5 unet",
    ),
    "sd21_unet_macs_512px_conv_linear": ("SD 2.1 MACs/step, 512 px, conv+linear", "derived*"),
    "sd21_unet_macs_512px_with_attention": ("SD 2.1 MACs/step, 512 px, with attention", "derived*"),
    "sd21_unet_macs_768px_conv_linear": ("SD 2.1 MACs/step, 768 px, conv+linear", "derived*"),
    "sd21_unet_macs_768px_with_attention": ("SD 2.1 MACs/step, 768 px, with attention", "derived*"),
    "sd15_text_encoder_params": (
        "CLIP ViT-L/14 text tower (SD 1.5)",
        "transformers `CLIPTextModel` `num_parameters()` of openai/clip-vit-large-patch14; also equals "
        "`dse.engines.transformer.parameter_breakdown`",
    ),
}


def _count(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    return f"{value / 1e9:,.2f} G" if unit == "MAC" else f"{value:,.0f}"


def pruning_counts() -> str:
    lines = ["| quantity | published | engine | error | tolerance | source |", "|---|---|---|---|---|---|"]
    for key, (words, source) in PRUNING_COUNTS.items():
        row = records("pruning").get(key)
        if row is None:
            continue
        published = f"{row.published / 1e9:,.1f} G" if row.unit == "MAC" else f"{row.published:,.0f}"
        cells = [words, published, _count(row.engine, row.unit), pct(row.relative_error), row.tolerance_label, source]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    small, base = answer(*PRUNING_SMALL), answer(*PRUNING_BASE)

    def budget(result: Answer) -> str:
        mean, cap = result.metric("mean_resource_ratio"), result.document["inputs"]["budget_ratio"]
        return f"{mean:.3f}, {'holds' if mean <= cap + 1e-9 else 'exceeds it'}"

    lines += [
        f"| APTP-Base budget (CC3M) | mean R <= 0.85 | example 2: {budget(base)} | — | context | APTP Table 1 model "
        'name "APTP-Base (0.85)" (via ALTER Table 1, see below) |',
        f"| APTP-Small budget (CC3M) | mean R <= 0.66 | example 1: {budget(small)} | — | context | APTP Table 1 model "
        'name "APTP-Small (0.66)" (via ALTER Table 1, see below) |',
        "| codes in released APTP-Base-CC3M / APTP-Small-CC3M | 16 / 8 | examples 2 / 1 use "
        f"{len(base.table('codes'))} "
        f"/ {len(small.table('codes'))} | — | context | huggingface.co/rezashkv/diffusion_pruning (arch0..arch15 / "
        "arch0..arch7) |",
    ]
    return "\n".join(lines) + "\n"


#: docs/pruning.md's APTP table: record key -> (words, published words).
PRUNING_APTP: dict[str, tuple[str, str]] = {
    "aptp_sd21_unet_macs_768px": ("SD 2.1 UNet MACs per step, 768 px (APTP's counter)", ""),
    "aptp_sd21_latency_768px": ("SD 2.1 latency per image", ""),
    "aptp_base_cc3m_latency_ratio": ("APTP-Base (0.85), CC3M: latency / SD 2.1", "3.4 / 4.0 = "),
    "aptp_base_mscoco_latency_ratio": ("APTP-Base (0.78), MS-COCO: latency / SD 2.1", "3.1 / 4.0 = "),
    "aptp_small_cc3m_latency_ratio": ("APTP-Small (0.66), CC3M: latency / SD 2.1", "2.6 / 4.0 = "),
    "aptp_small_mscoco_latency_ratio": ("APTP-Small (0.64), MS-COCO: latency / SD 2.1", "2.5 / 4.0 = "),
}


def pruning_aptp() -> str:
    lines = ["| quantity | published | engine | error | test |", "|---|---|---|---|---|"]
    for key, (words, published_words) in PRUNING_APTP.items():
        row = records("pruning").get(key)
        if row is None:
            continue
        r = re.search(r"at R = ([\d.]+)", row.quantity)
        at = f" (R {r.group(1)})" if r else ""
        if row.unit == "MAC":
            published, engine = f"{row.published / 1e9:,.1f} G", f"{row.engine / 1e9:,.1f} G"
        else:
            published, engine = (
                f"{published_words}{row.published:.3g}{_unit(row.unit)}",
                f"{si(row.engine, 3)}{_unit(row.unit)}{at}",
            )
        verdict = "passes" if row.within_tolerance else ("strict xfail" if row.known_miss else "FAILS")
        cells = [words, published, engine, pct(row.relative_error), f"{verdict}, {row.tolerance_label}"]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def pruning_blocks() -> str:
    blocks = {row["block"]: row for row in answer(*PRUNING_SMALL, image_size_px=512).table("unet_blocks")}

    def gmacs(name: str) -> str:
        row = blocks[name]
        return " / ".join(
            f"{row[column]:.1f}"
            for column in ("conv_gmacs", "linear_gmacs", "self_attention_gmacs", "cross_attention_gmacs")
        )

    largest = max((row for row in blocks.values() if row["block"] != "total"), key=lambda row: row["params"])
    shown = [name for name in ("down_0", "up_3") if name in blocks]
    return wrap(
        "Per block at 512 px (SD 2.1, GMACs conv / linear / self-attn / cross-attn, table `unet_blocks`): "
        + "; ".join(f"{name} {gmacs(name)}" for name in shown)
        + f"; {largest['block']} is the largest block by parameters ({largest['params'] / 1e6:.0f} M)."
    )


def pruning_examples() -> str:
    small, base, sd15 = answer(*PRUNING_SMALL), answer(*PRUNING_BASE), answer(*PRUNING_SD15)
    codes = small.table("codes")
    keeps = [row["channel_keep"] for row in codes]
    ratios = [row["ratio"] for row in codes]
    inputs = small.document["inputs"]
    through = {row["batch"]: row for row in base.table("throughput")}
    first, last = min(through), max(through)
    mid = 32 if 32 in through else last
    per_s = {name: small.metric(f"{name}_images_per_s") for name in ("aptp", "static", "dynamic", "full")}
    return wrap(
        f"* **APTP-Small (0.66), SD 2.1, {inputs['image_size_px']} px, {inputs['denoising_steps']} steps, A100 80 "
        f"GB, batch {inputs['batch_size']}**, {len(codes)} uniform codes keep {max(keeps):.2f}..{min(keeps):.2f} "
        f"(R_k {max(ratios):.3f}..{min(ratios):.3f}, counted), mean R {small.metric('mean_resource_ratio'):.3f}: "
        f"latency cut {100 * small.metric('aptp_latency_cut'):.0f}% vs unpruned ({small.metric('aptp_latency_s'):.2f} "
        f"s vs {small.metric('full_latency_s'):.2f} s for the batch). Images/s: APTP {per_s['aptp']:.2f}, static "
        f"{per_s['static']:.2f}, dynamic {per_s['dynamic']:.2f}, unpruned {per_s['full']:.2f} (APTP "
        f"{small.metric('aptp_speedup_vs_dynamic'):.2f}x dynamic, {small.metric('aptp_speedup_vs_static'):.2f}x "
        "static)."
        "\n\n"
        f"* **APTP-Base (0.85), SD 2.1, {base.document['inputs']['image_size_px']} px, H100, "
        f"{len(base.table('codes'))} codes** (as many as the released APTP-Base-CC3M experts), mean R "
        f"{base.metric('mean_resource_ratio'):.3f}. Images/s by batch (table `throughput`): dynamic pruning "
        f"{through[first]['dynamic']:.1f} at batch {first} and {through[last]['dynamic']:.1f} at {last}; APTP "
        f"{through[first]['aptp']:.1f} (batch {first}, where it is exactly the dynamic case) to "
        f"{through[last]['aptp']:.1f} (batch {last}), {through[mid]['aptp'] / through[mid]['dynamic']:.2f}x dynamic at "
        f"batch {mid}; static pruning (one model at the same mean R) {through[first]['static']:.1f} at batch "
        f"{first} and {through[last]['static']:.1f} at {last}: it reads one set of weights where APTP reads up to "
        f"{len(base.table('codes'))} — the price APTP pays for prompt-specific capacity, shrinking as per-code "
        "batches fill."
        "\n\n"
        f"* **SD 1.5, {sd15.document['inputs']['image_size_px']} px, per-stage codes with user capacities**: mean R "
        f"{sd15.metric('mean_resource_ratio'):.3f} under a {sd15.document['inputs']['budget_ratio']} budget.",
        width=104,
    ).replace("\n\n*", "\n*")


def pruning_benchmarks() -> str:
    bench = _results()["pruning"]
    return (
        "| what | figure |\n|---|---|\n"
        f"| R_k of 1,000,000 random per-block codes, one call | {si(bench['counter_codes_per_s'], 2)} codes/s |\n"
        f"| 1000 resolutions x 1000 uniform keep fractions | {si(bench['counter_grid_points_per_s'], 2)} points/s |\n"
        f"| 10,000 batched Sinkhorn routing problems (5 x 8, eps 0.01, to 1e-9) | "
        f"{si(bench['sinkhorn_problems_per_s'], 2)} problems/s; {bench['sinkhorn_unconverged_problems']} stop at "
        f"{bench['sinkhorn_iterations']} iterations (rounded onto exact marginals) |\n"
        f"| `run_sweep` of the default example over batch sizes 1..4096 | {si(bench['serving_sweep_points_per_s'], 2)} "
        "points/s |\n"
        f"| resolve + evaluate of the default example | {bench['single_evaluation_s']:.3f} s |\n"
    )


# -- docs/rl_and_gnn.md ------------------------------------------------------------------------------

CARL = ("rl_scaling", "How many samples/s does PPO reach")
CARL_NUPLAN = ("rl_scaling", "CaRL nuPlan")
TGN = ("temporal_batching", "How large can the temporal batch")


def rl_policy() -> str:
    result = answer(*CARL)
    norms = sum(row["parameters"] for row in result.table("policy_layers") if row["layer_type"] == "layernorm")
    return wrap(
        "The CaRL CARLA policy is taken layer by layer from the repository's `model.py` (`PPOPolicy` with the "
        "`roach_ln2` encoder on a 10 x 256 x 256 BEV, 8 measurements, 10 value measurements, heads of (256, 256)): "
        f"**{n0(result.metric('policy_parameters'))} parameters, {result.metric('forward_gflop_per_sample'):.3f} "
        f"GFLOP per sample forward** (the layernorms over whole feature maps hold {norms / 1e3:.0f}k of the "
        "parameters; table `policy_layers`).",
        width=100,
    )


def rl_step_time() -> str:
    tiny = records("rl_scaling").get("carla_tiny_run_wall_time")
    share = (
        ""
        if tiny is None
        else (
            f"; the engine's own inference and update add {pct(tiny.relative_error).lstrip('+')} on top of it "
            "for that run"
        )
    )
    return wrap(
        "The simulator step time of one environment on an idle core, **0.0691 s**, is derived from the README's "
        'statement that the 10M-sample, 8-environment, 1-GPU run "trains within a day" (86,400 s x 8 / 10M)'
        f"{share}. No public per-step time of the nuPlan environment was found: the preset reuses CARLA's (edit it).",
        width=100,
    )


#: docs/rl_and_gnn.md's CaRL table: record key(s) -> (what, published words, source / tolerance words).
RL_RECORDS: list[tuple[list[str], str, str, str]] = [
    (
        ["carla_batch_samples", "carla_minibatches_per_epoch"],
        "CARLA run: samples per batch, minibatches per epoch",
        "128 x 512 = 65,536; 4",
        "autonomousvision/CaRL CARLA/team_code/train_carl_cpp.sh",
    ),
    (
        ["carla_iterations"],
        "CARLA run: iterations to 300M",
        "300,000,000 // 65,536 = 4,577",
        "train_carl_cpp.sh, dd_ppo.py",
    ),
    (["carla_gradient_steps"], "CARLA run: gradient steps", "4,577 x 3 x 4 = 54,924", "same"),
    (
        ["carla_wall_time"],
        "CARLA 300M wall time (A100)",
        "~3.5 days (C++ run)",
        "CaRL CARLA/README.md as summarised by deepwiki.com/autonomousvision/CaRL (4.5; its Quick start says ~5 days, "
        'the Python run ~7). Tolerance 0.5-1.0x: the engine omits CARLA crash-restarts, "~every 15 min" at 128 servers '
        "(README)",
    ),
    (
        ["carla_tiny_run_wall_time"],
        "tiny 10M run (1 GPU, 8 envs)",
        '"within a day"',
        "CaRL CARLA/README.md (train_carl_tiny_cpp.sh); the step time came from it, the band 1.0-1.05x bounds the "
        "inference + update share at 5%",
    ),
]


def rl_validation() -> str:
    lines = ["| what | published | engine | error | source / tolerance |", "| --- | --- | --- | --- | --- |"]
    for keys, what, published, source in RL_RECORDS:
        rows = [records("rl_scaling")[key] for key in keys if key in records("rl_scaling")]
        if not rows:
            continue
        unit = " days" if rows[0].unit == "days" else ""
        engine = "; ".join(f"{row.engine:,.3f}".rstrip("0").rstrip(".") + unit for row in rows)
        cells = [what, published, engine, error_range(rows), source]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    lines.insert(
        5, "| roach_ln2 output sides | 126, 61, 29, 13, 6, 4, 2 | same | exact | CARLA/team_code/model.py comments |"
    )
    return "\n".join(lines) + "\n"


def rl_carl() -> str:
    carl = answer(*CARL)
    m = carl.metric
    by_minibatch = {int(row["minibatch"]): row["samples_per_s"] for row in carl.table("samples_vs_minibatch")}
    small = 2048 if 2048 in by_minibatch else min(by_minibatch)
    own = int(carl.document["inputs"].get("minibatch_samples", 16384))
    own_rate = by_minibatch.get(own, m("samples_per_s"))
    h100 = answer(*CARL, accelerator="h100-sxm").metric("samples_per_s")
    nuplan = answer(*CARL_NUPLAN)
    steps_small = answer(*CARL, minibatch_samples=small).metric("gradient_steps_to_target")
    steps = m("gradient_steps_to_target")
    return wrap(
        "What it says about CaRL (A100 preset, its calibrated per-kernel launch cost): at 8 GPUs the iteration is "
        f"{m('iteration_s'):.1f} s, of which {m('env_stepping_s'):.1f} s is simulator stepping, "
        f"{m('inference_s'):.2f} s policy inference and {m('update_s'):.2f} s update ({1e3 * m('all_reduce_s'):.1f} "
        f"ms of it all-reduce: {4 * m('policy_parameters') / 1e6:.1f} MB of gradients over NVLink); "
        f"**{n0(m('samples_per_s'))} samples/s, GPU busy {100 * m('gpu_busy_fraction'):.1f}%, CPU busy "
        f"{100 * m('cpu_busy_fraction'):.0f}%** (contention {m('cpu_contention'):.2f}x: 128 environments + 8 learners "
        f"on 128 cores). The minibatch size barely moves throughput ({n0(small)} -> {n0(own)}: "
        f"{n0(by_minibatch[small])} -> {n0(own_rate)} samples/s) because the update is "
        f"{100 * m('update_s') / m('iteration_s'):.0f}% of the iteration; GPU count moves it linearly while cores "
        "last, then contention takes over: the nuPlan preset's 32 envs per GPU on the same 128 cores gives "
        f"{n0(nuplan.metric('samples_per_s'))} samples/s, {nuplan.metric('wall_time_to_target_days'):.1f} days to "
        f"500M samples (no published time to compare with). An H100 changes little ({n0(h100)} samples/s). CaRL's "
        f"case for large minibatches is thus about the {steps_small / steps:.0f}x fewer gradient steps "
        f"({n0(steps)} instead of {n0(steps_small)} at minibatch {n0(small)}), not about speed on this node.",
        width=100,
    )


def gnn_fixed_cost() -> str:
    implied = answer(*TGN).metric("implied_fixed_cost_ms")
    return wrap(
        "are TGN's (M = D = 172, T = 100, n = 10, batch 200). Resident threads: SMs x 2048 (A100 108 SMs, H100/H200 "
        "132). `t_fixed` (launches, neighbour sampling, host work) is **assumed 5 ms**: no source breaks a TGN batch "
        "down; the scenario reports `implied_fixed_cost_ms`, the per-batch cost at which the engine reproduces "
        f"PRES's 3.4x ({implied:.1f} ms on A100 for Wikipedia), so the reader can judge.",
        width=100,
    )


def gnn_pres_rows() -> str:
    result = answer(*TGN)
    record = records("temporal_batching").get("pres_speedup_at_implied_fixed_cost")
    speedup = result.metric("pres_speedup")
    line1 = (
        f"| PRES speed-up, Wikipedia, TGN, A100, 200 -> 800 | 3.4x | {speedup:.2f}x ({pct(speedup / 3.4 - 1)}) | "
        "PRES abstract; hangs on the assumed 5 ms per batch (no verdict) |"
    )
    if record is None:
        return line1 + "\n"
    return (
        line1 + "\n"
        f"| PRES speed-up at the per-batch cost the engine infers (`implied_fixed_cost_ms`, "
        f"{result.metric('implied_fixed_cost_ms'):.1f} ms) | {record.published:g}x | {record.engine:.2f}x "
        f"({pct(record.relative_error)}) | {record.tolerance_label} (a round trip of the batch-time model) |\n"
    )


def gnn_datasets() -> str:
    result = answer(*TGN)
    lines = ["| dataset | rate at 200 | rate at 800 | speed-up | epoch at 200 |", "| --- | --- | --- | --- | --- |"]
    for row in result.table("datasets"):
        name = str(row["dataset"])
        epoch = answer(*TGN, dataset=name.split()[0].lower()).metric("epoch_s")
        epoch_text = f"{epoch:,.0f} s" if epoch >= 100 else f"{epoch:.1f} s"
        lines.append(
            f"| {name} | {row['rate_baseline']:.3f} | {row['rate_pres']:.3f} | {row['speedup']:.2f}x | {epoch_text} |"
        )
    return "\n".join(lines) + "\n"


def gnn_discussion() -> str:
    result = answer(*TGN)
    strict = answer(*TGN, max_discontinuity_rate=0.2)
    rows = result.table("datasets")
    h100 = [row["speedup"] for row in answer(*TGN, accelerator="h100-sxm").table("datasets")]
    base = [row["rate_baseline"] for row in rows]
    pres = [row["rate_pres"] for row in rows]
    speedups = [row["speedup"] for row in rows]
    largest = result.metric("largest_batch_under_threshold")
    rate = result.metric("events_per_s_at_threshold_batch")
    return wrap(
        "The speed-up and epoch time do not depend on the degree law; only the rates do. On Wikipedia the largest "
        f"batch that keeps the rate at or under 0.5 is {n0(largest)} events ({n0(rate)} events/s, "
        f"{rate / result.metric('events_per_s'):.2f}x the batch of 200); at 0.2 it allows "
        f"{n0(strict.metric('largest_batch_under_threshold'))} events "
        f"({n0(strict.metric('events_per_s_at_threshold_batch'))} events/s)."
        "\n\n"
        f"At TGN's batch of 200, {100 * min(base):.0f}-{100 * max(base):.0f}% of the events already miss an earlier "
        f"event's memory update; PRES's 4x batch pushes that to {100 * min(pres):.0f}-{100 * max(pres):.0f}%, which "
        "is what its prediction-correction has to absorb. The speed-up is below 4x because the per-event work grows "
        "with the batch while the fixed cost does not; with 5 ms per batch the A100 lands at "
        f"{min(speedups):.2f}-{max(speedups):.2f}x, {pct(max(speedups) / 3.4 - 1).lstrip('+-')}-"
        f"{pct(min(speedups) / 3.4 - 1).lstrip('+-')} under the paper's 3.4x (on an H100 the per-event work "
        f"shrinks and the same 5 ms gives {min(h100):.2f}-{max(h100):.2f}x).",
        width=100,
    )


def rl_gnn_benchmarks() -> str:
    bench = _results()["rl_gnn"]
    return (
        "| what | speed |\n| --- | --- |\n"
        f"| PPO engine, {bench['ppo_grid']} | {si(bench['ppo_points_per_s'], 2)} points/s |\n"
        f"| temporal batch time, 1M batch sizes, one call | {si(bench['temporal_batch_time_points_per_s'], 2)} "
        "points/s |\n"
        f"| closed-form discontinuity rate ({bench['discontinuity_note']}) | "
        f"{si(bench['discontinuity_rate_points_per_s'], 2)} batch sizes/s |\n"
        "| one `evaluate` (metrics, tables, charts): rl_scaling / temporal_batching | "
        f"{1e3 * bench['rl_scaling_single_evaluation_s']:.1f} ms / "
        f"{1e3 * bench['temporal_batching_single_evaluation_s']:.1f} ms |\n"
    )


# -- docs/plan_search.md -----------------------------------------------------------------------------

#: docs/plan_search.md's quick-vs-full table: (words, example name start), in the doc's order.
PLAN_SEARCH_EXAMPLES: list[tuple[str, str]] = [
    ("GPT-3 175B, 1,024 A100s", "GPT-3 175B on 1024 A100s"),
    ("Llama-3 70B, 32K, 512 H100s in two pods", "Which data/tensor/pipeline/sequence-parallel plan"),
    ("the same with SSD offload", "What if activations go to NVMe SSDs?"),
    ("Megatron GPT 1T, 3,072 A100s", "Megatron-LM GPT 1T"),
    ("GPT-3 30B, 4 nodes in two racks", "GPT-3 30B on 4 nodes"),
    ("Megatron GPT 18.4B, 256 A100s", "Megatron-LM GPT 18.4B"),
]


def plan_search_quick() -> str:
    lines = [
        "| example | candidates: full | candidates: quick | best iteration: full | best iteration: quick |",
        "| --- | --- | --- | --- | --- |",
    ]
    for words, starts in PLAN_SEARCH_EXAMPLES:
        full = answer("plan_search", starts, search_effort="full")
        quick = answer("plan_search", starts, search_effort="quick")
        lines.append(
            f"| {words} | {n0(full.metric('candidates'))} | {n0(quick.metric('candidates'))} | "
            f"{full.metric('best_iteration_time_s'):.5g} s | {quick.metric('best_iteration_time_s'):.5g} s |"
        )
    return "\n".join(lines) + "\n"


def _searched_plan(plans: Any, evaluation: Any, index: int = 0) -> str:
    def at(array: Any) -> float:
        values = np.asarray(array, dtype=float)
        return float(values.reshape(-1)[index] if values.size > 1 else values.reshape(-1)[0])

    words = [f"d{at(plans.data_parallel):.0f} t{at(plans.tensor_parallel):.0f} p{at(plans.pipeline_parallel):.0f}"]
    sequence = {1: "megatron", 2: "ring", 3: "ulysses"}.get(int(at(plans.sequence_parallel)))
    if sequence in ("ring", "ulysses"):
        words.append(f"{sequence}x{at(plans.sequence_parallel_degree):.0f}")
    elif sequence:
        words.append(sequence)
    words.append(f"b{at(plans.micro_batch_size):.0f} Z{at(plans.zero_stage):.0f}")
    words.append({0: "none", 1: "selective", 2: "full"}[int(at(plans.recompute))])
    if at(plans.flash_attention):
        words.append("flash")
    schedule = {0: "gpipe", 1: "1f1b", 2: "interleaved"}[int(at(plans.pipeline_schedule))]
    words.append(schedule + (f" v{at(plans.virtual_stages):.0f}" if schedule == "interleaved" else ""))
    time = at(evaluation.iteration_time_s)
    memory = at(evaluation.memory_total_bytes) / 2**30
    return f"{' '.join(words)}, {time:.2f} s, {memory:.0f} GiB"


def plan_search_table1() -> str:
    """Narayanan Table 1: the published plan by the engine, and the best plan the search finds in two spaces."""
    from dse.engines.plan_search import SearchSpace, search_plans
    from dse.engines.training import ClusterArrays, ModelArrays, evaluate_plans
    from dse.scenarios.shared.megatron import NARAYANAN_TABLE1, RUN_TABLE_1, published_plan
    from dse.specs.network import ClusterSpec

    catalog = default_catalog()
    lines = [
        "| model | GPUs | published TFLOP/s | published plan (engine): time, TFLOP/s, memory | best plan, full space "
        "| speed-up | best plan, 2021 space (full recompute, no ZeRO, no SP) | speed-up |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model_id, (t, p, gpus, batch, published_tflops) in NARAYANAN_TABLE1.items():
        micro, chunks, overlap = RUN_TABLE_1[model_id]
        spec = ClusterSpec(
            nodes=gpus // 8,
            gpus_per_node=8,
            accelerator=catalog.get("accelerators", "a100-80gb"),
            intra_node_link=catalog.get("interconnects", "nvlink3"),
            inter_node_link=catalog.get("interconnects", "ib-hdr"),
            inter_node_links_per_node=8,
        )
        cluster = ClusterArrays.from_spec(spec)
        model = ModelArrays.from_llm(catalog.get("llms", model_id))
        published = evaluate_plans(model=model, cluster=cluster, plan=published_plan(model_id))
        published_time = float(published.iteration_time_s)

        def best(
            cluster: Any = cluster,
            model: Any = model,
            batch: int = batch,
            gpus: int = gpus,
            overlap: Any = overlap,
            **space: Any,
        ) -> Any:
            return search_plans(
                model=model,
                cluster=cluster,
                global_batch_size=batch,
                sequence_length=2048,
                space=SearchSpace(node_counts=(gpus // 8,), overlap_grad_reduce=overlap, **space),
                top_k=1,
            ).top

        full = best()
        old = best(sequence_parallel=(0,), zero_stages=(0,), recompute=(2,), flash_attention=(0,))
        size = model_id.removeprefix("megatron-gpt-").upper().replace("1T", "1008.0B")
        plan = f"t{t} p{p} b{micro}" + (f" v{chunks}" if chunks > 1 else "")
        lines.append(
            f"| {size} | {gpus} | {published_tflops:.0f} | {plan}: {published_time:.2f} s, "
            f"{float(published.achieved_flops_per_gpu) / 1e12:.0f}, "
            f"{float(published.memory_total_bytes) / 2**30:.0f} GiB | {_searched_plan(full.plans, full.evaluation)} | "
            f"{published_time / float(full.evaluation.iteration_time_s[0]):.2f}x | "
            f"{_searched_plan(old.plans, old.evaluation)} | "
            f"{published_time / float(old.evaluation.iteration_time_s[0]):.2f}x |"
        )
    return "\n".join(lines) + "\n"


def _top_plan_words(row: dict[str, Any]) -> str:
    words = f"d{row['data_parallel']} t{row['tensor_parallel']} p{row['pipeline_parallel']}"
    if row["sequence_parallel"] == "megatron":
        words += " Megatron-SP"
    elif row["sequence_parallel"] in ("ring", "ulysses"):
        words += f" {SEQUENCE_PARALLEL_NAMES[row['sequence_parallel']]} x{row['sequence_parallel_degree']}"
    words += f", micro-batch {row['micro_batch_size']}, {row['pipeline_schedule'].replace('1f1b', '1F1B')}"
    return words


def plan_search_mapping() -> str:
    starts = "GPT-3 30B on 4 nodes"
    mapped = answer("plan_search", starts, search_effort="full").table("top_plans")[0]
    given = answer("plan_search", starts, search_effort="full", search_mapping=False).table("top_plans")[0]
    gain = 1 - mapped["iteration_time_s"] / given["iteration_time_s"]
    return wrap(
        "**Mapping** (`test_mapping_changes_the_time_on_an_uneven_cluster`, `..._even_cluster`; the example "
        "*GPT-3 30B on 4 nodes in two racks*): 4 DGX A100 nodes listed rack A, B, A, B; 25 GB/s per GPU inside a "
        "rack, 2.5 GB/s across; GPT-3 30B, batch 512, ZeRO 0-1. Without mapping (`search_mapping: false`) the "
        f"best plan is {_top_plan_words(given)}, {given['iteration_time_s']:.2f} s; with mapping the search puts "
        "each DP pair inside a rack (pipeline stages across racks) and picks "
        f"{_top_plan_words(mapped)}, {mapped['iteration_time_s']:.2f} s ({100 * gain:.1f}% faster; the test also "
        "checks that the same plan is slower on the given order). On an even cluster (all 25 GB/s) every order "
        "and five random permutations give identical times, equal to the nominal cluster without a matrix."
    )


def _short_setting(setting: str) -> str:
    found = re.match(r"(?P<model>.+?) on (?P<gpus>[\d,]+) (?P<gpu>\S+).*?batch (?P<batch>\d+)", setting)
    if not found:
        return setting
    return f"{found['model']}, {found['gpus']} {found['gpu']}s, batch {found['batch']}"


def plan_search_benchmark() -> str:
    bench = _results()["plan_search"]
    lines = [
        "| setting | candidates judged | well-formed (evaluated in full) | fit | wall (best of 3) | plans/s "
        "| scalar loop "
        "(extrapolated) | speed-up |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for case in bench["cases"]:
        lines.append(
            f"| {_short_setting(case['setting'])} | {n0(case['candidates_judged'])} | "
            f"{n0(case['valid_plans_evaluated'])} | {n0(case['fitting_plans'])} | {case['wall_s_best_of_3']:.2f} s | "
            f"{case['plans_per_s'] / 1e6:.1f} M | {1e3 * case['scalar_loop_s_per_plan']:.2f} ms/plan, "
            f"{n0(case['scalar_loop_extrapolated_s'])} s | {n0(case['speedup_vs_scalar_loop'])}x |"
        )
    valid = " and ".join(f"{case['valid_plans_per_s'] / 1e6:.2f} M/s" for case in bench["cases"])
    text = wrap(
        '(Measured on the 2-core development machine; timings vary with its load.) "Plans/s" counts every '
        "candidate the engine judged: validity bits for all in the broadcast grid, memory and time for the "
        "well-formed ones (the engine screens before computing); counted over well-formed plans only, the rate "
        f"is {valid}. The scalar loop's cost per plan swings with the machine's load and with the sample's share "
        "of invalid plans, which the engine screens early."
    )
    hetero = bench.get("heterogeneous")
    if hetero:
        given, mapped = hetero["given_order"], hetero["with_mapping"]
        text += "\n" + wrap(
            "Heterogeneous variant (same benchmark, key `heterogeneous`): the 175B case on its 128 nodes split into "
            "4 pods listed in a shuffled order, 25 GB/s per GPU inside a pod, 6 GB/s across (an illustrative "
            f"oversubscribed spine): {n0(given['candidates_judged'])} candidates; on the given order "
            f"{given['wall_s']:.2f} s, best {given['best_iteration_time_s']:.2f} s; with the mapping search "
            f"({mapped['node_orders_tried']} candidate orders, {mapped['engine_calls']} engine calls) "
            f"{mapped['wall_s']:.2f} s, best {mapped['best_iteration_time_s']:.2f} s: the mapping buys "
            f"{100 * (hetero['mapping_speedup'] - 1):.1f}%."
        )
    return "\n".join(lines) + "\n\n" + text


# -- docs/dashboard.md -------------------------------------------------------------------------------


def _validation_number(value: float | None) -> str:
    if value is None:
        return ""
    if float(value).is_integer() and abs(value) < 1e7:
        return f"{value:,.0f}"
    return f"{value:.4g}"


@cache
def validation_rows() -> list[dict[str, Any]]:
    """The Validation page's rows, as `GET /api/v1/validation` gives them (in-process, throwaway store)."""
    import tempfile

    from fastapi.testclient import TestClient

    from dse.api.app import create_app
    from dse.settings import Settings

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(database_url=f"sqlite:///{Path(folder) / 'store.sqlite3'}")
        with TestClient(create_app(settings)) as client:
            response = client.get("/api/v1/validation")
            response.raise_for_status()
            by_kind: dict[str, list[dict[str, Any]]] = response.json()
    return [row for rows in by_kind.values() for row in rows]


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|")


def dashboard_validation() -> str:
    """Per kind: how many published figures, how many within their tolerance, the mean |error|; then every miss."""
    rows = validation_rows()
    lines = [
        "| kind | published figures | within tolerance | known misses | mean abs. error |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind in dict.fromkeys(row["kind"] for row in rows):
        own = [row for row in rows if row["kind"] == kind]
        errors = [abs(row["relative_error"]) for row in own if row["relative_error"] is not None]
        mean = f"{100 * sum(errors) / len(errors):.1f}%" if errors else ""
        within = sum(1 for row in own if row["within_tolerance"])
        misses = sum(1 for row in own if row.get("known_miss"))
        lines.append(f"| {kind} | {len(own)} | {within} | {misses} | {mean} |")
    outside = [row for row in rows if row["within_tolerance"] is False or row.get("error")]
    lines += [
        "",
        f"{len(outside)} figures are outside their tolerance today, each a known miss "
        "(a strict xfail with its reason):",
        "",
        "| kind | quantity | published | engine | unit | error | tolerance |",
        "|---|---|---:|---:|---|---:|---|",
    ]
    for row in outside:
        error = "" if row["relative_error"] is None else f"{100 * row['relative_error']:+.1f}%"
        cells = [
            row["kind"],
            row["quantity"],
            _validation_number(row["published"]),
            _validation_number(row["engine"]),
            row["unit"] or "",
            error if not row.get("error") else f"error: {row['error']}",
            row["tolerance_label"],
        ]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


# -- published-figure records (every kind's `published_figures()`, as the Validation page has them) ----


@cache
def records(kind: str) -> dict[str, Any]:
    """The kind's Validation rows (one per published-figure record), by record key."""
    from dse.services.validation import validation_rows as kind_validation_rows

    return {row.key: row for row in kind_validation_rows(kind, default_catalog())}


def select(kind: str, pattern: str) -> list[Any]:
    """The kind's records whose key matches `pattern` (a regular expression, from the start), in record order."""
    return [row for key, row in records(kind).items() if re.match(pattern, key)]


def si(value: float | None, digits: int = 4) -> str:
    """A number with `digits` significant digits; large ones with an SI prefix (865.9 M, 1.229 T)."""
    if value is None:
        return "n/a"
    for power, prefix in ((12, "T"), (9, "G"), (6, "M"), (4, "k")):
        if abs(value) >= 10**power:
            scale = 10 ** (power if prefix != "k" else 3)
            return f"{value / scale:.{digits}g} {prefix}"
    return f"{value:.{digits}g}"


def pct(error: float | None) -> str:
    if error is None:
        return "n/a"
    if abs(error) < 1e-9:  # float rounding
        return "+0.0%"
    if abs(error) < 5e-4:  # a tiny error keeps its digits (0.001%, not 0.0%)
        return f"{100 * error:+.1g}%"
    return f"{100 * error:+.1f}%"


def _unit(unit: str | None) -> str:
    return f" {unit}" if unit else ""


def error_range(rows: list[Any]) -> str:
    errors = [row.relative_error for row in rows if row.relative_error is not None]
    if not errors:
        return "n/a"
    low, high = min(errors), max(errors)
    if max(abs(low), abs(high)) < 5e-5:
        return "exact"
    return pct(low) if pct(low) == pct(high) else f"{pct(low)} … {pct(high)}"


def records_table(kind: str, pattern: str, *, label: Callable[[Any], str] | None = None) -> str:
    """One line per matching record: what, published, engine, error, tolerance (a known miss says so)."""
    lines = ["| figure | published | engine | error | tolerance |", "| --- | --- | --- | --- | --- |"]
    for row in select(kind, pattern):
        error = f"error: {row.error}" if row.error else pct(row.relative_error)
        if row.known_miss:
            error += " (known miss)"
        cells = [
            label(row) if label else row.quantity,
            f"{si(row.published)}{_unit(row.unit)}",
            si(row.engine),
            error,
            row.tolerance_label,
        ]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


# -- README.md ---------------------------------------------------------------------------------------

#: The README's validation headline, one line per group of records: (what, kind, key pattern).
#: "{n}" in `what` becomes the number of records in the group. Records no group matches get a line
#: of their own kind at the end, so a new record is never left out.
README_GROUPS: list[tuple[str, str, str]] = [
    ("vidur Llama-2-7B layer linears, batch 1, A100 / H100", "inference", r"vidur-(a100|h100)-llama2-7b-1tok-tp1$"),
    (
        "vidur Llama-2-7B linears at 4096 tokens, share of peak FLOP/s, A100 / H100",
        "inference",
        r"vidur-.*-share-of-peak$",
    ),
    (
        "vidur early H100 Llama-2-13B ratios (64 over 1 token; TP1 over TP4)",
        "inference",
        r"vidur-early-.*-(over|tp1-over)",
    ),
    ("vidur H100 Llama-2-7B, 1–4096 tokens, TP 1–8 ({n} points)", "inference", r"vidur-h100-llama2-7b-(?!1tok-tp1$)"),
    ("vidur H100 Llama-2-70B (GQA), TP 1 and 4 ({n} points)", "inference", r"vidur-h100-llama2-70b-"),
    ("vidur A100 Llama-2-7B, 1–4096 tokens, TP 1–8 ({n} points)", "inference", r"vidur-a100-llama2-7b-(?!1tok-tp1$)"),
    ("vidur early per-GPU files, Llama-2-13B, out of sample ({n} points)", "inference", r"vidur-early-"),
    ("LLMCompass GPT-3 175B, 4×A100 TP4, per op ({n} ops)", "inference", r"llmcompass-.*-(?!layer$)[a-z_]+$"),
    ("LLMCompass GPT-3 175B, 4×A100 TP4, whole layer", "inference", r"llmcompass-.*-layer$"),
    ("NeuPIMs over GPU-only / NPU-only / naive NPU+PIM", "inference", r"neupims-over-"),
    ("NeuPIMs sub-batch interleaving crossover (batch)", "inference", r"neupims-interleaving-threshold$"),
    (
        "PIM derivations: NeuPIMs GEMV tile, Samsung HBM-PIM peak, GDDR6-AiM bandwidths",
        "inference",
        r"(neupims-pim-gemv-tile|samsung-|gddr6-)",
    ),
    ("Megatron-LM Table 1 (Narayanan SC'21), TFLOP/s per GPU, {n} rows", "training", r"narayanan-table1-"),
    ("Korthikanti Table 4, 22B layer fwd/bwd ({n} times)", "training", r"korthikanti-table4-"),
    (
        "Korthikanti Table 5, iteration time 22B/175B/530B/1T, full recompute and SP+selective",
        "training",
        r"korthikanti-table5-.*-(full-recompute|present-work)$",
    ),
    ("Korthikanti Table 5 speed-ups (SP+selective over full recompute)", "training", r"korthikanti-table5-.*-speedup$"),
    ("Korthikanti Fig. 1 activation memory per GPU, {n} configurations", "training", r"korthikanti-figure1-"),
    ("Korthikanti Fig. 7 activation memory as % of TP-only, {n} configurations", "training", r"korthikanti-figure7-"),
    ("Korthikanti 530B on 2240 A100s, MFU", "training", r"korthikanti-530b-"),
    (
        "Megatron-LM Table 2 (Narayanan SC'21), 175B/530B, PTD-P, TFLOP/s per GPU ({n} rows)",
        "training",
        r"narayanan-table2-[0-9a-z]+-ptdp-",
    ),
    (
        "Megatron-LM Table 2, ZeRO-3 without model parallelism (DeepSpeed 2021), TFLOP/s per GPU ({n} rows)",
        "training",
        r"narayanan-table2-.*-zero3-\d+$",
    ),
    ("Megatron-LM Table 2, ZeRO-3 over PTD-P at 1536 / 2240 GPUs", "training", r"narayanan-table2-.*-zero3-over-"),
    ("GPipe Table 3 (P100, 4 / 8 partitions over 2) relative throughput", "training", r"gpipe-"),
    ("Ring Self-Attention max batch vs tensor parallelism, 64 P100", "training", r"li2021-ring64-vs-tp-max-batch$"),
    (
        "Ring Self-Attention longest sequence vs tensor parallelism, 64 P100 ({n} settings)",
        "training",
        r"li2021-ring64-vs-tp-max-sequence-",
    ),
    ("SSDTrain activation-peak cut (micro-batch 1 / 2 / 4)", "training", r"ssdtrain-"),
    ("NeMo 24.12 H100 fp8 pre-training, tokens/s per GPU (Llama-2 7B / 70B, GPT-3 175B)", "training", r"nemo-2412-"),
    ("MosaicML llm-foundry MPT bf16 on H100 (FSDP), tokens/s per GPU ({n} rows)", "training", r"llm-foundry-h100-sxm-"),
    (
        "MosaicML llm-foundry MPT bf16 on A100 80GB (FSDP), tokens/s per GPU ({n} rows)",
        "training",
        r"llm-foundry-a100-",
    ),
    ("torchtitan Llama 3.1 8B bf16 FSDP on 500 W H100s, tokens/s per GPU (8 / 128 GPUs)", "training", r"torchtitan-"),
    ("OPT-175B fp16 FSDP x TP 8 on 992 A100 80GB, TFLOP/s per GPU (metaseq)", "training", r"opt-175b-"),
    (
        "Llama 3 405B at 128K context, CP 16 on 16,384 H100s: TFLOP/s per GPU / over the 8K row (Table 4)",
        "training",
        r"llama3-405b-",
    ),
    (
        "Mixture-of-experts training: DeepSeek-V3 H800 GPU-hours per trillion tokens / Megatron-Core Mixtral 8x7B "
        "TFLOP/s per H100",
        "training",
        r"(deepseek-v3-|mcore-moe-)",
    ),
    (
        "CaRL CARLA schedule (batch, minibatches, iterations, gradient steps)",
        "rl_scaling",
        r"carla_(batch_samples|minibatches_per_epoch|iterations|gradient_steps)$",
    ),
    ("CaRL wall time, 300M-sample run / 10M-sample tiny run", "rl_scaling", r"carla_(wall_time|tiny_run_wall_time)$"),
    ("PRES speed-up at 4× temporal batch", "temporal_batching", r"pres_"),
    ("Wikipedia dataset (users, interactions)", "temporal_batching", r"wikipedia_"),
    (
        "TensorRT-LLM on H100 in fp8, output tokens/s per GPU (Llama-2 7B / 70B, {n} settings)",
        "inference",
        r"trtllm-h100-fp8-.*-throughput$",
    ),
    (
        "TensorRT-LLM on H100 in fp8, first-token latency (Llama-2 7B / 70B)",
        "inference",
        r"trtllm-h100-fp8-.*-first-token$",
    ),
    (
        "DeepSeek-V3 with DP attention + EP over nodes, tokens/s per node (DeepSeek H800 decode EP144; SGLang H100 "
        "decode EP72 and prefill EP32)",
        "inference",
        r"(lmsys-large-ep-|deepseek-overview-)",
    ),
    ("SD 1.5 / 2.1 UNet and text-encoder parameters", "pruning", r"sd(15|21)_.*params$"),
    ("SD 2.1 UNet MACs per step, 512 / 768 px ({n} counts)", "pruning", r"(sd21_unet_macs|aptp_sd21_unet_macs)"),
    ("APTP latency ÷ SD 2.1 (768 px, A100; Base and Small, CC3M / COCO)", "pruning", r"aptp_.*_latency_ratio$"),
    ("SD 2.1 absolute latency per image (768 px, A100)", "pruning", r"aptp_sd21_latency_768px$"),
    (
        "SD 1.5 on A100 per software stack: s/image (fal) and it/s (diffusers), eager / compiled / TensorRT",
        "pruning",
        r"sd15_a100_",
    ),
]


def _grouped() -> list[tuple[str, list[Any]]]:
    groups: list[tuple[str, list[Any]]] = []
    taken: set[tuple[str, str]] = set()
    for what, kind, pattern in README_GROUPS:
        rows = [row for row in select(kind, pattern) if (kind, row.key) not in taken]
        if not rows:
            continue
        taken.update((kind, row.key) for row in rows)
        groups.append((what.replace("{n}", str(len(rows))), rows))
    for kind in KINDS:
        rest = [row for key, row in records(kind).items() if (kind, key) not in taken]
        if rest:
            groups.append((f"other published figures of `{kind}` ({len(rest)})", rest))
    return groups


def _published_cell(rows: list[Any]) -> str:
    unit = _unit(rows[0].unit) if len({row.unit for row in rows}) == 1 else ""
    values = [row.published for row in rows]
    if len(rows) <= 4:
        return " / ".join(si(value) for value in values) + unit
    return f"{si(min(values))}–{si(max(values))}{unit}"


def _engine_cell(rows: list[Any]) -> str:
    fine = [row for row in rows if not row.known_miss and not row.error]
    misses = [row for row in rows if row.known_miss]
    failed = [row for row in rows if row.error]
    parts = []
    if fine:
        text = error_range(fine)
        if text != "exact" and len(fine) <= 4:
            text = " / ".join(si(row.engine) for row in fine) + f" ({' / '.join(pct(r.relative_error) for r in fine)})"
        elif text != "exact":
            errors = [row.relative_error for row in fine if row.relative_error is not None]
            text += f", mean {pct(sum(errors) / len(errors))}"
        parts.append(text)
    if misses:
        parts.append(f"{len(misses)} known miss{'es' if len(misses) > 1 else ''} ({error_range(misses)})")
    if failed:
        parts.append(f"{len(failed)} failed to compute")
    return "; ".join(parts)


def _llama(errors: list[float]) -> str:
    worst = max(errors, default=0.0)
    return "Llama exact" if worst == 0 else f"Llama ≤ {100 * worst:.2f}%"


def readme_validation() -> str:
    """The README's headline: one line per group of published-figure records."""
    from dse.engines.transformer import llm_parameter_breakdown

    llms = default_catalog().items("llms")
    errors = {spec.id: llm_parameter_breakdown(spec).total / spec.published_params_count - 1 for spec in llms}
    llama = [abs(error) for name, error in errors.items() if name.startswith("llama")]
    lines = [
        "| what | published | engine (error) | tolerance |",
        "| --- | --- | --- | --- |",
        f"| LLM parameter counts, {len(llms)} presets | model cards / papers | "
        f"≤ {100 * max(abs(e) for e in errors.values()):.2f}% ({_llama(llama)}) | "
        "0.5% or the publication's rounding |",
    ]
    for what, rows in _grouped():
        labels = list(dict.fromkeys(row.tolerance_label for row in rows))
        tolerance = "; ".join(labels) if len(labels) <= 2 else "per figure (the Validation page lists each)"
        cells = [what, _published_cell(rows), _engine_cell(rows), tolerance]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    lines += [
        "| fp16 MHA decode attention intensity | ~1 FLOP/byte | closed form, tested for B = 1..1024 | 2% |",
        "| Korthikanti activation formulas, GPipe bubble, Ulysses constant volume | closed forms | exact | exact |",
    ]
    return "\n".join(lines) + "\n"


def readme_known_misses() -> str:
    """How many records are known misses, and each reason once with the records it covers."""
    misses = [(kind, row) for kind in KINDS for row in records(kind).values() if row.known_miss]
    by_reason: dict[str, list[tuple[str, Any]]] = {}
    for kind, row in misses:
        by_reason.setdefault(row.known_miss, []).append((kind, row))
    lines = [
        f"Known misses are kept visible as strict `xfail`s with their reason ({len(misses)} of "
        f"{sum(len(records(kind)) for kind in KINDS)} published-figure records):",
        "",
    ]
    group_of = {(row.key, id(row)): what for what, group in _grouped() for row in group}
    for reason, rows in by_reason.items():
        whats = "; ".join(dict.fromkeys(group_of[row.key, id(row)] for _, row in rows))
        count = f"{len(rows)} figure{'s' if len(rows) > 1 else ''}"
        lines.append(f"- {whats}: {count}, {error_range([row for _, row in rows])}. {reason[:1].upper()}{reason[1:]}")
    return "\n".join(lines) + "\n"


def _benchmark_summary() -> Any:
    """benchmarks/summary.py, loaded from its file (benchmarks/ is not a package of dse)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_benchmarks_summary", ROOT / "benchmarks" / "summary.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _results() -> dict[str, Any]:
    results: dict[str, Any] = json.loads(RESULTS.read_text())
    return results


def readme_speed() -> str:
    """benchmarks/results.json as the README's Speed table (the rows `python -m benchmarks.summary` prints)."""
    rows = _benchmark_summary().rows(_results())
    lines = ["| benchmark | measured |", "| --- | --- |"]
    lines += [f"| {name} | {figure} |" for name, figure in rows if not name.startswith("HTTP load test")]
    return "\n".join(lines) + "\n"


def readme_validation_mae() -> str:
    """The mean absolute error per engine and per accelerator/dtype group (`dse validation-summary`)."""
    from dse.scenarios.registry import KINDS as REGISTERED
    from dse.services.validation import summary_table, validation_summary

    rows = validation_summary(default_catalog())
    held = {row.kind for row in rows}
    borrowed = [
        f"`{name}` (its bands come from {kind.validated_by})" if kind.validated_by else f"`{name}`"
        for name, kind in REGISTERED.items()
        if name not in held
    ]
    return summary_table(rows) + (f"\nNo published figures of their own: {', '.join(borrowed)}.\n" if borrowed else "")


def readme_speed_peer() -> str:
    cases = _results().get("plan_search", {}).get("cases", [])
    scalar = [1.0 / case["scalar_loop_s_per_plan"] for case in cases]
    rates = [case["plans_per_s"] / 1e6 for case in cases]
    if not cases:  # pragma: no cover - no plan-search benchmark recorded
        return "The best analytical peer evaluates about 600 training plans per second on one core.\n"
    return wrap(
        "The best analytical peer evaluates about 600 training plans per second on one core; the engine's own scalar\n"
        f"loop (one plan per call) manages ~{n0(min(scalar))}–{n0(max(scalar))}, and the vectorised plan search "
        f"{min(rates):.1f}–{max(rates):.1f} million.\n"
    )


BLOCKS: dict[str, Callable[[], str]] = {
    "dashboard.validation": dashboard_validation,
    "inference.real-hardware": inference_real_hardware,
    "inference.neupims": inference_neupims,
    "inference.interleaving": inference_interleaving,
    "inference.other-checks": inference_other_checks,
    "inference.benchmark": inference_benchmark,
    "inference.records": inference_records,
    "inference.neupims-sources": inference_neupims_sources,
    "training.validation": training_validation,
    "training.table1": training_table1,
    "training.table4": training_table4,
    "training.ssdtrain": training_ssdtrain,
    "training.benchmark": training_benchmark,
    "training.further": training_further,
    "training.figure1-states": training_figure1_states,
    "pruning.counts": pruning_counts,
    "pruning.aptp": pruning_aptp,
    "pruning.blocks": pruning_blocks,
    "pruning.examples": pruning_examples,
    "pruning.benchmarks": pruning_benchmarks,
    "rl.policy": rl_policy,
    "rl.step-time": rl_step_time,
    "rl.validation": rl_validation,
    "rl.carl": rl_carl,
    "gnn.fixed-cost": gnn_fixed_cost,
    "gnn.pres-rows": gnn_pres_rows,
    "gnn.datasets": gnn_datasets,
    "gnn.discussion": gnn_discussion,
    "rl-gnn.benchmarks": rl_gnn_benchmarks,
    "plan-search.quick": plan_search_quick,
    "plan-search.table1": plan_search_table1,
    "plan-search.mapping": plan_search_mapping,
    "plan-search.benchmark": plan_search_benchmark,
    "readme.validation": readme_validation,
    "readme.known-misses": readme_known_misses,
    "readme.validation-mae": readme_validation_mae,
    "readme.speed": readme_speed,
    "readme.speed-peer": readme_speed_peer,
    "questions.table": questions_table,
    "questions.q1-setting": q1_setting,
    "questions.q1-answer": q1_answer,
    "questions.q1-limits": q1_limits,
    "questions.q2-answer": q2_answer,
    "questions.q2-ssds": q2_with_ssds,
    "questions.q3-answer": q3_answer,
    "questions.q4-ppo": q4_ppo,
    "questions.q4-temporal": q4_temporal,
    "questions.q5-answer": q5_answer,
}


# -- rewriting the files -----------------------------------------------------------------------------


def render(text: str, *, path: str = "") -> tuple[str, list[str]]:
    """`text` with every generated block rewritten; also the names of the blocks it holds."""
    out: list[str] = []
    names: list[str] = []
    position = 0
    for begin in BEGIN.finditer(text):
        if begin.start() < position:
            raise ValueError(f"{path}: generated block {begin['name']!r} starts inside another one")
        end = text.find(END, begin.end())
        if end < 0:
            raise ValueError(f"{path}: generated block {begin['name']!r} has no {END!r}")
        name = begin["name"]
        if name not in BLOCKS:
            raise ValueError(f"{path}: no generator for block {name!r} (known: {', '.join(sorted(BLOCKS))})")
        names.append(name)
        out.append(text[position : begin.end()])
        out.append(BLOCKS[name]())
        position = end
    out.append(text[position:])
    return "".join(out), names


def doc_files() -> list[Path]:
    """The files that may hold generated blocks: README.md and docs/*.md."""
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def block_names(path: Path) -> list[str]:
    """The generated blocks `path` holds (without evaluating anything)."""
    return [found["name"] for found in BEGIN.finditer(path.read_text(encoding="utf-8"))]


def stale(path: Path) -> str | None:
    """Why `path` differs from what this module writes, or None when it is current."""
    text = path.read_text(encoding="utf-8")
    rendered, names = render(text, path=str(path.relative_to(ROOT)))
    if rendered == text:
        return None
    return f"{path.relative_to(ROOT)}: blocks {', '.join(names)} differ from the engines' numbers"


def regenerate(*, check: bool) -> list[str]:
    """Rewrites (or, with check, only compares) every doc; returns the problems found."""
    problems: list[str] = []
    for path in doc_files():
        if not block_names(path):
            continue
        if check:
            problem = stale(path)
            if problem:
                problems.append(problem)
        else:
            path.write_text(render(path.read_text(encoding="utf-8"), path=str(path))[0], encoding="utf-8")
    missing = sorted(set(BLOCKS) - {name for path in doc_files() for name in block_names(path)})
    if missing:
        problems.append(f"blocks no doc holds: {', '.join(missing)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dse.docs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 when a doc is stale")
    args = parser.parse_args(argv)
    problems = regenerate(check=args.check)
    for problem in problems:
        print(problem, file=sys.stderr)
    if args.check and problems:
        print("run `python -m dse.docs` to rewrite them", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
