"""Pieces shared by every spec."""

from __future__ import annotations

from typing import Annotated, TypeAlias

import numpy as np
from annotated_types import Ge, Gt, Le
from numpy.typing import NDArray

#: A scalar or an array that broadcasts: every engine input and output.
Num: TypeAlias = float | NDArray[np.float64]

PositiveFloat = Annotated[float, Gt(0)]
NonNegativeFloat = Annotated[float, Ge(0)]
PositiveInt = Annotated[int, Gt(0)]
Fraction = Annotated[float, Gt(0), Le(1)]
