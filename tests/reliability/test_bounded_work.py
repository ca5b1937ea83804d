"""Bounded work in the service and kind layers (issue 17): schema bounds, the cost model checked
before work starts, deadlines and cancellation, separate pools for heavy and cheap work, and the
save-time check. Limits are dse.services.limits.Limits' defaults unless a test sets its own.
"""

from __future__ import annotations

import copy
import dataclasses
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from dse.catalog import default_catalog
from dse.engines.plan_search import SearchStopped, search_plans
from dse.engines.training import ClusterArrays, ModelArrays
from dse.scenarios.base import InputError
from dse.scenarios.documents import parse_document
from dse.scenarios.registry import KINDS
from dse.services import evaluation, limits
from dse.services.limits import Deadline, DeadlinePassed, Limits
from dse.services.pools import pool_status
from dse.settings import Settings

FIRST: dict[str, dict[str, Any]] = {name: kind.examples()[0] for name, kind in KINDS.items()}
#: An inference example with a request-length distribution on a PIM system (per-channel placement).
PIM_EXAMPLE = next(
    d
    for d in KINDS["inference"].examples()
    if d["inputs"].get("request_lengths") and d["inputs"]["system"] == "neupims"
)


@pytest.fixture(scope="module")
def api() -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from dse.api.app import create_app

    url = f"sqlite:///{tempfile.mkdtemp(prefix='bounded-work-')}/store.sqlite3"
    with TestClient(create_app(Settings(database_url=url)), raise_server_exceptions=False) as client:
        yield client


def with_inputs(kind: str, **changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(FIRST[kind])
    document["inputs"].update(changes)
    return document


def assert_problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    if field is not None:
        assert field in [e["field"] for e in body.get("errors", [])], body
    return body


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Limits from the environment (DSE_*), as a deployment sets them; the cache is cleared around."""
    limits.get_limits.cache_clear()
    yield
    monkeypatch.undo()
    limits.get_limits.cache_clear()


# -- the six cases of the issue: each a clear 4xx, never a 500 -------------------------------------


def test_inference_link_bandwidth_of_the_smallest_double_is_refused(api: Any) -> None:
    response = api.post("/api/v1/evaluate", json=with_inputs("inference", link_bandwidth_gb_per_s=5e-324))
    assert_problem(response, 422, "inputs.link_bandwidth_gb_per_s")


@pytest.mark.parametrize("field", ["link_bandwidth_gb_per_s", "host_link_bandwidth_gb_per_s"])
def test_rl_scaling_link_bandwidths_of_the_smallest_double_are_refused(api: Any, field: str) -> None:
    response = api.post("/api/v1/evaluate", json=with_inputs("rl_scaling", **{field: 5e-324}))
    assert_problem(response, 422, f"inputs.{field}")


def test_training_sequence_length_beyond_2_to_the_53_is_refused(api: Any) -> None:
    response = api.post("/api/v1/evaluate", json=with_inputs("training", sequence_length_tokens=9007199254740993))
    assert_problem(response, 422, "inputs.sequence_length_tokens")


def test_an_inline_rl_scaling_workload_evaluates_and_its_extremes_are_refused(api: Any) -> None:
    workload = dataclasses.asdict(default_catalog().get("rl_workloads", FIRST["rl_scaling"]["inputs"]["workload"]))
    workload["policy_layers"] = [dict(layer) for layer in workload["policy_layers"]]
    assert api.post("/api/v1/evaluate", json=with_inputs("rl_scaling", workload=workload)).status_code == 200
    for field, value in [("num_gpus", 2**40), ("env_step_time_s", 5e-324), ("observation_bytes_per_sample", 1e300)]:
        extreme = {**workload, field: value}
        response = api.post("/api/v1/evaluate", json=with_inputs("rl_scaling", workload=extreme))
        assert_problem(response, 422, f"workload.{field}")


def test_an_inference_sweep_over_memory_channels_up_to_1e18_is_refused(api: Any) -> None:
    body = {"document": PIM_EXAMPLE, "axes": [{"path": "memory.channels", "values": [1, 1e6, 1e12, 1e18]}]}
    assert_problem(api.post("/api/v1/sweep", json=body), 422, "axes[0].values")


def test_a_static_path_with_a_nul_byte_is_not_found(api: Any) -> None:
    response = api.get("/static/css/app.css%00.js")
    assert response.status_code == 404, response.text[:300]


# -- schema bounds and sweeps -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "changes", "field"),
    [
        ("training", {"cluster": {"nodes": 200_000}}, "inputs.cluster.nodes"),
        ("training", {"cluster": {"gpus_per_node": 1024}}, "inputs.cluster.gpus_per_node"),
        ("training", {"global_batch_size": 2**25}, "inputs.global_batch_size"),
        ("plan_search", {"sequence_length_tokens": 2**22}, "inputs.sequence_length_tokens"),
        ("plan_search", {"space": {"node_counts": [2**40]}}, "inputs.space.node_counts.0"),
        ("pruning", {"image_size_px": 10**9}, "inputs.image_size_px"),
        ("temporal_batching", {"resident_threads": 2**53}, "inputs.resident_threads"),
        ("inference", {"link_latency_us": 1e300}, "inputs.link_latency_us"),
    ],
)
def test_numbers_outside_their_physical_bounds_are_refused_by_the_schema(
    api: Any, kind: str, changes: dict[str, Any], field: str
) -> None:
    assert_problem(api.post("/api/v1/evaluate", json=with_inputs(kind, **changes)), 422, field)


def test_a_cluster_above_the_largest_gpu_count_is_refused_naming_the_nodes(api: Any) -> None:
    document = with_inputs("training", cluster={"nodes": 100_000, "gpus_per_node": 72})
    body = assert_problem(api.post("/api/v1/evaluate", json=document), 422, "cluster.nodes")
    assert "524288" in body["detail"]


def test_sweep_values_obey_the_same_bounds_as_the_form(api: Any) -> None:
    body = {"document": FIRST["inference"], "axes": [{"path": "batch_size", "values": [1, 10**9]}]}
    assert_problem(api.post("/api/v1/sweep", json=body), 422, "axes[0].values")
    nested = {"document": FIRST["training"], "axes": [{"path": "cluster.nodes", "values": [1, 10**6]}]}
    assert_problem(api.post("/api/v1/sweep", json=nested), 422, "axes[0].values")
    # A preset's field (no schema of its own) stays within six orders of magnitude of its value.
    far = {"document": FIRST["training"], "axes": [{"path": "model.hidden_size", "values": [1, 2**40]}]}
    assert_problem(api.post("/api/v1/sweep", json=far), 422, "axes[0].values")


# -- the cost model, checked before any engine runs -------------------------------------------------


def test_an_oversized_plan_search_is_refused_before_it_starts_naming_the_cluster(api: Any) -> None:
    document = with_inputs("plan_search", cluster={"nodes": 8192, "gpus_per_node": 8})
    started = time.perf_counter()
    body = assert_problem(api.post("/api/v1/evaluate", json=document), 422, "cluster.nodes")
    assert time.perf_counter() - started < 5.0  # priced, not run
    assert "training plans" in body["detail"] and "limit" in body["detail"]


def test_a_search_estimate_counts_the_candidates_the_engine_judges() -> None:
    kind = KINDS["plan_search"]
    for example in kind.examples():
        document = parse_document(example)
        resolved = kind.resolve(document.inputs, default_catalog())
        estimate = kind.work(resolved)
        if resolved.cluster.node_pair_bandwidth_bytes_per_s is not None:
            continue  # node orders multiply the grid; counted as an upper bound
        result = evaluation.evaluate(document, default_catalog())
        candidates = next(m.value for m in result.metrics if m.key == "candidates")
        if any("offload" in (t.title or "").lower() for t in result.tables):  # a second, smaller search
            assert candidates < estimate.cells <= 2 * candidates, example["name"]
        else:
            assert estimate.cells == pytest.approx(candidates), example["name"]


def test_a_pim_sweep_over_millions_of_channels_is_refused_naming_the_channels(api: Any) -> None:
    body = {"document": PIM_EXAMPLE, "axes": [{"path": "memory.channels", "values": [32, 2**31 - 1]}]}
    response = assert_problem(api.post("/api/v1/sweep", json=body), 422, "memory.channels")
    assert "limit" in response["detail"]


def test_a_large_grid_is_refused_by_the_cell_budget(monkeypatch: pytest.MonkeyPatch, small_limits: None) -> None:
    from dse.scenarios.sweep import SweepAxis

    monkeypatch.setenv("DSE_MAX_CELLS", "1e6")
    limits.get_limits.cache_clear()
    document = parse_document(FIRST["training"])
    base = document.inputs.global_batch_size
    axis = SweepAxis(path="global_batch_size", values=[float(base * k) for k in range(1, 1001)])  # 1000 points
    with pytest.raises(InputError) as refused:
        evaluation.sweep(document, default_catalog(), [axis])
    assert "limit is 1e+06" in refused.value.reason
    assert limits.get_limits().max_cells == 1e6
    with pytest.raises(InputError):
        limits.check_work(
            KINDS["training"].work(KINDS["training"].resolve(document.inputs, default_catalog())), Limits(max_cells=1.0)
        )


# -- deadlines and cancellation ---------------------------------------------------------------------


def _search_inputs() -> dict[str, Any]:
    kind = KINDS["plan_search"]
    resolved = kind.resolve(parse_document(FIRST["plan_search"]).inputs, default_catalog())
    return {
        "model": ModelArrays.from_llm(resolved.model),
        "cluster": ClusterArrays.from_spec(resolved.cluster, dtype=resolved.dtype),
        "global_batch_size": resolved.global_batch_size,
        "sequence_length": resolved.sequence_length_tokens,
        "space": resolved.space,
    }


def test_the_plan_search_checks_its_stop_callable_between_chunks() -> None:
    calls = []

    def stop_after_two() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(SearchStopped):
        search_plans(**_search_inputs(), chunk_plans=1 << 12, should_stop=stop_after_two)
    assert len(calls) == 3  # it stopped at the third check, not at the end


def test_an_evaluation_past_its_deadline_stops_and_says_so() -> None:
    document = parse_document(FIRST["plan_search"])
    deadline = Deadline(0.05)
    started = time.perf_counter()
    with pytest.raises(DeadlinePassed) as stopped:
        evaluation.evaluate(document, default_catalog(), deadline)
    assert time.perf_counter() - started < 1.5  # the full search takes seconds
    assert "deadline" in str(stopped.value)


def test_a_sweep_checks_its_deadline_between_chunks() -> None:
    from dse.scenarios.base import Stopped, stop_when
    from dse.scenarios.sweep import SWEEP_CHUNK_POINTS, SweepAxis, run_sweep

    document = parse_document(FIRST["training"])
    base = float(document.inputs.global_batch_size)
    axis = SweepAxis(path="global_batch_size", values=[base] * (2 * SWEEP_CHUNK_POINTS + 1))  # three chunks
    checks: list[int] = []

    def stop_at_the_second_chunk() -> bool:
        checks.append(1)
        return len(checks) >= 2

    with stop_when(stop_at_the_second_chunk), pytest.raises(Stopped):
        run_sweep(KINDS["training"], document.inputs, default_catalog(), [axis])
    assert len(checks) == 2  # the first chunk ran, the second was not started
    with pytest.raises(DeadlinePassed):  # through the service: a passed deadline, said so
        evaluation.sweep(document, default_catalog(), [axis], Deadline(0.0))


def test_the_api_answers_503_problem_json_when_the_deadline_passes(
    api: Any, monkeypatch: pytest.MonkeyPatch, small_limits: None
) -> None:
    monkeypatch.setenv("DSE_HEAVY_DEADLINE_S", "0.05")
    limits.get_limits.cache_clear()
    body = assert_problem(api.post("/api/v1/evaluate", json=FIRST["plan_search"]), 503)
    assert "deadline" in body["detail"]
    assert api.post("/api/v1/evaluate", json=FIRST["rl_scaling"]).status_code == 200  # cheap work unaffected


class _Request:
    """What run_bounded reads of a request: the app's limiters and is_disconnected()."""

    def __init__(self, app_state: Any, disconnect_after_s: float) -> None:
        self.app = type("App", (), {"state": app_state})()
        self.gone_at = time.monotonic() + disconnect_after_s

    async def is_disconnected(self) -> bool:
        return time.monotonic() >= self.gone_at


def _state() -> Any:
    return type("State", (), {"cpu_limiter": anyio.CapacityLimiter(2), "heavy_limiter": anyio.CapacityLimiter(1)})()


def test_a_client_that_disconnects_cancels_its_work() -> None:
    from dse.api.cpu import run_bounded

    def work(deadline: Deadline) -> str:
        while not deadline():  # an engine's chunk loop
            time.sleep(0.01)
        return "cancelled" if deadline.cancelled else "deadline"

    async def main() -> tuple[str, float]:
        started = time.monotonic()
        outcome = await run_bounded(_Request(_state(), 0.3), work, heavy=True)  # type: ignore[arg-type]
        return outcome, time.monotonic() - started

    outcome, elapsed = anyio.run(main)
    assert outcome == "cancelled"
    assert elapsed < 3.0  # not the 30 s heavy deadline


def test_heavy_work_does_not_hold_the_cheap_pool_and_health_sees_saturation() -> None:
    from dse.api.cpu import run_bounded

    state = _state()

    async def main() -> tuple[float, dict[str, Any]]:
        async with anyio.create_task_group() as group:
            for _ in range(3):  # one heavy thread busy, two heavy requests queued behind it
                group.start_soon(
                    lambda: run_bounded(_Request(state, 60), lambda d: time.sleep(0.6), heavy=True)  # type: ignore[arg-type]
                )
            await anyio.sleep(0.1)
            status = pool_status({"cheap": state.cpu_limiter, "heavy": state.heavy_limiter})
            started = time.monotonic()
            await run_bounded(_Request(state, 60), lambda d: "cheap", heavy=False)  # type: ignore[arg-type]
            cheap_wait = time.monotonic() - started
        return cheap_wait, status

    cheap_wait, status = anyio.run(main)
    assert cheap_wait < 0.3  # answered while the heavy pool was full
    assert status["state"] == "saturated" and status["heavy"]["waiting"] >= 1
    assert pool_status({"cheap": anyio.CapacityLimiter(2)})["state"] == "ok"


# -- save-time check --------------------------------------------------------------------------------


def test_check_evaluable_passes_every_example_and_refuses_what_would_fail_later() -> None:
    catalog = default_catalog()
    for kind in KINDS.values():
        for example in kind.examples():
            evaluation.check_evaluable(example, catalog)
    with pytest.raises(InputError) as refused:
        evaluation.check_evaluable(with_inputs("plan_search", cluster={"nodes": 8192, "gpus_per_node": 8}), catalog)
    assert refused.value.field == "cluster.nodes"


def test_medium_work_is_judged_from_the_inputs_alone() -> None:
    def medium(document: dict[str, Any]) -> bool:
        return evaluation.is_medium(parse_document(document))

    assert all(medium(d) for d in KINDS["pruning"].examples())  # a routing loop, two serving prices
    inference = KINDS["inference"].examples()
    assert medium(PIM_EXAMPLE)  # five systems over the batch grid
    assert not medium(
        next(d for d in inference if d["inputs"]["system"] == "gpu_only" and not d["inputs"].get("memory"))
    )
    assert not any(medium(FIRST[kind]) for kind in ("training", "rl_scaling", "temporal_batching"))
    assert not any(medium(FIRST[kind]) for kind in ("plan_search", "serving"))  # heavy, not medium


def test_medium_work_takes_its_own_thread_and_never_holds_the_cheap_pool() -> None:
    import threading

    from dse.api.cpu import evaluation_pools, run_bounded

    state = _state()
    state.medium_limiter = anyio.CapacityLimiter(1)
    app = type("App", (), {"state": state})()
    released = threading.Event()
    seen: dict[str, Any] = {}

    def medium_work(deadline: Deadline) -> None:
        seen["while_medium_ran"] = evaluation_pools(app)  # type: ignore[arg-type]
        released.wait(10.0)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            for _ in range(2):  # one medium thread busy, one medium request queued behind it
                group.start_soon(
                    lambda: run_bounded(_Request(state, 60), medium_work, heavy=False, medium=True)  # type: ignore[arg-type]
                )
            while state.medium_limiter.statistics().tasks_waiting < 1:
                await anyio.sleep(0.01)
            # cheap work is answered while the medium pool is full (else this would wait for the release)
            seen["cheap"] = await run_bounded(_Request(state, 60), lambda d: "cheap", heavy=False)  # type: ignore[arg-type]
            released.set()

    anyio.run(main)
    assert seen["cheap"] == "cheap"
    pools = seen["while_medium_ran"]
    assert pools["medium"] == {"threads": 1, "busy": 1, "waiting": 0}
    assert pools["cheap"]["busy"] == 0


def test_a_save_keeps_its_checks_evaluation_as_the_scenarios_result(api: Any) -> None:
    """The save-time check evaluates the whole answer; the save caches it, so the first read of the
    result is that evaluation, not a second one."""
    document = {**copy.deepcopy(KINDS["pruning"].examples()[0]), "name": "kept at save"}
    saved = api.post("/api/v1/scenarios", json=document)
    assert saved.status_code == 201, saved.text[:300]
    scenario_id = saved.json()["id"]
    store = api.app.state.store
    cached = store.cached_result(scenario_id, evaluation.result_cache_key(KINDS["pruning"]))
    assert cached is not None  # before any GET of the result
    expected = evaluation.evaluate(parse_document(document), default_catalog()).model_dump(mode="json")
    assert cached == expected
    assert api.get(f"/api/v1/scenarios/{scenario_id}/result").json() == expected
    forked = api.post(f"/api/v1/scenarios/{scenario_id}/fork", json={"name": "forked"})
    assert forked.status_code == 201, forked.text[:300]
    assert api.post("/api/v1/scenarios", json=with_inputs("plan_search", cluster={"nodes": 8192})).status_code == 422
