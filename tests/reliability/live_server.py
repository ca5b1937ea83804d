"""The real server as a child process (`python -m dse.cli serve`), on a loopback port.

Used by the crash test and by benchmarks/load_test.py: the same command a user runs, one
uvicorn process, the store given by DSE_DATABASE_URL. Every client of such a test is this machine
(one address), so the per-client rate limits and save quota are off unless `env` sets them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"  # loopback only: nothing outside this machine can reach the server
#: A server answers once its heavy workers have built the error-band tables (~3 s of CPU each, more on a
#: loaded machine: two server processes took over 60 s there), dse.api.cpu.warm_bands.
START_TIMEOUT_S = 120.0
#: The settings a harness driving load from one address needs (see the module docstring).
NO_CLIENT_LIMITS = {
    "DSE_WRITE_RATE_PER_MINUTE": "0",
    "DSE_EVALUATION_RATE_PER_MINUTE": "0",
    "DSE_SAVE_QUOTA_PER_DAY": "0",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    """`python -m dse.cli serve --host 127.0.0.1 --port P [--workers N]`, its output in `log_path`; `env`
    adds DSE_* settings."""

    def __init__(
        self,
        database_url: str,
        log_path: Path,
        port: int | None = None,
        env: dict[str, str] | None = None,
        workers: int = 1,
    ) -> None:
        self.database_url, self.log_path, self.workers = database_url, log_path, workers
        self.env = {**NO_CLIENT_LIMITS, **(env or {})}
        self.port = port or free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> LiveServer:
        """Start the process and (unless `wait` is false) wait until /health answers 200."""
        env = {
            **os.environ,
            **self.env,
            "DSE_DATABASE_URL": self.database_url,
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT / "backend"), os.environ.get("PYTHONPATH")) if p),
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dse.cli", "serve", "--host", HOST, "--port", str(self.port)]
                + (["--workers", str(self.workers)] if self.workers > 1 else []),
                env=env,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if not wait:
            return self
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}/api/v1/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not answer within {START_TIMEOUT_S} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown handler, no flush, no goodbye."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


#: Per kind, two inputs to sweep: a whole-number one (start, step) and an efficiency in [0.3, 0.9].
SWEEPS = {
    "inference": ("batch_size", "accelerator.memory_efficiency"),
    "temporal_batching": ("temporal_batch_events", "accelerator.memory_efficiency"),
}


def big_sweep_request(examples: list[dict[str, object]], side: int, kind: str = "inference") -> dict[str, object]:
    """A side x side sweep of a kind's first closed-form example (inference: the first GPU-only one, whose
    cost per point is flat; a PIM system prices every request on every channel): a whole-number input x a
    memory efficiency."""
    document = next(
        doc
        for doc in examples
        if doc["kind"] == kind and (kind != "inference" or doc["inputs"].get("system") == "gpu_only")  # type: ignore[attr-defined]
    )
    count_path, efficiency_path = SWEEPS[kind]
    return {
        "document": document,
        "axes": [
            {"path": count_path, "values": [float(1 + i) for i in range(side)]},
            {"path": efficiency_path, "values": [0.3 + 0.6 * i / side for i in range(side)]},
        ],
    }


def health_latency_during(base_url: str, request: dict[str, object], poll_interval_s: float = 0.02) -> dict[str, float]:
    """Run one (large) sweep and, while it runs, time GET /api/v1/health back to back.

    The sweep's answer is read and thrown away as it streams, so this client does little work
    of its own. Returns the sweep's wall time and status, and the health latencies (s).
    """
    import threading

    outcome: dict[str, float] = {}

    def sweep() -> None:
        started = time.perf_counter()
        with (
            httpx.Client(base_url=base_url, timeout=300.0) as client,
            client.stream("POST", "/api/v1/sweep", json=request) as response,
        ):
            outcome["sweep_bytes"] = float(sum(len(chunk) for chunk in response.iter_raw()))
            outcome["sweep_status"] = float(response.status_code)
        outcome["sweep_s"] = time.perf_counter() - started

    latencies: list[float] = []
    worker = threading.Thread(target=sweep)
    with httpx.Client(base_url=base_url, timeout=60.0) as client:
        client.get("/api/v1/health")  # connection open before the sweep starts
        worker.start()
        while worker.is_alive():
            started = time.perf_counter()
            assert client.get("/api/v1/health").status_code == 200
            latencies.append(time.perf_counter() - started)
            time.sleep(poll_interval_s)
    worker.join()
    latencies.sort()
    outcome.update(
        health_samples=float(len(latencies)),
        health_p50_s=latencies[len(latencies) // 2] if latencies else float("nan"),
        health_max_s=latencies[-1] if latencies else float("nan"),
    )
    return outcome
