"""The validation table: each engine's numbers beside the published figures, with the error."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from dse.api.deps import CatalogDep
from dse.catalog import Catalog
from dse.scenarios.registry import KINDS
from dse.validation import ValidationRow, kind_rows

router = APIRouter(prefix="/validation", tags=["validation"])

#: Rows depend only on the engine version and the (fixed) catalog, so each is computed once per process.
_cache: dict[tuple[str, str, int], list[ValidationRow]] = {}


def _rows(kind: str, catalog: Catalog) -> list[ValidationRow]:
    key = (kind, KINDS[kind].engine_version, id(catalog))
    if key not in _cache:
        _cache[key] = kind_rows(kind, catalog)
    return _cache[key]


@router.get("", name="get_validation", response_model=dict[str, list[ValidationRow]])
def get_validation(catalog: CatalogDep) -> dict[str, list[ValidationRow]]:
    """Every kind's rows: quantity, published, engine, relative error, tolerance, source."""
    return {kind: _rows(kind, catalog) for kind in KINDS}


@router.get("/{kind}", name="get_kind_validation", response_model=list[ValidationRow])
def get_kind_validation(kind: str, catalog: CatalogDep) -> list[ValidationRow]:
    if kind not in KINDS:
        raise HTTPException(404, f"unknown kind '{kind}'; known: {', '.join(KINDS)}")
    return _rows(kind, catalog)
