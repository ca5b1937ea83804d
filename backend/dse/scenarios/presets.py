"""A scenario field holds either a catalog preset id or an inline spec."""

from __future__ import annotations

from typing import Any

from dse.catalog import Catalog, UnknownPreset
from dse.scenarios.base import InputError


def preset_or_inline(catalog: Catalog, category: str, value: Any, field: str) -> Any:
    """The spec for `value`: looked up when it is a preset id, returned as is when inline.

    Inline specs are already validated by the input model (spec dataclasses are pydantic-aware).
    """
    if isinstance(value, str):
        try:
            return catalog.get(category, value)
        except UnknownPreset as exc:
            raise InputError(field, str(exc)) from None
    return value
