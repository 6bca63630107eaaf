"""The job events repository (issue 17): a job's events, appended, never updated.

A job lists them oldest first (newest last).
"""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from worker.ledger.tables import job_events
from worker.services.records import JobEvent, NewEvent


class SqlEventRepository:
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
