"""Inputs of the serving kind: the pydantic model, the resolved tree and `resolve`.

The accelerator becomes a `Device` through `dse.catalog.calibration.stack_device` (the one
translation, with the kernel models fitted for the accelerator, dtype and software stack), exactly as
the inference kind builds it, so an iteration here is priced by the same per-op model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from dse.catalog import Catalog
from dse.catalog.calibration import HostOverheadFit, KernelFit, load_fits, load_host_fits
from dse.engines.decoder_ops import ExpertExchange
from dse.scenarios.base import InputError, StrictModel, applies_when
from dse.scenarios.presets import preset_or_inline
from dse.scenarios.shared.bounds import MAX_BANDWIDTH_GB_PER_S, MAX_LATENCY_US, MIN_BANDWIDTH_GB_PER_S
from dse.scenarios.shared.expert_exchange import DP_ATTENTION_ONLY, exchange_of
from dse.scenarios.shared.moe_experts import moe_expert_dtype
from dse.specs.hardware import BYTES_PER_ELEMENT, AcceleratorSpec
from dse.specs.llm import LLMSpec
from dse.specs.memory import RequestLengthSpec
from dse.specs.network import InterconnectSpec
from dse.specs.stacks import SoftwareStackSpec

QuantDtype = Literal["fp16", "bf16", "fp8", "int8"]
ArrivalProcess = Literal["poisson", "gamma", "trace"]
#: max_utilization: vLLM's scheduler (admit while the prompt's KV blocks fit, preempt the newest request by
#: recompute when a decode step runs out); guaranteed_no_evict: TensorRT-LLM's default capacity scheduler policy
#: (NVIDIA TensorRT-LLM docs, nvidia.github.io/TensorRT-LLM/performance/performance-tuning-guide/
#: useful-runtime-flags.html, 'Capacity Scheduler Policy': GUARANTEED_NO_EVICT is the default and guarantees that a
#: started request is never paused; MAX_UTILIZATION packs requests at the risk of pausing them).
AdmissionPolicy = Literal["max_utilization", "guaranteed_no_evict"]

#: Most requests one simulation may run (and rows of an inline trace).
MAX_REQUESTS = 20_000
#: NVLink 3 (A100): 600 GB/s total = 300e9 bytes/s per direction per GPU (NVIDIA A100 datasheet).
NVLINK3_BANDWIDTH_GB_PER_S = 300.0
#: Per-step latency of a ring all-reduce on 4xA100 NVLink, from LLMCompass's measured 26.04 us all-reduce
#: of 196 KB (PrincetonUniversity/LLMCompass ae/figure5/ijkl/real_hardware/transformerAR_A100.csv). A calibration.
NVLINK3_STEP_LATENCY_US = 4.2
#: The stack whose kernels the GPU calibrations were measured on (microsoft/vidur's kernel times of vLLM).
DEFAULT_SOFTWARE_STACK = "vllm-cuda-graphs"

#: A part without a recorded list price (models_db accelerators' on_demand_usd_per_device_hour) is charged
#: like this preset unless the document gives a price.
PRICE_FALLBACK_ACCELERATOR = "h100-sxm"


#: Multi-step blocks as vLLM v0.6.0 ran them: its unchunked scheduler, prompts in prefill-only iterations, no draft
#: model (its arg_utils refuses speculative decoding with more than one scheduler step), co-located.
_MULTI_STEP_APPLIES = applies_when(
    "multi-step blocks are modelled for vLLM's unchunked, co-located scheduler without a draft model",
    chunked_prefill=[False],
    prompts_join_decodes=[False],
    draft_model=[None],
    disaggregated=[False],
)
_DISAGGREGATED_ONLY = applies_when("only a disaggregated deployment has prefill and decode pools", disaggregated=[True])


class ServingInputs(StrictModel):
    """A model on replicas of an accelerator, a stream of requests, a scheduler and SLOs."""

    model: str | LLMSpec = Field("llama2-7b", description="LLM preset id (llms/) or an inline spec.")
    accelerator: str | AcceleratorSpec = Field("a100-80gb", description="GPU or NPU preset (accelerators/).")
    tensor_parallel: int = Field(1, ge=1, le=64, description="Devices per replica (tensor parallel).")
    replicas: int = Field(1, ge=1, le=4096, description="Replicas; requests are split evenly at random.")
    expert_parallel: int = Field(
        1,
        ge=1,
        le=1024,
        description="MoE models: ranks of each replica's TP group holding whole experts (E/EP each, split over "
        "TP/EP ranks), as TensorRT-LLM's moe_expert_parallel_size or vLLM's --enable-expert-parallel; must divide "
        "every TP degree and the experts. 1 = every expert split by TP. With data-parallel attention: DP x TP.",
    )
    expert_load_imbalance: float = Field(
        1.0, ge=1.0, le=64.0, description="With EP > 1: routed tokens of the busiest EP rank over the mean."
    )
    attention_data_parallel: int = Field(
        1,
        ge=1,
        le=1024,
        description="MoE models, co-located: each replica is DP groups of TP GPUs, each running attention and the "
        "dense parts for its share of the replica's requests (its own KV cache), the routed experts spread over "
        "all DP x TP GPUs (EP = DP x TP) and reached by dispatch/combine all-to-alls over NVLink and the network "
        "(DeepSeek-V3's inference system, SGLang's DP attention with DeepEP). 1 = one TP group per replica.",
    )
    gpus_per_node: int = Field(
        8,
        ge=1,
        le=1024,
        description="With DP attention: GPUs per node on NVLink (the accelerator's link).",
        json_schema_extra=DP_ATTENTION_ONLY,
    )
    network: str | InterconnectSpec = Field(
        "ib-ndr",
        description="With DP attention: each GPU's network port (interconnects/) across nodes.",
        json_schema_extra=DP_ATTENTION_ONLY,
    )
    two_batch_overlap: bool = Field(
        True,
        description="With DP attention: two micro-batches, one's all-to-alls under the other's compute "
        "(DeepSeek's dual-batch overlap, SGLang's TBO); off: they add their whole time.",
        json_schema_extra=DP_ATTENTION_ONLY,
    )
    expert_node_limit: int = Field(
        0,
        ge=0,
        le=4096,
        description="With DP attention: a token's experts on at most this many nodes (DeepSeek-V3: 4; 0 = no limit).",
        json_schema_extra=DP_ATTENTION_ONLY,
    )
    software_stack: str | SoftwareStackSpec | None = Field(
        DEFAULT_SOFTWARE_STACK,
        description="Software stack preset (stacks/) or inline; null = the roofline with single efficiencies.",
    )
    weight_dtype: QuantDtype = "fp16"
    activation_dtype: QuantDtype = "fp16"
    kv_cache_dtype: QuantDtype = "fp16"
    arrival_process: ArrivalProcess = Field(
        "poisson", description="poisson, gamma (bursty inter-arrival times) or an inline trace."
    )
    arrival_rate_per_s: float = Field(2.0, gt=0, le=1e6, description="Requests per second to the whole deployment.")
    burstiness_cv: float = Field(
        2.0,
        gt=0,
        le=20,
        description="Gamma arrivals: coefficient of variation of the inter-arrival times.",
        json_schema_extra=applies_when("only gamma arrivals are bursty", arrival_process=["gamma"]),
    )
    trace: list[tuple[float, int, int]] | None = Field(
        None,
        max_length=MAX_REQUESTS,
        description="Trace arrivals: rows of (arrival time s, prompt tokens, output tokens); "
        "null (empty) unless the arrival process is trace.",
        examples=[[[0.0, 512, 128], [0.25, 1024, 64]]],
        json_schema_extra=applies_when("only trace arrivals read a trace", arrival_process=["trace"]),
    )
    request_lengths: str | RequestLengthSpec | None = Field(
        "sharegpt-neupims", description="Request-length distribution (request_lengths/); null = fixed lengths."
    )
    prompt_tokens: int = Field(512, ge=1, le=1_048_576, description="Fixed prompt length (no distribution).")
    output_tokens: int = Field(256, ge=1, le=1_048_576, description="Fixed output length (no distribution).")
    num_requests: int = Field(2_000, ge=10, le=MAX_REQUESTS, description="Requests simulated.")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    token_budget: int = Field(2_048, ge=16, le=1_048_576, description="Tokens per scheduler iteration.")
    chunked_prefill: bool = Field(True, description="Split prompts into chunks that share iterations with decodes.")
    #: TensorRT-LLM docs, 'Paged Attention, IFB, and Request Scheduling': with in-flight batching "sequences in the
    #: context phase can be processed together with sequences in the generation phase"; max_num_tokens bounds the
    #: iteration's tokens of both (performance tuning guide, 'Tuning Max Batch Size and Max Num Tokens').
    prompts_join_decodes: bool = Field(
        False,
        description="Without chunked prefill: whole prompts run in the running decodes' iteration while they fit in "
        "the token budget beside them (TensorRT-LLM's in-flight batching); off: a prefill-only iteration pauses the "
        "decodes (vLLM's unchunked scheduler).",
        json_schema_extra=applies_when("only unchunked prompts are placed whole", chunked_prefill=[False]),
    )
    #: vLLM v0.6.0 (vllm-project/vllm @ v0.6.0): LLMEngine.step runs the scheduler only when the scheduled
    #: sequence groups have no remaining steps (vllm/engine/llm_engine.py, _has_remaining_steps), so a block's batch
    #: and its stop checks wait for its end; Scheduler._get_num_lookahead_slots gives a prefill no lookahead slots,
    #: so a prefill is a block of one step, and a decode block takes num_scheduler_steps - 1 lookahead KV slots per
    #: sequence up front (vllm/core/scheduler.py; vllm/engine/arg_utils.py sets num_lookahead_slots to
    #: num_scheduler_steps - 1). vLLM PR #7000 ('[core] Multi Step Scheduling') introduced it.
    scheduler_steps: int = Field(
        1,
        ge=1,
        le=64,
        description="Multi-step scheduling (vLLM's --num-scheduler-steps): decode iterations per scheduler call; "
        "new prompts wait for the block under way, and requests that finish inside a block decode on to its end. "
        "1: the scheduler runs every iteration.",
        json_schema_extra=_MULTI_STEP_APPLIES,
    )
    max_running: int = Field(256, ge=1, le=65_536, description="Most requests running at once.")
    admission_policy: AdmissionPolicy = Field(
        "max_utilization",
        description="max_utilization: admit while the prompt's KV blocks fit and preempt (recompute) the newest "
        "request when decoding runs out (vLLM); guaranteed_no_evict: admit only when the prompt and the whole "
        "output fit beside every running request's, never preempting (TensorRT-LLM's default).",
    )
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=1, description="Share of device memory the server may use (weights + KV cache)."
    )
    prefix_cache_hit_rate: float = Field(0.0, ge=0, lt=1, description="Share of prompt tokens found in the cache.")
    slo_percentile: float = Field(99.0, ge=50, le=100, description="Percentile the SLOs hold at.")
    ttft_slo_s: float = Field(2.0, ge=1e-4, le=3600, description="Time-to-first-token target (s).")
    tpot_slo_s: float = Field(0.1, ge=1e-5, le=60, description="Time-per-output-token target (s).")
    gpu_hour_usd: float | None = Field(
        None, ge=0, le=1e4, description="Price per device-hour (USD); null = the AWS on-demand list price of the part."
    )
    power_w: float | None = Field(None, ge=1, le=1e5, description="Power per device (W); null = the preset's TDP.")
    link_bandwidth_gb_per_s: float = Field(
        NVLINK3_BANDWIDTH_GB_PER_S, ge=MIN_BANDWIDTH_GB_PER_S, le=MAX_BANDWIDTH_GB_PER_S, title="Link bandwidth"
    )
    link_latency_us: float = Field(NVLINK3_STEP_LATENCY_US, ge=0, le=MAX_LATENCY_US, title="Link latency")
    rate_search_steps: int = Field(6, ge=2, le=12, description="Bisection steps of the largest-rate search.")
    draft_model: str | LLMSpec | None = Field(
        None,
        description="Speculative decoding: the draft LLM (llms/, same vocabulary as the model); null = none.",
    )
    draft_tokens: int = Field(4, ge=1, le=16, description="Speculative decoding: tokens the draft proposes per step.")
    acceptance_rate: float = Field(
        0.7, ge=0, le=1, description="Speculative decoding: chance that each drafted token is accepted."
    )
    disaggregated: bool = Field(
        False, description="Prefill and decode on separate pools (DistServe / Splitwise), KV cache sent between."
    )
    prefill_replicas: int = Field(
        1, ge=1, le=1024, description="Disaggregated: prefill instances.", json_schema_extra=_DISAGGREGATED_ONLY
    )
    prefill_tensor_parallel: int = Field(
        1, ge=1, le=64, description="Disaggregated: devices per prefill instance", json_schema_extra=_DISAGGREGATED_ONLY
    )
    decode_replicas: int = Field(
        1, ge=1, le=1024, description="Disaggregated: decode instances.", json_schema_extra=_DISAGGREGATED_ONLY
    )
    decode_tensor_parallel: int = Field(
        1, ge=1, le=64, description="Disaggregated: devices per decode instance.", json_schema_extra=_DISAGGREGATED_ONLY
    )
    kv_transfer_link: str | InterconnectSpec = Field(
        "ib-hdr",
        description="Disaggregated: the link (interconnects/) each device sends its KV-cache shard over.",
        json_schema_extra=_DISAGGREGATED_ONLY,
    )


@dataclass(frozen=True)
class ServingResolved:
    model: LLMSpec
    accelerator: AcceleratorSpec
    software_stack: SoftwareStackSpec | None
    request_lengths: RequestLengthSpec | None
    arrival_process: str
    trace: tuple[tuple[float, int, int], ...] | None
    tensor_parallel: float
    replicas: float
    weight_bytes: float
    activation_bytes: float
    kv_cache_bytes: float
    activation_dtype: str
    arrival_rate_per_s: float
    burstiness_cv: float
    prompt_tokens: float
    output_tokens: float
    num_requests: float
    seed: float
    token_budget: float
    chunked_prefill: bool
    max_running: float
    gpu_memory_utilization: float
    prefix_cache_hit_rate: float
    slo_percentile: float
    ttft_slo_s: float
    tpot_slo_s: float
    gpu_hour_usd: float
    power_w: float
    link_bandwidth_bytes_per_s: float
    link_latency_s: float
    rate_search_steps: float
    gpu_hour_source: str = "the document's price"
    draft_model: LLMSpec | None = None
    draft_tokens: float = 4.0
    acceptance_rate: float = 0.7
    disaggregated: bool = False
    prefill_replicas: float = 1.0
    prefill_tensor_parallel: float = 1.0
    decode_replicas: float = 1.0
    decode_tensor_parallel: float = 1.0
    kv_transfer_link: InterconnectSpec | None = None
    power_w_given: bool = False
    kernel_fits: dict[str, KernelFit] | None = None
    host_fits: dict[str, HostOverheadFit] | None = None
    expert_parallel: float = 1.0
    expert_load_imbalance: float = 1.0  # 1 with EP 1 (every device sees every token-expert pair)
    attention_data_parallel: float = 1.0
    #: The expert all-to-alls' links (data-parallel attention only).
    expert_exchange: ExpertExchange | None = None
    guaranteed_no_evict: bool = False
    prompts_join_decodes: bool = False
    scheduler_steps: float = 1.0
    #: The dtype of the routed experts where the stack keeps them apart from the weight dtype
    #: (`SoftwareStackSpec.moe_expert_dtype`), and its bytes per element; None: the weight dtype.
    expert_dtype: str | None = None
    expert_weight_bytes: float | None = None


def resolve(inputs: ServingInputs, catalog: Catalog) -> ServingResolved:
    """Presets looked up, cross-field rules checked (InputError names the field), SI units."""
    llm: LLMSpec = preset_or_inline(catalog, "llms", inputs.model, "model")
    acc: AcceleratorSpec = preset_or_inline(catalog, "accelerators", inputs.accelerator, "accelerator")
    lengths: RequestLengthSpec | None = (
        None
        if inputs.request_lengths is None
        else preset_or_inline(catalog, "request_lengths", inputs.request_lengths, "request_lengths")
    )
    stack: SoftwareStackSpec | None = (
        None
        if inputs.software_stack is None
        else preset_or_inline(catalog, "stacks", inputs.software_stack, "software_stack")
    )
    tp = inputs.tensor_parallel
    draft: LLMSpec | None = (
        None if inputs.draft_model is None else preset_or_inline(catalog, "llms", inputs.draft_model, "draft_model")
    )
    tps = [("tensor_parallel", tp)]
    if inputs.disaggregated:
        tps += [("prefill_tensor_parallel", inputs.prefill_tensor_parallel)]
        tps += [("decode_tensor_parallel", inputs.decode_tensor_parallel)]
    for field, degree in tps:
        for spec in (llm, draft) if draft is not None else (llm,):
            if spec.num_heads % degree or spec.num_kv_heads % degree:
                raise InputError(
                    field,
                    f"{degree} must divide the heads ({spec.num_heads}) and KV heads ({spec.num_kv_heads}) "
                    f"of {spec.id}",
                )
    if inputs.attention_data_parallel > 1:
        _check_data_parallel_attention(inputs, llm)
    else:
        _check_expert_parallel(inputs.expert_parallel, llm, tps)
    if inputs.disaggregated:
        pool_devices = (
            inputs.prefill_replicas * inputs.prefill_tensor_parallel
            + inputs.decode_replicas * inputs.decode_tensor_parallel
        )
        if pool_devices % tp:
            raise InputError(
                "tensor_parallel",
                f"the co-located deployment compared runs on the same {pool_devices} devices: {tp} must divide them",
            )
    if draft is not None and draft.vocab_size != llm.vocab_size:
        raise InputError(
            "draft_model",
            f"the draft {draft.id} has a vocabulary of {draft.vocab_size}, the model {llm.id} of {llm.vocab_size}: "
            "speculative decoding needs one tokenizer",
        )
    link: InterconnectSpec | None = (
        preset_or_inline(catalog, "interconnects", inputs.kv_transfer_link, "kv_transfer_link")
        if inputs.disaggregated
        else None
    )
    if inputs.arrival_process == "trace":
        if not inputs.trace or len(inputs.trace) < 2:
            raise InputError("trace", "trace arrivals need at least two rows of (time s, prompt, output)")
        if any(row[0] < 0 or row[1] < 1 or row[2] < 1 for row in inputs.trace):
            raise InputError("trace", "times must be >= 0 and token counts >= 1")
        if max(r[0] for r in inputs.trace) <= min(r[0] for r in inputs.trace):
            raise InputError("trace", "the trace's arrival times must span a positive interval")
    elif lengths is None and inputs.prompt_tokens + inputs.output_tokens > llm.max_context_tokens:
        raise InputError(
            "output_tokens",
            f"prompt + output = {inputs.prompt_tokens + inputs.output_tokens} exceeds the context of {llm.id} "
            f"({llm.max_context_tokens})",
        )
    if inputs.token_budget < inputs.max_running and inputs.chunked_prefill:
        raise InputError("token_budget", "with chunked prefill the budget must hold one token per running request")
    stored_activations = (
        inputs.activation_dtype if stack is None else stack.stored_activation_dtype(inputs.activation_dtype)
    )
    exchange = exchange_of(inputs, catalog, acc, BYTES_PER_ELEMENT[stored_activations])
    experts = moe_expert_dtype(stack, llm, inputs.weight_dtype, inputs.activation_dtype)
    power = inputs.power_w if inputs.power_w is not None else acc.power_w
    price, source = _device_hour_price(inputs, acc, catalog)
    return ServingResolved(
        model=llm,
        accelerator=acc,
        software_stack=stack,
        request_lengths=lengths,
        arrival_process=inputs.arrival_process,
        # a trace is read only under trace arrivals (the form greys it out otherwise)
        trace=tuple(inputs.trace) if inputs.arrival_process == "trace" and inputs.trace is not None else None,
        tensor_parallel=float(tp),
        replicas=float(inputs.replicas),
        weight_bytes=BYTES_PER_ELEMENT[inputs.weight_dtype],
        # fp8 GEMMs under a stack that keeps fp16 activations between kernels move fp16 activations
        activation_bytes=BYTES_PER_ELEMENT[stored_activations],
        kv_cache_bytes=BYTES_PER_ELEMENT[inputs.kv_cache_dtype],
        activation_dtype=inputs.activation_dtype,
        arrival_rate_per_s=inputs.arrival_rate_per_s,
        burstiness_cv=inputs.burstiness_cv,
        prompt_tokens=float(inputs.prompt_tokens),
        output_tokens=float(inputs.output_tokens),
        num_requests=float(inputs.num_requests),
        seed=float(inputs.seed),
        token_budget=float(inputs.token_budget),
        chunked_prefill=inputs.chunked_prefill,
        max_running=float(inputs.max_running),
        guaranteed_no_evict=inputs.admission_policy == "guaranteed_no_evict",
        prompts_join_decodes=inputs.prompts_join_decodes,
        scheduler_steps=float(inputs.scheduler_steps) if _multi_step_applies(inputs) else 1.0,
        expert_dtype=experts,
        expert_weight_bytes=None if experts is None else BYTES_PER_ELEMENT[experts],
        gpu_memory_utilization=inputs.gpu_memory_utilization,
        prefix_cache_hit_rate=inputs.prefix_cache_hit_rate,
        slo_percentile=inputs.slo_percentile,
        ttft_slo_s=inputs.ttft_slo_s,
        tpot_slo_s=inputs.tpot_slo_s,
        gpu_hour_usd=float(price),
        power_w=float(power) if power is not None else float("nan"),
        link_bandwidth_bytes_per_s=inputs.link_bandwidth_gb_per_s * 1e9,
        link_latency_s=inputs.link_latency_us * 1e-6,
        rate_search_steps=float(inputs.rate_search_steps),
        gpu_hour_source=source,
        kernel_fits=load_fits(catalog.root),
        host_fits=load_host_fits(catalog.root),
        expert_parallel=float(inputs.expert_parallel),
        expert_load_imbalance=float(inputs.expert_load_imbalance) if inputs.expert_parallel > 1 else 1.0,
        attention_data_parallel=float(inputs.attention_data_parallel),
        expert_exchange=exchange,
        draft_model=draft,
        draft_tokens=float(inputs.draft_tokens),
        acceptance_rate=inputs.acceptance_rate,
        disaggregated=inputs.disaggregated,
        prefill_replicas=float(inputs.prefill_replicas),
        prefill_tensor_parallel=float(inputs.prefill_tensor_parallel),
        decode_replicas=float(inputs.decode_replicas),
        decode_tensor_parallel=float(inputs.decode_tensor_parallel),
        kv_transfer_link=link,
        power_w_given=inputs.power_w is not None,
    )


def _device_hour_price(inputs: ServingInputs, acc: AcceleratorSpec, catalog: Catalog) -> tuple[float, str]:
    """USD per device-hour and where it comes from: the document, the part's list price, or the fallback part's."""
    if inputs.gpu_hour_usd is not None:
        return inputs.gpu_hour_usd, "the document's price"
    key = "on_demand_usd_per_device_hour"
    if acc.on_demand_usd_per_device_hour is not None:
        return acc.on_demand_usd_per_device_hour, acc.field_sources.get(key, acc.source)
    fallback: AcceleratorSpec = preset_or_inline(catalog, "accelerators", PRICE_FALLBACK_ACCELERATOR, "accelerator")
    assert fallback.on_demand_usd_per_device_hour is not None
    return fallback.on_demand_usd_per_device_hour, (
        f"no list price recorded for {acc.id}: the {fallback.id}'s ({fallback.field_sources.get(key, fallback.source)})"
    )


def _multi_step_applies(inputs: ServingInputs) -> bool:
    """scheduler_steps's `applies_when` (the engine ignores it elsewhere: one step per scheduler call)."""
    return not (inputs.chunked_prefill or inputs.prompts_join_decodes or inputs.disaggregated) and (
        inputs.draft_model is None
    )


def _check_expert_parallel(ep: int, llm: LLMSpec, tps: list[tuple[str, int]]) -> None:
    """EP ranks are each TP group's: EP divides every TP degree and the routed experts, and needs an MoE model."""
    if ep == 1:
        return
    if llm.num_experts == 0:
        raise InputError("expert_parallel", f"{ep} needs a mixture-of-experts model; {llm.id} is dense")
    if llm.num_experts % ep:
        raise InputError("expert_parallel", f"{ep} must divide the {llm.num_experts} routed experts of {llm.id}")
    for field, degree in tps:
        if degree % ep:
            raise InputError("expert_parallel", f"{ep} must divide {field} ({degree}): EP ranks are the TP group's")


def _check_data_parallel_attention(inputs: ServingInputs, llm: LLMSpec) -> None:
    """DP attention needs an MoE model, a co-located deployment without a draft, and EP = DP x TP."""
    dp, tp, ep = inputs.attention_data_parallel, inputs.tensor_parallel, inputs.expert_parallel
    if llm.num_experts == 0:
        raise InputError("attention_data_parallel", f"{dp} needs a mixture-of-experts model; {llm.id} is dense")
    if inputs.disaggregated:
        raise InputError("attention_data_parallel", "data-parallel attention is modelled co-located only")
    if inputs.draft_model is not None:
        raise InputError("attention_data_parallel", "data-parallel attention is modelled without a draft model")
    if ep != dp * tp:
        raise InputError(
            "expert_parallel",
            f"with data-parallel attention the experts spread over all DP x TP = {dp * tp} GPUs: set it to that",
        )
