"""Fits the expert-parallel all-to-all model to DeepEP's kernel tables (run once, offline; numpy only).

Model (dse.engines.collectives.expert_all_to_all_time): a rank sends `bytes` of token-expert copies, spread
evenly over the n EP ranks; the (m - 1)/n of them bound for the m - 1 other ranks of its node go over NVLink,
the (n - m)/n bound for other nodes through its own RDMA NIC, both at once:

    time = alpha + max(nvlink_bytes / (f_nvlink * B_nvlink), network_bytes / (f_network * B_network))

alpha: the network's when the group crosses nodes, NVLink's otherwise. Low-latency kernels (each copy sent
directly, decode): per link class, alpha and f from the published latencies (EP 8: one node, NVLink; EP 16-256:
RDMA-bound), linear least squares on the relative error (each row weighted by 1/time). Normal kernels (one RDMA
hop per remote node, then NVLink forwarding: prefill): the README gives their bottleneck bandwidth only, so f is
its mean over the rows of each link class over the nominal bandwidth (no latency fitted: the low-latency
alpha is used). Nominal: read from the presets models_db/interconnects/nvlink4-h800.json (H800 NVLink, 200e9
bytes/s per direction) and ib-ndr.json (ConnectX-7 400 Gb/s, 50e9 bytes/s), where their sources are.
Hidden 7168, top-8; dispatch FP8 with an fp32 scale per 128 elements (1 + 4/128 bytes per element), combine BF16 (2 bytes).

Writes fits/h800-sxm.fp8.deepep.all_to_all.deepep-fit.json (not `*.fit.json`: those are the kernel fits
`dse.catalog.calibration` loads). Rebuild:  python models_db/calibration/fit_deepep.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
STEM = "h800-sxm.fp8.deepep.all_to_all"


def _per_direction_bytes_per_s(interconnect: str) -> float:
    """A link's nominal bandwidth, read from its preset (where its datasheet source is)."""
    preset = json.loads((HERE.parent / "interconnects" / f"{interconnect}.json").read_text())
    return float(preset["bandwidth_per_direction_bytes_per_s"])


NVLINK_BYTES_PER_S = _per_direction_bytes_per_s("nvlink4-h800")
NETWORK_BYTES_PER_S = _per_direction_bytes_per_s("ib-ndr")
GPUS_PER_NODE = 8
HIDDEN = 7168
TOP_K = 8
MODEL = "time = alpha + max(nvlink_bytes / (f_nvlink * B_nvlink), network_bytes / (f_network * B_network))"
BYTES_PER_ELEMENT = {"dispatch": 1.0 + 4.0 / 128.0, "combine": 2.0}


def split_bytes(op: str, ranks: float, tokens: float) -> tuple[float, float]:
    """(NVLink bytes, network bytes) one rank sends in one direct all-to-all."""
    total = tokens * TOP_K * HIDDEN * BYTES_PER_ELEMENT[op]
    m = min(GPUS_PER_NODE, ranks)
    return total * (m - 1.0) / ranks, total * (ranks - m) / ranks


def main() -> None:
    data = json.loads((HERE / "data" / f"{STEM}.json").read_text())
    cols = data["columns"]
    rows = [dict(zip(cols, row, strict=True)) for row in data["rows"]]
    out: dict[str, object] = {"data_file": f"data/{STEM}.json", "model": MODEL}
    low = [r for r in rows if r["mode"] == "low_latency"]
    for link, nominal in (("nvlink", NVLINK_BYTES_PER_S), ("network", NETWORK_BYTES_PER_S)):
        sel = [r for r in low if (r["expert_parallel"] <= GPUS_PER_NODE) == (link == "nvlink")]
        t = np.array([r["time_s"] for r in sel])
        moved = np.array(
            [
                split_bytes(r["op"], r["expert_parallel"], r["tokens_per_rank"])[0 if link == "nvlink" else 1]
                for r in sel
            ]
        )
        design = np.stack([np.ones_like(t), moved], axis=1) / t[:, None]
        (alpha, inverse_bw), *_ = np.linalg.lstsq(design, np.ones_like(t), rcond=None)
        predicted = alpha + moved * inverse_bw
        error = np.abs(predicted / t - 1.0) * 100.0
        out[f"low_latency_{link}"] = {
            "alpha_s": float(f"{alpha:.4g}"),
            "bandwidth_fraction": float(f"{1.0 / inverse_bw / nominal:.4g}"),
            "nominal_bandwidth_bytes_per_s": nominal,
            "residuals": {
                "mean_abs_pct_error": round(float(error.mean()), 1),
                "max_abs_pct_error": round(float(error.max()), 1),
                "rows": len(t),
            },
        }
    for link, nominal in (("nvlink", NVLINK_BYTES_PER_S), ("network", NETWORK_BYTES_PER_S)):
        bw = [
            r["reported_bandwidth_bytes_per_s"]
            for r in rows
            if r["mode"] == "normal" and (r["bottleneck_link"] == "nvlink") == (link == "nvlink")
        ]
        out[f"normal_{link}"] = {
            "bandwidth_fraction": float(f"{float(np.mean(bw)) / nominal:.4g}"),
            "nominal_bandwidth_bytes_per_s": nominal,
            "rows": len(bw),
        }
    path = HERE / "fits" / f"{STEM}.deepep-fit.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
