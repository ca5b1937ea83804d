"""Server CPU of one evaluation of each home-page example (GET /api/v1/examples), as /evaluate does it.

Run from the repository root:  PYTHONPATH=backend python -m benchmarks.bench_examples
Appends its figures to benchmarks/results.json under the key "examples_cpu" (other keys are kept).

For each example: the CPU time of this thread (`time.thread_time`, so other work on a shared
machine does not count) of resolve + evaluate + JSON encoding, median of `REPEATS`, and the size of
the answer. Two answers: "quick" is what `POST /api/v1/evaluate` gives (deferred studies left out,
`ScenarioKind.deferred_studies`), "whole" what a saved result, a report or `?include=all` gives.
The target (issue 16.6): a quick answer's median at most 10 ms for every example except plan
searches and serving simulations (heavy kinds); a plan search's quick pass (the dashboard's first,
coarser answer: the input marked "x-quick-first") below 100 ms.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from dse.catalog import default_catalog
from dse.scenarios.documents import parse_document
from dse.scenarios.registry import KINDS
from dse.services.evaluation import evaluate

RESULTS = Path(__file__).resolve().parent / "results.json"
REPEATS = 15
TARGET_MS = 10.0


def cpu_ms(document: Any, catalog: Any, include: list[str] | None, repeats: int) -> tuple[float, int]:
    """Median thread CPU (ms) of evaluate + encode, and the answer's size in bytes."""
    times, size = [], 0
    for _ in range(repeats):
        start = time.thread_time()
        body = evaluate(document, catalog, include=include).model_dump_json()
        times.append(1000 * (time.thread_time() - start))
        size = len(body)
    return statistics.median(times), size


def main() -> None:
    load_before = os.getloadavg()[0]  # thread CPU still grows on a loaded machine (shared caches, SMT)
    catalog = default_catalog()
    for kind in KINDS.values():  # the tables a server builds before it answers (one evaluation per kind)
        evaluate(parse_document(kind.examples()[0]), catalog, include=[])
    # As the server does after start (dse.api.app): the long-lived heap out of the collector's reach.
    gc.collect()
    gc.freeze()
    rows: dict[str, dict[str, Any]] = {}
    for kind in KINDS.values():
        for raw in kind.examples():
            document = parse_document(raw)
            repeats = 3 if kind.heavy else REPEATS
            quick_ms, quick_bytes = cpu_ms(document, catalog, [], repeats)
            whole_ms, whole_bytes = cpu_ms(document, catalog, None, repeats)
            quick_pass: dict[str, Any] = {}
            for key, field in kind.inputs_model.model_fields.items():  # the dashboard's first, coarser answer
                first = (
                    (field.json_schema_extra or {}).get("x-quick-first")
                    if isinstance(field.json_schema_extra, dict)
                    else None
                )
                if first is not None:
                    coarse = parse_document({**raw, "inputs": {**raw["inputs"], key: first}})
                    quick_pass["quick_pass_ms"] = round(cpu_ms(coarse, catalog, [], repeats)[0], 1)
            rows[f"{kind.kind}: {raw['name']}"] = {
                **quick_pass,
                "quick_ms": round(quick_ms, 1),
                "quick_kb": round(quick_bytes / 1e3, 1),
                "whole_ms": round(whole_ms, 1),
                "whole_kb": round(whole_bytes / 1e3, 1),
                "heavy": kind.heavy,
                "over_target": (not kind.heavy) and quick_ms > TARGET_MS,
            }
            print(
                f"{quick_ms:7.1f} ms {quick_bytes / 1e3:7.1f} kB | whole {whole_ms:7.1f} ms "
                f"{whole_bytes / 1e3:7.1f} kB  {kind.kind}: {raw['name'][:60]}"
            )
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["examples_cpu"] = {
        "examples": rows,
        "over_target": [name for name, row in rows.items() if row["over_target"]],
        "note": f"thread CPU of resolve + evaluate + JSON encoding, median of {REPEATS} (heavy kinds 3); "
        f"target {TARGET_MS:g} ms for the quick answer of every non-heavy example",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared), Python {platform.python_version()}",
        "load_average": f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end (1-minute)",
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
