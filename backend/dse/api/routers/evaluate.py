"""Evaluate, sweep and compare documents (nothing is saved)."""

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

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

    @router.post("/evaluate", name="evaluate", response_model=EvaluationResult)
    def evaluate(document: Annotated[document_type, Body()], catalog: CatalogDep) -> EvaluationResult:
        """Evaluates one document without saving it."""
        return evaluate_document(document, catalog)

    @router.post("/sweep", name="sweep", response_model=SweepResult)
    def sweep(request: SweepRequest, catalog: CatalogDep) -> StreamingResponse:
        """One or two numeric inputs (named by their path) swept over values: one engine call for the grid."""
        document = request.document
        # Streamed: encoding a large grid in one call would stall every other request (dse.api.streaming).
        return streamed_json(run_sweep(kind_of(document), document.inputs, catalog, request.axes))

    @router.post("/compare", name="compare", response_model=Comparison)
    def compare_scenarios(request: CompareRequest, catalog: CatalogDep, store: StoreDep) -> Comparison:
        """Inputs that differ and metric deltas against the first item."""
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

    return router
