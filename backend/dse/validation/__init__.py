"""Each engine's numbers beside the published figures it is tested against, with the error.

`validation_rows(kind)` returns the rows of one scenario kind: the explicit checks of
`dse.validation.<kind>` (when that module exists) followed by the numeric references the kind's
own example scenarios cite. A row whose computation fails carries the error instead of breaking
the table, so a half-finished engine still shows what it can.
"""

from __future__ import annotations

from dse.validation.base import Check, ValidationRow, kind_rows, validation_rows

__all__ = ["Check", "ValidationRow", "kind_rows", "validation_rows"]
