"""Speed of the inference engine: design points per second of a batch x sequence-length sweep.

Run from the repository root:  PYTHONPATH=backend python -m benchmarks.bench_inference
Appends its figures to benchmarks/results.json under the key "inference" (other keys are kept).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from dse.catalog import default_catalog
from dse.engines.inference import run_inference
from dse.scenarios.kinds.inference.inputs import engine_inputs
from dse.scenarios.registry import KINDS

RESULTS = Path(__file__).resolve().parent / "results.json"
GRID_SIDE = 1000  # 1000 batches x 1000 sequence lengths = 1,000,000 design points


def _best_of(repeats: int, fn: Any) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def sweep_points_per_s(system: str, doc: dict[str, Any], sub_batch_fraction: float | None) -> float:
    kind = KINDS["inference"]
    resolved = kind.resolve(kind.inputs_model.model_validate(doc), default_catalog())
    batches = np.linspace(1.0, 1024.0, GRID_SIDE).round()[:, None]
    prompts = np.linspace(64.0, 1024.0, GRID_SIDE).round()[None, :]
    swept = dataclasses.replace(
        resolved,
        batch_size=batches,  # type: ignore[arg-type]
        prompt_tokens=prompts,  # type: ignore[arg-type]
        sub_batch_fraction=sub_batch_fraction,
    )
    inputs = engine_inputs(swept, system=system)

    def once() -> None:
        with np.errstate(all="ignore"):
            run_inference(**inputs)

    return GRID_SIDE * GRID_SIDE / _best_of(3, once)


def single_evaluation_s() -> float:
    kind = KINDS["inference"]
    doc = kind.examples()[0]["inputs"]
    catalog = default_catalog()

    def once() -> None:
        kind.evaluate(kind.resolve(kind.inputs_model.model_validate(doc), catalog))

    return _best_of(5, once)


def api_evaluation_s() -> dict[str, float]:
    """POST /api/v1/evaluate of the default example through the whole app (ASGI, in process): median and best."""
    import tempfile

    from fastapi.testclient import TestClient

    from dse.api.app import create_app
    from dse.settings import Settings

    doc = KINDS["inference"].examples()[0]
    with (
        tempfile.TemporaryDirectory() as folder,
        TestClient(create_app(Settings(database_url=f"sqlite:///{folder}/bench.sqlite3"))) as client,
    ):
        times = []
        for _ in range(20):
            start = time.perf_counter()
            response = client.post("/api/v1/evaluate", json=doc)
            times.append(time.perf_counter() - start)
            assert response.status_code == 200, response.text
    times.sort()
    return {"median_s": times[len(times) // 2], "best_s": times[0]}


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    gpu_doc = {"model": "llama2-7b", "system": "gpu_only", "accelerator": "a100-80gb", "memory": None}
    npu_doc = {"model": "gpt3-7b", "system": "neupims", "tensor_parallel": 4}
    figures = {
        "gpu_only_points_per_s": sweep_points_per_s("gpu_only", gpu_doc, None),
        "neupims_even_split_points_per_s": sweep_points_per_s("neupims", npu_doc, 0.5),
        "grid": f"{GRID_SIDE} batch sizes x {GRID_SIDE} prompt lengths, fixed lengths, one engine call",
        "single_evaluation_s": single_evaluation_s(),
        "single_evaluation_note": "in-process resolve + evaluate of the default example (metrics, tables, 3 figures)",
        "api_evaluation": api_evaluation_s(),
        "api_evaluation_note": "POST /api/v1/evaluate of the default example through the app (validation, CPU pool, "
        "JSON encoding), in-process ASGI client, 20 requests",
        "machine": f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, one core",
    }
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["inference"] = figures
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
