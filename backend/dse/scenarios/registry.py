"""The scenario kinds the explorer knows: one line per kind, each a folder under `dse.scenarios.kinds`."""

from __future__ import annotations

import importlib
from typing import Any

from dse.scenarios.base import ScenarioKind

#: Folders of dse.scenarios.kinds, each exposing `KIND` from its `__init__.py`, one per line.
BUILTIN_KINDS: tuple[str, ...] = (
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


def _load(name: str) -> ScenarioKind[Any, Any]:
    try:
        module = importlib.import_module(f"dse.scenarios.kinds.{name}")
    except ModuleNotFoundError as exc:  # TRANSITIONAL: a kind not yet moved into its folder
        if exc.name != f"dse.scenarios.kinds.{name}":
            raise
        module = importlib.import_module(f"dse.scenarios.{name}")
    kind: ScenarioKind[Any, Any] = module.KIND
    return kind


for _name in BUILTIN_KINDS:
    register(_load(_name))
