"""Example training scenarios (realistic documents); the first is the default."""

from __future__ import annotations

from typing import Any


def examples() -> list[dict[str, Any]]:
    def doc(name: str, **inputs: Any) -> dict[str, Any]:
        return {"schema_version": 1, "kind": "training", "name": name, "inputs": inputs}

    a100_cluster = {"accelerator": "a100-80gb", "inter_node_link": "ib-hdr"}
    return [
        doc(
            "Megatron-LM GPT 145.6B on 1536 A100s (Narayanan et al. SC'21, Table 1)",
            model="megatron-gpt-145.6b",
            cluster={**a100_cluster, "nodes": 192},
            global_batch_size=2304,
            micro_batch_size=2,
            data_parallel=24,
            tensor_parallel=8,
            pipeline_parallel=8,
            recompute="full",
            pipeline_schedule="interleaved",
            virtual_stages=2,
            overlap_grad_reduce=False,
        ),
        doc(
            "What do Ring Self-Attention and DeepSpeed-Ulysses each cost as the sequence grows? "
            "(Llama-2 7B, 32K tokens, 8 H100s, ZeRO-3, FlashAttention)",
            model="llama2-7b",
            cluster={
                "accelerator": "h100-sxm",
                "intra_node_link": "nvlink4",
                "inter_node_link": "ib-ndr",
                "nodes": 1,
            },
            global_batch_size=8,
            micro_batch_size=1,
            sequence_length_tokens=32768,
            sequence_parallel="ulysses",
            sequence_parallel_degree=8,
            zero_stage=3,
            flash_attention=True,
        ),
        doc(
            "Megatron-LM GPT 1.7B on 32 A100s (Narayanan et al. SC'21, Table 1)",
            model="megatron-gpt-1.7b",
            cluster={**a100_cluster, "nodes": 4},
            global_batch_size=512,
            micro_batch_size=16,
            data_parallel=32,
            recompute="full",
        ),
        doc(
            "GPT 22B layer setting with selective recomputation and sequence parallelism (Korthikanti et al. 2022)",
            model={
                "id": "korthikanti-gpt-22b",
                "name": "GPT 22B (Korthikanti et al. 2022, Table 3)",
                "source": "Korthikanti et al. 2022, Table 3: 48 layers, hidden 6144, 64 heads, seq 2048",
                "hidden_size": 6144,
                "num_layers": 48,
                "num_heads": 64,
                "num_kv_heads": 64,
                "ffn_hidden_size": 24576,
                "ffn_activation": "gelu",
                "vocab_size": 51200,
                "tied_embeddings": True,
                "max_context_tokens": 2048,
                "position_embedding": "learned",
                "norm_type": "layernorm",
                "linear_bias": True,
                "published_params_count": 22e9,
                "published_params_source": "Korthikanti et al. 2022, Table 3",
                "published_params_rounding_half_step": 5e8,
            },
            cluster={**a100_cluster, "nodes": 1},
            global_batch_size=4,
            micro_batch_size=4,
            tensor_parallel=8,
            sequence_parallel="megatron",
            recompute="selective",
        ),
        doc(
            "GPT-3 6.7B on 8 A100s, ZeRO-2: micro-batch 2 fits only with activations on Optane SSDs (SSDTrain)",
            model="gpt3-7b",
            cluster={**a100_cluster, "nodes": 1, "ssd": "optane-p5800x", "ssds_per_node": 16},
            global_batch_size=64,
            micro_batch_size=2,
            data_parallel=8,
            zero_stage=2,
            activation_offload="all",
        ),
        doc(
            "What does fp8 buy? Llama-2 70B on 64 H100s, Transformer Engine fp8 (NeMo 24.12's recipe: "
            "TP 4, PP 4, 20 chunks; published 1,728 tokens/s per GPU)",
            model="llama2-70b",
            cluster={"accelerator": "h100-sxm", "intra_node_link": "nvlink4", "inter_node_link": "ib-ndr", "nodes": 8},
            global_batch_size=128,
            micro_batch_size=1,
            sequence_length_tokens=4096,
            data_parallel=4,
            tensor_parallel=4,
            pipeline_parallel=4,
            sequence_parallel="megatron",
            zero_stage=1,
            pipeline_schedule="interleaved",
            virtual_stages=20,
            flash_attention=True,
            dtype="fp8",
        ),
        doc(
            "Llama-3.1 405B at 128K context on 16,384 H100s: does context parallelism 16 fit? (Llama 3 Table 4: "
            "TP 8, CP 16, PP 16, DP 8, K/V all-gathered, 7/8/7 layers per stage)",
            model="llama3.1-405b",
            cluster={
                "accelerator": "h100-sxm",
                "intra_node_link": "nvlink4",
                "inter_node_link": "ib-ndr",
                "nodes": 2048,
            },
            global_batch_size=128,
            micro_batch_size=1,
            sequence_length_tokens=131072,
            data_parallel=8,
            tensor_parallel=8,
            pipeline_parallel=16,
            context_parallel=16,
            context_parallel_exchange="all-gather",
            first_stage_layers=7,
            last_stage_layers=7,
            sequence_parallel="megatron",
            zero_stage=1,
            pipeline_schedule="interleaved",
            virtual_stages=4,
            flash_attention=True,
        ),
        doc(
            "EP 8 or EP 64 for Qwen3-235B-A22B training on 512 H100s? (TP 2, PP 2, full recomputation: "
            "sweep expert_parallel over 8, 16, 32, 64)",
            model="qwen3-235b-a22b",
            cluster={"accelerator": "h100-sxm", "intra_node_link": "nvlink4", "inter_node_link": "ib-ndr", "nodes": 64},
            global_batch_size=1024,
            micro_batch_size=1,
            sequence_length_tokens=4096,
            data_parallel=128,
            tensor_parallel=2,
            pipeline_parallel=2,
            sequence_parallel="megatron",
            expert_parallel=8,
            zero_stage=1,
            recompute="full",
            flash_attention=True,
        ),
    ]


EXAMPLES: list[dict[str, Any]] = examples()
