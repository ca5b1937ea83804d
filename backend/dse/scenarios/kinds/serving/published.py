"""Published figures of the serving kind.

vLLM's paper (Kwon et al., SOSP'23) states, for its server configurations (Table 1), how many tokens the paged
KV cache holds beside the weights; the engine computes the same from the model, the device and vLLM's then
default gpu_memory_utilization of 0.9 (the share of device memory the server takes). OPT-13B and OPT-175B have
GPT-3's shapes (Zhang et al., 2022, Table 1: 40 layers / 5120 / 40 heads; 96 / 12288 / 96), the catalog's
gpt3-13b and gpt3-175b (the vocabularies differ by 15 rows). vLLM profiles the activation memory and gives
the KV cache what remains up to its utilisation share; the engine reserves no activation memory, so a few
per cent either way is the mechanism's reach, not a fit.

Sarathi-Serve's artifact (microsoft/sarathi-serve, the hybrid-batch experiment of Agrawal et al., OSDI'24,
Table 2) publishes the times of three specimen batches of Yi-34B on two A100 80GB (TP2): 1024 prefill tokens,
1021 prefill tokens with 3 decodes piggybacked, and a decode-only batch of 4. The engine prices the same
iterations (the A100 SXM preset for their PCIe parts; Yi-34B's shape inline) on the prototype's own stack
(sarathi-serve: the kernels plus the per-step host work vidur profiled on it) and is compared on ratios, so
that the device's absolute speed cancels.

TensorRT-LLM's v0.9.0 performance tables publish Mixtral 8x7B (a mixture of experts) static batches: B requests
of fixed lengths all arriving at once, run to completion (gptSessionBenchmark). The kind expresses the same run
exactly: B requests at an unbounded rate, at most B running, a token budget of B prompts (one prefill iteration,
no chunking), then decode iterations; output tokens per second per GPU over the makespan. That release's MoE plugin
has no fp8 path, so the H100 'FP8' engines run fp8 attention GEMMs beside fp16 experts, whose grouped GEMMs are
CUTLASS's Ampere (Sm80) kernels on Hopper too; the stack preset says both (moe_weight_dtypes,
moe_gemm_ampere_kernels) and the engine prices them so.

NVIDIA's NIM benchmarking guide publishes a served model at fixed lengths and fixed client concurrency (AIPerf):
Llama-3.3-70B on two H100 80GB, fp8, TP2. Concurrency 1 (one request in the server at a time) is expressed exactly
as a trace of requests far apart; concurrency 250 keeps the server saturated (more requests waiting than the KV
cache can run), which the kind expresses as requests all arriving at once with at most 250 running: its output
throughput and inter-token latency are the saturation point's. The page names neither the backend of NIM's fp8
H100 profile nor its scheduler settings: the kind assumes TensorRT-LLM (the stack NIM's optimized profiles build)
with its runtime defaults (no chunked context, 8192 tokens per iteration, the GUARANTEED_NO_EVICT capacity policy,
in-flight batching: a context request runs whole in the same iteration as the generation requests, TensorRT-LLM docs
'Paged Attention, IFB, and Request Scheduling') and an fp8 KV cache, on the kernels TensorRT engines of a per-tensor
fp8 checkpoint run (models_db/stacks/tensorrt-llm-fp8-per-tensor.json): the attention plugin's fused context FMHA,
and fp8 GEMMs on the pre-DeepGEMM Hopper fp8 table (DeepGEMM serves block-scaled fp8 alone), whose fixed cost per
GEMM a decode step of one request pays.

SGLang's reproduction of its v0.3.0 comparison with vLLM v0.6.0 (benchmark/benchmark_vllm_060) publishes serving at
stated request rates: Llama 3.1 8B on one A100 80GB and 70B on four H100 (TP4), ShareGPT prompts sent as a Poisson
stream at 4 and 8 requests/s (median end-to-end latency, time to first token, time per output token, inter-token
latency) and all at once (output token throughput: the saturation point). The kind runs the same: the ShareGPT sample
as a length law (models_db/request_lengths/sharegpt-bench-serving-llama3.json), Poisson arrivals at the rate, each
server's scheduler as its command line and version's defaults set it. The curves of vLLM's Figure 12, DistServe's
and Sarathi-Serve's capacity plots are published without their numbers; none is recorded.
The internal consistency checks (a decode
iteration of the table equals the inference engine's decode step, dense and MoE/MLA; saturated throughput is
B * tokens per step / T) live in tests/engines/test_serving.py; a static batch of B requests runs at the
fixed-batch inference kind's throughput at batch B (tests/scenarios/test_serving.py).
"""

from __future__ import annotations

import functools
from functools import partial
from typing import Any, Literal

import numpy as np

from dse.catalog import Catalog
from dse.catalog.calibration import host_cost
from dse.engines.inference import model_shape
from dse.engines.serving import BLOCK_TOKENS, SimulationResult, iteration_time_table
from dse.scenarios.base import PublishedFigure, Tolerance
from dse.scenarios.kinds.serving import studies
from dse.scenarios.kinds.serving.inputs import ServingInputs, resolve
from dse.specs.llm import LLMSpec

VLLM_TABLE_1 = (
    "Kwon et al., 'Efficient Memory Management for Large Language Model Serving with PagedAttention', SOSP'23"
)
#: vLLM profiles activation memory where the engine reserves a utilisation share: a few per cent apart.
KV_CAPACITY = Tolerance.within(0.1)


def kv_cache_tokens(catalog: Catalog, *, model: str, accelerator: str, tp: int) -> float:
    """Tokens the paged KV cache of one replica holds (vLLM's 'KV cache slots'), at utilisation 0.9."""
    r = resolve(
        ServingInputs(model=model, accelerator=accelerator, tensor_parallel=tp, gpu_memory_utilization=0.9), catalog
    )
    return float(studies.memory(r).kv_capacity_blocks * BLOCK_TOKENS)


SARATHI_TABLE_2 = (
    "microsoft/sarathi-serve osdi-experiments/table-2/results.csv (commit 02d2567eb169d947c7093f57b5b74ad602615947), "
    "the artifact's results of the hybrid-batch experiment (Agrawal et al., 'Taming Throughput-Latency Tradeoff in "
    "LLM Inference with Sarathi-Serve', OSDI'24, Table 2), batch_execution_time (ms)"
)
#: Yi-34B as the experiment ran it (the catalog has no preset): the shape of its config.json.
YI_34B = LLMSpec(
    id="yi-34b",
    name="Yi-34B",
    source="Hugging Face 01-ai/Yi-34B config.json: hidden 7168, 60 layers, 56 heads, 8 KV heads, FFN 20480, "
    "vocab 64000, SwiGLU, RMSNorm, RoPE, 4096 positions, untied embeddings",
    hidden_size=7168,
    num_layers=60,
    num_heads=56,
    num_kv_heads=8,
    ffn_hidden_size=20480,
    ffn_activation="swiglu",
    vocab_size=64000,
    tied_embeddings=False,
    max_context_tokens=4096,
    position_embedding="rope",
    norm_type="rmsnorm",
    linear_bias=False,
    published_params_count=34e9,
    published_params_source="01-ai/Yi-34B model card: 34B",
    published_params_rounding_half_step=0.5e9,
)
#: The engine that ran the experiment: its kernels and the per-step host work vidur profiles on it
#: (models_db/stacks/sarathi-serve.json).
SARATHI_STACK = "sarathi-serve"
#: The decode requests' context in the specimen batches is not published: 1024 tokens, like the prompt.
SARATHI_CONTEXT_TOKENS = 1024.0


def sarathi_batch_ms(catalog: Catalog, decode: int, prefill: int) -> float:
    """One iteration of `decode` decode tokens and `prefill` prefill tokens, Yi-34B, TP2, A100 80GB, fp16 (ms).
    Each point is the top of its own table's grid, so it is priced, not interpolated (a GEMM of 1027 tokens
    crosses a tile that one of 1024 does not)."""
    r = resolve(
        ServingInputs(model=YI_34B, accelerator="a100-80gb", tensor_parallel=2, software_stack=SARATHI_STACK), catalog
    )
    table = iteration_time_table(
        shape=model_shape(YI_34B),
        device=studies.device(r),
        deployment=studies.deployment(r),
        max_decode_batch=max(decode, 1),
        max_prefill_tokens=max(prefill, 1),
        max_context_tokens=int(SARATHI_CONTEXT_TOKENS),
        host=host_cost(r.host_fits or {}, r.software_stack, vocab_size=float(YI_34B.vocab_size), tensor_parallel=2.0),
    )
    return table.at(decode, prefill, SARATHI_CONTEXT_TOKENS) * 1e3


def sarathi_batch_ratio(catalog: Catalog, *, numerator: tuple[int, int], denominator: tuple[int, int]) -> float:
    """Time of one iteration of (decode tokens, prefill tokens) over another's."""
    return sarathi_batch_ms(catalog, *numerator) / sarathi_batch_ms(catalog, *denominator)


TRTLLM_V090_PERFORMANCE = (
    "NVIDIA/TensorRT-LLM docs/source/performance.md @ 250d9c293d5edbc2a45c20775b3150b1eb68b364 ('All data was "
    "generated using version 0.9.0'; static batches timed by gptSessionBenchmark, engines built with trtllm-build, "
    "FP8 weights and KV cache on H100 via the checkpoint's quant_algo / kv_cache_quant_algo, FP16 on A100), 'Peak "
    "Throughput' tables, Mixtral 8x7B rows, Throughput (out tok/s/GPU)"
)
#: The stack those tables ran (models_db/stacks/tensorrt-llm-0.9.json: XQA decode, fp16 context FMHA, unfused SwiGLU,
#: and a MoE plugin without fp8: an fp8 checkpoint's experts stay fp16, on CUTLASS's Ampere grouped GEMM on Hopper).
TRTLLM_V090_STACK = "tensorrt-llm-0.9"
#: Hopper's and Ampere's NVLink per direction per GPU (NVIDIA H100 / A100 datasheets: 900 / 600 GB/s total).
NVLINK_GB_PER_S = {"h100-sxm": 450.0, "a100-80gb": 300.0}
#: (accelerator, dtype, TP, batch, input length, output length, published out tok/s/GPU).
TRTLLM_V090_MIXTRAL: tuple[tuple[str, str, int, int, int, int, float], ...] = (
    ("h100-sxm", "fp8", 2, 512, 128, 128, 5_255.0),
    ("h100-sxm", "fp8", 2, 128, 128, 2048, 3_408.0),
    ("h100-sxm", "fp8", 2, 64, 2048, 128, 588.0),
    ("h100-sxm", "fp8", 2, 32, 2048, 2048, 1_317.0),
    ("a100-80gb", "fp16", 2, 512, 128, 128, 2_842.0),
    ("a100-80gb", "fp16", 2, 128, 128, 2048, 1_724.0),
    ("a100-80gb", "fp16", 2, 64, 2048, 128, 319.0),
    ("a100-80gb", "fp16", 2, 32, 2048, 2048, 801.0),
)
_MIXTRAL_ROUTING_MISS = (
    "The published {published} tok/s/GPU exceeds what {part} memory allows the model as the engine prices it. "
    "32 requests decoding 2048 tokens touch every expert each step under uniform routing (32 x 2 of 8 experts touch "
    "all 8 with probability 1 - 8 x 0.75^32 > 0.999), and TensorRT-LLM v0.9.0 keeps the experts fp16 on both parts "
    "(its MoE plugin has no fp8 path: models_db/stacks/tensorrt-llm-0.9.json, moe_weight_dtypes): 45.1 GB of expert "
    "weights per GPU at TP2 (1/2 of every expert: tensor-parallel MoE) read every step. The published row is a step "
    "of {published_step_ms} ms after the engine's {prefill_s} s prefill of the 64k prompt tokens, in which "
    "{part}'s {bandwidth_tb_per_s} TB/s reads at most {readable_gb} GB; less the KV cache ({kv_gb} at the mean "
    "context of 3072) and the other weights ({attention_gb}), at most {experts_gb} GB of experts: {experts} "
    "of the 8 per layer and step. The engine's step, every expert read at the GEMM fit's memory efficiency plus the "
    "KV reads, is {engine_step_ms} ms. The H100 and A100 rows ({ratio}x apart, the ratio of their memory bandwidths "
    "3.35 / 2.039 = 1.64: fp16 experts on both) imply 5 to 6 of the 8 experts per step alike, so the benchmark's "
    "routing is more concentrated than uniform; the tables' documented method builds each engine from a config "
    "file alone (trtllm-build --model_config, no checkpoint: dummy weights, as examples/mixtral/README.md at that "
    "commit says of a build without one), whose router need not spread tokens as the trained model's does. The engine "
    "routes uniformly; no published routing statistic of those runs exists to price."
)
#: (accelerator) -> the figures of its 2048/2048 row's miss (see _MIXTRAL_ROUTING_MISS).
_MIXTRAL_ROUTING_FIGURES: dict[str, dict[str, str]] = {
    "h100-sxm": dict(
        published="1317",
        part="H100 SXM",
        published_step_ms="11.1",
        prefill_s="2.2",
        bandwidth_tb_per_s="3.35",
        readable_gb="37.1",
        kv_gb="3.2 GB fp8",
        attention_gb="0.8 GB fp8",
        experts_gb="33.1",
        experts="5.9",
        engine_step_ms="18.7",
        ratio="1.64",
    ),
    "a100-80gb": dict(
        published="801",
        part="A100 80GB",
        published_step_ms="18.0",
        prefill_s="4.0",
        bandwidth_tb_per_s="2.039",
        readable_gb="36.8",
        kv_gb="6.4 GB fp16",
        attention_gb="1.6 GB fp16",
        experts_gb="28.7",
        experts="5.1",
        engine_step_ms="35.9",
        ratio="1.64",
    ),
}


def static_batch_simulation(
    catalog: Catalog,
    *,
    model: str,
    accelerator: str,
    dtype: str,
    tp: int,
    batch: int,
    prompt: int,
    output: int,
    stack: str = TRTLLM_V090_STACK,
) -> SimulationResult:
    """A static batch as the serving kind runs it: `batch` requests at once, all running, one prefill iteration of
    every prompt (no chunking), then decode iterations."""
    r = resolve(
        ServingInputs(
            model=model,
            accelerator=accelerator,
            tensor_parallel=tp,
            software_stack=stack,
            weight_dtype=dtype,
            activation_dtype=dtype,
            kv_cache_dtype=dtype,
            arrival_process="poisson",
            arrival_rate_per_s=STATIC_BATCH_RATE_PER_S,
            request_lengths=None,
            prompt_tokens=prompt,
            output_tokens=output,
            num_requests=batch,
            max_running=batch,
            chunked_prefill=False,
            token_budget=batch * prompt,
            link_bandwidth_gb_per_s=NVLINK_GB_PER_S[accelerator],
        ),
        catalog,
    )
    return studies.serve(r, studies.pools(r), STATIC_BATCH_RATE_PER_S, batch).sim


def static_batch_tokens_per_s_per_gpu(catalog: Catalog, **setting: Any) -> float:
    """Output tokens per second per GPU of `static_batch_simulation` (same arguments) over its makespan."""
    sim = static_batch_simulation(catalog, **setting)
    return float(sim.output_tokens.sum()) / sim.makespan_s / float(setting["tp"])


#: Arrivals this close together (1 us apart on average) are one batch: the first request's prompt runs alone in
#: the first iteration (it is in a few us before the rest), every other prompt in the second; one extra iteration of
#: one prompt, under 1% of each of these runs' makespan.
STATIC_BATCH_RATE_PER_S = 1e6


def _mixtral_known_miss(accelerator: str, prompt: int, output: int) -> str | None:
    if (prompt, output) == (2048, 2048):
        figures = _MIXTRAL_ROUTING_FIGURES[accelerator]
        return _MIXTRAL_ROUTING_MISS.format(**{**figures, "published": f"{int(figures['published']):,}"})
    return None


def _mixtral_figures() -> list[PublishedFigure]:
    return [
        PublishedFigure(
            key=f"trtllm-v090-mixtral-8x7b-{accelerator}-{dtype}-tp{tp}-b{batch}-{prompt}-{output}-throughput",
            quantity=f"Mixtral 8x7B (MoE) on {accelerator} {dtype}, TP{tp}, static batch of {batch} requests arriving "
            f"at once, {prompt} in / {output} out: output tokens/s per GPU (stack {TRTLLM_V090_STACK})",
            published=published,
            unit="tokens/s",
            source=TRTLLM_V090_PERFORMANCE,
            tolerance=Tolerance.within(0.15),
            engine=partial(
                static_batch_tokens_per_s_per_gpu,
                model="mixtral-8x7b",
                accelerator=accelerator,
                dtype=dtype,
                tp=tp,
                batch=batch,
                prompt=prompt,
                output=output,
            ),
            known_miss=_mixtral_known_miss(accelerator, prompt, output),
            accelerator=accelerator,
            dtype=dtype,
            measure="rate",
            devices=float(tp),
        )
        for accelerator, dtype, tp, batch, prompt, output, published in TRTLLM_V090_MIXTRAL
    ]


NIM_PERFORMANCE = (
    "NVIDIA NIM benchmarking guide, 'Performance' (docs.nvidia.com/nim/benchmarking/llm/1.0.0/performance), "
    "Llama-3.3-70b-instruct results, NIM version 1.8.0, 2 x H100 80G, fp8 TP2, AIPerf at fixed client concurrency"
)
#: TensorRT-LLM's TensorRT engines of a per-tensor fp8 checkpoint: the fused fp16 context FMHA and the pre-DeepGEMM
#: fp8 GEMMs (models_db/stacks/tensorrt-llm-fp8-per-tensor.json).
NIM_STACK = "tensorrt-llm-fp8-per-tensor"
#: Llama-3.3-70B has Llama-3.1-70B's shape (the same config.json architecture fields); the catalog's llama3.1-70b.
NIM_MODEL = "llama3.1-70b"
#: TensorRT-LLM's runtime defaults, NIM's own settings not being published: ExecutorConfig(enable_chunked_context=
#: False) and BuildConfig(max_num_tokens=8192) of the TensorRT-LLM Python API.
TRTLLM_DEFAULT_MAX_NUM_TOKENS = 8192
#: Clients of the saturated rows; requests simulated for them (all at once: the drain at the end is a few per cent
#: of the run).
NIM_SATURATED_CONCURRENCY = 250
NIM_SATURATED_REQUESTS = 1000
#: Seconds between the isolated requests of a concurrency-1 run (each takes under 10 s).
NIM_ISOLATED_GAP_S = 1000.0


def _nim_inputs(**overrides: object) -> ServingInputs:
    """NIM's Llama-3.3-70B fp8 deployment: TP2 on H100 SXM, fp8 weights, activations and KV cache (the 'fp8'
    profile; the KV cache's dtype is not stated), NVLink 4, TensorRT-LLM's scheduler defaults (its default capacity
    policy GUARANTEED_NO_EVICT: TensorRT-LLM docs, performance tuning guide, 'Useful Runtime Options')."""
    return ServingInputs.model_validate(
        dict(
            model=NIM_MODEL,
            accelerator="h100-sxm",
            tensor_parallel=2,
            software_stack=NIM_STACK,
            weight_dtype="fp8",
            activation_dtype="fp8",
            kv_cache_dtype="fp8",
            request_lengths=None,
            chunked_prefill=False,
            token_budget=TRTLLM_DEFAULT_MAX_NUM_TOKENS,
            admission_policy="guaranteed_no_evict",
            prompts_join_decodes=True,
            link_bandwidth_gb_per_s=NVLINK_GB_PER_S["h100-sxm"],
            **overrides,
        )
    )


def nim_isolated_request_ms(catalog: Catalog, *, prompt: int, output: int, quantity: Literal["ttft", "tpot"]) -> float:
    """Concurrency 1: requests far apart, each alone in the server; its time to first token or time per output
    token after the first (AIPerf's inter-token latency), ms."""
    trace = [(NIM_ISOLATED_GAP_S * i, prompt, output) for i in range(4)]
    r = resolve(_nim_inputs(arrival_process="trace", trace=trace, max_running=1), catalog)
    sim = studies.serve(r, studies.pools(r), studies.trace_rate(r), len(trace)).sim
    times = sim.ttft_s if quantity == "ttft" else sim.tpot_s
    return float(np.median(times)) * 1e3


def nim_saturated(catalog: Catalog, *, prompt: int, output: int, quantity: Literal["tokens_per_s", "tpot_ms"]) -> float:
    """Concurrency 250: requests all at once, at most 250 running; output tokens per second of the deployment over
    the run, or the median time per output token (ms)."""
    r = resolve(
        _nim_inputs(
            arrival_rate_per_s=STATIC_BATCH_RATE_PER_S,
            prompt_tokens=prompt,
            output_tokens=output,
            num_requests=NIM_SATURATED_REQUESTS,
            max_running=NIM_SATURATED_CONCURRENCY,
        ),
        catalog,
    )
    sim = studies.serve(r, studies.pools(r), STATIC_BATCH_RATE_PER_S, NIM_SATURATED_REQUESTS).sim
    if quantity == "tokens_per_s":
        return float(sim.output_tokens.sum()) / sim.makespan_s
    return float(np.median(sim.tpot_s)) * 1e3


_NIM_STEP_NOTE = (
    "One request alone: a decode step reads 34 GB of fp8 weights per GPU in 320 GEMMs of one row; the engine prices "
    "them on the pre-DeepGEMM fp8 table at 2.4 TB/s in all, a third of it the table's fixed cost of about 10 us per "
    "GEMM, extrapolated below its 64-row shapes (tensor-core fp8 GEMMs of one row run at about bf16's time: "
    "pytorch/FBGEMM #3608), plus 160 all-reduces. The engine's step is 10-12% short of the measured one: host work "
    "per step (scheduling, sampling, streaming the token) that no stack here calibrates for TensorRT-LLM."
)
#: (prompt, output, published TTFT ms, published ITL ms)
NIM_CONCURRENCY_1: tuple[tuple[int, int, float, float], ...] = (
    (5000, 500, 406.77, 18.58),
    (500, 2000, 47.77, 18.91),
)


def _nim_figures() -> list[PublishedFigure]:
    figures: list[PublishedFigure] = []
    for prompt, output, ttft_ms, itl_ms in NIM_CONCURRENCY_1:
        rows: tuple[tuple[Literal["ttft", "tpot"], float, str], ...] = (
            ("ttft", ttft_ms, "time to first token"),
            ("tpot", itl_ms, "time per output token"),
        )
        for quantity, published, words in rows:
            figures.append(
                PublishedFigure(
                    key=f"nim-1.8-llama3.3-70b-h100-fp8-tp2-{prompt}-{output}-concurrency-1-{quantity}",
                    quantity=f"Llama-3.3-70B on 2 H100 fp8 (TP2), {prompt} in / {output} out, one request at a time: "
                    f"{words} (stack {NIM_STACK})",
                    published=published,
                    unit="ms",
                    source=f"{NIM_PERFORMANCE}, {prompt} Input Tokens / {output} Output Tokens, concurrency 1: "
                    f"{'TTFT' if quantity == 'ttft' else 'ITL'} {published:g} ms",
                    tolerance=Tolerance.within(0.15),
                    engine=partial(nim_isolated_request_ms, prompt=prompt, output=output, quantity=quantity),
                    note="" if quantity == "ttft" else _NIM_STEP_NOTE,
                    accelerator="h100-sxm",
                    dtype="fp8",
                    measure="time",
                    devices=2.0,
                )
            )
    figures += [
        PublishedFigure(
            key="nim-1.8-llama3.3-70b-h100-fp8-tp2-5000-500-concurrency-250-throughput",
            quantity="Llama-3.3-70B on 2 H100 fp8 (TP2), 5000 in / 500 out, saturated (250 clients): output "
            f"tokens/s of the deployment (stack {NIM_STACK})",
            published=920.12,
            unit="tokens/s",
            source=f"{NIM_PERFORMANCE}, 5000 Input Tokens / 500 Output Tokens, concurrency 250: Throughput 920.12 "
            "tokens/s (917 to 921 from concurrency 100 up: the plateau)",
            tolerance=Tolerance.within(0.15),
            engine=partial(nim_saturated, prompt=5000, output=500, quantity="tokens_per_s"),
            note="TensorRT-LLM's default capacity policy, GUARANTEED_NO_EVICT, admits a request only when its prompt "
            "and whole output fit in the KV cache beside every running request's: about 93 of these 5,500-token "
            "requests at once, none preempted (vLLM's preempting policy gives 846 tok/s, -4%); its in-flight "
            "batching runs each whole prompt in the decodes' iteration (prefill-only iterations give 859 tok/s).",
            accelerator="h100-sxm",
            dtype="fp8",
            measure="rate",
            devices=2.0,
        ),
        PublishedFigure(
            key="nim-1.8-llama3.3-70b-h100-fp8-tp2-5000-500-concurrency-250-tpot",
            quantity="Llama-3.3-70B on 2 H100 fp8 (TP2), 5000 in / 500 out, saturated (250 clients): time per "
            f"output token (stack {NIM_STACK})",
            published=93.2,
            unit="ms",
            source=f"{NIM_PERFORMANCE}, 5000 Input Tokens / 500 Output Tokens, concurrency 250: ITL 93.2 ms",
            tolerance=Tolerance.within(0.15),
            engine=partial(nim_saturated, prompt=5000, output=500, quantity="tpot_ms"),
            accelerator="h100-sxm",
            dtype="fp8",
            measure="time",
            devices=2.0,
        ),
    ]
    return figures


SGLANG_VLLM060 = (
    "sgl-project/sglang benchmark/benchmark_vllm_060/README.md @ 120affb9613cc3f5bcd055ec09c7621d3ced0ebc ('How to "
    "reproduce the benchmark results for SGLang v0.3.0 compared to vLLM v0.6.0'): sglang.bench_serving, ShareGPT, "
    "Poisson arrivals at the stated request rate (RPS), Llama 3.1 8B Instruct on 1 x A100 80G and 70B Instruct on "
    "4 x H100 80G (TP4), bf16"
)
#: The ShareGPT sample of sglang.bench_serving, tokenized for Llama 3.1 (models_db/request_lengths).
BENCH_SERVING_SHAREGPT = "sharegpt-bench-serving-llama3"
ServingEngine = Literal["vllm-0.6.0", "sglang-0.3.0"]
#: The schedulers as the README's commands ran them. vLLM v0.6.0 (`--max_model_len 4096 --num-scheduler-steps 10`,
#: gpu_memory_utilization 0.9 by default): chunked prefill is off by default below 32k tokens of context
#: (vllm/engine/arg_utils.py, v0.6.0: enabled by default only for the OpenAI server with max_model_len > 32768), so an
#: iteration prefills whole prompts up to max_num_batched_tokens = max(max_model_len, 2048) = 4096 (vllm/config.py,
#: SchedulerConfig, v0.6.0) or decodes, at most max_num_seqs = 256 running (arg_utils.py), and preempts by recompute;
#: its decodes run in blocks of ten steps per scheduler call (scheduler_steps, the command's --num-scheduler-steps 10),
#: its prefills one step each. SGLang v0.3.0: prompts of at most 1024 tokens are never split by its chunked_prefill_size
#: of 8192, a prefill batch holds up to max_prefill_tokens = 16384 (python/sglang/srt/server_args.py, v0.3.0), prefill
#: and decode batches run apart (mixed chunks are off by default), and mem_fraction_static is 0.88 at TP1 and 0.85 at
#: TP4 (the README's notes); its running requests are bounded by the cache, not by a count (4096 here, never reached at
#: these rates).
SERVING_ENGINE_SETTINGS: dict[ServingEngine, dict[str, object]] = {
    "vllm-0.6.0": {
        "token_budget": 4096,
        "max_running": 256,
        "admission_policy": "max_utilization",
        "scheduler_steps": 10,
    },
    "sglang-0.3.0": {"token_budget": 16384, "max_running": 4096, "admission_policy": "max_utilization"},
}
#: (model, accelerator, TP) of the README's two deployments.
SGLANG_VLLM060_DEPLOYMENTS = {"8b": ("llama3.1-8b", "a100-80gb", 1), "70b": ("llama3.1-70b", "h100-sxm", 4)}


def _bench_serving_inputs(engine: ServingEngine, deployment: str, rate_per_s: float, count: int) -> ServingInputs:
    model, accelerator, tp = SGLANG_VLLM060_DEPLOYMENTS[deployment]
    utilization = 0.9 if engine == "vllm-0.6.0" else (0.88 if tp == 1 else 0.85)
    return ServingInputs.model_validate(
        dict(
            model=model,
            accelerator=accelerator,
            tensor_parallel=tp,
            request_lengths=BENCH_SERVING_SHAREGPT,
            arrival_process="poisson",
            arrival_rate_per_s=rate_per_s,
            num_requests=count,
            chunked_prefill=False,
            gpu_memory_utilization=utilization,
            link_bandwidth_gb_per_s=NVLINK_GB_PER_S[accelerator],
            # the engine's own stack: vllm-cuda-graphs' kernels with its host work per iteration
            software_stack=engine,
            **SERVING_ENGINE_SETTINGS[engine],
        )
    )


@functools.lru_cache(maxsize=32)
def _bench_serving_run(
    catalog: Catalog, engine: ServingEngine, deployment: str, rate_per_s: float, count: int
) -> SimulationResult:
    """One simulated benchmark run (shared by the quantities read from it)."""
    r = resolve(_bench_serving_inputs(engine, deployment, rate_per_s, count), catalog)
    return studies.serve(r, studies.pools(r), rate_per_s, count).sim


BenchQuantity = Literal["e2e", "ttft", "tpot", "itl"]


def bench_serving_median_ms(
    catalog: Catalog, *, engine: ServingEngine, deployment: str, rate_per_s: float, count: int, quantity: BenchQuantity
) -> float:
    """The median over requests of end-to-end latency, time to first token or time per output token after the first,
    or the median inter-token latency over every token gap (bench_serving's median ITL), ms."""
    sim = _bench_serving_run(catalog, engine, deployment, rate_per_s, count)
    if quantity == "itl":
        return sim.tbt_percentile_s(50.0) * 1e3
    times = {"e2e": sim.e2e_s, "ttft": sim.ttft_s, "tpot": sim.tpot_s}[quantity]
    return float(np.nanmedian(times)) * 1e3


def bench_serving_saturated_tokens_per_s(catalog: Catalog, *, engine: ServingEngine, deployment: str) -> float:
    """Request rate inf: every prompt sent at once; output tokens per second over the run."""
    sim = _bench_serving_run(catalog, engine, deployment, STATIC_BATCH_RATE_PER_S, SGLANG_VLLM060_OFFLINE_PROMPTS)
    return float(sim.output_tokens.sum()) / sim.makespan_s


SGLANG_VLLM060_OFFLINE_PROMPTS = 5000
#: (deployment, RPS, prompts, engine, median E2E, TTFT, TPOT, ITL ms), the README's online tables.
SGLANG_VLLM060_ONLINE: tuple[tuple[str, float, int, ServingEngine, float, float, float, float], ...] = (
    ("8b", 4.0, 1200, "sglang-0.3.0", 1564.17, 31.98, 13.17, 11.93),
    ("8b", 4.0, 1200, "vllm-0.6.0", 1691.97, 100.48, 14.14, 129.32),
    ("8b", 8.0, 2400, "sglang-0.3.0", 2175.02, 35.68, 17.85, 14.41),
    ("8b", 8.0, 2400, "vllm-0.6.0", 2137.16, 120.39, 17.09, 158.63),
    ("70b", 4.0, 1200, "sglang-0.3.0", 3005.24, 53.94, 25.03, 21.67),
    ("70b", 4.0, 1200, "vllm-0.6.0", 2915.60, 179.15, 23.58, 231.23),
    ("70b", 8.0, 2400, "sglang-0.3.0", 4064.98, 58.11, 33.07, 24.45),
    ("70b", 8.0, 2400, "vllm-0.6.0", 3752.38, 207.12, 29.15, 275.32),
)
#: (deployment, engine, output token throughput tok/s), the README's offline tables (RPS inf, 5000 prompts).
SGLANG_VLLM060_OFFLINE: tuple[tuple[str, ServingEngine, float], ...] = (
    ("8b", "vllm-0.6.0", 4132.37),
    ("70b", "vllm-0.6.0", 3700.64),
)
_BENCH_WORDS: dict[BenchQuantity, str] = {
    "e2e": "median end-to-end latency",
    "ttft": "median time to first token",
    "tpot": "median time per output token",
    "itl": "median inter-token latency",
}
_BENCH_COLUMNS: dict[BenchQuantity, str] = {
    "e2e": "Median E2E Latency",
    "ttft": "Median TTFT",
    "tpot": "Median TPOT",
    "itl": "Median ITL",
}
_MULTI_STEP_MISS = (
    "The engine gives {engine} ms: the prefill of the median prompt and its queue behind the multi-step block under "
    "way (vLLM ran --num-scheduler-steps 10: a new prompt waits for the block's remaining decode steps, about half of "
    "ten), its first token seen when the next step's model call returns (asynchronous output processing, the "
    "vllm-0.6.0 stack's outputs_with_next_step: at the end of the next prefill, or once the next decode block is "
    "launched). The rest, about {gap} ms here, is on the first token's path alone: the engine's decode cycle (ten "
    "times its median TPOT: a block of ten steps and the prefills between blocks) comes within {cycle} of the "
    "published median ITL, the ten-token chunk's gap. "
    "What the engine does not price there is vLLM's API server process and its RPC to the engine process (the "
    "prompt tokenized in the front end, request outputs pickled over ZMQ, the SSE chunk) and any time a prefill of "
    "about a hundred tokens takes beyond the kernels priced (vLLM captures CUDA graphs for decodes only, so prefills "
    "run eager); each would need its own sourced measurement, not a fit to these rows."
)
_FRONT_END_MISS = (
    "The engine gives {engine} ms, the prefill of the median prompt (about 110 tokens) and its queue behind the "
    "decode step under way. SGLang 0.3.0's scheduler is what the engine models (python/sglang/srt/managers/"
    "tp_worker.py and controller_single.py, v0.3.0): it takes new requests at the top of each loop, runs one decode "
    "step per loop for streamed requests (forward_step stops its ten continued decode steps once a step has outputs; "
    "stream_interval 1) and sends a prefill's first token out as the step ends. sglang.bench_serving (v0.3.0: "
    "ASYNC_REQUEST_FUNCS sends both backends to the OpenAI /v1/completions route, streamed) times the first token at "
    "the client, at the first chunk with text: the tokenizer manager (HTTP server and tokenizer) and the detokenizer "
    "process SGLang runs beside the scheduler (ZMQ hops, incremental detokenization, the SSE chunk) and the client's "
    "own event loop come on top of the steps the engine prices (about {gap} ms here); the engine prices no per-request "
    "front-end cost (it would need its own sourced measurement). The gap grows with the model (8-10 ms for 8B on one "
    "A100, 16-17 ms for 70B at TP4), which a per-request front-end cost alone would not do; what scales with it and "
    "is not priced: SGLang 0.3.0 replays CUDA graphs for decode batches only (model_executor/model_runner.py: "
    "forward_decode replays, forward_extend runs the model eagerly), so a prefill launches each layer's kernels from "
    "the host (80 layers against 32), and at TP > 1 every scheduler loop first broadcasts the received requests over "
    "the CPU process group (controller_single.py loop_for_forward: broadcast_recv_input). The prompt lengths are not "
    "the gap: the sample's own median prompt, 108 tokens counted from the dataset through the sampler's rules "
    "(models_db/request_lengths/sharegpt-bench-serving-llama3.json), is shorter than the 163 an assumed spread gave, "
    "and moved this row further under."
)
#: Known misses by (deployment, RPS, engine, quantity), with the engine's value when written.
_BENCH_MISSES: dict[tuple[str, float, ServingEngine, BenchQuantity], str] = {
    ("8b", 8.0, "vllm-0.6.0", "ttft"): _MULTI_STEP_MISS.format(engine="98.4", gap="22", cycle="2%"),
    ("70b", 4.0, "vllm-0.6.0", "ttft"): _MULTI_STEP_MISS.format(engine="137.2", gap="42", cycle="4%"),
    ("70b", 8.0, "vllm-0.6.0", "ttft"): _MULTI_STEP_MISS.format(engine="142.6", gap="65", cycle="7%"),
    ("8b", 4.0, "sglang-0.3.0", "ttft"): _FRONT_END_MISS.format(engine="24.2", gap="8"),
    ("8b", 8.0, "sglang-0.3.0", "ttft"): _FRONT_END_MISS.format(engine="26.1", gap="10"),
    ("70b", 4.0, "sglang-0.3.0", "ttft"): _FRONT_END_MISS.format(engine="38.2", gap="16"),
    ("70b", 8.0, "sglang-0.3.0", "ttft"): _FRONT_END_MISS.format(engine="40.8", gap="17"),
}


#: Known misses of the offline (saturated) rows, by (deployment, engine).
_OFFLINE_MISSES: dict[tuple[str, ServingEngine], str] = {}


def _bench_serving_figures() -> list[PublishedFigure]:
    figures: list[PublishedFigure] = []
    for deployment, rate, count, engine, *values in SGLANG_VLLM060_ONLINE:
        _, accelerator, tp = SGLANG_VLLM060_DEPLOYMENTS[deployment]
        quantities: tuple[BenchQuantity, ...] = ("e2e", "ttft", "tpot", "itl")
        for quantity, published in zip(quantities, values, strict=True):
            if engine == "vllm-0.6.0" and quantity == "itl":
                continue  # ten tokens streamed at once by its multi-step scheduler: not a time between iterations
            figures.append(
                PublishedFigure(
                    key=f"sglang-vllm060-{engine}-llama3.1-{deployment}-{accelerator}-tp{tp}-sharegpt-rps{rate:g}-"
                    f"{quantity}",
                    quantity=f"{engine} serving Llama 3.1 {deployment.upper()} on {tp} {accelerator} (TP{tp}), "
                    f"ShareGPT at {rate:g} requests/s (Poisson): {_BENCH_WORDS[quantity]}",
                    published=published,
                    unit="ms",
                    source=f"{SGLANG_VLLM060}, online table, RPS {rate:g}, {count} prompts, {engine.split('-')[0]}: "
                    f"{_BENCH_COLUMNS[quantity]} {published:g} ms",
                    tolerance=Tolerance.within(0.15),
                    engine=partial(
                        bench_serving_median_ms,
                        engine=engine,
                        deployment=deployment,
                        rate_per_s=rate,
                        count=count,
                        quantity=quantity,
                    ),
                    known_miss=_BENCH_MISSES.get((deployment, rate, engine, quantity)),
                    accelerator=accelerator,
                    dtype="fp16",
                    measure="time",
                    devices=float(tp),
                )
            )
    for deployment, engine, published in SGLANG_VLLM060_OFFLINE:
        _, accelerator, tp = SGLANG_VLLM060_DEPLOYMENTS[deployment]
        figures.append(
            PublishedFigure(
                key=f"sglang-vllm060-{engine}-llama3.1-{deployment}-{accelerator}-tp{tp}-sharegpt-rps-inf-throughput",
                quantity=f"{engine} serving Llama 3.1 {deployment.upper()} on {tp} {accelerator} (TP{tp}), "
                f"{SGLANG_VLLM060_OFFLINE_PROMPTS} ShareGPT prompts sent at once: output tokens/s (saturated)",
                published=published,
                unit="tokens/s",
                source=f"{SGLANG_VLLM060}, offline table, RPS inf, {SGLANG_VLLM060_OFFLINE_PROMPTS} prompts, "
                f"{engine.split('-')[0]}: Output token throughput {published:g}",
                tolerance=Tolerance.within(0.15),
                engine=partial(bench_serving_saturated_tokens_per_s, engine=engine, deployment=deployment),
                note="At most 256 requests run (vLLM's max_num_seqs); the rest queue: the server runs at its "
                "saturation point, blocks of ten decode iterations of 256 requests between prefills of the prompts "
                "that replace those finished in a block.",
                known_miss=_OFFLINE_MISSES.get((deployment, engine)),
                accelerator=accelerator,
                dtype="fp16",
                measure="rate",
                devices=float(tp),
            )
        )
    return figures


PUBLISHED: tuple[PublishedFigure, ...] = (
    PublishedFigure(
        key="sarathi-table2-yi34b-hybrid-over-prefill-batch",
        quantity="Yi-34B TP2 batch time: 1021 prefill + 3 piggybacked decode tokens over 1024 prefill tokens",
        published=217.6498775370419 / 217.2359591349959,
        unit="x",
        source=f"{SARATHI_TABLE_2}: 217.65 ms (1021 + 3) / 217.24 ms (1024)",
        tolerance=Tolerance.within(0.05),
        engine=partial(sarathi_batch_ratio, numerator=(3, 1021), denominator=(0, 1024)),
        note="Piggybacked decodes share the prefill's weight reads: a mixed iteration is priced as one pass over "
        "all its tokens (dense ops), not as a prefill plus a decode step.",
    ),
    PublishedFigure(
        key="sarathi-table2-yi34b-decode-over-prefill-batch",
        quantity="Yi-34B TP2 batch time: a decode-only batch of 4 over 1024 prefill tokens",
        published=68.12209542840715 / 217.2359591349959,
        unit="x",
        source=f"{SARATHI_TABLE_2}: 68.12 ms (4 decodes) / 217.24 ms (1024)",
        tolerance=Tolerance.within(0.15),
        engine=partial(sarathi_batch_ratio, numerator=(4, 0), denominator=(0, 1024)),
        known_miss="The published batch times hold about 40 ms per batch beyond the kernels: the same file's "
        "linear + attention columns sum to 28.5 of the decode batch's 68.1 ms and 174.6 of the prefill batch's "
        "217.2 ms. The engine prices the kernels plus the prototype's per-step host work as vidur profiled it (the "
        "sarathi-serve stack: schedule, Ray communication, inputs, sampler and outputs from models_db/calibration/fits/"
        "a100-80gb.fp16.vidur-sarathi.host_overhead.host-fit.json, about 7.5 ms for such a step at TP2): 32.9 ms for "
        "the decode batch and 177.3 ms for the prefill batch, 35 and 40 ms short of measured. A cost per batch about "
        "as large for 4 decode tokens as for 1024 prefill tokens has no sourced mechanism, so a small decode batch "
        "still comes out much cheaper than measured.",
    ),
    PublishedFigure(
        key="vllm-table1-opt13b-a100-kv-slots",
        quantity="KV-cache slots (tokens) of OPT-13B on one A100 40GB, fp16",
        published=15_700.0,
        unit="tokens",
        source=f"{VLLM_TABLE_1}, Table 1: 13B on an A100, memory for KV cache 12 GB, max. # KV cache slots 15.7K",
        tolerance=KV_CAPACITY,
        engine=partial(kv_cache_tokens, model="gpt3-13b", accelerator="a100-40gb", tp=1),
    ),
    PublishedFigure(
        key="vllm-table1-opt175b-8xa100-kv-slots",
        quantity="KV-cache slots (tokens) of OPT-175B on 8 A100 80GB (TP8), fp16",
        published=60_100.0,
        unit="tokens",
        source=f"{VLLM_TABLE_1}, Table 1: 175B on 8xA100-80GB, memory for KV cache 264 GB, max. # KV cache slots 60.1K",
        tolerance=KV_CAPACITY,
        engine=partial(kv_cache_tokens, model="gpt3-175b", accelerator="a100-80gb", tp=8),
    ),
    *_mixtral_figures(),
    *_nim_figures(),
    *_bench_serving_figures(),
)
