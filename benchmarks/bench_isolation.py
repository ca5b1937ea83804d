"""What keeps cheap evaluations quick beside a plan search: the search in a worker process vs in a thread.

    PYTHONPATH=backend python -m benchmarks.bench_isolation

Starts the real server (`python -m dse.cli serve`, one process) twice on loopback: with heavy work in
a worker process (the default, DSE_HEAVY_PROCESSES=1 here) and in a thread of the server
(DSE_HEAVY_PROCESSES=0, as before). In each, one client sends cheap evaluations (the rl_scaling
examples, ~2 ms of CPU each) one after another with 50 ms between them, for `SECONDS` s, first
alone, then while another client runs the first plan search example back to back. A search in a
thread holds the server's GIL between numpy calls, so every cheap request waits for it; in a worker
process it holds only its own. Writes benchmarks/results.json "isolation" (other keys kept).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.reliability.live_server import LiveServer  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results.json"
SECONDS = 8.0
PAUSE_S = 0.05


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else float("nan")


async def cheap_latencies(base_url: str, cheap: list[dict[str, Any]], search: dict[str, Any] | None) -> list[float]:
    latencies: list[float] = []
    stop = time.perf_counter() + SECONDS
    async with httpx.AsyncClient(base_url=base_url, timeout=120.0) as http:

        async def searcher() -> None:
            while time.perf_counter() < stop:
                await http.post("/api/v1/evaluate", json=search)

        async def client() -> None:
            index = 0
            while time.perf_counter() < stop:
                started = time.perf_counter()
                response = await http.post("/api/v1/evaluate", json=cheap[index % len(cheap)])
                latencies.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text[:200]
                index += 1
                await asyncio.sleep(PAUSE_S)

        await asyncio.gather(client(), *([searcher()] if search is not None else []))
    return sorted(latencies)


def main() -> None:
    figures: dict[str, Any] = {}
    for processes, label in (("1", "search in a worker process"), ("0", "search in a server thread")):
        with tempfile.TemporaryDirectory(prefix="dse-isolation-") as scratch:
            env = {"DSE_HEAVY_PROCESSES": processes}
            with LiveServer(f"sqlite:///{scratch}/store.sqlite3", Path(scratch) / "server.log", env=env) as server:
                examples = httpx.get(f"{server.base_url}/api/v1/examples").json()
                cheap = [doc for doc in examples if doc["kind"] == "rl_scaling"]
                search = next(doc for doc in examples if doc["kind"] == "plan_search")
                row = {}
                for phase, running in (("alone", None), ("beside a plan search", search)):
                    ordered = asyncio.run(cheap_latencies(server.base_url, cheap, running))
                    row[phase] = {
                        "requests": len(ordered),
                        "p50_ms": round(1000 * percentile(ordered, 50), 1),
                        "p95_ms": round(1000 * percentile(ordered, 95), 1),
                        "p99_ms": round(1000 * percentile(ordered, 99), 1),
                    }
                figures[label] = row
                print(label, json.dumps(row), flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    figures["machine"] = (
        f"{platform.machine()}, {os.cpu_count()} cores shared with other work (1-minute load average at the end "
        f"{load:.1f}), Python {platform.python_version()}"
    )
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["isolation"] = figures
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
