"""Saved scenarios: immutable documents shared by link; each save is its saver's own named scenario."""

import json
from datetime import datetime
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Body, Header, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from dse.api.cpu import json_from_cpu_pool, run_bounded, run_cpu_bound, run_in_heavy_process
from dse.api.deps import CatalogDep, SaveQuota, SaveQuotaDep, StoreDep
from dse.scenarios.base import EvaluationResult, StrictModel
from dse.scenarios.documents import NAME_FIELD, document_json, parse_document
from dse.services import evaluation
from dse.store import ScenarioRecord, ScenarioSummary, check_document


class ScenarioSummaryOut(BaseModel):
    """A saved scenario as listings show it: never its document (open it by id for that)."""

    id: str
    kind: str
    name: str
    parent_id: str | None = Field(description="The scenario this one was edited from, if any.")
    created_at: datetime
    updated_at: datetime
    revision: int
    content_id: str = Field(
        description=(
            "The hash of the inputs: the id of the first save of these inputs, and the same for every "
            "named copy of them saved later (ids of copies are random)."
        )
    )
    share_url: str = Field(description="The page that opens this scenario for anyone.")


class ScenarioOut(ScenarioSummaryOut):
    document: dict[str, Any]


class SavedScenario(ScenarioOut):
    created: bool = Field(
        description=(
            "False only when the X-Owner-Token sent owns a scenario with these inputs and this name: "
            "that one is returned, with no new token."
        )
    )
    owner_token: str | None = Field(description="Shown once, at creation: it alone may rename or delete.")
    requested_name: str = Field(description="The name this request asked for (always the scenario's name).")
    same_content_as: str | None = Field(
        None,
        description=(
            "Set when identical inputs were saved before: says plainly which scenario holds them. This "
            "save is still the saver's own named copy (own id, name and owner token); nothing of the "
            "earlier one changes."
        ),
    )
    same_content_id: str | None = Field(None, description="The id of that earlier scenario with identical inputs.")


class ScenarioPage(BaseModel):
    items: list[ScenarioSummaryOut]
    total: int
    limit: int
    offset: int


class RenameRequest(StrictModel):
    name: NAME_FIELD


class ForkRequest(StrictModel):
    name: NAME_FIELD | None = None
    inputs: dict[str, Any] | None = Field(None, description="Replaces the parent's inputs when given.")


def _summary(record: ScenarioSummary | ScenarioRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "kind": record.kind,
        "name": record.name,
        "parent_id": record.parent_id,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "revision": record.revision,
        "content_id": record.content_id,
        "share_url": f"/s/{record.id}",
    }


def _out(record: ScenarioRecord) -> dict[str, Any]:
    return {**_summary(record), "document": record.document}


def _etag(record: ScenarioRecord) -> str:
    return f'"{record.id}-{record.revision}"'


def build_router(document_type: Any) -> APIRouter:
    router = APIRouter(prefix="/scenarios", tags=["scenarios"])
    OwnerToken = Annotated[
        str | None, Header(alias="X-Owner-Token", description="The token returned at creation (required).")
    ]
    SaverToken = Annotated[
        str | None,
        Header(
            alias="X-Owner-Token",
            max_length=256,
            description=(
                "Optional: the owner token of a scenario of yours. If it owns a scenario with these inputs and "
                "this name, that scenario is returned (200) instead of a new copy."
            ),
        ),
    ]

    def _require(owner_token: str | None) -> str:
        """A missing header is 401 naming the header; a wrong token is the store's 403."""
        if owner_token is None:
            raise HTTPException(
                401,
                "the X-Owner-Token header is required: send the owner token returned when the scenario was saved",
                headers={"WWW-Authenticate": "X-Owner-Token"},
            )
        return owner_token

    async def _save(
        http: Request,
        store: Any,
        catalog: Any,
        document: Any,
        parent_id: str | None,
        response: Response,
        quota: SaveQuota,
        owner_token: str | None,
    ) -> SavedScenario:
        content = document_json(document)
        check_document(content)  # the cheap checks (shape, free-text sizes) first
        # 422 now rather than a result that answers 500 for good; evaluated in its class's pool
        # (dse.api.cpu: cheap or medium), never in the default threads beside everything else
        checked = await run_bounded(
            http,
            lambda deadline: evaluation.check_evaluable(document, catalog, deadline),
            heavy=False,
            medium=evaluation.is_medium(document),
        )
        return await anyio.to_thread.run_sync(
            lambda: _store(store, content, document, checked, parent_id, response, quota, owner_token)
        )

    def _store(
        store: Any,
        content: dict[str, Any],
        document: Any,
        checked: EvaluationResult | None,
        parent_id: str | None,
        response: Response,
        quota: SaveQuota,
        owner_token: str | None,
    ) -> SavedScenario:
        if quota.spent() and store.owned_copy(content, owner_token) is None:
            quota.check()  # refuses: a new scenario beyond the quota (re-saving one's own stays free)
        result = store.save(content, parent_id=parent_id, owner_token=owner_token)
        if result.created:
            quota.spend()
        if checked is not None and result.created:  # the check's evaluation is this scenario's result
            evaluation.keep_result(store, result.record.id, document, checked.model_dump(mode="json"))
        response.status_code = 201 if result.created else 200
        response.headers["Location"] = f"/api/v1/scenarios/{result.record.id}"
        earlier = result.same_content
        same = None
        if earlier is not None:
            same = (
                f"identical inputs are already saved as '{earlier.name}' ({earlier.id}); "
                f"this is your own copy, '{result.record.name}' ({result.record.id}), that you can rename or delete."
            )
        return SavedScenario(
            **_out(result.record),
            created=result.created,
            owner_token=result.owner_token,
            requested_name=str(content["name"]),
            same_content_as=same,
            same_content_id=None if earlier is None else earlier.id,
        )

    @router.post(
        "",
        name="create_scenario",
        status_code=201,
        response_model=SavedScenario,
        responses={200: {"model": SavedScenario, "description": "Already yours: the scenario the token owns"}},
    )
    async def create(
        document: Annotated[document_type, Body()],
        store: StoreDep,
        catalog: CatalogDep,
        response: Response,
        quota: SaveQuotaDep,
        http: Request,
        parent: Annotated[str | None, Query(max_length=64, description="Id of the scenario this edits.")] = None,
        owner_token: SaverToken = None,
    ) -> SavedScenario:
        """Saves a document as the saver's own scenario (201, with its owner token).

        The first save of some inputs gets their content id; a later save of the same inputs (by
        someone else, or under another name) is the saver's own named copy with its own id and token,
        and `same_content_as` says which scenario already holds them. Sending the X-Owner-Token of a
        scenario with the same inputs and name returns that scenario (200) rather than a duplicate.

        Free text is bounded per field (422 naming it): the name 200 characters; in the inputs ids
        128, names 200, sources and notes 4000, other strings 1000. A client may create
        `save_quota_per_day` new scenarios a day (429 with Retry-After beyond). A document that cannot be
        evaluated (an input error, over the cost limits, past the deadline) is refused with 422 before it is saved.
        """
        return await _save(http, store, catalog, document, parent, response, quota, owner_token)

    @router.get("", name="list_scenarios", response_model=ScenarioPage)
    def list_scenarios(
        store: StoreDep,
        kind: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> ScenarioPage:
        """Summaries of saved scenarios, newest first (no documents: `GET /scenarios/{id}` has it)."""
        page = store.list(kind=kind, limit=limit, offset=offset)
        return ScenarioPage(
            items=[ScenarioSummaryOut(**_summary(s)) for s in page.items],
            total=page.total,
            limit=page.limit,
            offset=page.offset,
        )

    @router.get(
        "/{scenario_id}",
        name="get_scenario",
        response_model=ScenarioOut,
        responses={304: {"description": "Not modified (If-None-Match matched the ETag)."}},
    )
    def get(scenario_id: str, store: StoreDep, request: Request, response: Response) -> Any:
        record = store.get(scenario_id)
        etag = _etag(record)
        if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
            return Response(status_code=304, headers={"ETag": etag})
        response.headers["ETag"] = etag
        return ScenarioOut(**_out(record))

    @router.get("/{scenario_id}/result", name="get_scenario_result", response_model=EvaluationResult)
    async def result(scenario_id: str, store: StoreDep, catalog: CatalogDep, http: Request) -> Response:
        """The evaluation of a saved scenario (cached per engine version)."""

        record = await run_cpu_bound(http, lambda: store.get(scenario_id))
        document = parse_document(record.document)
        if evaluation.is_heavy(document):  # a cache miss runs in a heavy worker process (dse.api.cpu)
            cached = await run_cpu_bound(http, lambda: evaluation.cached_only(store, record.id, document))
            if cached is not None:
                return Response(content=cached.model_dump_json(), media_type="application/json")
            body = await run_in_heavy_process(http, evaluation.evaluate_json, record.document)
            await run_cpu_bound(http, lambda: evaluation.keep_result(store, record.id, document, json.loads(body)))
            return Response(content=body, media_type="application/json")

        def work() -> EvaluationResult:  # in the CPU pool (dse.api.cpu): a cache miss evaluates
            return evaluation.cached_evaluation(store, record.id, document, catalog)

        return await json_from_cpu_pool(http, work, medium=evaluation.is_medium(document))

    @router.patch("/{scenario_id}", name="rename_scenario", response_model=ScenarioOut)
    def rename(
        scenario_id: str, request: RenameRequest, store: StoreDep, owner_token: OwnerToken = None
    ) -> ScenarioOut:
        """Renames (owner only); the content, and so the id, stay the same."""
        return ScenarioOut(**_out(store.rename(scenario_id, request.name, _require(owner_token))))

    @router.delete("/{scenario_id}", name="delete_scenario", status_code=204)
    def delete(scenario_id: str, store: StoreDep, owner_token: OwnerToken = None) -> Response:
        store.delete(scenario_id, _require(owner_token))
        return Response(status_code=204)

    @router.post(
        "/{scenario_id}/fork",
        name="fork_scenario",
        status_code=201,
        response_model=SavedScenario,
        responses={200: {"model": SavedScenario, "description": "Already yours: the scenario the token owns"}},
    )
    async def fork(
        scenario_id: str,
        request: ForkRequest,
        store: StoreDep,
        catalog: CatalogDep,
        response: Response,
        quota: SaveQuotaDep,
        http: Request,
        owner_token: SaverToken = None,
    ) -> SavedScenario:
        """Saves an edited copy that points at its parent; anyone may fork."""
        parent = await anyio.to_thread.run_sync(lambda: store.get(scenario_id))
        raw = dict(parent.document)
        if request.name is not None:
            raw["name"] = request.name
        if request.inputs is not None:
            raw["inputs"] = request.inputs
        return await _save(http, store, catalog, parse_document(raw), parent.id, response, quota, owner_token)

    return router
