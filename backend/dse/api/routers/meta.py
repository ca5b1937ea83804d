"""Health, kinds, their schemas and examples."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from dse import __version__
from dse.catalog.categories import CATEGORY_SPECS
from dse.scenarios.documents import document_model
from dse.scenarios.registry import KINDS

router = APIRouter(tags=["meta"])


@router.get("/health", name="health")
async def health() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/kinds", name="list_kinds")
def list_kinds() -> list[dict[str, Any]]:
    """Every scenario kind, with its metrics (label, unit, formula)."""
    return [
        {
            "kind": k.kind,
            "title": k.title,
            "description": k.description,
            "engine_version": k.engine_version,
            "metrics": {key: spec.model_dump() for key, spec in k.metric_specs.items()},
            "schema_url": f"/api/v1/kinds/{k.kind}/schema",
        }
        for k in KINDS.values()
    ]


@router.get("/kinds/{kind}/schema", name="kind_schema")
def kind_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of a whole document of this kind."""
    if kind not in KINDS:
        raise HTTPException(404, f"unknown kind '{kind}'")
    schema: dict[str, Any] = document_model(kind).model_json_schema()
    return schema


@router.get("/preset-types", name="preset_types")
def preset_types() -> dict[str, str]:
    """Which catalog category holds each spec type named in the schemas (for preset pickers)."""
    return {spec.__name__: category for category, spec in CATEGORY_SPECS.items()}


@router.get("/examples", name="list_examples")
def list_examples() -> list[dict[str, Any]]:
    """One valid example document for every kind (the first of each kind's examples), then the others."""
    firsts = [k.examples()[0] for k in KINDS.values()]
    rest = [doc for k in KINDS.values() for doc in k.examples()[1:]]
    return firsts + rest
