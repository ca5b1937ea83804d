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
    "serving",
)

KINDS: dict[str, ScenarioKind[Any, Any]] = {}


def register(kind: ScenarioKind[Any, Any]) -> None:
    KINDS[kind.kind] = kind


def _load(name: str) -> ScenarioKind[Any, Any]:
    kind: ScenarioKind[Any, Any] = importlib.import_module(f"dse.scenarios.kinds.{name}").KIND
    return kind


for _name in BUILTIN_KINDS:
    register(_load(_name))
