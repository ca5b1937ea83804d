"""The scenario kinds the explorer knows. Each engine's kind adds one line here."""

from __future__ import annotations

from typing import Any

from dse.scenarios.base import ScenarioKind

KINDS: dict[str, ScenarioKind[Any, Any]] = {}


def register(kind: ScenarioKind[Any, Any]) -> None:
    KINDS[kind.kind] = kind


def _load_builtin_kinds() -> None:
    # Imported here so a kind's module can import the registry's helpers without a cycle.
    for module_name in ():
        module = __import__(f"dse.scenarios.{module_name}", fromlist=["KIND"])
        register(module.KIND)


_load_builtin_kinds()
