"""Evaluate, sweep and compare documents (nothing is saved)."""

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from dse.api.cpu import json_from_cpu_pool, run_cpu_bound
from dse.api.deps import CatalogDep, StoreDep
from dse.api.streaming import streamed_json
from dse.scenarios.base import EvaluationResult
from dse.scenarios.compare import Comparison, compare
from dse.scenarios.documents import document_json, evaluate_document, kind_of, parse_document
from dse.scenarios.sweep import SweepAxis, SweepResult, run_sweep
from dse.store import Store, StoreError


def cached_evaluation(store: Store, scenario_id: str, document: BaseModel, catalog: Any) -> EvaluationResult:
    """The result of a saved scenario, from the cache when this engine version computed it before."""
    kind = kind_of(document)
    cached = store.cached_result(scenario_id, kind.engine_version)
    if cached is not None:
        return EvaluationResult.model_validate(cached)
    result = evaluate_document(document, catalog)
    with contextlib.suppress(StoreError):  # a result the cache cannot keep is still the answer
        store.cache_result(scenario_id, kind.engine_version, result.model_dump(mode="json"))
    return result


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
        return await json_from_cpu_pool(http, lambda: evaluate_document(document, catalog))

    @router.post("/sweep", name="sweep", response_model=SweepResult)
    async def sweep(request: SweepRequest, catalog: CatalogDep, http: Request) -> StreamingResponse:
        """One or two numeric inputs (named by their path) swept over values: one engine call for the grid."""
        document = request.document
        result = await run_cpu_bound(http, lambda: run_sweep(kind_of(document), document.inputs, catalog, request.axes))
        # Streamed: encoding a large grid in one call would stall every other request (dse.api.streaming).
        return streamed_json(result)

    @router.post("/compare", name="compare", response_model=Comparison)
    async def compare_scenarios(
        request: CompareRequest, catalog: CatalogDep, store: StoreDep, http: Request
    ) -> Response:
        """Inputs that differ and metric deltas against the first item."""

        def work() -> Comparison:
            documents, results = [], []
            for item in request.items:
                if isinstance(item, str):
                    record = store.get(item)
                    document = parse_document(record.document)
                    results.append(cached_evaluation(store, record.id, document, catalog))
                else:
                    document = item
                    results.append(evaluate_document(document, catalog))
                documents.append(document_json(document))
            return compare(documents, results)

        return await json_from_cpu_pool(http, work)

    return router
