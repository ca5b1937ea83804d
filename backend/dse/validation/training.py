"""Training (Megatron-LM): Narayanan et al. SC'21 Table 1 throughput and Korthikanti et al. 2022
Table 2 activation bytes, cited by the kind's examples.

Tolerances as in the training engine's tests: achieved TFLOP/s per GPU within 12% per row
(test_training_validation.py); activation bytes follow an exact formula (float rounding only).
"""

from __future__ import annotations

from dse.validation.base import Tolerance

REFERENCE_TOLERANCES: dict[str, Tolerance] = {
    "achieved TFLOP/s per GPU": 0.12,
    "activation bytes per layer": 1e-9,
}
