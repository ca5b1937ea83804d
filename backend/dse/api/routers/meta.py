"""Health, kinds, their schemas and examples; the API docs page (Swagger UI, served from here)."""

from __future__ import annotations

import html
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from dse import __version__
from dse.api.cpu import evaluation_pools
from dse.catalog.categories import CATEGORY_SPECS
from dse.scenarios.documents import document_model
from dse.scenarios.registry import KINDS
from dse.store import Store, StoreHealth

router = APIRouter(tags=["meta"])

#: A store probe that has not answered by then counts as "unavailable" (the probe thread is left to finish).
HEALTH_PROBE_TIMEOUT_S = 2.0


@router.get("/health", name="health")
async def health(request: Request) -> dict[str, Any]:
    """ "ok", or "degraded" when the scenario store does not answer or its last write failed, or when the
    evaluation pools are saturated (`evaluation`: each pool's threads busy and requests waiting).

    The store is probed with a trivial query at most every `store_check_interval_s` (in a thread of
    its own, so a stuck database never holds the event loop); `store` says what was found:
    `state` "ok" or "unavailable", the `backend`, and the `reason` ("disk full", "read-only",
    "unreachable", ...). Evaluations work without the store, so the answer is 200 either way.
    """
    store: Store = request.app.state.store
    interval: float = request.app.state.settings.store_check_interval_s
    found = store.cached_health(interval)
    if found is None:
        silent = f"no answer within {HEALTH_PROBE_TIMEOUT_S:g} s"
        found = StoreHealth(state="unavailable", backend=store.engine.dialect.name, reason=silent)
        with anyio.move_on_after(HEALTH_PROBE_TIMEOUT_S):
            found = await anyio.to_thread.run_sync(
                lambda: store.health(interval), abandon_on_cancel=True, limiter=request.app.state.health_limiter
            )
    pools = evaluation_pools(request.app)
    return {
        "status": "ok" if found.state == "ok" and pools["state"] == "ok" else "degraded",
        "version": __version__,
        "store": {key: value for key, value in asdict(found).items() if value is not None},
        "evaluation": pools,
        # Which server process answered (`dse serve --workers N` runs several on one port and store).
        "server_process": os.getpid(),
    }


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


# -- API docs: Swagger UI from the installed `swagger-ui-bundle-v2` package, no CDN ----------------
# The app's Content-Security-Policy allows scripts from this origin only, and no inline script:
# FastAPI's own docs page loads Swagger UI from a CDN and starts it with an inline script, so both
# would be blocked. This page loads the same files from here and starts Swagger UI from init.js.

try:
    from swagger_ui_bundle import swagger_ui_path as _swagger_ui_path

    SWAGGER_UI_DIR: Path | None = Path(str(_swagger_ui_path))
except ImportError:  # pragma: no cover - a declared dependency; the page says what is missing
    SWAGGER_UI_DIR = None

DOCS_ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
}

DOCS_INIT_JS = """// Starts Swagger UI on the OpenAPI document named by the page (no inline script: the CSP forbids it).
const root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
"""


@router.get("/docs", name="api_docs", include_in_schema=False)
def api_docs(request: Request) -> HTMLResponse:
    if SWAGGER_UI_DIR is None:
        raise HTTPException(503, "the API docs need the swagger-ui-bundle-v2 package (pip install it)")

    def asset(name: str) -> str:
        return html.escape(str(request.app.url_path_for("api_docs_asset", name=name)))

    title = html.escape(f"{request.app.title} — API")
    openapi_url = html.escape(request.app.openapi_url or "")
    page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="{asset("swagger-ui.css")}">
<link rel="icon" type="image/png" href="{asset("favicon-32x32.png")}">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
<script src="{asset("swagger-ui-bundle.js")}"></script>
<script src="{asset("init.js")}"></script>
</body>
</html>
"""
    return HTMLResponse(page)


@router.get("/docs/{name}", name="api_docs_asset", include_in_schema=False)
def api_docs_asset(name: str) -> Response:
    cache = {"Cache-Control": "public, max-age=86400"}
    if name == "init.js":
        return Response(DOCS_INIT_JS, media_type="text/javascript", headers=cache)
    if SWAGGER_UI_DIR is None or name not in DOCS_ASSETS:
        raise HTTPException(404, "no such file")
    return FileResponse(SWAGGER_UI_DIR / name, media_type=DOCS_ASSETS[name], headers=cache)
