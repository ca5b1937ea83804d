"""Sweep jobs in the store's database (table `sweep_jobs`, migration 0002).

A job row holds its spec (what to compute), its status, the shards done so far and the merged
summary of those shards. Because shard summaries merge in any order (dse.services.jobs.summary), a
job interrupted by a restart resumes by computing only the shards not listed as done.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, RowMapping

from dse.store.database import transaction
from dse.store.errors import NotFound
from dse.store.schema import sweep_jobs

STATUSES = ("queued", "running", "done", "cancelled", "failed")
ACTIVE = ("queued", "running")


@dataclass(frozen=True)
class JobRecord:
    id: str
    kind: str
    status: str
    spec: dict[str, Any]
    summary: dict[str, Any] | None
    done_shards: list[int]
    shards_total: int
    points_total: int
    error: str | None
    scenario_id: str | None
    created_at: datetime
    updated_at: datetime


def _record(row: RowMapping) -> JobRecord:
    return JobRecord(
        id=row["id"],
        kind=row["kind"],
        status=row["status"],
        spec=json.loads(row["spec_json"]),
        summary=json.loads(row["summary_json"]) if row["summary_json"] is not None else None,
        done_shards=json.loads(row["done_shards_json"]),
        shards_total=row["shards_total"],
        points_total=row["points_total"],
        error=row["error"],
        scenario_id=row["scenario_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class JobStore:
    """The `sweep_jobs` table on the store's engine (the Store migrated it when it opened)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, job_id: str) -> JobRecord:
        with transaction(self._engine, write=False) as connection:
            row = connection.execute(sa.select(sweep_jobs).where(sweep_jobs.c.id == job_id)).mappings().first()
        if row is None:
            raise NotFound(f"sweep job {job_id!r} not found")
        return _record(row)

    def create(self, job_id: str, kind: str, spec: dict[str, Any], shards_total: int, points_total: int) -> bool:
        """Insert a queued job; False (and nothing written) when a job with this id exists."""
        now = datetime.now(UTC)
        try:
            with transaction(self._engine, write=True) as connection:
                exists = connection.execute(sa.select(sweep_jobs.c.id).where(sweep_jobs.c.id == job_id)).first()
                if exists is not None:
                    return False
                connection.execute(
                    sweep_jobs.insert().values(
                        id=job_id,
                        kind=kind,
                        status="queued",
                        spec_json=json.dumps(spec, sort_keys=True, separators=(",", ":")),
                        summary_json=None,
                        done_shards_json="[]",
                        shards_total=shards_total,
                        points_total=points_total,
                        error=None,
                        scenario_id=None,
                        created_at=now,
                        updated_at=now,
                    )
                )
                return True
        except sa.exc.IntegrityError:
            return False  # created by a concurrent request

    def update(self, job_id: str, **values: Any) -> None:
        """Set `status`, `summary`, `done_shards`, `error` or `scenario_id`."""
        columns: dict[str, Any] = {"updated_at": datetime.now(UTC)}
        for key, value in values.items():
            if key == "summary":
                columns["summary_json"] = json.dumps(value, separators=(",", ":"))
            elif key == "done_shards":
                columns["done_shards_json"] = json.dumps(sorted(value))
            elif key in ("status", "error", "scenario_id"):
                columns[key] = value
            else:
                raise ValueError(f"unknown job field {key!r}")
        with transaction(self._engine, write=True) as connection:
            connection.execute(sweep_jobs.update().where(sweep_jobs.c.id == job_id).values(**columns))

    def set_status_if(self, job_id: str, allowed: tuple[str, ...], status: str) -> bool:
        """Move to `status` only from one of `allowed` (e.g. cancel only an active job)."""
        with transaction(self._engine, write=True) as connection:
            result = connection.execute(
                sweep_jobs.update()
                .where(sweep_jobs.c.id == job_id, sweep_jobs.c.status.in_(allowed))
                .values(status=status, updated_at=datetime.now(UTC))
            )
        return bool(result.rowcount)

    def active_ids(self) -> list[str]:
        with transaction(self._engine, write=False) as connection:
            rows = connection.execute(sa.select(sweep_jobs.c.id).where(sweep_jobs.c.status.in_(ACTIVE)))
            return [r[0] for r in rows]
