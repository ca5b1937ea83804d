"""The catalog of presets, with their sources."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from dse.api.deps import CatalogDep
from dse.services.catalog import describe_category

router = APIRouter(prefix="/catalog", tags=["catalog"])


@router.get("", name="get_catalog")
def get_catalog(catalog: CatalogDep) -> dict[str, list[dict[str, Any]]]:
    """Every category with its presets."""
    return {category: describe_category(catalog, category) for category in catalog.categories}


@router.get("/{category}", name="get_catalog_category")
def get_category(category: str, catalog: CatalogDep) -> list[dict[str, Any]]:
    if category not in catalog.categories:
        raise HTTPException(404, f"unknown category '{category}'; known: {', '.join(catalog.categories)}")
    return describe_category(catalog, category)


@router.get("/{category}/{preset_id}", name="get_preset")
def get_preset(category: str, preset_id: str, catalog: CatalogDep) -> dict[str, Any]:
    presets = {p["id"]: p for p in get_category(category, catalog)}
    if preset_id not in presets:
        raise HTTPException(404, f"unknown {category} preset '{preset_id}'")
    return presets[preset_id]
