"""The Validation table: each kind's published figures beside the engine's numbers (dse.services.validation)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from dse.api.deps import CatalogDep
from dse.scenarios.registry import KINDS
from dse.services.validation import (
    ValidationRow,
    ValidationSummaryRow,
    all_validation_rows,
    validation_rows,
    validation_summary,
)

router = APIRouter(prefix="/validation", tags=["validation"])


@router.get("-summary", name="get_validation_summary", response_model=list[ValidationSummaryRow])
def get_validation_summary(catalog: CatalogDep) -> list[ValidationSummaryRow]:
    """Mean absolute error per engine (group "all") and per accelerator/dtype group, over every published figure."""
    return validation_summary(catalog)


@router.get("", name="get_validation", response_model=dict[str, list[ValidationRow]])
def get_validation(catalog: CatalogDep) -> dict[str, list[ValidationRow]]:
    """Every kind's rows: quantity, published, engine, relative error, tolerance, verdict, source."""
    return all_validation_rows(catalog)


@router.get("/{kind}", name="get_kind_validation", response_model=list[ValidationRow])
def get_kind_validation(kind: str, catalog: CatalogDep) -> list[ValidationRow]:
    """One kind's rows (computed once per process, then served from memory)."""
    if kind not in KINDS:
        raise HTTPException(404, f"unknown kind '{kind}'; known: {', '.join(KINDS)}")
    return validation_rows(kind, catalog)
