"""Charts of `rl_scaling` (Plotly figure dicts): samples/s vs minibatch per GPU count, the iteration's time split."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dse.scenarios.base import Chart
from dse.scenarios.kinds.rl_scaling.studies import MinibatchGrid
from dse.scenarios.shared.palette import LABEL_FONT_PX, height_for, paint


def samples_per_s_vs_minibatch(
    *,
    minibatch_samples: Sequence[float],
    samples_per_s_by_gpus: Mapping[int, Sequence[float | None]],
    current: float,
    banded_gpus: int | None = None,
) -> dict[str, Any]:
    """Samples/s against the total minibatch, one line per GPU count; the current minibatch marked. The line
    of `banded_gpus` (the scenario's) carries `meta.band`: the service shades its validation band."""
    data = paint(
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": f"{gpus} GPU" + ("s" if gpus > 1 else ""),
            "x": list(minibatch_samples),
            "y": [None if v is None else float(v) for v in values],
            "hovertemplate": "minibatch %{x}<br>%{y:.0f} samples/s<extra>" + f"{gpus} GPUs</extra>",
            **({"meta": {"band": "rate"}} if gpus == banded_gpus else {}),
        }
        for gpus, values in samples_per_s_by_gpus.items()
    )
    return {
        "data": data,
        "layout": {
            "title": {"text": "PPO samples/s vs minibatch size"},
            "xaxis": {"title": {"text": "minibatch (samples, all GPUs)"}, "type": "log"},
            "yaxis": {"title": {"text": "samples/s"}, "rangemode": "tozero"},
            "height": height_for(legend=len(data)),
            "shapes": [
                {
                    "type": "line",
                    "x0": current,
                    "x1": current,
                    "yref": "paper",
                    "y0": 0,
                    "y1": 1,
                    "line": {"dash": "dot", "width": 1},
                }
            ],
            # The line's label at its foot, right of it (annotations on a log axis take log10 of the value;
            # plotly.js #6880).
            "annotations": [
                {
                    "x": math.log10(current),
                    "yref": "paper",
                    "y": 0,
                    "xanchor": "left",
                    "yanchor": "bottom",
                    "text": "this minibatch",
                    "showarrow": False,
                    "font": {"size": LABEL_FONT_PX},
                }
            ],
        },
    }


def iteration_time_split(*, parts_s: Mapping[str, float]) -> dict[str, Any]:
    """One stacked horizontal bar: where a PPO iteration's seconds go."""
    data = paint(
        {
            "type": "bar",
            "orientation": "h",
            "name": name,
            "y": ["iteration"],
            "x": [float(seconds)],
            "hovertemplate": f"{name}: " + "%{x:.3f} s<extra></extra>",
        }
        for name, seconds in parts_s.items()
    )
    return {
        "data": data,
        "layout": {
            "title": {"text": "Time split of one PPO iteration"},
            "barmode": "stack",
            "xaxis": {"title": {"text": "time per iteration (s)"}},
            "showlegend": True,
            "height": height_for(legend=len(data), base=340),
        },
    }


def charts(
    *, grid: MinibatchGrid, current_minibatch: float, split: Mapping[str, float], gpus: int | None = None
) -> list[Chart]:
    """The kind's charts for one design point (`gpus`: the scenario's count, whose line gets the band)."""
    by_gpus = {
        int(g): [None if np.isnan(v) else float(v) for v in row]
        for g, row in zip(grid.gpus, grid.samples_per_s, strict=True)
    }
    return [
        Chart(
            key="samples_vs_minibatch",
            title="Samples/s vs minibatch, 1 to 8 GPUs",
            figure=samples_per_s_vs_minibatch(
                minibatch_samples=grid.minibatch.tolist(),
                samples_per_s_by_gpus=by_gpus,
                current=current_minibatch,
                banded_gpus=gpus,
            ),
        ),
        Chart(key="iteration_split", title="Time split of an iteration", figure=iteration_time_split(parts_s=split)),
    ]
