"""The read queries the read side still takes from one transaction (``LedgerViews`` extends
``Ledger``), over the repositories; and the job list's cursor codec. The write side is the
repositories (``jobs``, ``legs``, ``attempts``, ``callback_pages``) behind the unit of work."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from worker.ledger.attempts import SqlAttemptRepository
from worker.ledger.callback_pages import SqlCallbackPageRepository
from worker.ledger.jobs import SqlJobRepository
from worker.ledger.legs import SqlLegRepository
from worker.ledger.records import AttemptRecord, JobRecord, LegRecord, PageTotals

__all__ = ["Ledger"]


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
