"""Example documents of the `pruning` kind; the first is the default (and question 5 of docs/questions.md)."""

from __future__ import annotations

from typing import Any


def _examples() -> list[dict[str, Any]]:
    mix = [
        {"name": "text rendering", "share": 0.08, "required_capacity_ratio": 0.95},
        {"name": "people and faces", "share": 0.22, "required_capacity_ratio": 0.8},
        {"name": "animals and objects", "share": 0.3, "required_capacity_ratio": 0.6},
        {"name": "landscapes", "share": 0.25, "required_capacity_ratio": 0.45},
        {"name": "textures and patterns", "share": 0.15, "required_capacity_ratio": 0.3},
    ]
    small = [0.95, 0.85, 0.75, 0.65, 0.55, 0.45, 0.35, 0.25]
    base = [round(1.0 - 0.025 * k, 3) for k in range(16)]  # 16 codes, as the released APTP-Base-CC3M
    return [
        {
            "schema_version": 1,
            "kind": "pruning",
            "name": "What does a 0.66 compute budget buy a prompt-routed pruned Stable Diffusion at batch 16? "
            "(APTP-Small: SD 2.1, 8 codes, 768 px, 50 steps, A100)",
            "inputs": {
                "pipeline": "sd21",
                "accelerator": "a100-80gb",
                "image_size_px": 768,
                "denoising_steps": 50,
                "batch_size": 16,
                "budget_ratio": 0.66,
                "prompt_mix": mix,
                "codes": [
                    {"name": f"code {k}", "channel_keep": v, "head_keep": v, "ffn_keep": v} for k, v in enumerate(small)
                ],
            },
        },
        {
            "schema_version": 1,
            "kind": "pruning",
            "name": "APTP-Base budget (0.85): SD 2.1, 16 codes, 256 px, H100",
            "inputs": {
                "pipeline": "sd21",
                "accelerator": "h100-sxm",
                "image_size_px": 256,
                "denoising_steps": 50,
                "batch_size": 32,
                "budget_ratio": 0.85,
                "prompt_mix": mix,
                "codes": [
                    {"name": f"code {k}", "channel_keep": v, "head_keep": v, "ffn_keep": v} for k, v in enumerate(base)
                ],
            },
        },
        {
            "schema_version": 1,
            "kind": "pruning",
            "name": "SD 1.5, 512 px, per-stage codes with set capacities",
            "inputs": {
                "pipeline": "sd15",
                "accelerator": "a100-80gb",
                "image_size_px": 512,
                "denoising_steps": 25,
                "batch_size": 16,
                "budget_ratio": 0.75,
                "prompt_mix": mix,
                "codes": [
                    {"name": "full", "capacity_share": 0.2},
                    {
                        "name": "thin high-res",
                        "channel_keep": [0.5, 0.8, 1.0, 1.0],
                        "head_keep": [0.5, 0.75, 1.0, 1.0],
                        "ffn_keep": [0.5, 0.75, 1.0, 1.0],
                        "capacity_share": 0.4,
                    },
                    {"name": "half", "channel_keep": 0.5, "head_keep": 0.5, "ffn_keep": 0.5, "capacity_share": 0.4},
                ],
            },
        },
    ]


#: The example documents, default first (the kind hands out copies).
EXAMPLES: list[dict[str, Any]] = _examples()
