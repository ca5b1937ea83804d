"""Kernel calibration: each fit's measurements beside the fitted model (dse.services.calibration)."""

from __future__ import annotations

from fastapi import APIRouter

from dse.api.deps import CatalogDep
from dse.services.calibration import CalibrationChart, calibration_charts

router = APIRouter(prefix="/calibration", tags=["calibration"])


@router.get("", name="get_calibration", response_model=list[CalibrationChart])
def get_calibration(catalog: CatalogDep) -> list[CalibrationChart]:
    """One Plotly chart per kernel fit (accelerator x dtype x software stack x kernel family)."""
    return calibration_charts(catalog)
