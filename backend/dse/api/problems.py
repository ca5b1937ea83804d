"""Errors as RFC 9457 problem+json, each naming the field and the reason."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from dse.api.middleware import with_security_headers
from dse.catalog import UnknownPreset
from dse.scenarios.base import InputError
from dse.scenarios.registry import KINDS
from dse.services.limits import DeadlinePassed
from dse.store import Forbidden, InvalidDocument, NotFound, StoreError, Unavailable

PROBLEM_MEDIA_TYPE = "application/problem+json"

#: The JSON Schema of every error body (RFC 9457 problem+json plus `errors`, one per field at fault).
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "reason"],
                "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
    },
}


def _problem_response(description: str, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}},
    }
    if retry_after:
        response["headers"] = {
            "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "string"}}
        }
    return response


#: The error responses every API operation may return (applied to each router in create_app), all
#: problem+json. Not every operation can return every one (a GET of the catalog is never 409), but
#: the middleware (body size, rate limits, owner token, store availability) applies to all of them.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem_response("Malformed request (bad JSON, bad header)"),
    401: _problem_response("Owner token required"),
    403: _problem_response("Wrong owner token"),
    404: _problem_response("Unknown id, kind, category or preset"),
    405: _problem_response("Method not allowed"),
    409: _problem_response("Conflict with the stored state"),
    413: _problem_response("Request body too large"),
    415: _problem_response("Unsupported media type"),
    422: _problem_response("Invalid input: `errors` names each field at fault"),
    429: _problem_response("Rate limit or quota spent", retry_after=True),
    503: _problem_response("Store unavailable or the server is at capacity", retry_after=True),
}


class TooManyRequests(Exception):
    """A client's quota or rate is spent: 429 with Retry-After (seconds)."""

    def __init__(self, detail: str, retry_after_s: int) -> None:
        self.detail, self.retry_after_s = detail, retry_after_s
        super().__init__(detail)


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


#: Labels pydantic puts into an error location for the branch of a union it tried, not a field.
_UNION_BRANCH_LABELS = frozenset({"str", "int", "float", "bool", "none", "list", "dict"})


def _is_union_branch(part: Any) -> bool:
    # Field names are identifiers; branch labels look like 'constrained-float' or 'list[int]'.
    return isinstance(part, str) and (part in _UNION_BRANCH_LABELS or "[" in part or "-" in part)


def _field_of(loc: list[Any]) -> str:
    # Tagged unions put the tag (the kind) into the location: body.inference.inputs.x -> inputs.x.
    parts = [
        str(p)
        for p in loc
        if p not in ("body", "query", "path", "header") and p not in KINDS and not _is_union_branch(p)
    ]
    return ".".join(parts) or "(body)"


def validation_errors(errors: list[Any]) -> list[dict[str, str]]:
    return [
        {
            # A JSON syntax error's location is a character offset, not a field.
            "field": "(body)" if err.get("type") == "json_invalid" else _field_of(list(err.get("loc", ()))),
            "reason": str(err.get("msg", "invalid")),
        }
        for err in errors
    ]


def _field_of_http_error(request: Request, status: int, detail: str) -> str:
    """The part of the request an HTTP error is about: the path parameter it names, else by status."""
    for name, value in request.path_params.items():
        if f"'{value}'" in detail:
            return str(name)
    if status == 405:
        return "(method)"
    if status == 401 and "X-Owner-Token" in detail:
        return "X-Owner-Token"
    if status == 404:
        return next(iter(request.path_params), "(path)")
    return "(body)" if status in (400, 413, 415) else "(request)"


def deadline_problem(exc: DeadlinePassed) -> JSONResponse:
    """503: the evaluation was stopped (deadline or client gone); retrying later, or smaller, may work."""
    return problem(
        503,
        "Evaluation stopped",
        f"{exc}; nothing was changed. Narrow the request (fewer points, a smaller search space) or retry later.",
        [{"field": "(request)", "reason": str(exc)}],
        headers={"Retry-After": "1"},
    )


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(DeadlinePassed)
    async def _deadline(_: Request, exc: DeadlinePassed) -> JSONResponse:
        return deadline_problem(exc)

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
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        detail = str(exc) or "no scenario with that id"
        # The id came from the path, the `parent` query, or the items of a comparison.
        field = "parent" if "parent" in detail else "scenario_id" if "scenario_id" in request.path_params else "items"
        return problem(404, "Not found", detail, [{"field": field, "reason": detail}])

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

    @app.exception_handler(TooManyRequests)
    async def _too_many(_: Request, exc: TooManyRequests) -> JSONResponse:
        return problem(
            429,
            "Too many requests",
            exc.detail,
            [{"field": "(request)", "reason": exc.detail}],
            headers={"Retry-After": str(exc.retry_after_s)},
        )

    @app.exception_handler(Unavailable)
    async def _unavailable(_: Request, exc: Unavailable) -> JSONResponse:
        # The cause (driver message, file) went to the log where the store raised this.
        reason = getattr(exc, "reason", "database error")
        detail = f"the scenario store is unavailable ({reason}); nothing was changed"
        return problem(
            503,
            "Store unavailable",
            detail,
            [{"field": "(store)", "reason": reason}],
            headers={"Retry-After": "1" if reason == "busy" else "30"},
        )

    @app.exception_handler(StoreError)
    async def _store(_: Request, exc: StoreError) -> JSONResponse:
        detail = str(exc) or "the store refused the request"
        return problem(409, "Store refused the request", detail, [{"field": "(body)", "reason": detail}])

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = str(exc.detail)
        errors = [{"field": _field_of_http_error(request, exc.status_code, detail), "reason": detail}]
        return problem(exc.status_code, detail, detail, errors, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Starlette sends this answer from its outermost layer, outside every middleware: the
        # security headers are added here. (Starlette re-raises the error afterwards; the server logs it.)
        response = problem(500, "Internal error", "the server failed to answer; nothing was changed")
        raw = with_security_headers(response.raw_headers)
        response.raw_headers[:] = raw
        return response
