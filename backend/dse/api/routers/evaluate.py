"""Evaluate, sweep and compare documents (nothing is saved).

Each request is priced before it runs (422 naming the input that drives the cost when above the
limit, dse.services.limits), runs in its class's pool (heavy: plan searches and large sweeps;
cheap: the rest) with a deadline, and answers 503 problem+json when the deadline passed or the
client went away (dse.api.cpu.run_bounded).
"""

from collections.abc import Awaitable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from dse.api.cpu import json_bounded, run_bounded, run_in_heavy_process
from dse.api.deps import CatalogDep, StoreDep
from dse.api.problems import deadline_problem
from dse.api.streaming import streamed_json
from dse.scenarios.base import EvaluationResult
from dse.scenarios.compare import Comparison
from dse.scenarios.documents import document_json
from dse.scenarios.sweep import SweepAxis, SweepResult
from dse.services import evaluation
from dse.services.answers import AnswerCache
from dse.services.limits import Deadline, DeadlinePassed

T = TypeVar("T")


async def _answer(work: Awaitable[T]) -> T | JSONResponse:
    try:
        return await work
    except DeadlinePassed as exc:
        return deadline_problem(exc)


def build_router(document_type: Any) -> APIRouter:
    router = APIRouter(tags=["evaluate"])

    class SweepRequest(BaseModel):
        document: document_type
        axes: list[SweepAxis] = Field(min_length=1, max_length=2)

    class CompareRequest(BaseModel):
        items: list[str | document_type] = Field(
            min_length=2, max_length=8, description="Saved scenario ids or inline documents."
        )

    # Each endpoint is async only to hand its work to a pool (dse.api.cpu); nothing heavy runs on the loop.
    @router.post("/evaluate", name="evaluate", response_model=EvaluationResult)
    async def evaluate(
        document: Annotated[document_type, Body()],
        catalog: CatalogDep,
        http: Request,
        include: Annotated[
            str,
            Query(
                max_length=500,
                description=(
                    "Deferred studies to compute, comma-separated (a result's `deferred` lists them), or `all`. "
                    "Without it the answer is the quick one: metrics, the main tables and charts."
                ),
            ),
        ] = "",
    ) -> Response:
        """Evaluates one document without saving it (the quick answer unless `include` asks for studies)."""
        wanted = [key.strip() for key in include.split(",") if key.strip()]
        if evaluation.is_heavy(document):  # a search or a simulation: in a worker process, never this one's GIL
            await run_bounded(http, lambda deadline: evaluation.check_cost(document, catalog, deadline), heavy=False)
            body = await _answer(run_in_heavy_process(http, evaluation.evaluate_json, document_json(document), wanted))
            return body if isinstance(body, JSONResponse) else Response(content=body, media_type="application/json")
        # An answer given before comes from the cache (dse.services.answers), looked up in the cheap pool;
        # a cheap miss is evaluated there too, a medium one in the medium pool.
        answers: AnswerCache = http.app.state.answer_cache
        medium = evaluation.is_medium(document)

        def evaluated(deadline: Deadline, key: str) -> bytes:
            body = evaluation.evaluate(document, catalog, deadline, wanted).model_dump_json().encode("utf-8")
            answers.put(key, body)
            return body

        def cached_or_cheap(deadline: Deadline) -> tuple[str, bytes | None]:
            key = answers.key(document, wanted)
            found = answers.get(key)
            return key, found if found is not None or medium else evaluated(deadline, key)

        looked_up = await _answer(run_bounded(http, cached_or_cheap, heavy=False))
        if isinstance(looked_up, JSONResponse):
            return looked_up
        key, found = looked_up
        if found is None:
            computed = await _answer(
                run_bounded(http, lambda deadline: evaluated(deadline, key), heavy=False, medium=True)
            )
            if isinstance(computed, JSONResponse):
                return computed
            found = computed
        return Response(content=found, media_type="application/json")

    @router.post("/sweep", name="sweep", response_model=SweepResult)
    async def sweep(request: SweepRequest, catalog: CatalogDep, http: Request) -> Response:
        """One or two numeric inputs (named by their path) swept over values: one engine call for the grid."""
        points = 1
        for axis in request.axes:
            points *= len(axis.values)
        heavy = evaluation.is_heavy(request.document, points)
        result = await _answer(
            run_bounded(
                http, lambda deadline: evaluation.sweep(request.document, catalog, request.axes, deadline), heavy=heavy
            )
        )
        if isinstance(result, JSONResponse):
            return result
        # Streamed: encoding a large grid in one call would stall every other request (dse.api.streaming).
        streamed: StreamingResponse = streamed_json(result)
        return streamed

    @router.post("/compare", name="compare", response_model=Comparison)
    async def compare_scenarios(
        request: CompareRequest, catalog: CatalogDep, store: StoreDep, http: Request
    ) -> Response:
        """Inputs that differ and metric deltas against the first item."""
        heavy = any(not isinstance(item, str) and evaluation.is_heavy(item) for item in request.items)
        return await _answer(
            json_bounded(
                http, lambda deadline: evaluation.compare_items(request.items, store, catalog, deadline), heavy=heavy
            )
        )

    return router
