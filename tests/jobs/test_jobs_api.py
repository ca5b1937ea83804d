"""POST/GET/DELETE /api/v1/sweep-jobs: content ids, progress, persistence across a restart, attach."""

from __future__ import annotations

import time

from dse.catalog import default_catalog
from dse.services.jobs.grid import evaluate_shard, points_of
from dse.services.jobs.service import JobRequest, build_spec, merge_for
from dse.services.jobs.summary import empty_summary
from tests.jobs.conftest import inference_job


def _wait(client, job_id, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/sweep-jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def test_a_job_runs_to_the_one_shot_summary_and_is_served_again(client):
    response = client.post("/api/v1/sweep-jobs", json=inference_job())
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert response.headers["location"] == f"/api/v1/sweep-jobs/{job_id}"
    job = _wait(client, job_id)
    assert job["status"] == "done"
    assert job["progress"]["points_done"] == job["progress"]["points_total"] == 192
    assert job["progress"]["shards_done"] == job["progress"]["shards_total"] == 3
    _, _, spec = build_spec(JobRequest.model_validate(inference_job()), default_catalog())
    one_shot = evaluate_shard(spec["document"], spec["axes"], 0, points_of(spec["axes"]), spec["settings"])
    assert job["summary"] == one_shot
    again = client.post(
        "/api/v1/sweep-jobs", json={**inference_job(), "document": {**inference_job()["document"], "name": "x"}}
    )
    assert again.status_code == 200 and again.json()["id"] == job_id  # the name is not content
    assert job["share_url"] == f"/k/inference?job={job_id}"


def test_a_job_survives_a_server_restart(make_client):
    first = make_client()
    job_id = first.post("/api/v1/sweep-jobs", json=inference_job(shard_size=64)).json()["id"]
    _wait(first, job_id)
    second = make_client()  # a new app on the same database
    job = second.get(f"/api/v1/sweep-jobs/{job_id}").json()
    assert job["status"] == "done" and job["summary"]["points"] == 192


def test_an_interrupted_job_resumes_from_its_merged_shards(client):
    job_id, _, spec = build_spec(JobRequest.model_validate(inference_job()), default_catalog())
    client.post("/api/v1/sweep-jobs", json=inference_job())
    done = _wait(client, job_id)
    # Pretend a server stopped after shard 0: only shard 0 merged, the row still says "running".
    service = client.app.state.sweep_jobs
    part = evaluate_shard(spec["document"], spec["axes"], 0, 64, spec["settings"])
    service.jobs.update(
        job_id, status="running", summary=merge_for(spec, empty_summary([4, 8, 3, 2]), part), done_shards={0}
    )
    # Fresh progress: another process may be running it, so it is left alone...
    assert client.get(f"/api/v1/sweep-jobs/{job_id}").json()["progress"]["shards_done"] == 1
    time.sleep(0.3)
    assert client.get(f"/api/v1/sweep-jobs/{job_id}").json()["status"] == "running"
    # ...until no progress was written for stale_after_s: then it resumes from shard 1, exactly.
    service.stale_after_s = 0.0
    resumed = _wait(client, job_id)
    assert resumed["status"] == "done" and resumed["summary"] == done["summary"]


def test_cancel_and_refusals(client):
    job_id = client.post("/api/v1/sweep-jobs", json=inference_job(shard_size=64)).json()["id"]
    cancelled = client.delete(f"/api/v1/sweep-jobs/{job_id}").json()
    assert cancelled["status"] in ("cancelled", "done")
    assert client.get("/api/v1/sweep-jobs/nosuchjob000").status_code == 404
    bad = inference_job()
    bad["axes"][0]["path"] = "no.such.input"
    assert client.post("/api/v1/sweep-jobs", json=bad).status_code == 422
    bad = inference_job()
    bad["axes"][3]["presets"] = ["no-such-gpu"]
    assert client.post("/api/v1/sweep-jobs", json=bad).status_code == 422
    bad = inference_job(feasible="throughput_tokens_per_s")
    assert client.post("/api/v1/sweep-jobs", json=bad).status_code == 422


def test_a_finished_job_attaches_to_a_saved_scenario(client):
    job = inference_job()
    job_id = client.post("/api/v1/sweep-jobs", json=job).json()["id"]
    _wait(client, job_id)
    scenario_id = client.post("/api/v1/scenarios", json=job["document"]).json()["id"]
    attached = client.put(f"/api/v1/sweep-jobs/{job_id}/scenario", json={"scenario_id": scenario_id})
    assert attached.status_code == 200 and attached.json()["scenario_id"] == scenario_id
    assert client.get(f"/api/v1/sweep-jobs/{job_id}").json()["scenario_id"] == scenario_id
    missing = client.put(f"/api/v1/sweep-jobs/{job_id}/scenario", json={"scenario_id": "aaaaaaaaaaaa"})
    assert missing.status_code == 404


def test_the_default_shard_size_aims_at_a_few_hundred_shards():
    from dse.services.jobs.service import default_shard_size

    assert default_shard_size(192) == 8192  # a small grid is one shard
    assert default_shard_size(50_000_000) == 97_657  # 512 shards
    assert default_shard_size(10**12) == 1_000_000  # capped: a shard's arrays stay small
    _, _, spec = build_spec(JobRequest.model_validate({**inference_job(), "shard_size": None}), default_catalog())
    assert spec["shard_size"] == 8192


class _GatedExecutor:
    """Serial shards, each waiting for the test to let it through (so a job stays running at will)."""

    def __init__(self) -> None:
        import threading

        self.gate = threading.Semaphore(0)

    def run(self, key, function, tasks, cancelled):
        for number, args in tasks:
            if cancelled.is_set():
                return
            self.gate.acquire(timeout=30)
            yield number, function(*args)


def test_a_job_cancelled_through_another_server_process_stops(tmp_path, monkeypatch):
    from dse.services.jobs import service as jobs_service
    from dse.services.jobs.executor import SerialExecutor
    from dse.services.jobs.service import JobService
    from dse.store import Store

    monkeypatch.setattr(jobs_service, "PROGRESS_INTERVAL_S", 0.0)  # look at the store after every shard
    url = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    with Store(url) as running_store, Store(url) as other_store:
        gated = _GatedExecutor()
        runner = JobService(running_store, gated)  # the process running the job
        other = JobService(other_store, SerialExecutor())  # another process of the same store
        view, started = runner.create(JobRequest.model_validate(inference_job(shard_size=64)), default_catalog())
        assert started and view["progress"]["shards_total"] == 3
        gated.gate.release()  # shard 0 merges, then the runner waits at shard 1
        deadline = time.monotonic() + 30
        while other.get(view["id"])["progress"]["shards_done"] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert other.cancel(view["id"])["status"] == "cancelled"
        gated.gate.release()  # shard 1 merges; the runner reads the status and stops before shard 2
        for _ in range(3):
            gated.gate.release()  # would let every other shard through if it did not stop
        job = runner.wait(view["id"], timeout_s=30)
    assert job["status"] == "cancelled"
    assert job["progress"]["shards_done"] == 2
