"""Example documents of `rl_scaling`; the first is the default (and asks the kind's question)."""

from __future__ import annotations

from typing import Any

EXAMPLES: list[dict[str, Any]] = [
    {
        "schema_version": 1,
        "kind": "rl_scaling",
        "name": "How many samples/s does PPO reach on 8 GPUs as the mini-batch grows? "
        "(CaRL CARLA: 8 GPUs x 16 environments, 300M samples)",
        "inputs": {"workload": "carl-carla", "accelerator": "a100-80gb"},
    },
    {
        "schema_version": 1,
        "kind": "rl_scaling",
        "name": "CaRL nuPlan: 8 GPUs x 32 environments, 500M samples",
        "inputs": {"workload": "carl-nuplan", "accelerator": "a100-80gb"},
    },
    {
        "schema_version": 1,
        "kind": "rl_scaling",
        "name": "CaRL CARLA on H100 with a 4x smaller minibatch",
        "inputs": {
            "workload": "carl-carla",
            "accelerator": "h100-sxm",
            "minibatch_samples": 4096,
            "link": "nvlink4",
            "host_link": "pcie5",
        },
    },
]
