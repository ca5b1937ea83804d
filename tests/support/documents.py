"""Scenario documents for store tests: the shape the API saves (the store never looks inside inputs)."""

from __future__ import annotations

from typing import Any


def make_document(name: str = "GPT-3 13B on A100", kind: str = "inference", **inputs: Any) -> dict[str, Any]:
    return {"schema_version": 1, "kind": kind, "name": name, "inputs": inputs or {"model": "gpt3-13b", "batch": 32}}
