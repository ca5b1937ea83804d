"""TRANSITIONAL: the shape of a legacy check in `dse.validation.<kind>`.

Kinds moved into `dse.scenarios.kinds.<kind>` state their published figures as `PublishedFigure`
records instead; `dse.services.validation.legacy_rows` reads these checks until every kind has moved,
then this package goes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dse.catalog import Catalog


@dataclass(frozen=True)
class Check:
    """One published figure and how to compute the engine's number for it (in the same unit)."""

    quantity: str
    published: float
    unit: str
    source: str
    compute: Callable[[Catalog], float]
    #: Largest accepted |engine / published - 1|; None when the check is a band or only informative.
    tolerance_relative: float | None = None
    #: Accepted range of engine / published, for one-sided bounds (e.g. "faster, within 2x").
    ratio_band: tuple[float, float] | None = None
    note: str = ""


#: A relative bound, or a (low, high) band on engine / published.
Tolerance = float | tuple[float, float]
