"""The read queries the read side still takes from one transaction (``LedgerViews`` extends
``Ledger``), over the repositories; and the job list's cursor codec. The write side is the
repositories (``jobs``, ``legs``, ``attempts``, ``callback_pages``) behind the unit of work."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, and_, or_, select

from worker.domain.states import JobState
from worker.ledger.attempts import SqlAttemptRepository
from worker.ledger.callback_pages import SqlCallbackPageRepository
from worker.ledger.jobs import SqlJobRepository
from worker.ledger.legs import SqlLegRepository
from worker.ledger.records import AttemptRecord, JobRecord, LegRecord, PageTotals
from worker.ledger.rows import ATTEMPT_SUMMARY as _ATTEMPT_SUMMARY
from worker.ledger.rows import attempt_record as _attempt
from worker.ledger.rows import job_record as _job
from worker.ledger.rows import leg_record as _leg
from worker.ledger.tables import jobs

__all__ = ["_ATTEMPT_SUMMARY", "Ledger", "_attempt", "_job", "_leg", "decode_cursor",
           "encode_cursor"]


def encode_cursor(created_at: datetime, job_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), job_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) a cursor points after; ValueError when it is not ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, job_id = json.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(created), str(job_id)
    except (ValueError, TypeError) as exc:
        raise ValueError("invalid cursor") from exc


class Ledger:
    """Reads over one connection inside a transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._jobs = SqlJobRepository(conn)
        self._legs = SqlLegRepository(conn)
        self._attempts = SqlAttemptRepository(conn)
        self._pages = SqlCallbackPageRepository(conn)

    def commit(self) -> None:
        self.conn.commit()

    def get_job(self, job_id: str) -> JobRecord | None:
        return self._jobs.get(job_id)

    def list_jobs(
        self, *, state: JobState | None, limit: int, after: tuple[datetime, str] | None
    ) -> list[JobRecord]:
        """Newest first; ``after`` is the (created_at, id) of the last job of the previous page."""
        query = select(jobs).order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit)
        if state is not None:
            query = query.where(jobs.c.state == state.value)
        if after is not None:
            created, job_id = after
            query = query.where(
                or_(
                    jobs.c.created_at < created,
                    and_(jobs.c.created_at == created, jobs.c.id < job_id),
                )
            )
        return [_job(row) for row in self.conn.execute(query)]

    def get_leg(self, leg_id: str) -> LegRecord | None:
        return self._legs.get(leg_id)

    def get_legs(self, leg_ids: Sequence[str]) -> list[LegRecord]:
        return self._legs.get_many(leg_ids)

    def legs_of(self, job_id: str) -> list[LegRecord]:
        return self._legs.of_job(job_id)

    def page_totals(self, *, bulk_payment_id: str | None, code: str | None) -> list[PageTotals]:
        return self._pages.totals(bulk_payment_id=bulk_payment_id, code=code)

    def count_pages(self) -> int:
        return self._pages.count()

    def attempts_of(self, leg_id: str) -> list[AttemptRecord]:
        return self._attempts.of_leg(leg_id)
