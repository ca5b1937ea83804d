"""Errors as RFC 9457 problem+json, each naming the field and the reason."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from dse.catalog import UnknownPreset
from dse.scenarios.base import InputError
from dse.scenarios.registry import KINDS
from dse.store import Forbidden, InvalidDocument, NotFound, StoreError, Unavailable

PROBLEM_MEDIA_TYPE = "application/problem+json"


def problem(
    status: int,
    title: str,
    detail: str = "",
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail or title}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _field_of(loc: list[Any]) -> str:
    # Tagged unions put the tag (the kind) into the location: body.inference.inputs.x -> inputs.x.
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header") and p not in KINDS]
    return ".".join(parts) or "(body)"


def validation_errors(errors: list[Any]) -> list[dict[str, str]]:
    return [{"field": _field_of(list(err.get("loc", ()))), "reason": str(err.get("msg", "invalid"))} for err in errors]


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(list(exc.errors()))
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors[:5])
        return problem(422, "Invalid input", detail, errors)

    @app.exception_handler(ValidationError)
    async def _model_validation(_: Request, exc: ValidationError) -> JSONResponse:
        errors = validation_errors(list(exc.errors()))
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors[:5])
        return problem(422, "Invalid input", detail, errors)

    @app.exception_handler(InputError)
    async def _input(_: Request, exc: InputError) -> JSONResponse:
        return problem(422, "Invalid input", f"{exc.field}: {exc.reason}", [{"field": exc.field, "reason": exc.reason}])

    @app.exception_handler(UnknownPreset)
    async def _preset(_: Request, exc: UnknownPreset) -> JSONResponse:
        return problem(404, "Unknown preset", str(exc), [{"field": exc.category, "reason": str(exc)}])

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return problem(404, "Not found", str(exc) or "no scenario with that id")

    @app.exception_handler(Forbidden)
    async def _forbidden(_: Request, exc: Forbidden) -> JSONResponse:
        return problem(
            403,
            "Forbidden",
            str(exc) or "the owner token is missing or wrong",
            [{"field": "X-Owner-Token", "reason": "missing or wrong owner token"}],
        )

    @app.exception_handler(InvalidDocument)
    async def _invalid_document(_: Request, exc: InvalidDocument) -> JSONResponse:
        field, reason = getattr(exc, "field", "(body)"), getattr(exc, "reason", str(exc))
        return problem(422, "Invalid input", f"{field}: {reason}", [{"field": field, "reason": reason}])

    @app.exception_handler(Unavailable)
    async def _unavailable(_: Request, exc: Unavailable) -> JSONResponse:
        return problem(503, "Store unavailable", "the scenario store is busy or unreachable; nothing was changed",
                       headers={"Retry-After": "1"})

    @app.exception_handler(StoreError)
    async def _store(_: Request, exc: StoreError) -> JSONResponse:
        return problem(409, "Store refused the request", str(exc) or "the store refused the request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:  # pragma: no cover - last resort
        return problem(500, "Internal error", "the server failed to answer; nothing was changed")
