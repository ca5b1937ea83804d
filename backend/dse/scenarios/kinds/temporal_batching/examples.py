"""Example documents of `temporal_batching`; the first is the default (and asks the kind's question)."""

from __future__ import annotations

from typing import Any

EXAMPLES: list[dict[str, Any]] = [
    {
        "schema_version": 1,
        "kind": "temporal_batching",
        "name": "How large can the temporal batch of a dynamic GNN get before memory staleness bites? "
        "(TGN on Wikipedia, batch 200, A100, threshold 0.5)",
        "inputs": {"dataset": "wikipedia", "accelerator": "a100-80gb", "temporal_batch_events": 200},
    },
    {
        "schema_version": 1,
        "kind": "temporal_batching",
        "name": "TGN on Reddit at the PRES batch (800), H100",
        "inputs": {"dataset": "reddit", "accelerator": "h100-sxm", "temporal_batch_events": 800},
    },
    {
        "schema_version": 1,
        "kind": "temporal_batching",
        "name": "TGN on GDELT, batch 4000",
        "inputs": {"dataset": "gdelt", "accelerator": "h100-sxm", "temporal_batch_events": 4000},
    },
]
