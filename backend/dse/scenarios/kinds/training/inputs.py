"""Inputs of a training scenario: the plan (parallel degrees, ZeRO, recomputation, schedule, offload)
on a cluster; the resolved tree the engine reads; `resolve` with its cross-field rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field

from dse.catalog import Catalog
from dse.catalog.calibration import KernelFit, load_fits
from dse.engines.training import ClusterArrays, ModelArrays, PlanArrays, describe_reasons, plan_reasons
from dse.engines.training.codes import (
    CONTEXT_PARALLEL_EXCHANGE_CODES,
    OFFLOAD_CODES,
    RECOMPUTE_CODES,
    SCHEDULE_CODES,
    SEQUENCE_PARALLEL_CODES,
    ZERO3_RUNTIME_CODES,
)
from dse.scenarios.base import InputError, StrictModel
from dse.scenarios.presets import preset_or_inline
from dse.scenarios.shared.bounds import MAX_CLUSTER_GPUS, MAX_GLOBAL_BATCH, MAX_SEQUENCE_TOKENS
from dse.scenarios.shared.cluster import ClusterInputs, resolve_cluster, resolve_ssd
from dse.scenarios.shared.dense_training import dense_model_for_training
from dse.scenarios.shared.training_device import (
    TrainingDtype,
    check_precision,
    dtype_field,
    software_stack_field,
    training_cluster,
)
from dse.specs.llm import LLMSpec
from dse.specs.network import ClusterSpec
from dse.specs.stacks import SoftwareStackSpec


class TrainingInputs(StrictModel):
    model: str | LLMSpec = Field("megatron-gpt-145.6b", description="LLM preset id or inline spec.")
    cluster: ClusterInputs = Field(default_factory=ClusterInputs)
    global_batch_size: int = Field(ge=1, le=MAX_GLOBAL_BATCH, description="Sequences per iteration.")
    micro_batch_size: int = Field(ge=1, le=MAX_GLOBAL_BATCH, description="Sequences per micro-batch.")
    sequence_length_tokens: int = Field(2048, ge=1, le=MAX_SEQUENCE_TOKENS)
    data_parallel: int = Field(1, ge=1, le=MAX_CLUSTER_GPUS)
    tensor_parallel: int = Field(1, ge=1, le=MAX_CLUSTER_GPUS)
    pipeline_parallel: int = Field(1, ge=1, le=MAX_CLUSTER_GPUS)
    sequence_parallel: Literal["none", "megatron", "ring", "ulysses"] = "none"
    sequence_parallel_degree: int = Field(
        1, ge=1, le=MAX_CLUSTER_GPUS, description="GPUs the sequence is split over (Ring, Ulysses)."
    )
    zero_stage: int = Field(0, ge=0, le=3)
    recompute: Literal["none", "selective", "full"] = "none"
    pipeline_schedule: Literal["gpipe", "1f1b", "interleaved"] = "1f1b"
    virtual_stages: int = Field(1, ge=1, le=1024, description="Model chunks per GPU (interleaved schedule).")
    activation_offload: Literal["none", "adaptive", "all"] = "none"
    overlap_grad_reduce: bool = True
    overlap_param_gather: bool = Field(
        False,
        description="Megatron-Core overlap_param_gather (ZeRO-1): the updated weights' all-gather runs under the "
        "next forward instead of after the optimizer step.",
    )
    flash_attention: bool = Field(False, description="Fused attention (FlashAttention): no stored scores.")
    dtype: TrainingDtype = dtype_field()
    software_stack: str | SoftwareStackSpec | None = software_stack_field()
    tp_comm_overlap: bool = Field(
        False, description="Megatron-LM --tp-comm-overlap: TP collectives split into tiles under the adjacent GEMMs."
    )
    zero3_runtime: Literal["fsdp", "deepspeed-2021", "fsdp-composer", "fairscale-2021"] = Field(
        "fsdp",
        description="How ZeRO-3 gathers parameters: PyTorch FSDP (one flat parameter per layer, prefetched) or "
        "DeepSpeed ZeRO-3 as of 2021 (one list all-gather per weight tensor, no prefetch above 5e7 elements) or "
        "FSDP as Composer 0.16 configures it (backward gathers issued after the previous layer's gradients: "
        "backward_prefetch BACKWARD_POST; recomputation inside each unit) or FairScale FSDP of 2021 (all-gathers "
        "and reduce-scatters on one process group: each backward gather waits for the previous layer's "
        "reduce-scatter).",
    )
    expert_parallel: int = Field(
        1,
        ge=1,
        le=MAX_CLUSTER_GPUS,
        description="Expert parallelism (EP): GPUs each MoE layer's routed experts are sharded over, drawn from the "
        "data- and context-parallel ranks (Megatron-Core); 1 for a dense model.",
    )
    expert_load_imbalance: float = Field(
        1.0,
        ge=1.0,
        le=64.0,
        description="Tokens the busiest expert gets over the mean (1: perfectly balanced routing); dropless.",
    )
    expert_capacity_factor: float = Field(
        0.0,
        ge=0.0,
        le=64.0,
        description="Megatron-Core --moe-expert-capacity-factor with padding: every expert runs capacity x mean "
        "tokens (0: dropless, the busiest expert sets the time).",
    )
    expert_comm_overlap: bool = Field(
        False,
        description="MoE token dispatch and combine under another micro-batch's compute, on 20 of 132 SMs "
        "(DeepSeek-V3's DualPipe; Megatron-Core --overlap-moe-expert-parallel-comm).",
    )
    expert_node_limit: int = Field(
        0,
        ge=0,
        le=4096,
        description="Node-limited routing: a token's routed experts sit on at most this many nodes (DeepSeek-V3: "
        "4; 0: no limit). Changes the traffic only with expert_dispatch_dedup.",
    )
    expert_dispatch_dedup: bool = Field(
        False,
        description="DeepSeek-V3's dispatch kernels: a token crosses the network once per target node, then "
        "NVLink forwards it to that node's experts (off: every routed copy is sent itself).",
    )
    expert_dispatch_fp8: bool = Field(
        False,
        description="Dispatch (and the gradient before the down-projections) in fp8 with a scale per 128 "
        "elements; the combines stay bf16 (DeepSeek-V3).",
    )
    dualpipe: bool = Field(
        False,
        description="DeepSeek-V3's DualPipe on a 1F1B plan (even stages and micro-batches): bubble "
        "(p/2 - 1)(F&B + B - 3W) instead of (p - 1)(F + B).",
    )
    context_parallel: int = Field(
        1,
        ge=1,
        le=MAX_CLUSTER_GPUS,
        description="Context parallelism (Megatron-Core, Llama 3): GPUs the sequence is split over in 2 x CP "
        "load-balanced chunks, beside tensor parallelism; gradients reduce over data_parallel x context_parallel.",
    )
    context_parallel_exchange: Literal["p2p", "all-gather"] = Field(
        "p2p",
        description="How CP ranks exchange keys and values: ring P2P under the attention steps (Megatron-Core) or "
        "an exposed all-gather (Llama 3).",
    )
    first_stage_layers: int = Field(
        0, ge=0, le=100_000, description="Layers on the first pipeline stage (0: the even share, layers / stages)."
    )
    last_stage_layers: int = Field(
        0, ge=0, le=100_000, description="Layers on the last pipeline stage (0: the even share, layers / stages)."
    )


@dataclass(frozen=True)
class ResolvedTraining:
    model: LLMSpec
    cluster: ClusterSpec
    global_batch_size: int
    micro_batch_size: int
    sequence_length_tokens: int
    data_parallel: int
    tensor_parallel: int
    pipeline_parallel: int
    sequence_parallel_degree: int
    zero_stage: int
    virtual_stages: int
    sequence_parallel: str
    recompute: str
    pipeline_schedule: str
    activation_offload: str
    overlap_grad_reduce: bool
    overlap_param_gather: bool
    flash_attention: bool
    dtype: str
    software_stack: SoftwareStackSpec | None = None
    kernel_fits: dict[str, KernelFit] | None = None
    tp_comm_overlap: bool = False
    zero3_runtime: str = "fsdp"
    context_parallel: int = 1
    context_parallel_exchange: str = "p2p"
    first_stage_layers: int = 0
    last_stage_layers: int = 0
    expert_parallel: int = 1
    expert_load_imbalance: float = 1.0
    expert_capacity_factor: float = 0.0
    expert_comm_overlap: bool = False
    expert_node_limit: int = 0
    expert_dispatch_dedup: bool = False
    expert_dispatch_fp8: bool = False
    dualpipe: bool = False


def engine_inputs(r: ResolvedTraining) -> tuple[ModelArrays, ClusterArrays, PlanArrays]:
    """The engine's three inputs from a resolved scenario (numeric leaves may be arrays in a sweep)."""
    plan = PlanArrays(
        global_batch_size=np.asarray(r.global_batch_size, dtype=float),
        micro_batch_size=np.asarray(r.micro_batch_size, dtype=float),
        sequence_length=np.asarray(r.sequence_length_tokens, dtype=float),
        data_parallel=np.asarray(r.data_parallel, dtype=float),
        tensor_parallel=np.asarray(r.tensor_parallel, dtype=float),
        pipeline_parallel=np.asarray(r.pipeline_parallel, dtype=float),
        sequence_parallel=float(SEQUENCE_PARALLEL_CODES[r.sequence_parallel]),
        sequence_parallel_degree=np.asarray(r.sequence_parallel_degree, dtype=float),
        zero_stage=np.asarray(r.zero_stage, dtype=float),
        recompute=float(RECOMPUTE_CODES[r.recompute]),
        pipeline_schedule=float(SCHEDULE_CODES[r.pipeline_schedule]),
        virtual_stages=np.asarray(r.virtual_stages, dtype=float),
        activation_offload=float(OFFLOAD_CODES[r.activation_offload]),
        overlap_grad_reduce=1.0 if r.overlap_grad_reduce else 0.0,
        overlap_param_gather=1.0 if r.overlap_param_gather else 0.0,
        flash_attention=1.0 if r.flash_attention else 0.0,
        zero3_runtime=float(ZERO3_RUNTIME_CODES[r.zero3_runtime]),
        tp_comm_overlap=1.0 if r.tp_comm_overlap else 0.0,
        context_parallel=np.asarray(r.context_parallel, dtype=float),
        context_parallel_exchange=float(CONTEXT_PARALLEL_EXCHANGE_CODES[r.context_parallel_exchange]),
        first_stage_layers=np.asarray(r.first_stage_layers, dtype=float),
        last_stage_layers=np.asarray(r.last_stage_layers, dtype=float),
        expert_parallel=np.asarray(r.expert_parallel, dtype=float),
        expert_load_imbalance=np.asarray(r.expert_load_imbalance, dtype=float),
        expert_capacity_factor=np.asarray(r.expert_capacity_factor, dtype=float),
        expert_comm_overlap=1.0 if r.expert_comm_overlap else 0.0,
        expert_node_limit=float(r.expert_node_limit),
        expert_dispatch_dedup=1.0 if r.expert_dispatch_dedup else 0.0,
        expert_dispatch_fp8=1.0 if r.expert_dispatch_fp8 else 0.0,
        dualpipe=1.0 if r.dualpipe else 0.0,
    )
    cluster = training_cluster(r.cluster, r.dtype, r.software_stack, r.kernel_fits or {})
    return ModelArrays.from_llm(r.model), cluster, plan


def resolve(inputs: TrainingInputs, catalog: Catalog) -> ResolvedTraining:
    """Presets looked up; the plan checked by the engine's validity rules (InputError naming the field)."""
    c = inputs.cluster
    ssd = resolve_ssd(c, catalog)
    if inputs.activation_offload != "none" and (ssd is None or c.ssds_per_node == 0):
        raise InputError("activation_offload", "activation offload needs cluster.ssd and cluster.ssds_per_node > 0")
    cluster = resolve_cluster(c, catalog, ssd=ssd)
    check_precision(cluster.accelerator, inputs.dtype)
    fields = inputs.model_dump(exclude={"model", "cluster", "software_stack"})
    model_spec = dense_model_for_training(preset_or_inline(catalog, "llms", inputs.model, "model"))
    stack = (
        None
        if inputs.software_stack is None
        else preset_or_inline(catalog, "stacks", inputs.software_stack, "software_stack")
    )
    resolved = ResolvedTraining(
        model=model_spec, cluster=cluster, software_stack=stack, kernel_fits=load_fits(catalog.root), **fields
    )
    model, cluster_arrays, plan = engine_inputs(resolved)
    code = int(np.asarray(plan_reasons(model=model, cluster=cluster_arrays, plan=plan)).reshape(-1)[0])
    if code:
        reason = describe_reasons(code)[0]
        detail = (
            f"{inputs.data_parallel} x {inputs.tensor_parallel} x {inputs.pipeline_parallel} x "
            f"{resolved.sequence_parallel_degree}"
            + (f" x {resolved.context_parallel}" if resolved.context_parallel > 1 else "")
            + f" != {cluster.gpus} GPUs"
            if reason.name == "GPU_COUNT"
            else ""
        )
        raise InputError(reason.field, reason.message + (f" ({detail})" if detail else ""))
    return resolved
