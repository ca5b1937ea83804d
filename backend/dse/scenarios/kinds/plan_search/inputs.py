"""Inputs of a plan search: the model, the cluster, the batch and the space of plans to judge;
the resolved tree (an engine `SearchSpace`); `resolve` with its rules."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

import numpy as np
from pydantic import Field

from dse.catalog import Catalog
from dse.catalog.calibration import KernelFit, load_fits
from dse.engines.plan_search import SearchSpace, count_candidates
from dse.engines.plan_search.search import CHUNK_PLANS
from dse.engines.training.codes import (
    CONTEXT_PARALLEL_EXCHANGE_CODES,
    OFFLOAD_CODES,
    RECOMPUTE_CODES,
    SCHEDULE_CODES,
    SEQUENCE_PARALLEL_CODES,
    ZERO3_RUNTIME_CODES,
)
from dse.scenarios.base import InputError, StrictModel, Work, grid_points
from dse.scenarios.presets import preset_or_inline
from dse.scenarios.shared.bounds import MAX_GLOBAL_BATCH, MAX_NODES, MAX_SEQUENCE_TOKENS
from dse.scenarios.shared.cluster import ClusterInputs, resolve_cluster
from dse.scenarios.shared.dense_training import dense_model_for_training
from dse.scenarios.shared.training_device import TrainingDtype, check_precision, dtype_field, software_stack_field
from dse.specs.llm import LLMSpec
from dse.specs.network import ClusterSpec
from dse.specs.stacks import SoftwareStackSpec

SequenceParallelName = Literal["none", "megatron", "ring", "ulysses"]
RecomputeName = Literal["none", "selective", "full"]
ScheduleName = Literal["gpipe", "1f1b", "interleaved"]
OffloadName = Literal["none", "adaptive", "all"]
SearchEffort = Literal["full", "quick"]
#: Node-swap proposals of the mapping hill-climb, per effort (the engine's default for a full search).
MAPPING_STEPS: dict[str, int] = {"full": 48, "quick": 8}


class SearchSpaceInputs(StrictModel):
    """The space of plans to judge. Defaults are written out (not factories) so the schema, and the
    dashboard's form, show them."""

    sequence_parallel: list[SequenceParallelName] = Field(
        list(get_args(SequenceParallelName)), min_length=1, title="Sequence parallelism"
    )
    zero_stages: list[Annotated[int, Field(ge=0, le=3)]] = Field(
        default_factory=lambda: [0, 1, 2, 3], min_length=1, max_length=4, title="ZeRO stages"
    )
    recompute: list[RecomputeName] = Field(
        default_factory=lambda: list(get_args(RecomputeName)), min_length=1, title="Recomputation"
    )
    flash_attention: list[bool] = Field(
        [False, True],
        min_length=1,
        title="FlashAttention",
        description="Attention kernels tried (FlashAttention or not).",
    )
    pipeline_schedules: list[ScheduleName] = Field(
        list(get_args(ScheduleName)), min_length=1, title="Pipeline schedules"
    )
    activation_offload: list[OffloadName] = Field(
        list(get_args(OffloadName)),
        min_length=1,
        title="Activation offload",
        description="Offload modes tried when the cluster has SSDs (only 'none' otherwise).",
    )
    max_virtual_stages: int = Field(
        8, ge=1, le=64, title="Most virtual stages", description="Most model chunks per GPU (interleaved)."
    )
    max_micro_batch_size: int | None = Field(
        None,
        ge=1,
        le=MAX_GLOBAL_BATCH,
        title="Largest micro-batch",
        description="Largest micro-batch tried (none: the batch).",
    )
    node_counts: list[Annotated[int, Field(ge=1, le=MAX_NODES)]] | None = Field(
        None,
        min_length=1,
        max_length=64,
        title="Node counts",
        description="Cluster sizes in nodes a plan may use (none: powers of two, halvings and the whole cluster).",
    )
    overlap_grad_reduce: bool = Field(
        True,
        title="Overlap gradient reduce",
        description="The gradient reduction under the backward and, for ZeRO-1, the updated weights' all-gather "
        "under the next forward (Megatron-Core overlap_grad_reduce and overlap_param_gather, set together as "
        "NVIDIA's recipes do).",
    )
    tp_comm_overlap: bool = Field(
        False,
        title="Overlap TP communication",
        description="Megatron-LM --tp-comm-overlap: TP collectives split into tiles under the adjacent GEMMs.",
    )
    expert_parallel: list[Annotated[int, Field(ge=1, le=4096)]] | None = Field(
        None,
        min_length=1,
        max_length=64,
        title="Expert parallelism",
        description="EP degrees tried for a mixture-of-experts model (none: every divisor of its experts that "
        "divides data x context parallelism); a dense model has EP 1.",
    )
    expert_comm_overlap: bool = Field(
        False,
        title="Overlap EP all-to-alls",
        description="MoE token dispatch and combine under another micro-batch's compute (DeepSeek-V3's DualPipe, "
        "Megatron-Core --overlap-moe-expert-parallel-comm), for every plan.",
    )
    zero3_runtime: Literal["fsdp", "deepspeed-2021", "fsdp-composer", "fairscale-2021"] = Field(
        "fsdp",
        title="ZeRO-3 runtime",
        description="How ZeRO-3 plans gather parameters: PyTorch FSDP (one flat parameter per layer, prefetched) or "
        "DeepSpeed ZeRO-3 as of 2021 (one list all-gather per weight tensor, no prefetch above 5e7 elements) or "
        "FSDP as Composer 0.16 configures it (backward gathers issued after the previous layer's gradients: "
        "backward_prefetch BACKWARD_POST; recomputation inside each unit) or FairScale FSDP of 2021 (all-gathers "
        "and reduce-scatters on one process group: each backward gather waits for the previous layer's "
        "reduce-scatter).",
    )
    context_parallel: list[Literal["p2p", "all-gather"]] = Field(
        [],
        max_length=2,
        title="Context parallelism",
        description="K/V exchanges of context parallelism tried (every CP degree >= 2 that divides the GPUs left "
        "beside TP and PP, with no sequence parallelism or Megatron-SP); empty: no context parallelism.",
    )
    uneven_stages: bool = Field(
        False,
        title="Uneven pipeline stages",
        description="Also try each pipeline of 3+ stages with lighter first and last stages (the others take "
        "ceil((layers+2)/stages) layers; Llama 3 405B: 7 / 8 / 7).",
    )


class PlanSearchInputs(StrictModel):
    model: str | LLMSpec = Field("gpt3-175b", description="LLM preset id or inline spec.")
    cluster: ClusterInputs = Field(default_factory=lambda: ClusterInputs(nodes=128))
    global_batch_size: int = Field(1536, ge=1, le=MAX_GLOBAL_BATCH, description="Sequences per iteration.")
    sequence_length_tokens: int = Field(2048, ge=1, le=MAX_SEQUENCE_TOKENS)
    dtype: TrainingDtype = dtype_field()
    software_stack: str | SoftwareStackSpec | None = software_stack_field()
    space: SearchSpaceInputs = Field(default_factory=SearchSpaceInputs, title="Search space")
    search_mapping: bool = Field(True, description="Search the node mapping on a measured heterogeneous cluster.")
    top_k: int = Field(10, ge=1, le=50, description="Plans listed.")
    search_effort: SearchEffort = Field(
        "full",
        description="'full' judges every candidate; 'quick' a coarser subset (powers-of-two micro-batches and "
        "chunks, the largest cluster size only, a shorter mapping climb) for a first answer in tens of ms.",
        # The dashboard shows this value's answer first, then the document's own (progressive refinement).
        json_schema_extra={"x-quick-first": "quick"},
    )


@dataclass(frozen=True)
class ResolvedPlanSearch:
    model: LLMSpec
    cluster: ClusterSpec
    global_batch_size: int
    sequence_length_tokens: int
    dtype: str
    space: SearchSpace
    search_mapping: bool
    top_k: int
    search_effort: str
    #: What the user gave for the model and the cluster, to write training documents with.
    model_input: Any
    cluster_input: dict[str, Any]
    software_stack: SoftwareStackSpec | None = None
    kernel_fits: dict[str, KernelFit] | None = None
    #: What the user gave for the stack (a preset id, an inline spec as JSON, or None).
    software_stack_input: Any = None


def _codes(names: Sequence[str], table: dict[str, int]) -> tuple[int, ...]:
    return tuple(sorted({int(table[n]) for n in names}))


def resolve(inputs: PlanSearchInputs, catalog: Catalog) -> ResolvedPlanSearch:
    """The cluster and model as a training scenario resolves them (shared code), the space as engine codes."""
    c = inputs.cluster
    s = inputs.space
    cluster = resolve_cluster(c, catalog)
    check_precision(cluster.accelerator, inputs.dtype)
    stack = (
        None
        if inputs.software_stack is None
        else preset_or_inline(catalog, "stacks", inputs.software_stack, "software_stack")
    )
    model: LLMSpec = dense_model_for_training(preset_or_inline(catalog, "llms", inputs.model, "model"))
    if any(z not in (0, 1, 2, 3) for z in s.zero_stages):
        raise InputError("space.zero_stages", "ZeRO stages are 0, 1, 2 or 3")
    if s.node_counts is not None and not any(1 <= n <= c.nodes for n in s.node_counts):
        raise InputError("space.node_counts", f"give at least one node count between 1 and {c.nodes}")
    if (c.ssd is None or c.ssds_per_node == 0) and set(s.activation_offload) != {"none"}:
        offload: Sequence[str] = ("none",)  # no drives: offload is not a choice here
    else:
        offload = s.activation_offload
    quick = inputs.search_effort == "quick"
    node_counts = None if s.node_counts is None else tuple(s.node_counts)
    if quick:  # the largest cluster size allowed: where the fastest plans usually are
        node_counts = (c.nodes,) if node_counts is None else (max(n for n in node_counts if n <= c.nodes),)
    flash = sorted({int(f) for f in s.flash_attention})
    schedules = _codes(s.pipeline_schedules, SCHEDULE_CODES)
    if quick:  # FlashAttention (fused, no stored scores) over unfused; 1F1B over GPipe (same bubble, less memory)
        flash = flash[-1:]
        if int(SCHEDULE_CODES["1f1b"]) in schedules:
            schedules = tuple(k for k in schedules if k != int(SCHEDULE_CODES["gpipe"]))
    space = SearchSpace(
        sequence_parallel=_codes(s.sequence_parallel, SEQUENCE_PARALLEL_CODES),
        zero_stages=tuple(sorted(set(s.zero_stages))),
        recompute=_codes(s.recompute, RECOMPUTE_CODES),
        flash_attention=tuple(flash),
        schedules=schedules,
        offload=_codes(offload, OFFLOAD_CODES),
        max_virtual_stages=s.max_virtual_stages,
        max_micro_batch_size=s.max_micro_batch_size,
        node_counts=node_counts,
        overlap_grad_reduce=s.overlap_grad_reduce,
        tp_comm_overlap=s.tp_comm_overlap,
        zero3_runtime=int(ZERO3_RUNTIME_CODES[s.zero3_runtime]),
        powers_of_two_only=quick,
        context_parallel_exchanges=_codes(s.context_parallel, CONTEXT_PARALLEL_EXCHANGE_CODES),
        uneven_stages=s.uneven_stages,
        expert_parallel=None if s.expert_parallel is None else tuple(sorted(set(s.expert_parallel))),
        expert_comm_overlap=s.expert_comm_overlap,
    )
    model_input = inputs.model if isinstance(inputs.model, str) else dataclasses.asdict(inputs.model)
    return ResolvedPlanSearch(
        model=model,
        cluster=cluster,
        global_batch_size=inputs.global_batch_size,
        sequence_length_tokens=inputs.sequence_length_tokens,
        dtype=inputs.dtype,
        space=space,
        search_mapping=inputs.search_mapping,
        top_k=inputs.top_k,
        search_effort=inputs.search_effort,
        model_input=model_input,
        cluster_input=c.model_dump(mode="json"),
        software_stack=stack,
        kernel_fits=load_fits(catalog.root),
        software_stack_input=(
            inputs.software_stack
            if inputs.software_stack is None or isinstance(inputs.software_stack, str)
            else dataclasses.asdict(inputs.software_stack)
        ),
    )


#: Bytes one plan of a chunk holds while the engine judges it (~50 float64 result arrays and their terms).
BYTES_PER_CHUNK_PLAN = 1200.0


def search_work(r: ResolvedPlanSearch) -> Work:
    """Plans judged (candidates x node orders tried on the grid, twice with the offload comparison,
    once per point of a sweep), counted from the space without building the grid; the driver is the
    input that grows it most: the cluster's nodes, the batch (its divisors are the micro-batches) or
    the space itself."""
    nodes, gpus_per_node = int(np.max(r.cluster.nodes)), int(np.max(r.cluster.gpus_per_node))
    has_ssd = r.cluster.ssd is not None and float(np.max(r.cluster.ssds_per_node)) > 0
    layouts, inner = count_candidates(
        space=r.space,
        nodes=nodes,
        gpus_per_node=gpus_per_node,
        global_batch_size=int(np.max(r.global_batch_size)),
        num_layers=int(np.max(r.model.num_layers)),
        has_ssd=has_ssd,
        num_experts=int(np.max(r.model.num_experts)),
    )
    mapped = r.cluster.node_pair_bandwidth_bytes_per_s is not None and r.search_mapping
    orders = 3 if mapped and r.search_effort == "full" else 1
    searches = 2 if has_ssd and any(code != OFFLOAD_CODES["none"] for code in r.space.offload) else 1
    points = grid_points(r)
    plans = float(layouts) * float(inner) * orders * searches * points
    driver = "axes" if points > 1 else "cluster.nodes" if layouts >= inner else "global_batch_size"
    peak = min(float(layouts) * float(inner), CHUNK_PLANS) * BYTES_PER_CHUNK_PLAN
    return Work(cells=plans, peak_bytes=peak, driver=driver, heavy=True, unit="plans")
