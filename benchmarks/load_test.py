"""Load test of the real server on loopback: 32 concurrent clients for 30 s, zero errors allowed.

    PYTHONPATH=backend python benchmarks/load_test.py            # the documented run (~45 s)
    PYTHONPATH=backend python benchmarks/load_test.py --duration 5 --no-save   # a quick look

Starts `python -m dse.cli serve` (one uvicorn process) on 127.0.0.1 with SQLite in a temporary
directory, then runs three phases:

1. load: `--clients` async httpx clients for `--duration` seconds, each looping over a seeded
   random mix of evaluations of every example document (GET /api/v1/examples: every kind),
   small sweeps (one axis, 32 points) and saves (new content each time, then read back by id),
   while one more client times GET /api/v1/health every 50 ms;
2. health during a large sweep: one 500 x 500 inference sweep (250,000 points, the most a request
   may ask for) on the otherwise idle server, GET /api/v1/health timed back to back meanwhile;
3. abuse (`--abuse-duration` s, 0 to skip): a few clients keep asking for cheap evaluations
   while abusers send oversized plan searches (refused by the cost model), full plan searches
   (the heavy pool), junk bodies (not JSON, wrong shapes, deep nesting) and abandoned requests
   (a plan search whose client hangs up after 50 ms); GET /api/v1/health is polled meanwhile.
   Reported: the cheap evaluations' p50/p99, what each abuse was answered with, and the health
   states seen. A 500 (or a transport error on a cheap request) is an error;
4. the server's log is checked for tracebacks.

Any non-2xx answer or transport error counts as an error; the run fails (exit 1) if there is one.
Prints requests/s and p50/p99 latency (overall and per operation) and writes them to
benchmarks/results.json under "load" (other keys kept). The clients share the server's machine
(2 cores here), so the figures are a floor for what the server alone would do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # tests.reliability.live_server: the same server harness as the tests

from tests.reliability.live_server import LiveServer, big_sweep_request, health_latency_during  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results.json"
SEED = 20261126
#: Share of each operation in the mix (evaluations dominate, as in the dashboard).
MIX = {"evaluate": 0.5, "sweep": 0.25, "save": 0.25}
SMALL_SWEEP_POINTS = 32
LARGE_SWEEP_SIDE = 500  # 500 x 500 = MAX_SWEEP_POINTS
HEALTH_INTERVAL_S = 0.05


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def summary(latencies: list[float], duration_s: float) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "requests_per_s": len(ordered) / duration_s,
        "p50_ms": 1000 * percentile(ordered, 50),
        "p99_ms": 1000 * percentile(ordered, 99),
        "max_ms": 1000 * (ordered[-1] if ordered else float("nan")),
    }


def small_sweep_candidates(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Sweeps of SMALL_SWEEP_POINTS over one input: the first whole-number input around its value,
    else (when the kind's rules refuse those, e.g. divisibility) the accelerator's memory efficiency."""
    candidates = []
    for key, value in document["inputs"].items():
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            values = [float(max(1, round(value * (0.5 + i / SMALL_SWEEP_POINTS)))) for i in range(SMALL_SWEEP_POINTS)]
            candidates.append({"document": document, "axes": [{"path": key, "values": values}]})
            break
    efficiencies = [0.5 + 0.45 * i / SMALL_SWEEP_POINTS for i in range(SMALL_SWEEP_POINTS)]
    for path in ("accelerator.memory_efficiency", "cluster.accelerator.memory_efficiency"):
        candidates.append({"document": document, "axes": [{"path": path, "values": efficiencies}]})
    return candidates


def valid_sweeps(base_url: str, examples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each example, the first candidate sweep the server accepts (checked once, before the load)."""
    sweeps = []
    with httpx.Client(base_url=base_url, timeout=60.0) as http:
        for example in examples:
            for candidate in small_sweep_candidates(example):
                if http.post("/api/v1/sweep", json=candidate).status_code == 200:
                    sweeps.append(candidate)
                    break
    return sweeps


async def run_load(
    base_url: str, examples: list[dict[str, Any]], sweeps: list[dict[str, Any]], clients: int, duration_s: float
) -> dict[str, Any]:
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    health: list[float] = []
    save_base = next(doc for doc in examples if doc["kind"] == "temporal_batching")
    counter = iter(range(10**9))
    deadline = time.perf_counter() + duration_s
    limits = httpx.Limits(max_connections=clients + 1, max_keepalive_connections=clients + 1)

    async with httpx.AsyncClient(base_url=base_url, timeout=60.0, limits=limits) as http:

        async def timed(operation: str, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
            started = time.perf_counter()
            try:
                response = await http.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                errors.append(f"{operation}: {type(exc).__name__}: {exc}")
                return None
            latencies[operation].append(time.perf_counter() - started)
            if not response.is_success:
                errors.append(f"{operation}: {response.status_code} {response.text[:200]}")
                return None
            return response

        async def client(index: int) -> None:
            rng = random.Random(SEED + index)
            while time.perf_counter() < deadline:
                operation = rng.choices(list(MIX), weights=list(MIX.values()))[0]
                if operation == "evaluate":
                    document = rng.choice(examples)
                    await timed(f"evaluate:{document['kind']}", "POST", "/api/v1/evaluate", json=document)
                elif operation == "sweep":
                    await timed("sweep", "POST", "/api/v1/sweep", json=rng.choice(sweeps))
                else:
                    n = next(counter)
                    inputs = {**save_base["inputs"], "temporal_batch_events": 10 + n}
                    document = {**save_base, "name": f"load test #{n}", "inputs": inputs}
                    saved = await timed("save", "POST", "/api/v1/scenarios", json=document)
                    if saved is not None:
                        await timed("read", "GET", f"/api/v1/scenarios/{saved.json()['id']}")

        async def health_probe() -> None:
            while time.perf_counter() < deadline:
                response = await timed("health", "GET", "/api/v1/health")
                if response is not None:
                    health.append(latencies["health"][-1])
                await asyncio.sleep(HEALTH_INTERVAL_S)

        started = time.perf_counter()
        await asyncio.gather(*(client(i) for i in range(clients)), health_probe())
        elapsed = time.perf_counter() - started

    work = [value for operation, values in latencies.items() if operation != "health" for value in values]
    return {
        "clients": clients,
        "duration_s": elapsed,
        "errors": len(errors),
        "first_errors": errors[:5],
        **summary(work, elapsed),
        "per_operation": {operation: summary(values, elapsed) for operation, values in sorted(latencies.items())},
    }


ABUSE_CHEAP_CLIENTS = 4
ABUSE_HANG_UP_S = 0.05
JUNK_BODIES: list[tuple[str, bytes]] = [
    ("not json", b"\x00\xff not json {"),
    ("wrong shape", b'{"kind": "inference", "inputs": [1, 2, 3]}'),
    ("deep nesting", b"[" * 5000 + b"]" * 5000),
    ("huge number", b'{"schema_version": 1, "kind": "training", "inputs": {"global_batch_size": 1e400}}'),
]


async def run_abuse(base_url: str, examples: list[dict[str, Any]], duration_s: float) -> dict[str, Any]:
    """Cheap evaluations' latency and health while abusers send oversized, junk and abandoned requests."""
    cheap_docs = [d for d in examples if d["kind"] != "plan_search"]
    search = next(d for d in examples if d["kind"] == "plan_search")
    oversized = {**search, "inputs": {**search["inputs"], "cluster": {"nodes": 8192, "gpus_per_node": 8}}}
    cheap: list[float] = []
    cheap_status: dict[int, int] = defaultdict(int)
    answers: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    health_states: dict[str, int] = defaultdict(int)
    health_latency: list[float] = []
    errors: list[str] = []
    deadline = time.perf_counter() + duration_s

    async with httpx.AsyncClient(base_url=base_url, timeout=60.0) as http:

        async def cheap_client(index: int) -> None:
            rng = random.Random(SEED + 1000 + index)
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    response = await http.post("/api/v1/evaluate", json=rng.choice(cheap_docs))
                except httpx.HTTPError as exc:
                    errors.append(f"cheap: {type(exc).__name__}")
                    continue
                cheap.append(time.perf_counter() - started)
                cheap_status[response.status_code] += 1
                if response.status_code >= 500:
                    errors.append(f"cheap: {response.status_code} {response.text[:200]}")

        async def send(label: str, **kwargs: Any) -> None:
            try:
                response = await http.post("/api/v1/evaluate", **kwargs)
            except httpx.HTTPError as exc:
                answers[label][type(exc).__name__] += 1
                return
            answers[label][str(response.status_code)] += 1
            if response.status_code == 500:
                errors.append(f"{label}: 500 {response.text[:200]}")

        async def abuser(index: int) -> None:
            rng = random.Random(SEED + 2000 + index)
            while time.perf_counter() < deadline:
                what = rng.choice(["oversized", "search", "junk", "abandoned"])
                if what == "oversized":
                    await send("oversized search", json=oversized)
                elif what == "search":
                    await send("full plan search", json=search)
                elif what == "junk":
                    name, body = rng.choice(JUNK_BODIES)
                    await send(f"junk: {name}", content=body, headers={"content-type": "application/json"})
                else:
                    async with MoveOn(ABUSE_HANG_UP_S):
                        await http.post("/api/v1/evaluate", json=search)
                    answers["abandoned search"]["hung up"] += 1

        async def health_probe() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    response = await http.get("/api/v1/health")
                    health_latency.append(time.perf_counter() - started)
                    health_states[str(response.json().get("status"))] += 1
                except (httpx.HTTPError, ValueError) as exc:
                    health_states[type(exc).__name__] += 1
                await asyncio.sleep(HEALTH_INTERVAL_S)

        started = time.perf_counter()
        await asyncio.gather(
            *(cheap_client(i) for i in range(ABUSE_CHEAP_CLIENTS)), *(abuser(i) for i in range(4)), health_probe()
        )
        elapsed = time.perf_counter() - started
    ordered = sorted(cheap)
    return {
        "duration_s": elapsed,
        "cheap_clients": ABUSE_CHEAP_CLIENTS,
        "cheap_evaluations": len(ordered),
        "cheap_status": dict(cheap_status),
        "cheap_p50_ms": 1000 * percentile(ordered, 50),
        "cheap_p99_ms": 1000 * percentile(ordered, 99),
        "abuse_answers": {k: dict(v) for k, v in sorted(answers.items())},
        "health_states": dict(health_states),
        "health_p99_ms": 1000 * percentile(sorted(health_latency), 99),
        "errors": len(errors),
        "first_errors": errors[:5],
    }


class MoveOn:
    """`asyncio.timeout` that swallows the timeout: the client hangs up and moves on."""

    def __init__(self, seconds: float) -> None:
        self.timeout = asyncio.timeout(seconds)

    async def __aenter__(self) -> None:
        await self.timeout.__aenter__()

    async def __aexit__(self, *exc: Any) -> bool:
        try:
            await self.timeout.__aexit__(*exc)
        except TimeoutError:
            return True
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--abuse-duration", type=float, default=20.0, help="seconds of the abusive mix (0: skip)")
    parser.add_argument("--skip-load", action="store_true", help="only the abusive mix (phases 1 and 2 skipped)")
    parser.add_argument("--no-save", action="store_true", help="print only; leave benchmarks/results.json alone")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dse-load-") as scratch:
        database = Path(scratch) / "store.sqlite3"
        server = LiveServer(f"sqlite:///{database}", Path(scratch) / "server.log")
        with server:
            examples = httpx.get(f"{server.base_url}/api/v1/examples").json()
            load: dict[str, Any] = {"errors": 0, "first_errors": []}
            large: dict[str, Any] = {"sweep_status": 200}
            sweeps: list[dict[str, Any]] = []
            if not args.skip_load:
                sweeps = valid_sweeps(server.base_url, examples)
                load = asyncio.run(run_load(server.base_url, examples, sweeps, args.clients, args.duration))
                large = health_latency_during(server.base_url, big_sweep_request(examples, LARGE_SWEEP_SIDE))
            abuse = (
                asyncio.run(run_abuse(server.base_url, examples, args.abuse_duration))
                if args.abuse_duration > 0
                else {"errors": 0, "first_errors": []}
            )
        log = server.log()
    tracebacks = log.count("Traceback")

    figures = {
        "command": "PYTHONPATH=backend python benchmarks/load_test.py",
        "server": "python -m dse.cli serve on 127.0.0.1 (one uvicorn process), SQLite (WAL) in a temp dir",
        "mix": f"{MIX} over {len(examples)} example documents (every kind); {len(sweeps)} sweeps of "
        f"{SMALL_SWEEP_POINTS} points; "
        "each save is new content, read back by id",
        **{k: v for k, v in load.items() if k != "first_errors"},
        "health_during_large_sweep": {
            "sweep_points": LARGE_SWEEP_SIDE**2,
            "sweep_s": large["sweep_s"],
            "sweep_mb": large["sweep_bytes"] / 1e6,
            "health_samples": int(large["health_samples"]),
            "health_p50_ms": 1000 * large["health_p50_s"],
            "health_max_ms": 1000 * large["health_max_s"],
        }
        if "sweep_s" in large
        else "skipped",
        "abuse": {k: v for k, v in abuse.items() if k != "first_errors"},
        "server_tracebacks": tracebacks,
        "machine": f"{platform.machine()}, Python {platform.python_version()}, {os.cpu_count()} cores shared by "
        "server and clients",
    }
    print(json.dumps(figures, indent=2))
    failed = load["errors"] > 0 or abuse["errors"] > 0 or tracebacks > 0 or large["sweep_status"] != 200
    if failed:
        print(
            "FAILED:",
            load["first_errors"],
            abuse["first_errors"],
            f"{tracebacks} tracebacks in the server log",
            file=sys.stderr,
        )
    if not args.no_save:
        results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        results["load"] = figures
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
