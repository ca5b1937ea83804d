"""Load test of the real server on loopback: 32 clients, 1 and N server processes, zero errors allowed.

    PYTHONPATH=backend python benchmarks/load_test.py                       # the documented run (~2 min)
    PYTHONPATH=backend python benchmarks/load_test.py --duration 10 --abuse-duration 8 --no-save   # a quick look

Starts `python -m dse.cli serve [--workers N]` on 127.0.0.1 with SQLite (WAL) in a temporary
directory, once with 1 server process and once with `--workers` (default 2), and in each runs:

1. load: `--clients` async httpx clients for `--duration` seconds. One of them runs a plan search
   (the GPT-3 175B example, ~1.4 s of CPU) back to back the whole time: the heavy work. The others
   behave like dashboard users: each waits a think time (exponential, mean `--think` s) and then
   sends a cheap evaluation (every example of a closed-form kind whose quick answer is within
   ~40 ms: GPU-only inference, training, rl_scaling, temporal_batching), a medium one (the PIM
   inference and pruning examples: ~60-100 ms of engine time each, issue 16.6), or a save (new
   content each time) read back by id; GET /api/v1/health is timed every 50 ms meanwhile.
   Reported: throughput and p50/p99 per request type; the target is a cheap p99 under 100 ms
   while the search runs (heavy work runs in worker processes, never the server's GIL).
2. (1 process only) health during a large sweep: one 500 x 500 inference sweep (250,000 points,
   the most a request may ask for), GET /api/v1/health timed back to back meanwhile;
3. (1 process only) abuse (`--abuse-duration` s, 0 to skip): a few clients keep asking for cheap
   evaluations while abusers send oversized plan searches (refused by the cost model, 422), full
   plan searches (the heavy pool), junk bodies (not JSON, wrong shapes, deep nesting) and abandoned
   requests (a plan search whose client hangs up after 50 ms); GET /api/v1/health is polled.
   Reported: the cheap evaluations' p50/p99, what each abuse was answered with, health's p99 and
   states. A 500 (or a transport error on a cheap request) is an error, and so is a cheap p99 or a
   health p99 above its bound (ABUSE_CHEAP_P99_BOUND_MS, ABUSE_HEALTH_P99_BOUND_MS: 1 s each);
4. the server's log is checked for tracebacks.

Any non-2xx answer or transport error in the load phase counts as an error; the run fails (exit 1)
if there is one. Writes the figures to benchmarks/results.json under "load" (other keys kept).
The clients share the server's machine (and, on the development machine, other people's work),
so the figures are a floor for what the server alone would do.
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
#: Share of each operation of a dashboard user's request (the plan search client is apart).
MIX = {"cheap": 0.6, "medium": 0.15, "save": 0.25}
THINK_S = 1.0
SMALL_SWEEP_POINTS = 32
LARGE_SWEEP_SIDE = 500  # 500 x 500 = MAX_SWEEP_POINTS
HEALTH_INTERVAL_S = 0.05
CHEAP_P99_TARGET_MS = 100.0
KEEPALIVE_S = 2.0


def is_medium(document: dict[str, Any]) -> bool:
    """Examples whose own engine time is ~60-100 ms (benchmarks/bench_examples.py): PIM inference, pruning."""
    return document["kind"] == "pruning" or (
        document["kind"] == "inference" and document["inputs"].get("system") != "gpu_only"
    )


def request_classes(examples: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The examples by class: heavy (plan searches, serving), medium, cheap (the rest)."""
    heavy_kinds = {"plan_search", "serving"}
    return {
        "heavy": [d for d in examples if d["kind"] in heavy_kinds],
        "medium": [d for d in examples if d["kind"] not in heavy_kinds and is_medium(d)],
        "cheap": [d for d in examples if d["kind"] not in heavy_kinds and not is_medium(d)],
    }


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


async def run_load(
    base_url: str, examples: list[dict[str, Any]], clients: int, duration_s: float, think_s: float
) -> dict[str, Any]:
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    classes = request_classes(examples)
    search = next(doc for doc in examples if doc["kind"] == "plan_search")
    save_base = next(doc for doc in examples if doc["kind"] == "temporal_batching")
    counter = iter(range(10**9))
    deadline = time.perf_counter() + duration_s
    # Idle connections are dropped by the client before the server's 5 s keep-alive could close one under it.
    limits = httpx.Limits(
        max_connections=clients + 1, max_keepalive_connections=clients + 1, keepalive_expiry=KEEPALIVE_S
    )

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

        async def user(index: int) -> None:
            rng = random.Random(SEED + index)
            while time.perf_counter() < deadline:
                await asyncio.sleep(rng.expovariate(1 / think_s))
                operation = rng.choices(list(MIX), weights=list(MIX.values()))[0]
                if operation in ("cheap", "medium"):
                    document = rng.choice(classes[operation])
                    await timed(f"evaluate:{operation}", "POST", "/api/v1/evaluate", json=document)
                else:
                    n = next(counter)
                    inputs = {**save_base["inputs"], "temporal_batch_events": 10 + n}
                    document = {**save_base, "name": f"load test #{n}", "inputs": inputs}
                    saved = await timed("save", "POST", "/api/v1/scenarios", json=document)
                    if saved is not None:
                        await timed("read", "GET", f"/api/v1/scenarios/{saved.json()['id']}")

        async def searcher() -> None:
            while time.perf_counter() < deadline:
                await timed("evaluate:plan_search", "POST", "/api/v1/evaluate", json=search)

        async def health_probe() -> None:
            while time.perf_counter() < deadline:
                await timed("health", "GET", "/api/v1/health")
                await asyncio.sleep(HEALTH_INTERVAL_S)

        started = time.perf_counter()
        await asyncio.gather(*(user(i) for i in range(clients - 1)), searcher(), health_probe())
        elapsed = time.perf_counter() - started

    work = [value for operation, values in latencies.items() if operation != "health" for value in values]
    per_operation = {operation: summary(values, elapsed) for operation, values in sorted(latencies.items())}
    cheap_p99 = per_operation.get("evaluate:cheap", {}).get("p99_ms", float("nan"))
    return {
        "clients": clients,
        "think_s": think_s,
        "duration_s": elapsed,
        "errors": len(errors),
        "first_errors": errors[:5],
        **summary(work, elapsed),
        "cheap_p99_ms": cheap_p99,
        "cheap_p99_within_target": cheap_p99 < CHEAP_P99_TARGET_MS,
        "per_operation": per_operation,
    }


ABUSE_CHEAP_CLIENTS = 4
#: Bounds the abusive mix is held to (the run fails above them). Cheap evaluations: 1 s, the limit for a user's
#: flow of thought (Nielsen, "Usability Engineering", 1993, Section 5.5 "Response times"). Health: 1 s, the
#: default `timeoutSeconds` of a Kubernetes liveness/readiness probe (kubernetes.io, "Configure Liveness,
#: Readiness and Startup Probes"), so an orchestrator never restarts a server that is only busy.
ABUSE_CHEAP_P99_BOUND_MS = 1000.0
ABUSE_HEALTH_P99_BOUND_MS = 1000.0
ABUSE_HANG_UP_S = 0.05
JUNK_BODIES: list[tuple[str, bytes]] = [
    ("not json", b"\x00\xff not json {"),
    ("wrong shape", b'{"kind": "inference", "inputs": [1, 2, 3]}'),
    ("deep nesting", b"[" * 5000 + b"]" * 5000),
    ("huge number", b'{"schema_version": 1, "kind": "training", "inputs": {"global_batch_size": 1e400}}'),
]


async def run_abuse(base_url: str, examples: list[dict[str, Any]], duration_s: float) -> dict[str, Any]:
    """Cheap evaluations' latency and health while abusers send oversized, junk and abandoned requests."""
    cheap_docs = request_classes(examples)["cheap"]
    search = next(d for d in examples if d["kind"] == "plan_search")
    oversized = {**search, "inputs": {**search["inputs"], "cluster": {"nodes": 8192, "gpus_per_node": 8}}}
    cheap: list[float] = []
    cheap_status: dict[int, int] = defaultdict(int)
    answers: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    health_states: dict[str, int] = defaultdict(int)
    health_latency: list[float] = []
    errors: list[str] = []
    deadline = time.perf_counter() + duration_s

    # The measuring clients have a connection pool of their own: the abusers' hang-ups never touch it.
    limits = httpx.Limits(keepalive_expiry=KEEPALIVE_S)
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=60.0, limits=limits) as measure,
        httpx.AsyncClient(base_url=base_url, timeout=60.0, limits=limits) as http,
    ):

        async def cheap_client(index: int) -> None:
            rng = random.Random(SEED + 1000 + index)
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    response = await measure.post("/api/v1/evaluate", json=rng.choice(cheap_docs))
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
                    response = await measure.get("/api/v1/health")
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
        "health_p50_ms": 1000 * percentile(sorted(health_latency), 50),
        "health_p99_ms": 1000 * percentile(sorted(health_latency), 99),
        "cheap_p99_bound_ms": ABUSE_CHEAP_P99_BOUND_MS,
        "health_p99_bound_ms": ABUSE_HEALTH_P99_BOUND_MS,
        "within_bounds": 1000 * percentile(ordered, 99) <= ABUSE_CHEAP_P99_BOUND_MS
        and 1000 * percentile(sorted(health_latency), 99) <= ABUSE_HEALTH_P99_BOUND_MS,
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
    parser.add_argument("--workers", type=int, default=2, help="server processes of the second run (the first has 1)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load per run")
    parser.add_argument("--think", type=float, default=THINK_S, help="mean think time of a user between requests, s")
    parser.add_argument("--abuse-duration", type=float, default=20.0, help="seconds of the abusive mix (0: skip)")
    parser.add_argument("--skip-load", action="store_true", help="only the abusive mix (phases 1 and 2 skipped)")
    parser.add_argument("--no-save", action="store_true", help="print only; leave benchmarks/results.json alone")
    args = parser.parse_args()

    runs: dict[str, Any] = {}
    large: dict[str, Any] = {"sweep_status": 200}
    abuse: dict[str, Any] = {"errors": 0, "first_errors": []}
    tracebacks = 0
    examples: list[dict[str, Any]] = []
    for workers in sorted({1, args.workers}):
        with tempfile.TemporaryDirectory(prefix="dse-load-") as scratch:
            database = Path(scratch) / "store.sqlite3"
            server = LiveServer(f"sqlite:///{database}", Path(scratch) / "server.log", workers=workers)
            with server:
                examples = httpx.get(f"{server.base_url}/api/v1/examples").json()
                if not args.skip_load:
                    runs[str(workers)] = asyncio.run(
                        run_load(server.base_url, examples, args.clients, args.duration, args.think)
                    )
                if workers == 1:
                    if not args.skip_load:
                        large = health_latency_during(server.base_url, big_sweep_request(examples, LARGE_SWEEP_SIDE))
                    if args.abuse_duration > 0:
                        abuse = asyncio.run(run_abuse(server.base_url, examples, args.abuse_duration))
            tracebacks += server.log().count("Traceback")

    classes = request_classes(examples)
    figures = {
        "command": "PYTHONPATH=backend python benchmarks/load_test.py "
        f"--clients {args.clients} --workers {args.workers} --duration {args.duration:g} --think {args.think:g} "
        f"--abuse-duration {args.abuse_duration:g}",
        "server": "python -m dse.cli serve [--workers N] on 127.0.0.1, SQLite (WAL) in a temp dir; heavy work in "
        "worker processes (DSE_HEAVY_PROCESSES, default cores / 2 per server process)",
        "mix": f"1 client runs the first plan search example back to back; {args.clients - 1} users, think time "
        f"exponential with mean {args.think:g} s, then {MIX}: cheap = {len(classes['cheap'])} examples, "
        f"medium = {len(classes['medium'])} (PIM inference, pruning); a save is new content, read back by id",
        "cheap_p99_target_ms": CHEAP_P99_TARGET_MS,
        "by_server_processes": {n: {k: v for k, v in run.items() if k != "first_errors"} for n, run in runs.items()},
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
        "server, clients and other people's work (the development machine is shared)",
    }
    print(json.dumps(figures, indent=2))
    load_errors = [error for run in runs.values() for error in run["first_errors"]]
    failed = (
        any(run["errors"] > 0 for run in runs.values())
        or abuse["errors"] > 0
        or not abuse.get("within_bounds", True)
        or tracebacks > 0
        or large["sweep_status"] != 200
    )
    if failed:
        print(
            "FAILED:", load_errors, abuse["first_errors"], f"{tracebacks} tracebacks in the server log", file=sys.stderr
        )
    if not args.no_save:
        results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        results["load"] = figures
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
