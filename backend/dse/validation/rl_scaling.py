"""RL scaling (CaRL PPO): the published schedule of the CARLA run, exact, and its wall time.

Sources as in tests/engines/test_rl_scaling.py: autonomousvision/CaRL train_carl_cpp.sh (8 GPUs x 16
environments x 512 steps, 4 minibatches, 3 epochs, 300M samples) and CARLA/README.md (~3.5 days).
The engine leaves out CARLA's crash-restarts, so its wall time must come out faster, within 2x.
"""

from __future__ import annotations

from functools import partial

from dse.catalog import Catalog
from dse.scenarios.registry import KINDS
from dse.validation.base import Check, Tolerance

SCHEDULE_SOURCE = "autonomousvision/CaRL CARLA/team_code/train_carl_cpp.sh; dd_ppo.py (num_updates)"
REFERENCE_TOLERANCES: dict[str, Tolerance] = {"wall time of CaRL": (0.5, 1.0)}


def _metric(catalog: Catalog, key: str) -> float:
    kind = KINDS["rl_scaling"]
    inputs = kind.inputs_model.model_validate({"workload": "carl-carla", "accelerator": "a100-80gb"})
    return float(kind.compute(kind.resolve(inputs, catalog))[key])


def checks() -> list[Check]:
    exact = 1e-12
    return [
        Check(
            "samples per PPO batch (128 envs x 512 steps)",
            65_536,
            "samples",
            SCHEDULE_SOURCE,
            partial(_metric, key="batch_samples"),
            exact,
        ),
        Check(
            "iterations to 300M samples (300M // 65,536)",
            4_577,
            "iterations",
            SCHEDULE_SOURCE,
            partial(_metric, key="iterations_to_target"),
            exact,
        ),
        Check(
            "gradient steps (4,577 x 3 epochs x 4 minibatches)",
            54_924,
            "steps",
            SCHEDULE_SOURCE,
            partial(_metric, key="gradient_steps_to_target"),
            exact,
        ),
    ]
