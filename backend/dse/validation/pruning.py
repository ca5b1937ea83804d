"""Pruning (APTP on Stable Diffusion): the UNet's parameters and MACs per step (shared/REFERENCE.md
section 4; tolerance 1%, the pruning issue's, as in tests/engines/test_pruning_engine.py), and APTP's
published MACs and latencies (references that carry their own tolerance, as in tests/scenarios/test_pruning.py)."""

from __future__ import annotations

from dse.validation.base import Tolerance

REFERENCE_TOLERANCES: dict[str, Tolerance] = {
    "Stable Diffusion": 0.01,
    "SD 2.1 UNet MACs": 0.01,
}

#: The released checkpoints' number of codes set beside the scenario's own K: context, not a check.
REFERENCE_NOT_VALIDATION: tuple[str, ...] = ("architecture codes (K)",)
