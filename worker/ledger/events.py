"""The job events repository (issue 17): a job's events, and the operator's bulk write on legs.

Over one SQLAlchemy ``Connection`` inside the caller's transaction; takes and returns frozen
records. Events are appended, never updated; a job lists them oldest first (newest last).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from worker.domain.states import LegState, Reason
from worker.ledger.tables import job_events, legs


@dataclass(frozen=True, slots=True)
class NewEvent:
    job_id: str
    type: str
    at: datetime
    note: str | None = None
    leg_id: str | None = None
    actor: str | None = None
    details: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class JobEvent:
    id: int
    job_id: str
    leg_id: str | None
    type: str
    actor: str | None
    note: str | None
    details: dict[str, Any] | None
    created_at: datetime


class JobEvents:
    """A job's events: append one, read the newest of them (oldest first)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, event: NewEvent) -> None:
        self.conn.execute(job_events.insert().values(
            job_id=event.job_id, leg_id=event.leg_id, type=event.type, actor=event.actor,
            note=event.note, details=event.details, created_at=event.at))

    def of_job(self, job_id: str, limit: int) -> list[JobEvent]:
        """The job's newest ``limit`` events, oldest first."""
        rows = self.conn.execute(
            select(job_events).where(job_events.c.job_id == job_id)
            .order_by(job_events.c.id.desc()).limit(limit)
        ).mappings().all()
        return [JobEvent(id=r["id"], job_id=r["job_id"], leg_id=r["leg_id"], type=r["type"],
                         actor=r["actor"], note=r["note"], details=r["details"],
                         created_at=r["created_at"]) for r in reversed(rows)]

    def count_of_job(self, job_id: str) -> int:
        found = self.conn.execute(
            select(func.count()).select_from(job_events).where(job_events.c.job_id == job_id)
        ).scalar_one()
        return int(found)


class UnsentLegs:
    """Legs of a job that no provider was ever called for (pending, no attempt made)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def reject(self, job_id: str, reason: Reason, detail: str | None, now: datetime) -> int:
        """End every unsent leg of the job ``rejected`` with ``reason``, in one statement (a
        compare-and-set on each row's state: a leg a worker claims meanwhile is left alone);
        how many ended."""
        result = self.conn.execute(
            update(legs)
            .where(legs.c.job_id == job_id, legs.c.state == LegState.PENDING.value,
                   legs.c.attempts == 0)
            .values(state=LegState.REJECTED.value, reason=reason.value, detail=detail,
                    next_attempt_at=None, updated_at=now, version=legs.c.version + 1)
        )
        return int(result.rowcount)
