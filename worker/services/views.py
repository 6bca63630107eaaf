"""Jobs as the API, the CLI and the dashboard show them (the contract's shape)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from worker.domain.states import JobState
from worker.ledger.queries import decode_cursor, encode_cursor
from worker.ledger.records import JobRecord, LegRecord
from worker.ledger.uow import UnitOfWork


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def leg_json(leg: LegRecord) -> dict[str, Any]:
    return {
        "id": leg.id,
        "provider": leg.provider.value,
        "target": leg.target,
        "state": leg.state.value,
        "reason": leg.reason.value if leg.reason else None,
        "detail": leg.detail,
        "already_cancelled": leg.already_cancelled,
        "at_risk": leg.at_risk,
        "attempts": leg.attempts,
        "provider_reference": leg.provider_reference,
        "reconciliation": leg.reconciliation,
        "updated_at": _iso(leg.updated_at),
    }


def job_json(job: JobRecord, legs: list[LegRecord]) -> dict[str, Any]:
    recon = job.reconciliation or {"state": "pending", "differences": []}
    if job.state is JobState.INVALID:
        recon = {"state": "not_applicable", "differences": []}
    return {
        "id": job.id,
        "idempotency_key": job.idempotency_key,
        "state": job.state.value,
        "created_at": _iso(job.created_at),
        "updated_at": _iso(job.updated_at),
        "errors": job.errors or [],
        "legs": [leg_json(leg) for leg in legs],
        "reconciliation": recon,
    }


def get_job(engine: Engine, job_id: str) -> dict[str, Any] | None:
    with UnitOfWork(engine, read_only=True) as ledger:
        job = ledger.get_job(job_id)
        if job is None:
            return None
        return job_json(job, ledger.legs_of(job_id))


@dataclass(frozen=True, slots=True)
class JobPage:
    jobs: list[dict[str, Any]]
    next_cursor: str | None


def list_jobs(
    engine: Engine, *, state: JobState | None, limit: int, cursor: str | None
) -> JobPage:
    """Newest first; ``cursor`` comes from the previous page (ValueError if it is not ours)."""
    after = decode_cursor(cursor) if cursor else None
    with UnitOfWork(engine, read_only=True) as ledger:
        jobs = ledger.list_jobs(state=state, limit=limit + 1, after=after)
        page, more = jobs[:limit], len(jobs) > limit
        legs = ledger.legs_of_jobs(job.id for job in page)
    next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if more and page else None
    return JobPage([job_json(job, legs[job.id]) for job in page], next_cursor)
