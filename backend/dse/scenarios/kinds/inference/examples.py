"""Example documents of the inference kind; the first is the default."""

from __future__ import annotations

from typing import Any


def _doc(name: str, **inputs: Any) -> dict[str, Any]:
    return {"schema_version": 1, "kind": "inference", "name": name, "inputs": inputs}


EXAMPLES: tuple[dict[str, Any], ...] = (
    # The NeuPIMs simulator's GPT-3 30B setting (casys-kaist/NeuPIMs configs/model_configs/
    # gpt3-30B.json: TP4, PP2, i.e. 8 devices of 32 GB). With ShareGPT lengths only ~266 requests
    # fit, so batch 512 is posed on the paper's other workload, Alpaca.
    _doc(
        "Does NeuPIMs beat an H100 for GPT-3 30B decoding at batch 512, and from which batch "
        "does sub-batch interleaving pay? (TP4 PP2, Alpaca-like requests)",
        model="gpt3-30b",
        system="neupims",
        accelerator="neupims-npu",
        memory="neupims-hbm-pim",
        comparison_gpu="h100-sxm",
        batch_size=512,
        request_lengths="alpaca-vllm",
        tensor_parallel=4,
        pipeline_parallel=2,
    ),
    _doc(
        "NeuPIMs, GPT-3 7B TP4, ShareGPT-like requests, batch 512",
        model="gpt3-7b",
        system="neupims",
        accelerator="neupims-npu",
        memory="neupims-hbm-pim",
        batch_size=512,
        request_lengths="sharegpt-neupims",
        tensor_parallel=4,
    ),
    _doc(
        "Naive NPU+PIM (blocked), GPT-3 13B TP4, Alpaca-like requests",
        model="gpt3-13b",
        system="npu_pim_blocked",
        accelerator="neupims-npu",
        memory="neupims-hbm-pim",
        batch_size=256,
        request_lengths="alpaca-vllm",
        tensor_parallel=4,
    ),
    _doc(
        "Llama-2 7B on one A100 80GB, fixed 512/512 tokens",
        model="llama2-7b",
        system="gpu_only",
        accelerator="a100-80gb",
        memory=None,
        batch_size=32,
        prompt_tokens=512,
        output_tokens=512,
    ),
    _doc(
        "GPT-3 175B on 8xH100 TP8, fp8 weights and KV cache",
        model="gpt3-175b",
        system="gpu_only",
        accelerator="h100-sxm",
        memory=None,
        batch_size=64,
        prompt_tokens=1024,
        output_tokens=512,
        tensor_parallel=8,
        weight_dtype="fp8",
        kv_cache_dtype="fp8",
        link_bandwidth_gb_per_s=450.0,
    ),
    _doc(
        "DeepSeek-V3 decode on 8 H200s (fp8): how many of the 256 experts does a batch of 64 touch?",
        model="deepseek-v3",
        system="gpu_only",
        accelerator="h200-sxm",
        memory=None,
        comparison_gpu="h200-sxm",
        batch_size=64,
        prompt_tokens=1024,
        output_tokens=512,
        tensor_parallel=8,
        weight_dtype="fp8",
        kv_cache_dtype="fp8",
        link_bandwidth_gb_per_s=450.0,
    ),
    _doc(
        "Mixtral 8x7B in fp8 on one H100: all 47B weights stored, 13B computed per token",
        model="mixtral-8x7b",
        system="gpu_only",
        accelerator="h100-sxm",
        memory=None,
        comparison_gpu="h100-sxm",
        batch_size=32,
        prompt_tokens=512,
        output_tokens=512,
        weight_dtype="fp8",
        kv_cache_dtype="fp8",
    ),
    _doc(
        "Llama-3.1 70B with fp4 weights and activations on one B200 (fp4 needs a Blackwell part)",
        model="llama3.1-70b",
        system="gpu_only",
        accelerator="b200-sxm",
        memory=None,
        comparison_gpu="b200-sxm",
        batch_size=32,
        prompt_tokens=1024,
        output_tokens=512,
        weight_dtype="fp4",
        activation_dtype="fp4",
        kv_cache_dtype="fp8",
        link_bandwidth_gb_per_s=900.0,
    ),
    _doc(
        "Mixtral 8x22B on 8 H100s (fp8): its 8 experts by TP 8 or EP 8 (one whole expert per GPU)? "
        "EP 8 here, with the busiest GPU 20% above the mean; sweep expert_parallel over 1, 2, 4, 8",
        model="mixtral-8x22b",
        system="gpu_only",
        accelerator="h100-sxm",
        memory=None,
        comparison_gpu="h100-sxm",
        batch_size=256,
        prompt_tokens=1024,
        output_tokens=512,
        tensor_parallel=8,
        expert_parallel=8,
        expert_load_imbalance=1.2,
        weight_dtype="fp8",
        activation_dtype="fp8",
        kv_cache_dtype="fp8",
        link_bandwidth_gb_per_s=450.0,
    ),
    # SGLang's decode instance of lmsys.org/blog/2025-05-05-large-scale-ep: 9 nodes of 8 H100s, DP attention 72 and
    # EP 72 over DeepEP, 256 requests per GPU at a 2,000-token KV cache (1,950 + 100/2 on average).
    _doc(
        "DeepSeek-V3 decode on 72 H100s: data-parallel attention + expert parallelism over 9 nodes, 256 requests per "
        "GPU",
        model="deepseek-v3",
        system="gpu_only",
        accelerator="h100-sxm",
        memory=None,
        comparison_gpu="h100-sxm",
        batch_size=256,
        prompt_tokens=1950,
        output_tokens=100,
        tensor_parallel=1,
        attention_data_parallel=72,
        expert_parallel=72,
        gpus_per_node=8,
        network="ib-ndr",
        expert_node_limit=4,
        weight_dtype="fp8",
        activation_dtype="fp8",
        kv_cache_dtype="bf16",
    ),
)
