"""Sweep jobs (large grids run in shards on Dask, merged as they finish) and solve-for."""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from dse.api.cpu import run_cpu_bound
from dse.api.deps import CatalogDep, StoreDep
from dse.services.jobs.executor import executor_from_environment
from dse.services.jobs.service import JobOut, JobRequest, JobService
from dse.services.jobs.solve import SolveRequest, solve

router = APIRouter(tags=["jobs"])
_SERVICE_LOCK = threading.Lock()


class AttachRequest(BaseModel):
    scenario_id: str


def _jobs(request: Request, store: Any) -> JobService:
    """The app's job service, made on first use (it resumes the jobs a stopped server left running)."""
    with _SERVICE_LOCK:
        service: JobService | None = getattr(request.app.state, "sweep_jobs", None)
        if service is None or service.store is not store:
            service = JobService(store, executor_from_environment())
            request.app.state.sweep_jobs = service
        return service


@router.post("/sweep-jobs", name="create_sweep_job", status_code=202, response_model=JobOut)
async def create_job(body: JobRequest, store: StoreDep, catalog: CatalogDep, http: Request, response: Response) -> Any:
    """Starts a job (202); the same job posted again is served from the store (200 once done)."""
    view, _ = await run_cpu_bound(http, lambda: _jobs(http, store).create(body, catalog))
    response.status_code = 200 if view["status"] == "done" else 202
    response.headers["Location"] = f"/api/v1/sweep-jobs/{view['id']}"
    return view


@router.get("/sweep-jobs/{job_id}", name="get_sweep_job", response_model=JobOut)
def get_job(job_id: str, store: StoreDep, http: Request) -> Any:
    """Status, progress and the summary merged so far."""
    return _jobs(http, store).get(job_id)


@router.delete("/sweep-jobs/{job_id}", name="cancel_sweep_job", response_model=JobOut)
def cancel_job(job_id: str, store: StoreDep, http: Request) -> Any:
    """Cancels a queued or running job (the shards merged so far stay); a finished job is unchanged."""
    return _jobs(http, store).cancel(job_id)


@router.put("/sweep-jobs/{job_id}/scenario", name="attach_sweep_job", response_model=JobOut)
def attach_job(job_id: str, body: AttachRequest, store: StoreDep, http: Request) -> Any:
    """Attaches a finished job to a saved scenario of the same kind."""
    return _jobs(http, store).attach(job_id, body.scenario_id)


@router.post("/solve", name="solve")
async def solve_for(body: SolveRequest, catalog: CatalogDep, http: Request) -> Any:
    """The smallest value of one input that meets a target metric (vectorised bisection) and the curve."""
    return await run_cpu_bound(http, lambda: solve(body, catalog))
