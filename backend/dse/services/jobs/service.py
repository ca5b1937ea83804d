"""Sweep jobs: validated, stored under the hash of their content, run in the background on an executor.

The same job posted twice has the same id and is served from the store (a cancelled or failed job
posted again resumes). Progress is written to the store as shards finish (at most every
`PROGRESS_INTERVAL_S`), so a reloaded page or another server process sees the merged summary so far;
a job left queued or running by a stopped server (no progress for `STALE_AFTER_S`) is resumed by the
next one that is asked about it, from the shards already merged, which is exact because
`summary.merge` is associative and commutative.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from dse.catalog import Catalog
from dse.scenarios.base import InputError
from dse.scenarios.documents import document_json, kind_of, parse_document
from dse.scenarios.sweep import SweepAxis, _check_axis, sweepable_paths
from dse.services.jobs.executor import Executor
from dse.services.jobs.grid import evaluate_shard, grid_shape, points_of, shards
from dse.services.jobs.summary import empty_summary, merge
from dse.store import Store
from dse.store.documents import canonical_json, id_for_content_json
from dse.store.jobs import ACTIVE, JobRecord, JobStore

MAX_JOB_POINTS = 200_000_000
MAX_AXIS_VALUES = 100_000
PROGRESS_INTERVAL_S = 0.5
TARGET_SHARDS = 512
MIN_DEFAULT_SHARD_SIZE = 8192
MAX_SHARD_SIZE = 1_000_000
#: A queued or running job nobody wrote progress for in this long is taken to be orphaned (its server
#: stopped) and is resumed by whichever server process is asked about it. Two processes running the
#: same job (a long shard, several server processes) waste work but stay exact: each writes a summary
#: together with the set of shards it merged.
STALE_AFTER_S = 10.0


class JobAxis(BaseModel):
    path: str = Field(description="A numeric input's dotted path, or a document field holding a preset id.")
    values: list[float] | None = Field(None, max_length=MAX_AXIS_VALUES, description="Numeric values.")
    presets: list[str] | None = Field(None, max_length=1000, description="Catalog preset ids (categorical axis).")


class Objective(BaseModel):
    metric: str
    goal: Literal["min", "max"] = "min"
    top_k: int = Field(20, ge=1, le=1000)


class ParetoSpec(BaseModel):
    x: str
    y: str
    goal_x: Literal["min", "max"] = "min"
    goal_y: Literal["min", "max"] = "min"


class JobRequest(BaseModel):
    document: dict[str, Any]
    axes: list[JobAxis] = Field(min_length=1, max_length=6)
    objective: Objective
    pareto: ParetoSpec | None = None
    feasible: str | None = Field(None, description="A yes/no metric; points where it is no count as infeasible.")
    shard_size: int | None = Field(
        None,
        ge=64,
        le=1_000_000,
        description="Points per shard; by default about 512 shards, 8,192 to 1,000,000 points each.",
    )


class JobProgress(BaseModel):
    shards_done: int
    shards_total: int
    points_done: int
    points_total: int
    fraction: float


class JobOut(BaseModel):
    """A job as the API shows it: status, progress and the summary merged so far."""

    id: str
    kind: str
    status: Literal["queued", "running", "done", "cancelled", "failed"]
    progress: JobProgress
    document: dict[str, Any]
    axes: list[dict[str, Any]] = Field(description="path, values (numbers or preset ids), preset (bool).")
    settings: dict[str, Any]
    shard_size: int
    summary: dict[str, Any] = Field(
        description="points/refused/undefined/infeasible counts, top [value, index, axis values, metrics], "
        "pareto [x, y, index], axis_best, slices ('i,j': best per cell, row-major), histograms, and for "
        "the cells without a best axis_why / slice_why [refused, infeasible, undefined, reason bits] "
        "(see dse.services.jobs.summary)."
    )
    error: str | None
    scenario_id: str | None
    share_url: str
    created_at: str
    updated_at: str


#: What a job request cannot run: the API answers it as it answers any input error (422).
JobError = InputError


def _check_preset_axis(parsed: Any, catalog: Catalog, index: int, axis: JobAxis) -> None:
    where = f"axes[{index}]"
    raw = parsed.inputs.model_dump()
    if axis.path not in raw:
        raise JobError(f"{where}.path", f"'{axis.path}' is not a field of this scenario's inputs")
    for preset in axis.presets or []:
        candidate = dict(raw)
        candidate[axis.path] = preset
        try:
            kind_of(parsed).resolve(type(parsed.inputs).model_validate(candidate), catalog)
        except ValidationError as exc:
            raise JobError(f"{where}.presets", f"{preset!r} is refused: {exc.errors()[0]['msg']}") from None
        except InputError as exc:
            raise JobError(f"{where}.presets", f"{preset!r} is refused: {exc.reason}") from None


def build_spec(request: JobRequest, catalog: Catalog) -> tuple[str, str, dict[str, Any]]:
    """(job id, kind, spec) for a request; raises JobError or InputError for what it cannot run."""
    try:
        parsed = parse_document(request.document)
    except ValidationError as exc:
        raise JobError("document", str(exc.errors()[0]["msg"])) from None
    kind = kind_of(parsed)
    if len({a.path for a in request.axes}) != len(request.axes):
        raise JobError("axes", "each axis must name a different input")
    leaves = sweepable_paths(kind.resolve(parsed.inputs, catalog))  # type: ignore[attr-defined]
    axes: list[dict[str, Any]] = []
    for index, axis in enumerate(request.axes):
        if (axis.values is None) == (axis.presets is None):
            raise JobError(f"axes[{index}]", "give either values or presets")
        if axis.presets is not None:
            if not axis.presets:
                raise JobError(f"axes[{index}].presets", "give at least one preset")
            _check_preset_axis(parsed, catalog, index, axis)
            axes.append({"path": axis.path, "values": list(axis.presets), "preset": True})
        else:
            sweep_axis = SweepAxis(path=axis.path, values=axis.values or [])
            _check_axis(kind, parsed.inputs, catalog, index, sweep_axis, leaves)  # type: ignore[attr-defined]
            values = [int(v) if isinstance(leaves[axis.path], int) else v for v in sweep_axis.values]
            axes.append({"path": axis.path, "values": values, "preset": False})
    specs = kind.metric_specs
    named = [("objective.metric", request.objective.metric)]
    if request.pareto is not None:
        named += [("pareto.x", request.pareto.x), ("pareto.y", request.pareto.y)]
    if request.feasible is not None:
        named.append(("feasible", request.feasible))
    for field, metric in named:
        if metric not in specs:
            raise JobError(field, f"'{metric}' is not a metric of {kind.kind}; metrics: {', '.join(specs)}")
    if request.feasible is not None and not specs[request.feasible].boolean:
        raise JobError("feasible", f"'{request.feasible}' is not a yes/no metric")
    points = points_of(axes)
    if points > MAX_JOB_POINTS:
        raise JobError("axes", f"{points} points requested; at most {MAX_JOB_POINTS} per job")
    shard_size = request.shard_size or default_shard_size(points)
    document = document_json(parsed)
    settings = {
        "objective": request.objective.metric,
        "goal": request.objective.goal,
        "top_k": request.objective.top_k,
        "pareto": [request.pareto.x, request.pareto.y] if request.pareto else None,
        "pareto_goals": [request.pareto.goal_x, request.pareto.goal_y] if request.pareto else ["min", "min"],
        "feasible": request.feasible,
    }
    spec = {"document": document, "axes": axes, "settings": settings, "shard_size": shard_size}
    content = {**spec, "document": {k: v for k, v in document.items() if k != "name"}}
    job_id = id_for_content_json(canonical_json({"engine_version": kind.engine_version, "job": content}))
    return job_id, kind.kind, spec


def default_shard_size(points: int) -> int:
    """About `TARGET_SHARDS` shards: enough to keep many workers busy, few enough that merging stays cheap."""
    return min(MAX_SHARD_SIZE, max(MIN_DEFAULT_SHARD_SIZE, math.ceil(points / TARGET_SHARDS)))


def merge_for(spec: dict[str, Any], a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    settings = spec["settings"]
    return merge(a, b, goal=settings["goal"], top_k=settings["top_k"], pareto_goals=tuple(settings["pareto_goals"]))


def job_view(record: JobRecord) -> dict[str, Any]:
    spec = record.spec
    summary = record.summary or empty_summary(grid_shape(spec["axes"]))
    points_done = summary["points"]
    return {
        "id": record.id,
        "kind": record.kind,
        "status": record.status,
        "progress": {
            "shards_done": len(record.done_shards),
            "shards_total": record.shards_total,
            "points_done": points_done,
            "points_total": record.points_total,
            "fraction": points_done / record.points_total if record.points_total else 1.0,
        },
        "document": spec["document"],
        "axes": spec["axes"],
        "settings": spec["settings"],
        "shard_size": spec["shard_size"],
        "summary": summary,
        "error": record.error,
        "scenario_id": record.scenario_id,
        "share_url": f"/k/{record.kind}?job={record.id}",
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
    }


class JobService:
    """Jobs of one store, run by one executor in background threads of this process."""

    def __init__(self, store: Store, executor: Executor, stale_after_s: float = STALE_AFTER_S) -> None:
        self.store = store
        self.jobs = JobStore(store.engine)
        self.executor = executor
        self.stale_after_s = stale_after_s
        self._running: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        for job_id in self.jobs.active_ids():  # perhaps left queued or running by a stopped server
            self._resume_if_orphaned(self.jobs.get(job_id))

    def _resume_if_orphaned(self, record: JobRecord) -> None:
        age = (datetime.now(UTC) - record.updated_at).total_seconds()
        if record.status in ACTIVE and age >= self.stale_after_s:
            self._start(record.id)

    def create(self, request: JobRequest, catalog: Catalog) -> tuple[dict[str, Any], bool]:
        """(the job's view, whether work was started); the same job again is served as it stands."""
        job_id, kind, spec = build_spec(request, catalog)
        points = points_of(spec["axes"])
        created = self.jobs.create(job_id, kind, spec, len(shards(points, spec["shard_size"])), points)
        record = self.jobs.get(job_id)
        started = False
        if created or record.status in ("cancelled", "failed"):
            if not created:
                self.jobs.update(job_id, status="queued", error=None)
            started = self._start(job_id)
        else:
            self._resume_if_orphaned(record)
        return job_view(self.jobs.get(job_id)), started or created

    def get(self, job_id: str) -> dict[str, Any]:
        record = self.jobs.get(job_id)
        self._resume_if_orphaned(record)  # a no-op when this process runs it already
        return job_view(record)

    def cancel(self, job_id: str) -> dict[str, Any]:
        self.jobs.get(job_id)  # NotFound for an unknown id
        self.jobs.set_status_if(job_id, ACTIVE, "cancelled")
        with self._lock:
            event = self._running.get(job_id)
        if event is not None:
            event.set()
        return job_view(self.jobs.get(job_id))

    def attach(self, job_id: str, scenario_id: str) -> dict[str, Any]:
        record = self.jobs.get(job_id)
        if record.status != "done":
            raise JobError("status", f"job {job_id} is {record.status}; only a finished job can be attached")
        scenario = self.store.get(scenario_id)  # NotFound for an unknown scenario
        if scenario.kind != record.kind:
            raise JobError("scenario_id", f"scenario {scenario_id} is a {scenario.kind}, the job a {record.kind}")
        self.jobs.update(job_id, scenario_id=scenario_id)
        return job_view(self.jobs.get(job_id))

    def wait(self, job_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
        """The job once it left queued/running (for tests and scripts)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            record = self.jobs.get(job_id)
            with self._lock:
                running = job_id in self._running
            if record.status not in ACTIVE and not running:
                return job_view(record)
            time.sleep(0.02)
        raise TimeoutError(f"job {job_id} still {self.jobs.get(job_id).status} after {timeout_s} s")

    def _start(self, job_id: str) -> bool:
        with self._lock:
            if job_id in self._running:
                return False
            event = threading.Event()
            self._running[job_id] = event
        threading.Thread(target=self._run, args=(job_id, event), name=f"sweep-job-{job_id}", daemon=True).start()
        return True

    def _run(self, job_id: str, cancelled: threading.Event) -> None:
        try:
            record = self.jobs.get(job_id)
            if record.status not in ACTIVE:
                return
            self.jobs.set_status_if(job_id, ("queued",), "running")
            spec = record.spec
            summary = record.summary or empty_summary(grid_shape(spec["axes"]))
            done = set(record.done_shards)
            tasks = [
                (number, (spec["document"], spec["axes"], start, stop, spec["settings"]))
                for number, (start, stop) in enumerate(shards(record.points_total, spec["shard_size"]))
                if number not in done
            ]
            last_write = time.monotonic()
            for number, part in self.executor.run(job_id, evaluate_shard, tasks, cancelled):
                summary = merge_for(spec, summary, part)
                done.add(number)
                if time.monotonic() - last_write >= PROGRESS_INTERVAL_S:
                    self.jobs.update(job_id, summary=summary, done_shards=done)
                    last_write = time.monotonic()
                    if self.jobs.get(job_id).status == "cancelled":  # cancelled through another server process
                        cancelled.set()
            self.jobs.update(job_id, summary=summary, done_shards=done)
            if not cancelled.is_set():
                self.jobs.set_status_if(job_id, ACTIVE, "done")
        except Exception as exc:
            with contextlib.suppress(Exception):
                self.jobs.update(job_id, status="failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._running.pop(job_id, None)
