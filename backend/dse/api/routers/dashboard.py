"""Helpers the dashboard's forms need beyond the documents themselves."""

from typing import Annotated, Any

from fastapi import APIRouter, Body

from dse.api.deps import CatalogDep
from dse.scenarios.documents import kind_of
from dse.scenarios.sweep import sweepable_paths


def build_router(document_type: Any) -> APIRouter:
    router = APIRouter(tags=["evaluate"])

    @router.post("/sweep/axes", name="sweep_axes", response_model=dict[str, float])
    def sweep_axes(document: Annotated[document_type, Body()], catalog: CatalogDep) -> dict[str, float]:
        """Every input path a sweep may take for this document, with its current value (SI units)."""
        kind = kind_of(document)
        return sweepable_paths(kind.resolve(document.inputs, catalog))

    return router
