"""Helpers the dashboard's forms need beyond the documents themselves."""

from typing import Annotated, Any

from fastapi import APIRouter, Body

from dse.api.deps import CatalogDep
from dse.services.evaluation import sweep_axes as sweepable_inputs


def build_router(document_type: Any) -> APIRouter:
    router = APIRouter(tags=["evaluate"])

    @router.post("/sweep/axes", name="sweep_axes", response_model=dict[str, float])
    def sweep_axes(document: Annotated[document_type, Body()], catalog: CatalogDep) -> dict[str, float]:
        """Every input path a sweep may take for this document, with its current value (SI units)."""
        return sweepable_inputs(document, catalog)

    return router
