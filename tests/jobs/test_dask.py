"""A job on a real Dask LocalCluster with two worker processes gives exactly the single-process summary."""

from __future__ import annotations

import threading

import pytest

from dse.catalog import default_catalog
from dse.services.jobs.grid import evaluate_shard, points_of, shards
from dse.services.jobs.service import JobRequest, build_spec, merge_for
from dse.services.jobs.summary import empty_summary
from tests.jobs.conftest import inference_job

pytest.importorskip("distributed")

pytestmark = pytest.mark.slow


def test_a_job_on_two_dask_worker_processes_equals_the_single_process_answer():
    from dse.services.jobs.executor import DaskExecutor

    job_id, _, spec = build_spec(JobRequest.model_validate(inference_job(shard_size=64)), default_catalog())
    n = points_of(spec["axes"])
    one_shot = evaluate_shard(spec["document"], spec["axes"], 0, n, spec["settings"])
    executor = DaskExecutor(n_workers=2)
    try:
        assert len(executor.client().scheduler_info()["workers"]) == 2
        tasks = [
            (i, (spec["document"], spec["axes"], a, b, spec["settings"])) for i, (a, b) in enumerate(shards(n, 64))
        ]
        summary = empty_summary([len(a["values"]) for a in spec["axes"]])
        seen = []
        for number, part in executor.run(job_id, evaluate_shard, tasks, threading.Event()):
            seen.append(number)
            summary = merge_for(spec, summary, part)
    finally:
        executor.close()
    assert sorted(seen) == list(range(len(tasks)))
    assert summary == one_shot
