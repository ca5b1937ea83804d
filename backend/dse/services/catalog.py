"""The catalog of presets as the API shows it: each preset's fields and sources, plus derived numbers."""

from __future__ import annotations

from typing import Any

from dse.catalog import Catalog
from dse.engines.transformer import llm_parameter_breakdown

__all__ = ["describe_category"]


def describe_category(catalog: Catalog, category: str) -> list[dict[str, Any]]:
    """Every preset of one category (the caller checks that the category exists)."""
    presets: list[dict[str, Any]] = catalog.describe(category)
    if category == "llms":
        # Derived, not typed in: the parameter count the engines use, beside the published one.
        for preset, spec in zip(presets, catalog.items(category), strict=True):
            derived = float(llm_parameter_breakdown(spec).total)
            preset["derived_params_count"] = derived
            preset["derived_vs_published_relative_error"] = derived / spec.published_params_count - 1
    return presets
