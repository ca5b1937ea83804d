"""Published figures beside a plan search: on a Narayanan et al. (SC'21) Table 1 setting, the plan
Megatron-LM published, evaluated by the same engine, beside the best plan found.

The plan search's own claims (the published plan is a candidate and fits; the best plan found is at
least as fast by the engine) are behaviour tests (tests/engines/test_plan_search_validation.py); the
published throughput of those plans is the training kind's record (kinds/training/published.py), so
this kind holds no records of its own.
"""

from __future__ import annotations

import numpy as np

from dse.engines.plan_search.search import RankedPlans
from dse.engines.training import ModelArrays, evaluate_plans
from dse.scenarios.base import PublishedComparison, PublishedFigure, Tolerance
from dse.scenarios.kinds.plan_search.inputs import ResolvedPlanSearch
from dse.scenarios.shared.megatron import (
    MEGASCALE,
    MEGASCALE_175B_ROWS,
    NARAYANAN_TABLE1,
    RUN_TABLE_1,
    RUN_TABLE_1_SOURCE,
    TABLE1_SOURCE,
    published_plan,
    sc21_cluster,
)
from dse.scenarios.shared.training_device import training_cluster

PUBLISHED: tuple[PublishedFigure, ...] = ()

#: What 175B-class GPT runs on about a thousand A100s reached (TFLOP/s per GPU, recomputation counted):
#: (source, figure, GPUs it ran on).
GPT3_175B_A100_RUNS = (
    (
        "Zhang et al. 2022, OPT: Open Pre-trained Transformer Language Models (arXiv 2205.01068), Section 1: "
        "OPT-175B on 992 80GB A100s with FSDP and Megatron-LM tensor parallelism, up to 147 TFLOP/s per GPU",
        147.0,
        992,
    ),
    (
        "Narayanan et al., SC'21 (arXiv:2104.04473), Table 2: GPT-3 175B, PTD-P (t 8 x p 12), batch 1536, on 768 A100s",
        149.0,
        768,
    ),
    (
        "Narayanan et al., SC'21 (arXiv:2104.04473), Table 2: GPT-3 175B, PTD-P (t 8 x p 12), batch 1536, "
        "on 1536 A100s",
        141.0,
        1536,
    ),
)


#: MFU a 175B GPT reached on 512 and 1,024 A100s at batch 768 (1.5 and 0.75 sequences per GPU; the default
#: plan-search example runs 1.5): (system, GPUs, MFU, where printed). Megatron-LM's rows are the training kind's
#: validation records (MEGASCALE_175B_ROWS); MegaScale adds the parallel transformer block, sliding window
#: attention, TP/PP/DP communication overlap, fused operators and LAMB (its Table 3) to Megatron-LM.
MEGASCALE_175B_MFU = (
    *(
        ("Megatron-LM (commit 285068c8)", gpus, mfu, where)
        for batch, gpus, mfu, where in MEGASCALE_175B_ROWS
        if batch == 768 and gpus in (512, 1024)
    ),
    ("MegaScale", 512, 0.635, "Table 2"),
    ("MegaScale", 1024, 0.590, "Table 2"),
)


def gpt3_175b_context(r: ResolvedPlanSearch, top: RankedPlans) -> list[PublishedComparison]:
    """GPT-3 175B on 512-2048 A100s: what published runs reached (TFLOP/s per GPU; MegaScale's MFU), beside
    the best plan found (context: other plans and software, so not a check of the engine)."""
    if r.model.id != "gpt3-175b" or not r.cluster.accelerator.id.startswith("a100") or not len(top):
        return []
    if not 512 <= r.cluster.gpus <= 2048:
        return []
    engine = float(top.evaluation.achieved_flops_per_gpu[0]) / 1e12
    return [
        PublishedComparison.of(
            quantity=f"achieved TFLOP/s per GPU, a published 175B run on {gpus} A100s",
            published=figure,
            engine=engine,
            unit="TFLOP/s",
            tolerance=Tolerance.within(0.25),
            source=source,
            note="the engine's figure is the best plan found here; the published run used its own plan and "
            "software, so this is context: where the engine's optimism lies (mostly compute priced at the "
            "calibrated GEMM rate, without launch gaps or kernel inefficiencies of a real run)",
            role="context",
        )
        for source, figure, gpus in GPT3_175B_A100_RUNS
    ] + [
        PublishedComparison.of(
            quantity=f"MFU, {system} training a 175B GPT on {gpus} Ampere GPUs at batch 768",
            published=mfu,
            engine=float(top.evaluation.model_flops_utilization[0]),
            unit="fraction",
            tolerance=Tolerance.within(0.25),
            source=f"{MEGASCALE}, {where} (175B: h 12288, 96 layers, TP 8 x PP 8, 6 interleaved stages, batch 768)",
            note="context: the best plan found here against a published plan and software on a like cluster; "
            "MegaScale's MFU bounds what a well-optimised Megatron-LM reaches at this scale",
            role="context",
        )
        for system, gpus, mfu, where in MEGASCALE_175B_MFU
    ]


#: What whole training steps on A100 80GB reached with PyTorch FSDP (ZeRO-3 over 8 GPUs), FlashAttention and bf16:
#: (model, sequence, activation checkpointing, MFU or HFU, fraction of the 312 TFLOP/s peak). HFU counts the
#: recomputed forward (4 passes over 3); both count no norms, activations or residuals.
LLM_FOUNDRY_A100_UTILIZATION_SOURCE = (
    "mosaicml/llm-foundry scripts/train/benchmarking/README.md @ 061f2c7ce64e655100286584a7629e2a09f827ba, table "
    "'A100 80GB with 1600 Gbps node-node interconnect (RoCE)', columns MFU and HFU (8 GPUs, FULL_SHARD, amp_bf16)"
)
LLM_FOUNDRY_A100_UTILIZATION: tuple[tuple[str, int, bool, str, float], ...] = (
    ("MPT-7B", 2048, False, "MFU", 0.6423),
    ("MPT-13B", 2048, False, "MFU", 0.5957),
    ("MPT-13B", 1024, True, "HFU", 0.7930),
    ("MPT-30B", 2048, True, "HFU", 0.7374),
)


def a100_utilization_context(r: ResolvedPlanSearch, top: RankedPlans) -> list[PublishedComparison]:
    """A dense model searched on A100s in 16-bit: the best MFU and HFU published for whole training steps on A100s
    (llm-foundry), beside the best plan's (context: other models, plans and software; issue #13: an MFU above
    these is not beyond what the part sustains when the plan runs wider GEMMs under fused kernels)."""
    if not r.cluster.accelerator.id.startswith("a100") or r.dtype == "fp8" or r.model.num_experts or not len(top):
        return []
    peak = r.cluster.accelerator.peak_for(r.dtype)
    mfu = float(top.evaluation.model_flops_utilization[0])
    hfu = float(top.evaluation.achieved_flops_per_gpu[0]) / peak  # executed FLOP, recomputation counted
    names = {"MFU": "model FLOPs utilization", "HFU": "hardware FLOPs utilization (recomputation counted)"}
    return [
        PublishedComparison.of(
            quantity=f"{names[measure]}, {model} at sequence {seq} on 8 A100 80GB (FSDP, FlashAttention"
            + (", activation checkpointing)" if checkpointing else ")"),
            published=value,
            engine=mfu if measure == "MFU" else hfu,
            unit="fraction",
            tolerance=Tolerance.within(0.25),
            source=LLM_FOUNDRY_A100_UTILIZATION_SOURCE,
            note="context: the best plan found here against whole training steps of another model, plan and "
            "software on the same part; the engine's GEMMs stay below the part's maximum achievable matmul rate "
            "(tests/engines/test_stack_device.py)",
            role="context",
        )
        for model, seq, checkpointing, measure, value in LLM_FOUNDRY_A100_UTILIZATION
    ]


def published_comparisons(r: ResolvedPlanSearch, top: RankedPlans) -> list[PublishedComparison]:
    """Narayanan et al. SC'21 Table 1: the published plan on the same setting, beside the best found;
    for GPT-3 175B on about a thousand A100s, what published runs reached."""
    context = gpt3_175b_context(r, top) + a100_utilization_context(r, top)
    row = NARAYANAN_TABLE1.get(r.model.id)
    if row is None or not len(top):
        return context
    t, p, gpus, batch, published = row
    if (gpus, batch, r.sequence_length_tokens) != (r.cluster.gpus, r.global_batch_size, 2048):
        return context
    micro, chunks, _ = RUN_TABLE_1[r.model.id]
    evaluation = evaluate_plans(
        model=ModelArrays.from_llm(r.model),
        cluster=sc21_cluster(training_cluster(r.cluster, r.dtype, r.software_stack, r.kernel_fits or {})),
        plan=published_plan(r.model.id),
    )
    fits = bool(np.asarray(evaluation.fits).reshape(-1)[0])
    published_time = float(np.asarray(evaluation.iteration_time_s).reshape(-1)[0])
    best_time = float(top.evaluation.iteration_time_s[0])
    plan = f"t {t} x p {p} x dp {gpus // (t * p)}, micro-batch {micro}" + (f", {chunks} chunks" if chunks > 1 else "")
    source = f"{TABLE1_SOURCE}; micro-batch, chunks and DDP from {RUN_TABLE_1_SOURCE}"
    return [
        PublishedComparison.of(
            quantity="achieved TFLOP/s per GPU of the published plan",
            published=published,
            engine=float(np.asarray(evaluation.achieved_flops_per_gpu).reshape(-1)[0]) / 1e12,
            unit="TFLOP/s",
            tolerance=Tolerance.within(0.12),
            source=source,
            note=f"published plan: {plan}; {'fits' if fits else 'does not fit'} in GPU memory by the engine",
        ),
        PublishedComparison.of(
            quantity="iteration time of the best plan found (engine)",
            published=None,
            published_text=f"the published plan ({plan}): {published_time:.4g} s per iteration by the engine",
            engine=best_time,
            unit="s",
            source=source,
            note=f"best plan found / published plan = {best_time / published_time:.3f} (both by the engine)",
            role="context",
        ),
        *context,
    ]
