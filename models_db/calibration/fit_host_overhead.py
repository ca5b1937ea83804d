"""Fits the per-iteration host time of a serving engine step to vidur's CPU-overhead profiles (run once, offline).

Per component of sarathi's synchronous step (data/a100-80gb.fp16.vidur-sarathi.host_overhead.json), linear least
squares on the relative error (each row weighted by 1/time) of

    time = fixed + per_sequence * n + tensor_parallel * [TP > 1]
           + per_vocab_entry * V + per_sequence_vocab_entry * n * V

with n the requests of the step and V the model's vocabulary, each component keeping only the terms its data ask for:
`schedule` and `process_model_outputs` are per-request Python work (same across models and TP), `prepare_inputs_e2e`
broadcasts the batch's inputs to the tensor-parallel workers when TP > 1, `sampler_e2e` softmaxes and samples over the
vocabulary per request (Qwen-72B's 152k entries cost twice Llama's 32k), `ray_comm` is the driver-worker exchange of a
Ray-run engine (its TP > 1 rows ~6 ms, TP 1 ~0.2-1 ms).

Writes fits/a100-80gb.fp16.vidur-sarathi.host_overhead.host-fit.json (not `*.fit.json`: those are the kernel fits).
Rebuild (numpy only):  python models_db/calibration/fit_host_overhead.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
STEM = "a100-80gb.fp16.vidur-sarathi.host_overhead"
#: The terms each component's fit keeps (see the module docstring).
TERMS: dict[str, tuple[str, ...]] = {
    "schedule": ("fixed", "per_sequence"),
    "prepare_inputs": ("fixed", "per_sequence", "tensor_parallel"),
    "sampler": ("fixed", "per_sequence", "per_vocab_entry", "per_sequence_vocab_entry"),
    "process_outputs": ("fixed", "per_sequence"),
    "ray_comm": ("fixed", "per_sequence", "tensor_parallel"),
}
#: Rows left out: Qwen-72B (TP4) at batch 112 and 128 schedules in 0.48 and 0.97 ms, less than at batch 96 (1.54 ms),
#: and processes fewer outputs (1.04, 1.22 ms vs 1.75): its KV cache on four A100s held fewer requests than
#: max_num_seqs, so those steps did not run the batch the row names.
EXCLUDED: set[tuple[str, int]] = {("Qwen/Qwen-72B", 112), ("Qwen/Qwen-72B", 128)}


def features(n: np.ndarray, tp: np.ndarray, vocab: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "fixed": np.ones_like(n),
        "per_sequence": n,
        "tensor_parallel": (tp > 1).astype(np.float64),
        "per_vocab_entry": vocab,
        "per_sequence_vocab_entry": n * vocab,
    }


def fit(data: dict) -> dict:
    cols = data["columns"]
    model, tp_col, batch, comp, time = (
        cols.index(c) for c in ("model_name", "tensor_parallel", "batch_size", "component", "time_s")
    )
    out: dict = {}
    for component, terms in TERMS.items():
        rows = [r for r in data["rows"] if r[comp] == component and (r[model], r[batch]) not in EXCLUDED]
        n = np.asarray([r[batch] for r in rows], dtype=np.float64)
        tp = np.asarray([r[tp_col] for r in rows], dtype=np.float64)
        vocab = np.asarray([data["vocab_size"][r[model]] for r in rows], dtype=np.float64)
        t = np.asarray([r[time] for r in rows], dtype=np.float64)
        x = features(n, tp, vocab)
        design = np.stack([x[name] for name in terms], axis=1)
        coef, *_ = np.linalg.lstsq(design / t[:, None], np.ones_like(t), rcond=None)
        predicted = design @ coef
        error = np.abs(predicted / t - 1.0) * 100.0
        out[component] = {
            "coefficients_s": {name: float(f"{c:.4g}") for name, c in zip(terms, coef, strict=True)},
            "residuals": {
                "mean_abs_pct_error": round(float(error.mean()), 1),
                "max_abs_pct_error": round(float(error.max()), 1),
                "rows": len(t),
            },
        }
    return out


def main() -> None:
    data = json.loads((HERE / "data" / f"{STEM}.json").read_text())
    result = {
        "data_file": f"data/{STEM}.json",
        "model": "component time (s) = fixed + per_sequence * n + tensor_parallel * [TP > 1] + per_vocab_entry * V "
        "+ per_sequence_vocab_entry * n * V (n: requests of the step, V: vocabulary); terms absent are zero",
        "excluded_rows": sorted([list(row) for row in EXCLUDED]),
        "components": fit(data),
    }
    (HERE / "fits" / f"{STEM}.host-fit.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
