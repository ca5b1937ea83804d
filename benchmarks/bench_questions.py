"""Time of resolve + evaluate of each question-named example (the dashboard re-evaluates on every
input change, so each should stay around a second or less).

Run from the repository root:  PYTHONPATH=backend python -m benchmarks.bench_questions
Appends its figures to benchmarks/results.json under the key "questions" (other keys are kept).
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from dse.catalog import default_catalog
from dse.scenarios.registry import KINDS

RESULTS = Path(__file__).resolve().parent / "results.json"
REPEATS = 3


def question_examples() -> list[tuple[str, dict[str, Any]]]:
    """(kind, document) of every example whose name asks a question."""
    return [
        (name, doc)
        for name, kind in KINDS.items()
        for doc in kind.examples()
        if doc["name"].split("(")[0].rstrip().endswith("?")
    ]


def main() -> None:
    catalog = default_catalog()
    timings: dict[str, float] = {}
    for kind_name, doc in question_examples():
        kind = KINDS[kind_name]
        best = float("inf")
        for _ in range(REPEATS):
            start = time.perf_counter()
            kind.evaluate(kind.resolve(kind.inputs_model.model_validate(doc["inputs"]), catalog))
            best = min(best, time.perf_counter() - start)
        timings[f"{kind_name}: {doc['name']}"] = best
        print(f"{best:7.3f} s  {kind_name}: {doc['name']}")
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["questions"] = {
        "evaluate_s": timings,
        "note": f"in-process resolve + evaluate, best of {REPEATS}",
        "machine": f"{platform.machine()}, Python {platform.python_version()}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
