"""Fits the alpha-beta model of NCCL ring all-reduce to the vidur all-reduce measurements (run once, offline).

    time = 2(n-1) * alpha + 2(n-1)/n * message_bytes / (fraction * nominal_bandwidth)

per link class: `nvlink` (all ranks in one node: DGX A100 NVLink 3, 300 GB/s per direction;
DGX H100 NVLink 4, 450 GB/s; models_db/interconnects/nvlink{3,4}.json) and `network` (ranks on
several nodes). alpha is the per-ring-step latency, `fraction` the share of the link's nominal
bandwidth NCCL's bus bandwidth reaches. Linear least squares on the relative error (each row
weighted by 1/time), i.e. the fit the kernel fits make on log(time) to first order.

The network rows' cluster is not named by vidur (docs/profiling.md), so its nominal bandwidth is
unknown: for `network` the fit gives alpha and the absolute bus bandwidth; only alpha is used.

Writes fits/<accelerator>.fp16.vidur-nccl.allreduce.nccl-fit.json (not `*.fit.json`: those are the
kernel fits `dse.catalog.calibration` loads). Rebuild (numpy only):  python models_db/calibration/fit_nccl.py
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
NOMINAL = {"a100-80gb": 300e9, "h100-sxm": 450e9}


def fit(rows: np.ndarray, nominal: float | None) -> dict[str, float]:
    size, n, t = rows[:, 0], rows[:, 1], rows[:, 4]
    steps = 2.0 * (n - 1.0)
    volume = steps / n * size
    design = np.stack([steps, volume], axis=1) / t[:, None]
    (alpha, inverse_bw), *_ = np.linalg.lstsq(design, np.ones_like(t), rcond=None)
    predicted = steps * alpha + volume * inverse_bw
    error = np.abs(predicted / t - 1.0) * 100.0
    bus = 1.0 / inverse_bw
    out = {"alpha_step_s": float(f"{alpha:.4g}"), "bus_bandwidth_bytes_per_s": float(f"{bus:.4g}")}
    if nominal is not None:
        out["bus_bandwidth_fraction"] = float(f"{bus / nominal:.4g}")
        out["nominal_bandwidth_bytes_per_s"] = nominal
    large = size >= 16 * 2**20
    out["residuals"] = {  # type: ignore[assignment]
        "mean_abs_pct_error": round(float(error.mean()), 1),
        "max_abs_pct_error": round(float(error.max()), 1),
        "mean_abs_pct_error_16MiB_and_up": round(float(error[large].mean()), 1) if large.any() else None,
        "rows": len(t),
    }
    return out


def main() -> None:
    for accelerator, nominal in NOMINAL.items():
        stem = f"{accelerator}.fp16.vidur-nccl.allreduce"
        data = json.loads((HERE / "data" / f"{stem}.json").read_text())
        rows = np.asarray(data["rows"], dtype=np.float64)
        intra = rows[rows[:, 1] == rows[:, 2]]
        inter = rows[rows[:, 1] > rows[:, 2]]
        classes = {"nvlink": fit(intra, nominal)}
        if len(inter):
            classes["network"] = fit(inter, None)
        payload = {
            "id": stem,
            "source": data["source"],
            "accelerator": accelerator,
            "dtype": "fp16",
            "stack": "vidur-nccl",
            "kernel_family": "allreduce",
            "data_file": f"models_db/calibration/data/{stem}.json",
            "fit_method": "linear least squares on relative error, models_db/calibration/fit_nccl.py",
            "fitted_on": datetime.date.today().isoformat(),
            "model": "time = 2(n-1) alpha + 2(n-1)/n bytes / bus_bandwidth (ring all-reduce, alpha-beta)",
            "classes": classes,
        }
        (HERE / "fits" / f"{stem}.nccl-fit.json").write_text(json.dumps(payload, indent=1) + "\n")
        print(stem, json.dumps(classes))


if __name__ == "__main__":
    main()
