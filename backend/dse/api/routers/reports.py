"""A standalone HTML report of one scenario (dse.services.reports), served as a download."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import Response

from dse.api.cpu import run_cpu_bound
from dse.api.deps import CatalogDep, StoreDep
from dse.scenarios.documents import document_json
from dse.services.evaluation import evaluate, saved_result
from dse.services.reports import render_report, report_filename


def _attachment(name: str, content: str) -> Response:
    """An attachment (a download), never rendered on the server's origin."""
    return Response(
        content,
        media_type="text/html; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{report_filename(name)}"', "Cache-Control": "no-store"},
    )


def build_router(document_type: Any) -> APIRouter:
    router = APIRouter(tags=["reports"])
    html_response: dict[int | str, dict[str, Any]] = {
        200: {"content": {"text/html": {}}, "description": "A standalone HTML report (download)."}
    }

    @router.get("/scenarios/{scenario_id}/report.html", name="scenario_report", responses=html_response)
    async def scenario_report(scenario_id: str, store: StoreDep, catalog: CatalogDep, http: Request) -> Response:
        """The saved scenario as a standalone HTML report that opens offline."""

        def work() -> Response:  # in the CPU pool (dse.api.cpu): a cache miss evaluates
            saved = saved_result(store, scenario_id, catalog)
            report = render_report(saved.document, saved.result, f"/s/{saved.record.id}")
            return _attachment(saved.record.name, report)

        return await run_cpu_bound(http, work)

    @router.post("/report", name="document_report", responses=html_response)
    async def document_report(
        document: Annotated[document_type, Body()], catalog: CatalogDep, http: Request
    ) -> Response:
        """An unsaved document as a standalone HTML report that opens offline."""

        def work() -> Response:  # in the CPU pool (dse.api.cpu)
            report = render_report(document_json(document), evaluate(document, catalog))
            return _attachment(document.name, report)

        return await run_cpu_bound(http, work)

    return router
