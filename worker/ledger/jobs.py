"""The jobs repository: a job and its legs stored once, its state kept in step."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from worker.domain.request import target_key
from worker.domain.states import JobState, LegState
from worker.ledger.insert_once import insert_many_once
from worker.ledger.rows import job_record, leg_record
from worker.ledger.tables import jobs, legs
from worker.services.records import JobRecord, LegRecord, NewJob, NewLeg

# The statements every job runs, built once: on SQLite, building a statement and its cache key
# costs more than running it (bench/README: 64 us to build and run a lookup, 22 us to run it).
_GET_JOB = select(jobs).where(jobs.c.id == bindparam("job_id"))
_GET_JOB_LOCKED = _GET_JOB.with_for_update()
# In id order, so that two workers locking overlapping sets of jobs cannot deadlock.
_GET_JOBS = select(jobs).where(jobs.c.id.in_(bindparam("job_ids", expanding=True))).order_by(
    jobs.c.id)
_GET_JOBS_LOCKED = _GET_JOBS.with_for_update()
_INSERT_LEGS_RETURNING = insert(legs).returning(*legs.c, sort_by_parameter_order=True)
_SET_STATE = update(jobs).where(jobs.c.id == bindparam("b_job")).values(
    version=jobs.c.version + 1, state=bindparam("b_state"),
    reconciliation=bindparam("b_reconciliation"), updated_at=bindparam("b_now"))


def job_row(job: NewJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "idempotency_key": job.idempotency_key,
        "state": job.state.value,
        "request": job.request,
        "errors": job.errors,
        "body_sha256": job.body_sha256,
        "created_at": job.created_at,
        "updated_at": job.created_at,
    }


def leg_row(leg: NewLeg) -> dict[str, Any]:
    """Every row names the same columns (one INSERT for all), claimed or not."""
    claimed = leg.lease is not None
    return {
        "id": leg.id,
        "job_id": leg.job_id,
        "position": leg.position,
        "provider": leg.provider.value,
        "target": leg.target,
        "state": (LegState.IN_FLIGHT if claimed else LegState.PENDING).value,
        "match_key": leg.match_key,
        "target_key": target_key(leg.target),
        "lease_token": leg.lease.token if leg.lease else None,
        "lease_expires_at": leg.lease.expires_at if leg.lease else None,
        "attempts": int(claimed),
        "version": int(claimed),
        "next_attempt_at": leg.created_at,
        "created_at": leg.created_at,
        "updated_at": leg.created_at,
    }


class SqlJobRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add_many(self, new: Sequence[tuple[NewJob, Sequence[NewLeg]]]
                 ) -> list[list[LegRecord] | None]:
        # One INSERT for the jobs (each inserted once), one for all the new jobs' legs.
        inserted = insert_many_once(self.conn, jobs, [job_row(job) for job, _legs in new])
        created = []
        for job, _legs in new:
            created.append(job.id in inserted)
            inserted.discard(job.id)  # a repeat later in ``new`` was not inserted
        rows = [leg_row(leg) for (_job, job_legs), fresh in zip(new, created, strict=True)
                if fresh for leg in job_legs]
        by_job: dict[str, list[LegRecord]] = {}
        if rows:
            for row in self.conn.execute(_INSERT_LEGS_RETURNING, rows):
                leg = leg_record(row)
                by_job.setdefault(leg.job_id, []).append(leg)
        return [by_job.get(job.id, []) if fresh else None
                for (job, _legs), fresh in zip(new, created, strict=True)]

    def get(self, job_id: str, *, lock: bool = False) -> JobRecord | None:
        # ``lock`` holds the row until the transaction ends (PostgreSQL), so that concurrent
        # recomputations of one job's state run one after the other.
        query = _GET_JOB_LOCKED if lock else _GET_JOB
        row = self.conn.execute(query, {"job_id": job_id}).first()
        return job_record(row) if row else None

    def get_many(self, job_ids: Sequence[str], *, lock: bool = False) -> list[JobRecord]:
        if not job_ids:
            return []
        query = _GET_JOBS_LOCKED if lock else _GET_JOBS
        return [job_record(row) for row in self.conn.execute(query, {"job_ids": list(job_ids)})]

    def start(self, job_id: str, now: datetime) -> None:
        self.conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.state == JobState.ACCEPTED.value)
            .values(state=JobState.IN_PROGRESS.value, updated_at=now, version=jobs.c.version + 1)
        )

    def set_state(self, job_id: str, state: JobState, reconciliation: dict[str, Any] | None,
                  now: datetime) -> None:
        self.conn.execute(_SET_STATE, {"b_job": job_id, "b_state": state.value,
                                       "b_reconciliation": reconciliation, "b_now": now})
