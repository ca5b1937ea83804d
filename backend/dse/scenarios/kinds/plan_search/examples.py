"""Example plan_search scenarios (realistic documents); the first is the default."""

from __future__ import annotations

from typing import Any


def examples() -> list[dict[str, Any]]:
    def doc(name: str, **inputs: Any) -> dict[str, Any]:
        return {"schema_version": 1, "kind": "plan_search", "name": name, "inputs": inputs}

    selene = {"accelerator": "a100-80gb", "intra_node_link": "nvlink3", "inter_node_link": "ib-hdr"}
    racks = [[25.0 if (i % 2) == (j % 2) else 2.5 for j in range(4)] for i in range(4)]
    # Two pods of 32 DGX H100 nodes: 50 GB/s per GPU inside a pod (one 400 Gb/s NDR port per GPU,
    # models_db/interconnects/ib-ndr.json), a quarter of it between pods (an assumed 4:1 tapered spine).
    two_pods = {"accelerator": "h100-sxm", "intra_node_link": "nvlink4", "inter_node_link": "ib-ndr"}
    pods = [[50.0 if (i < 32) == (j < 32) else 12.5 for j in range(64)] for i in range(64)]
    return [
        doc(
            "GPT-3 175B on 1024 A100s: the fastest plan that fits",
            model="gpt3-175b",
            cluster={**selene, "nodes": 128},
            global_batch_size=1536,
        ),
        doc(
            "Which data/tensor/pipeline/sequence-parallel plan trains Llama-3 70B at 32K context fastest on "
            "512 H100s in two pods, and does it fit?",
            model="llama3-70b",
            cluster={**two_pods, "nodes": 64, "node_pair_bandwidth_gb_per_s": pods},
            global_batch_size=128,
            sequence_length_tokens=32768,
            space={"node_counts": [64]},
        ),
        doc(
            "What if activations go to NVMe SSDs? (Llama-3 70B at 32K context on 512 H100s in two pods, "
            "8 PM1733 drives per node)",
            model="llama3-70b",
            cluster={
                **two_pods,
                "nodes": 64,
                "node_pair_bandwidth_gb_per_s": pods,
                "ssd": "samsung-pm1733",
                "ssds_per_node": 8,
            },
            global_batch_size=128,
            sequence_length_tokens=32768,
            # SSDTrain's adaptive rule (offload only what the drives can hide) against none.
            space={"node_counts": [64], "activation_offload": ["none", "adaptive"]},
        ),
        doc(
            "Megatron-LM GPT 1T on 3072 A100s (Narayanan et al. SC'21, Table 1 setting)",
            model="megatron-gpt-1t",
            cluster={**selene, "nodes": 384},
            global_batch_size=3072,
            space={"node_counts": [384]},
        ),
        doc(
            "GPT-3 30B on 4 nodes in two racks (cross-rack links at a tenth): plan and node mapping (Pipette)",
            model="gpt3-30b",
            cluster={**selene, "nodes": 4, "node_pair_bandwidth_gb_per_s": racks},
            global_batch_size=512,
            space={"zero_stages": [0, 1], "node_counts": [4]},
        ),
        doc(
            "Megatron-LM GPT 18.4B on 256 A100s (Narayanan et al. SC'21, Table 1 setting)",
            model="megatron-gpt-18.4b",
            cluster={**selene, "nodes": 32},
            global_batch_size=1024,
            space={"node_counts": [32]},
        ),
        doc(
            "Which expert parallelism for Qwen3-235B-A22B (128 experts) on 512 H100s? EP 1 to 128 against "
            "TP, PP and ZeRO",
            model="qwen3-235b-a22b",
            cluster={**two_pods, "nodes": 64},
            global_batch_size=1024,
            sequence_length_tokens=4096,
            space={"node_counts": [64]},
        ),
    ]


EXAMPLES: list[dict[str, Any]] = examples()
