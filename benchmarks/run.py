"""Runs every benchmark (benchmarks/bench_*.py, then the load test) one after another.

    .venv/bin/python -m benchmarks.run            # all
    .venv/bin/python -m benchmarks.run inference  # those whose name contains 'inference'

Each writes its figures into benchmarks/results.json under its own key; the README quotes them.
Single-threaded BLAS so that "per core" figures mean one core.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if (HERE / "load_test.py").exists():
        names.append("load_test")
    wanted = [n for n in names if not argv or any(a in n for a in argv)]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(HERE.parent / "backend"), str(HERE.parent)]),
    }
    failures = 0
    for name in wanted:
        print(f"== {name}", flush=True)
        failures += subprocess.call([sys.executable, "-m", f"benchmarks.{name}"], cwd=HERE.parent, env=env) != 0
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
