"""The dashboard's pages and static files, plotly.js from the installed plotly package (dse.services.assets)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from dse.services.assets import FRONTEND_DIR, PLOTLY_JS

router = APIRouter(include_in_schema=False)

#: Client-side routes: each serves the single page, which renders from the URL.
PAGE_ROUTES = ["/", "/catalog", "/scenarios", "/compare", "/validation", "/k/{kind}", "/s/{scenario_id}"]


def _index() -> FileResponse:
    return FileResponse(FRONTEND_DIR / "index.html", media_type="text/html")


for _route in PAGE_ROUTES:
    router.add_api_route(_route, _index, methods=["GET"], name=f"page:{_route}")


@router.get("/vendor/plotly.min.js")
def plotly_js() -> FileResponse:
    return FileResponse(PLOTLY_JS, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"})


@router.get("/static/{path:path}")
def static(path: str) -> FileResponse:
    if "\x00" in path:  # a NUL byte is no file name (the OS refuses it: a 404, not a 500)
        raise HTTPException(404, "no such file")
    root = (FRONTEND_DIR / "static").resolve()
    target = (root / path).resolve()
    if not target.is_file() or root not in target.parents:
        raise HTTPException(404, "no such file")
    return FileResponse(target)
