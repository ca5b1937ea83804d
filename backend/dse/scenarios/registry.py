"""The scenario kinds the explorer knows. Each engine's kind adds its module name here."""

from __future__ import annotations

import importlib
from typing import Any

from dse.scenarios.base import ScenarioKind

#: Modules of dse.scenarios that each expose `KIND`, one per line.
BUILTIN_KIND_MODULES: tuple[str, ...] = (
    "inference",
    "training",
    "plan_search",
    "rl_scaling",
    "temporal_batching",
    "pruning",
)

KINDS: dict[str, ScenarioKind[Any, Any]] = {}


def register(kind: ScenarioKind[Any, Any]) -> None:
    KINDS[kind.kind] = kind


for _module_name in BUILTIN_KIND_MODULES:
    register(importlib.import_module(f"dse.scenarios.{_module_name}").KIND)
