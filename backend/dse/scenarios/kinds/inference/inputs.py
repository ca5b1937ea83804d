"""Inputs of the inference kind: the pydantic model, the resolved tree, `resolve`, and the engine's inputs.

`engine_inputs` is where the resolved tree becomes the engine's arguments; the accelerator becomes
a `Device` there, through `Device.from_accelerator` (the one translation, via
`dse.catalog.calibration.stack_device`, which adds the kernel models fitted for the accelerator,
dtype and software stack), so a sweep over any `accelerator.*` leaf reaches the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field

from dse.catalog import Catalog
from dse.catalog.calibration import KernelFit, StackDevice, load_fits, stack_device
from dse.engines.decoder_ops import ExpertExchange
from dse.engines.inference import PIM_SYSTEMS, Deployment, Workload, lognormal_quantile_table, model_shape
from dse.scenarios.base import DEFAULT_CELLS_PER_POINT, InputError, StrictModel, Work, applies_when, grid_points
from dse.scenarios.presets import preset_or_inline
from dse.scenarios.shared.bounds import MAX_BANDWIDTH_GB_PER_S, MAX_LATENCY_US, MIN_BANDWIDTH_GB_PER_S
from dse.scenarios.shared.expert_exchange import DP_ATTENTION_ONLY, exchange_of
from dse.scenarios.shared.moe_experts import moe_expert_dtype
from dse.specs.hardware import BYTES_PER_ELEMENT, AcceleratorSpec
from dse.specs.llm import LLMSpec
from dse.specs.memory import MemorySpec, RequestLengthSpec
from dse.specs.network import InterconnectSpec
from dse.specs.stacks import SoftwareStackSpec

SystemName = Literal["gpu_only", "npu_only", "npu_pim_blocked", "neupims", "gpu_pim"]
QuantDtype = Literal["fp16", "bf16", "fp8", "int8", "fp4"]

#: How each system is named in tables and charts.
SYSTEM_LABELS: dict[str, str] = {
    "gpu_only": "GPU-only",
    "npu_only": "NPU-only",
    "npu_pim_blocked": "NPU+PIM (blocked)",
    "neupims": "NeuPIMs",
    "gpu_pim": "GPU+PIM (AttAcc-like)",
}

#: NVLink 3 (A100): 600 GB/s total = 300e9 bytes/s per direction per GPU (NVIDIA A100 datasheet).
NVLINK3_BANDWIDTH_GB_PER_S = 300.0
#: Per-step latency of a ring all-reduce on 4xA100 NVLink, from LLMCompass's measured 26.04 us
#: all-reduce of 196 KB (PrincetonUniversity/LLMCompass ae/figure5/ijkl/real_hardware/transformerAR_A100.csv):
#: (26.04 us - 2*3/4*196,608 B / 300 GB/s) / (2*3 steps) = 4.2 us. A calibration, not a validation.
NVLINK3_STEP_LATENCY_US = 4.2
#: The software stack of a document that names none: the stack whose kernels the GPU calibrations were
#: measured on (microsoft/vidur's CUDA-event kernel times of the serving stack's layers).
DEFAULT_SOFTWARE_STACK = "vllm-cuda-graphs"


class InferenceInputs(StrictModel):
    """A model, a system and a workload."""

    model: str | LLMSpec = Field("gpt3-7b", title="Model", description="LLM preset id (llms/) or an inline spec.")
    system: SystemName = Field("neupims", title="System", description="Which system runs the decode.")
    accelerator: str | AcceleratorSpec = Field(
        "neupims-npu", title="Accelerator", description="GPU or NPU preset (accelerators/)."
    )
    memory: str | MemorySpec | None = Field(
        "neupims-hbm-pim",
        title="PIM memory",
        description="PIM memory preset (memories/), for the PIM systems.",
        json_schema_extra=applies_when("only the PIM systems use a PIM memory", system=sorted(PIM_SYSTEMS)),
    )
    comparison_gpu: str | AcceleratorSpec = Field(
        "a100-80gb",
        title="Comparison GPU",
        description="GPU preset of the GPU-only row in the system comparison.",
    )
    batch_size: int = Field(
        256,
        ge=1,
        le=65536,
        title="Batch size",
        description="Requests decoded together (B); with pipeline parallelism PP such batches are in flight.",
    )
    request_lengths: str | RequestLengthSpec | None = Field(
        None,
        title="Request lengths",
        description="Request-length distribution (request_lengths/); null = fixed prompt/output lengths.",
    )
    prompt_tokens: int = Field(
        512,
        ge=1,
        le=1_048_576,
        title="Prompt tokens",
        json_schema_extra=applies_when("the request-length distribution sets the lengths", request_lengths=[None]),
    )
    output_tokens: int = Field(
        512,
        ge=1,
        le=1_048_576,
        title="Output tokens",
        json_schema_extra=applies_when("the request-length distribution sets the lengths", request_lengths=[None]),
    )
    tensor_parallel: int = Field(1, ge=1, le=1024, title="Tensor parallel (TP)")
    pipeline_parallel: int = Field(1, ge=1, le=1024, title="Pipeline parallel (PP)")
    expert_parallel: int = Field(
        1,
        ge=1,
        le=1024,
        title="Expert parallel (EP)",
        description="MoE models: ranks of the TP group holding whole experts (E/EP each, split over TP/EP ranks), "
        "as TensorRT-LLM's moe_expert_parallel_size or vLLM's --enable-expert-parallel; must divide TP and the "
        "experts. 1 = every expert split by TP.",
    )
    expert_load_imbalance: float = Field(
        1.0,
        ge=1.0,
        le=64.0,
        title="Expert load imbalance",
        description="With EP > 1: routed tokens of the busiest EP rank over the mean (1 = balanced routing).",
    )
    attention_data_parallel: int = Field(
        1,
        ge=1,
        le=1024,
        title="Data-parallel attention (DP)",
        description="MoE models on GPUs: DP groups of TP GPUs each run attention and the dense parts for their own "
        "batch of B requests (their own KV cache), the routed experts spread over all DP x TP GPUs (EP = DP x TP) "
        "and reached by dispatch/combine all-to-alls over NVLink and the network (DeepSeek-V3's inference system, "
        "SGLang's DP attention with DeepEP). 1 = one TP group.",
    )
    gpus_per_node: int = Field(
        8,
        ge=1,
        le=1024,
        title="GPUs per node",
        description="With DP attention: GPUs per node on NVLink (the accelerator's intra-node link); the rest of "
        "the EP group is reached through each GPU's network port.",
        json_schema_extra=DP_ATTENTION_ONLY,
    )
    network: str | InterconnectSpec = Field(
        "ib-ndr",
        title="Network (per GPU)",
        description="With DP attention: each GPU's network port (interconnects/) the all-to-alls cross nodes on.",
        json_schema_extra=DP_ATTENTION_ONLY,
    )
    two_batch_overlap: bool = Field(
        True,
        title="Two-batch overlap",
        description="With DP attention: the batch runs as two micro-batches, one's all-to-alls under the other's "
        "compute (DeepSeek's dual-batch overlap, SGLang's TBO); off: they add their whole time.",
        json_schema_extra=DP_ATTENTION_ONLY,
    )
    expert_node_limit: int = Field(
        0,
        ge=0,
        le=4096,
        title="Expert node limit",
        description="With DP attention: node-limited routing, a token's experts on at most this many nodes "
        "(DeepSeek-V3: 4; 0 = no limit); bounds the nodes a prefill token crosses to.",
        json_schema_extra=DP_ATTENTION_ONLY,
    )
    weight_dtype: QuantDtype = Field("fp16", title="Weight dtype")
    activation_dtype: QuantDtype = Field("fp16", title="Activation dtype")
    kv_cache_dtype: QuantDtype = Field("fp16", title="KV cache dtype")
    sub_batch_fraction: float | None = Field(
        None,
        ge=0.0,
        le=0.5,
        title="First sub-batch share",
        description="NeuPIMs: share of the batch in the first sub-batch; null = best split.",
        json_schema_extra=applies_when("only NeuPIMs splits the batch into two sub-batches", system=["neupims"]),
    )
    link_bandwidth_gb_per_s: float = Field(
        NVLINK3_BANDWIDTH_GB_PER_S,
        ge=MIN_BANDWIDTH_GB_PER_S,
        le=MAX_BANDWIDTH_GB_PER_S,
        title="Link bandwidth",
        description="Per-direction link bandwidth per device (GB/s).",
    )
    link_latency_us: float = Field(
        NVLINK3_STEP_LATENCY_US,
        ge=0,
        le=MAX_LATENCY_US,
        title="Link latency",
        description="Latency per all-reduce step (us).",
    )
    fused_qkv: bool = Field(
        True, title="Fused QKV", description="Q, K and V projections in one kernel (False: three launches)."
    )
    software_stack: str | SoftwareStackSpec | None = Field(
        DEFAULT_SOFTWARE_STACK,
        title="Software stack",
        description="Software stack preset (stacks/) or an inline spec: kernel fits, launch cost, fused ops; "
        "null = the roofline with the accelerator's single efficiencies.",
    )


@dataclass(frozen=True)
class InferenceResolved:
    system: str
    model: LLMSpec
    accelerator: AcceleratorSpec
    comparison_gpu: AcceleratorSpec
    memory: MemorySpec | None
    request_lengths: RequestLengthSpec | None
    batch_size: float
    prompt_tokens: float
    output_tokens: float
    tensor_parallel: float
    pipeline_parallel: float
    weight_bytes: float
    activation_bytes: float
    kv_cache_bytes: float
    activation_dtype: str
    sub_batch_fraction: float | None
    link_bandwidth_bytes_per_s: float
    link_latency_s: float
    fused_qkv: bool
    software_stack: SoftwareStackSpec | None = None
    #: The catalog's kernel fits, by id (read once in `resolve`; the engines do no I/O).
    kernel_fits: dict[str, KernelFit] | None = None
    expert_parallel: float = 1.0
    expert_load_imbalance: float = 1.0  # 1 with EP 1 (every device sees every token-expert pair)
    attention_data_parallel: float = 1.0
    #: The expert all-to-alls' links (data-parallel attention only).
    expert_exchange: ExpertExchange | None = None
    #: The dtype of the routed experts where the stack keeps them apart from the weight dtype
    #: (`SoftwareStackSpec.moe_expert_dtype`), and its bytes per element; None: the weight dtype.
    expert_dtype: str | None = None
    expert_weight_bytes: float | None = None


def _presets(
    inputs: InferenceInputs, catalog: Catalog
) -> tuple[LLMSpec, AcceleratorSpec, AcceleratorSpec, MemorySpec | None, RequestLengthSpec | None]:
    """The model, accelerator, comparison GPU, memory and request lengths, looked up or inline."""
    llm: LLMSpec = preset_or_inline(catalog, "llms", inputs.model, "model")
    acc: AcceleratorSpec = preset_or_inline(catalog, "accelerators", inputs.accelerator, "accelerator")
    gpu: AcceleratorSpec = preset_or_inline(catalog, "accelerators", inputs.comparison_gpu, "comparison_gpu")
    memory: MemorySpec | None = (
        None if inputs.memory is None else preset_or_inline(catalog, "memories", inputs.memory, "memory")
    )
    lengths: RequestLengthSpec | None = (
        None
        if inputs.request_lengths is None
        else preset_or_inline(catalog, "request_lengths", inputs.request_lengths, "request_lengths")
    )
    return llm, acc, gpu, memory, lengths


def _check(
    inputs: InferenceInputs,
    llm: LLMSpec,
    acc: AcceleratorSpec,
    gpu: AcceleratorSpec,
    memory: MemorySpec | None,
    lengths: RequestLengthSpec | None,
) -> None:
    """The cross-field rules; each failure names its field (InputError)."""
    tp, pp = inputs.tensor_parallel, inputs.pipeline_parallel
    if llm.num_heads % tp or llm.num_kv_heads % tp:
        raise InputError(
            "tensor_parallel",
            f"{tp} must divide the heads ({llm.num_heads}) and KV heads ({llm.num_kv_heads}) of {llm.id}",
        )
    if llm.num_layers % pp:
        raise InputError("pipeline_parallel", f"{pp} must divide the {llm.num_layers} layers of {llm.id}")
    _check_expert_parallel(inputs, llm)
    if gpu.device_class != "gpu":
        raise InputError("comparison_gpu", f"'{gpu.id}' is not a GPU")
    wants_gpu = inputs.system.startswith("gpu")
    if (acc.device_class == "gpu") != wants_gpu:
        raise InputError(
            "accelerator",
            f"system '{inputs.system}' needs {'a GPU' if wants_gpu else 'an NPU'}; '{acc.id}' is {acc.device_class}",
        )
    _check_dtypes(inputs, acc, gpu)
    if inputs.system in PIM_SYSTEMS and llm.is_mla:
        raise InputError(
            "system",
            f"{llm.id} uses multi-head latent attention, which the PIM systems do not model; "
            "choose gpu_only or npu_only",
        )
    if inputs.system in PIM_SYSTEMS:
        if memory is None or memory.pim_multipliers_per_bank <= 0:
            raise InputError("memory", f"system '{inputs.system}' needs a memory with PIM units")
        if inputs.system == "neupims" and memory.pim_row_buffers_per_bank < 2:
            raise InputError("memory", f"NeuPIMs needs dual row buffers; '{memory.id}' has one per bank")
    if lengths is None and inputs.prompt_tokens + inputs.output_tokens > llm.max_context_tokens:
        raise InputError(
            "output_tokens",
            f"prompt + output = {inputs.prompt_tokens + inputs.output_tokens} exceeds the context "
            f"of {llm.id} ({llm.max_context_tokens})",
        )
    if lengths is not None and not (
        0 < lengths.median_context_tokens <= lengths.mean_context_tokens <= lengths.max_context_tokens
    ):
        raise InputError("request_lengths", "needs median <= mean <= max context tokens")


def _check_expert_parallel(inputs: InferenceInputs, llm: LLMSpec) -> None:
    """EP ranks are the TP group's: EP divides TP and the routed experts, and needs an MoE model; with
    data-parallel attention EP is every GPU of the replica."""
    ep, tp, dp = inputs.expert_parallel, inputs.tensor_parallel, inputs.attention_data_parallel
    if dp > 1:
        if llm.num_experts == 0:
            raise InputError("attention_data_parallel", f"{dp} needs a mixture-of-experts model; {llm.id} is dense")
        if inputs.system != "gpu_only":
            raise InputError("attention_data_parallel", "data-parallel attention is modelled on gpu_only")
        if inputs.pipeline_parallel != 1:
            raise InputError("attention_data_parallel", "data-parallel attention is modelled without pipeline stages")
        if ep != dp * tp:
            raise InputError(
                "expert_parallel",
                f"with data-parallel attention the experts spread over all DP x TP = {dp * tp} GPUs: set it to that",
            )
        return
    if ep == 1:
        return
    if llm.num_experts == 0:
        raise InputError("expert_parallel", f"{ep} needs a mixture-of-experts model; {llm.id} is dense")
    if llm.num_experts % ep:
        raise InputError("expert_parallel", f"{ep} must divide the {llm.num_experts} routed experts of {llm.id}")
    if tp % ep:
        raise InputError("expert_parallel", f"{ep} must divide tensor_parallel ({tp}): EP ranks are the TP group's")


def _check_dtypes(inputs: InferenceInputs, acc: AcceleratorSpec, gpu: AcceleratorSpec) -> None:
    """fp4 weights, activations or KV cache need a part with an fp4 peak (Blackwell-class)."""
    fp4_fields = [
        name
        for name, dtype in (
            ("weight_dtype", inputs.weight_dtype),
            ("activation_dtype", inputs.activation_dtype),
            ("kv_cache_dtype", inputs.kv_cache_dtype),
        )
        if dtype == "fp4"
    ]
    if not fp4_fields:
        return
    for field, part in (("accelerator", acc), ("comparison_gpu", gpu)):
        if not part.supports("fp4"):
            raise InputError(
                fp4_fields[0],
                f"fp4 ({', '.join(fp4_fields)}) needs a part with an fp4 peak; {field} '{part.id}' has none "
                f"(it has {', '.join(sorted(part.peak_flops_per_s))})",
            )


def resolve(inputs: InferenceInputs, catalog: Catalog) -> InferenceResolved:
    """Presets looked up, cross-field rules checked, dtypes in bytes, units in SI."""
    llm, acc, gpu, memory, lengths = _presets(inputs, catalog)
    _check(inputs, llm, acc, gpu, memory, lengths)
    stack: SoftwareStackSpec | None = (
        None
        if inputs.software_stack is None
        else preset_or_inline(catalog, "stacks", inputs.software_stack, "software_stack")
    )
    # fp8 GEMMs under a stack that keeps fp16 activations between kernels move fp16 activations
    stored_activations = (
        inputs.activation_dtype if stack is None else stack.stored_activation_dtype(inputs.activation_dtype)
    )
    exchange = exchange_of(inputs, catalog, acc, BYTES_PER_ELEMENT[stored_activations])
    experts = moe_expert_dtype(stack, llm, inputs.weight_dtype, inputs.activation_dtype)
    return InferenceResolved(
        system=inputs.system,
        model=llm,
        accelerator=acc,
        comparison_gpu=gpu,
        memory=memory,
        request_lengths=lengths,
        batch_size=float(inputs.batch_size),
        prompt_tokens=float(inputs.prompt_tokens),
        output_tokens=float(inputs.output_tokens),
        tensor_parallel=float(inputs.tensor_parallel),
        pipeline_parallel=float(inputs.pipeline_parallel),
        expert_parallel=float(inputs.expert_parallel),
        expert_load_imbalance=float(inputs.expert_load_imbalance) if inputs.expert_parallel > 1 else 1.0,
        attention_data_parallel=float(inputs.attention_data_parallel),
        expert_exchange=exchange,
        weight_bytes=BYTES_PER_ELEMENT[inputs.weight_dtype],
        activation_bytes=BYTES_PER_ELEMENT[stored_activations],
        kv_cache_bytes=BYTES_PER_ELEMENT[inputs.kv_cache_dtype],
        activation_dtype=inputs.activation_dtype,
        sub_batch_fraction=inputs.sub_batch_fraction,
        link_bandwidth_bytes_per_s=inputs.link_bandwidth_gb_per_s * 1e9,
        link_latency_s=inputs.link_latency_us * 1e-6,
        fused_qkv=inputs.fused_qkv,
        software_stack=stack,
        kernel_fits=load_fits(catalog.root),
        expert_dtype=experts,
        expert_weight_bytes=None if experts is None else BYTES_PER_ELEMENT[experts],
    )


def workload(r: InferenceResolved) -> Workload:
    """Fixed prompt/output lengths (a static batch at the mean context), or a length distribution."""
    lengths = r.request_lengths
    if lengths is None:
        return Workload(
            batch=r.batch_size,
            prompt_tokens=r.prompt_tokens,
            output_tokens=r.output_tokens,
            context_tokens=r.prompt_tokens + r.output_tokens / 2.0,
            peak_context_tokens=r.prompt_tokens + r.output_tokens,
        )
    return Workload(
        batch=r.batch_size,
        prompt_tokens=lengths.mean_prompt_tokens,
        output_tokens=lengths.mean_output_tokens,
        context_tokens=lengths.mean_context_tokens,
        peak_context_tokens=lengths.max_context_tokens,
        context_quantile_tokens=lognormal_quantile_table(
            median_tokens=float(lengths.median_context_tokens),
            mean_tokens=float(lengths.mean_context_tokens),
            max_tokens=float(lengths.max_context_tokens),
        ),
    )


def device_of(r: InferenceResolved, accelerator: AcceleratorSpec | None = None) -> StackDevice:
    """The device of the resolved accelerator (or another) under the resolved software stack."""
    return stack_device(
        r.kernel_fits or {},
        accelerator or r.accelerator,
        r.activation_dtype,
        r.software_stack,
        expert_dtype=r.expert_dtype,
    )


def engine_inputs(
    r: InferenceResolved, *, system: str | None = None, accelerator: AcceleratorSpec | None = None
) -> dict[str, Any]:
    """Keyword arguments of `run_inference` for the resolved tree (optionally another system/device)."""
    return {
        "system": system or r.system,
        "shape": model_shape(r.model),
        "device": device_of(r, accelerator).device,
        "deployment": Deployment(
            tensor_parallel=r.tensor_parallel,
            pipeline_parallel=r.pipeline_parallel,
            link_bandwidth_bytes_per_s=r.link_bandwidth_bytes_per_s,
            link_latency_s=r.link_latency_s,
            weight_bytes=r.weight_bytes,
            activation_bytes=r.activation_bytes,
            kv_cache_bytes=r.kv_cache_bytes,
            expert_parallel=r.expert_parallel,
            expert_load_imbalance=r.expert_load_imbalance,
            attention_data_parallel=r.attention_data_parallel,
            expert_exchange=r.expert_exchange,
            expert_weight_bytes=r.expert_weight_bytes,
        ),
        "workload": workload(r),
        "memory": r.memory,
        "sub_batch_fraction": r.sub_batch_fraction,
        "fused_qkv": r.fused_qkv,
    }


#: Evaluations of the placement per answer: the system comparison and the sub-batch split candidates.
PLACEMENTS_PER_ANSWER = 32


def work(r: InferenceResolved) -> Work:
    """Closed forms per design point, except the PIM systems with a request-length distribution:
    there every request of the batch is placed on the least-loaded channel (a loop over the batch,
    each step an argmin over the channels), so the cost is points x batch x channels, and the
    (points x channels) load and (batch x points) contexts are held at once."""
    points = float(grid_points(r))
    if r.request_lengths is None or r.memory is None or r.system not in PIM_SYSTEMS:
        return Work(cells=points * DEFAULT_CELLS_PER_POINT, peak_bytes=points * 8.0 * 256, driver="axes")
    channels = float(np.max(r.memory.channels))
    batch = float(np.max(r.batch_size))
    cells = points * batch * channels * PLACEMENTS_PER_ANSWER + points * DEFAULT_CELLS_PER_POINT
    peak = points * (channels + batch) * 8.0 * 4
    driver = "memory.channels" if channels >= batch else "batch_size"
    return Work(cells=cells, peak_bytes=peak, driver=driver, heavy=points > 1)
