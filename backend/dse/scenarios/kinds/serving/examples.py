"""Example documents of the serving kind; the first is the default (and the home page's question)."""

from __future__ import annotations

from typing import Any


def _doc(name: str, **inputs: Any) -> dict[str, Any]:
    return {"schema_version": 1, "kind": "serving", "name": name, "inputs": inputs}


EXAMPLES: tuple[dict[str, Any], ...] = (
    _doc(
        "How many H100s serve 50 req/s of Llama-3 70B at p99 TTFT under 2 s?",
        model="llama3-70b",
        accelerator="h100-sxm",
        tensor_parallel=4,
        replicas=1,
        arrival_rate_per_s=50.0,
        request_lengths="sharegpt-neupims",
        ttft_slo_s=2.0,
        tpot_slo_s=0.1,
        slo_percentile=99.0,
    ),
    _doc(
        "Llama-2 7B on one A100 80GB under Poisson load, ShareGPT-like requests (vLLM's setting)",
        model="llama2-7b",
        accelerator="a100-80gb",
        arrival_rate_per_s=4.0,
        request_lengths="sharegpt-neupims",
    ),
    _doc(
        "Bursty arrivals (gamma, CV 3): Llama-3 8B on an H100, without chunked prefill",
        model="llama3-8b",
        accelerator="h100-sxm",
        arrival_process="gamma",
        burstiness_cv=3.0,
        arrival_rate_per_s=10.0,
        chunked_prefill=False,
        request_lengths="alpaca-vllm",
    ),
    _doc(
        "A short inline trace, fixed lengths, half the prompt tokens in the prefix cache",
        model="llama2-13b",
        accelerator="a100-80gb",
        arrival_process="trace",
        trace=[[round(0.3 * i, 2), 256 * (1 + i % 4), 64 * (1 + i % 3)] for i in range(20)],
        prefix_cache_hit_rate=0.5,
        request_lengths=None,
    ),
    _doc(
        "Does a Llama-2 7B draft (speculative decoding, 4 tokens, 70% accepted) speed up Llama-2 70B on 4 A100s?",
        model="llama2-70b",
        accelerator="a100-80gb",
        tensor_parallel=4,
        arrival_rate_per_s=1.0,
        draft_model="llama2-7b",
        draft_tokens=4,
        acceptance_rate=0.7,
    ),
    _doc(
        "Disaggregated prefill/decode (DistServe): 1 prefill + 3 decode A100s for Llama-2 13B against 4 co-located",
        model="llama2-13b",
        accelerator="a100-80gb",
        arrival_rate_per_s=6.0,
        disaggregated=True,
        prefill_replicas=1,
        decode_replicas=3,
        kv_transfer_link="nvlink3",
        ttft_slo_s=0.4,
        tpot_slo_s=0.04,
        slo_percentile=90.0,
    ),
    # DeepSeek's own day of serving: 608B input and 168B output tokens (deepseek-ai/open-infra-index
    # 202502OpenSourceWeek/day_6_one_more_thing_deepseekV3R1_inference_system_overview.md), so 2,000-token prompts
    # (LMSYS's large-scale EP setting) come with 2,000 x 168/608 = 550-token answers. Replicas as SGLang's prefill
    # unit: 4 nodes of 8 H100s, DP attention 32 and EP 32 over DeepEP (lmsys.org/blog/2025-05-05-large-scale-ep).
    _doc(
        "How many H100s does DeepSeek-V3 need to serve 1,000 requests/s? (DP attention + EP32 over 4-node "
        "replicas, 2,000-token prompts, 550-token answers)",
        model="deepseek-v3",
        accelerator="h100-sxm",
        tensor_parallel=1,
        attention_data_parallel=32,
        expert_parallel=32,
        gpus_per_node=8,
        network="ib-ndr",
        expert_node_limit=4,
        weight_dtype="fp8",
        activation_dtype="fp8",
        kv_cache_dtype="bf16",
        replicas=9,
        arrival_rate_per_s=1000.0,
        request_lengths=None,
        prompt_tokens=2000,
        output_tokens=550,
        token_budget=16384,
        max_running=4096,
        ttft_slo_s=2.0,
        tpot_slo_s=0.1,
        slo_percentile=99.0,
    ),
)
