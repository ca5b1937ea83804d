"""The worst request each kind allows runs within the per-request memory budget (issue 17).

Each case runs in a fresh interpreter whose address space is capped (RLIMIT_AS) at what it holds
after the imports plus `Limits().max_request_bytes` (1 GiB) plus 512 MiB for the answer's Python
objects: a request that needed more would die with MemoryError, and the test would fail. The
worst allowed requests are:

- plan_search: the first example on the largest power-of-two cluster whose priced search is
  within `max_plans` (1e7 plans);
- inference: the PIM example (a request-length distribution, per-channel placement) swept over
  `memory.channels` up to the largest power of two the cell budget allows;
- every other kind: a sweep of its first example over the most points its cost allows
  (MAX_SWEEP_POINTS = 250,000 for the closed forms; fewer for pruning and temporal_batching).

Measured on the 2-core development machine (peak RSS growth over the imports): see the README's
"Bounded work" section; the test prints each figure (`-s`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dse.scenarios.registry import KINDS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SLACK_BYTES = 512 * 2**20

SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, time
    from dse.catalog import default_catalog
    from dse.scenarios.base import MAX_COUNT
    from dse.scenarios.documents import parse_document
    from dse.scenarios.registry import KINDS
    from dse.scenarios.sweep import MAX_SWEEP_POINTS, SweepAxis, _grid
    from dse.services import evaluation
    from dse.services.limits import check_work, get_limits

    kind_name, slack = sys.argv[1], int(sys.argv[2])
    kind, catalog, limits = KINDS[kind_name], default_catalog(), get_limits()

    def vm_bytes():
        for line in open("/proc/self/status"):
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024

    def fits(work):
        try:
            check_work(work)
            return True
        except Exception:
            return False

    example = kind.examples()[0]
    if kind_name == "inference":
        example = next(d for d in kind.examples() if d["inputs"].get("request_lengths"))
    document = parse_document(example)
    resolved = kind.resolve(document.inputs, catalog)
    if kind_name == "plan_search":
        nodes = 1
        while True:
            inputs = dict(example["inputs"], cluster=dict(example["inputs"].get("cluster", {}), nodes=nodes * 2))
            candidate = parse_document(dict(example, inputs=inputs))
            if nodes * 2 * 8 > 2**19 or not fits(kind.work(kind.resolve(candidate.inputs, catalog))):
                break
            nodes, document = nodes * 2, candidate
        request = ("evaluate", f"cluster.nodes = {nodes}")
    elif kind_name == "serving":
        # memory grows with the requests simulated (the rate search repeats runs, it does not hold them)
        from dse.scenarios.kinds.serving.inputs import MAX_REQUESTS
        inputs = dict(example["inputs"], num_requests=MAX_REQUESTS, rate_search_steps=2)
        document = parse_document(dict(example, inputs=inputs))
        request = ("evaluate", f"num_requests = {MAX_REQUESTS}")
    elif kind_name == "inference":
        channels = int(resolved.memory.channels)
        while channels * 2 < MAX_COUNT:
            axis = [SweepAxis(path="memory.channels", values=[float(resolved.memory.channels), float(channels * 2)])]
            if not fits(kind.work(_grid(resolved, axis, [a.values for a in axis]))):
                break
            channels *= 2
        axes = [SweepAxis(path="memory.channels", values=[float(resolved.memory.channels), float(channels)])]
        request = ("sweep", f"memory.channels up to {channels}")
    else:
        leaves = {k: v for k, v in __import__("dse.scenarios.sweep", fromlist=["x"]).sweepable_paths(resolved).items()}
        path = next(p for p in leaves if "." not in p and p in document.inputs.model_dump() and leaves[p] > 0)
        points = MAX_SWEEP_POINTS
        while True:  # the most points the cost model allows (MAX_SWEEP_POINTS for closed forms)
            axes = [SweepAxis(path=path, values=[float(leaves[path])] * points)]
            if fits(kind.work(_grid(resolved, axes, [a.values for a in axes]))):
                break
            points = int(points * 0.8)
        request = ("sweep", f"{path} over {points} points")

    baseline_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    ceiling = vm_bytes() + int(limits.max_request_bytes) + slack
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))
    started = time.perf_counter()
    if request[0] == "evaluate":
        evaluation.evaluate(document, catalog)
    else:
        evaluation.sweep(document, catalog, axes).model_dump_json()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({
        "kind": kind_name, "request": request[1], "seconds": round(time.perf_counter() - started, 2),
        "rss_before_mib": round(baseline_rss / 2**20, 1), "peak_rss_mib": round(peak / 2**20, 1),
        "peak_rss_growth_mib": round((peak - baseline_rss) / 2**20, 1),
        "budget_mib": round((limits.max_request_bytes + slack) / 2**20),
    }))
    """
)


@pytest.mark.parametrize("kind_name", sorted(KINDS))
def test_the_worst_allowed_request_runs_under_the_memory_ceiling(kind_name: str) -> None:
    env = {"PYTHONPATH": f"{ROOT / 'backend'}:{ROOT}", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", SCRIPT, kind_name, str(SLACK_BYTES)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    figure = json.loads(run.stdout.strip().splitlines()[-1])
    print(figure)
    assert figure["peak_rss_growth_mib"] < figure["budget_mib"]
