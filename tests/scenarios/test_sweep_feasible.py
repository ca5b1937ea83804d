"""A sweep says which design points are feasible (issue 18): `feasible` per point, from the kind's
yes/no metrics (fits), so the dashboard draws the others as not fitting and keeps them off Pareto fronts."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from dse.catalog import default_catalog
from dse.scenarios.registry import KINDS
from dse.scenarios.shared.palette import BAND_FILL, PALETTE, paint
from dse.scenarios.sweep import SweepAxis, run_sweep

CATALOG = default_catalog()
ROOT = Path(__file__).resolve().parents[2]


def test_training_sweep_marks_the_points_that_do_not_fit():
    kind = KINDS["training"]
    inputs = kind.inputs_model.model_validate(kind.examples()[1]["inputs"])
    result = run_sweep(
        kind,
        inputs,
        CATALOG,
        [
            SweepAxis(path="micro_batch_size", values=[1, 2, 4]),
            SweepAxis(path="cluster.accelerator.memory_capacity_bytes", values=[1 * 2**30, 80 * 2**30]),
        ],
    )
    fits = np.array(result.metrics["fits"], dtype=float) > 0
    assert np.array(result.feasible).shape == (3, 2)
    assert (np.array(result.feasible) == fits).all()
    assert not np.array(result.feasible)[:, 0].any()  # 1 GiB fits nothing
    assert result.infeasible_because == ["Fits in GPU memory"]


def test_the_palette_is_one_list_for_backend_and_dashboard():
    js = (ROOT / "frontend" / "static" / "js" / "result.js").read_text()
    block = js[js.index("export const PALETTE") : js.index("];", js.index("export const PALETTE"))]
    assert tuple(re.findall(r'"(#[0-9A-Fa-f]{6})"', block)) == PALETTE
    assert len(set(PALETTE)) == len(PALETTE) >= 12
    assert f'export const BAND_FILL = "{BAND_FILL}";' in js


def test_paint_gives_each_series_its_own_colour():
    traces = paint([{"type": "bar", "name": str(i)} for i in range(12)])
    assert len({t["marker"]["color"] for t in traces}) == 12
    grouped = paint(
        [{"type": "scatter", "name": "a", "legendgroup": "a"}, {"type": "scatter", "name": "a", "legendgroup": "a"}],
        lines=True,
    )
    assert grouped[0]["line"] == grouped[1]["line"]
