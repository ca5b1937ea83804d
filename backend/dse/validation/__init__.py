"""TRANSITIONAL: legacy published-figure checks of kinds not yet moved into `dse.scenarios.kinds.<kind>`.

`dse.validation.<kind>` may define `checks()` (a list of `Check`), `REFERENCE_TOLERANCES` and
`REFERENCE_NOT_VALIDATION`; `dse.services.validation.legacy_rows` turns them into rows of the Validation
table. Moved kinds state their figures as `PublishedFigure` records; this package goes once all have moved.
"""

from __future__ import annotations

from dse.validation.base import Check

__all__ = ["Check"]
