"""Evaluate, sweep and compare documents (nothing is saved)."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from dse.api.cpu import json_from_cpu_pool, run_cpu_bound
from dse.api.deps import CatalogDep, StoreDep
from dse.api.streaming import streamed_json
from dse.scenarios.base import EvaluationResult
from dse.scenarios.compare import Comparison
from dse.scenarios.sweep import SweepAxis, SweepResult
from dse.services import evaluation


def build_router(document_type: Any) -> APIRouter:
    router = APIRouter(tags=["evaluate"])

    class SweepRequest(BaseModel):
        document: document_type
        axes: list[SweepAxis] = Field(min_length=1, max_length=2)

    class CompareRequest(BaseModel):
        items: list[str | document_type] = Field(
            min_length=2, max_length=8, description="Saved scenario ids or inline documents."
        )

    # Each endpoint is async only to hand its work to the CPU pool (dse.api.cpu); nothing heavy runs on the loop.
    @router.post("/evaluate", name="evaluate", response_model=EvaluationResult)
    async def evaluate(document: Annotated[document_type, Body()], catalog: CatalogDep, http: Request) -> Response:
        """Evaluates one document without saving it."""
        return await json_from_cpu_pool(http, lambda: evaluation.evaluate(document, catalog))

    @router.post("/sweep", name="sweep", response_model=SweepResult)
    async def sweep(request: SweepRequest, catalog: CatalogDep, http: Request) -> StreamingResponse:
        """One or two numeric inputs (named by their path) swept over values: one engine call for the grid."""
        result = await run_cpu_bound(http, lambda: evaluation.sweep(request.document, catalog, request.axes))
        # Streamed: encoding a large grid in one call would stall every other request (dse.api.streaming).
        return streamed_json(result)

    @router.post("/compare", name="compare", response_model=Comparison)
    async def compare_scenarios(
        request: CompareRequest, catalog: CatalogDep, store: StoreDep, http: Request
    ) -> Response:
        """Inputs that differ and metric deltas against the first item."""
        return await json_from_cpu_pool(http, lambda: evaluation.compare_items(request.items, store, catalog))

    return router
