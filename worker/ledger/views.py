"""The read side: what the status API, the CLI, the dashboard and ``/metrics`` read.

Every query here answers a bounded number of rows, whatever a job's size or the ledger's history:
a job's legs come a page at a time by position (the unique (job, position) index), counts come
grouped by the database, and the metrics come from the tally tables that triggers keep (migration
0003), never from ``attempts``. Standalone: it shares only the tables and the row mapping with the
write side.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, and_, bindparam, func, or_, select, text
from sqlalchemy.exc import SQLAlchemyError

from worker.domain.deliveries import OutcomeDelivery
from worker.domain.states import JobState, LegState, Provider
from worker.ledger.engine import READ_ONLY
from worker.ledger.events import SqlEventRepository
from worker.ledger.folds import fold_tallies
from worker.ledger.outcomes import SqlOutcomeRepository
from worker.ledger.rows import ATTEMPT_SUMMARY, attempt_record, job_record, leg_record
from worker.ledger.tables import (
    attempts,
    call_tallies,
    callback_pages,
    job_tallies,
    jobs,
    latency_column,
    leg_tallies,
    legs,
)
from worker.services.records import LATENCY_BOUNDS_MS, AttemptRecord, JobEvent, JobRecord, LegRecord
from worker.services.views.read_side import (
    CallTally,
    JobFilter,
    LedgerUnavailable,
    LegTotals,
)

_GET_JOB = select(jobs).where(jobs.c.id == bindparam("job_id"))
_LEGS_FROM = (
    select(legs)
    .where(legs.c.job_id == bindparam("job_id"), legs.c.position >= bindparam("first"))
    .order_by(legs.c.position)
    .limit(bindparam("limit"))
)
_STATE_COUNTS = (
    select(legs.c.job_id, legs.c.state, func.count(), func.sum(legs.c.attempts))
    .where(legs.c.job_id.in_(bindparam("job_ids", expanding=True)))
    .group_by(legs.c.job_id, legs.c.state)
)
# A leg a person should read about: refused or failed, already cancelled, or sent at risk.
_NOTABLE = or_(legs.c.reason.is_not(None), legs.c.already_cancelled, legs.c.at_risk)
_PAYWALL_OF_JOB = and_(legs.c.job_id == bindparam("job_id"),
                       legs.c.provider == Provider.PAYWALL.value)


class LedgerViews:
    """Read-only queries over one snapshot (a read-only connection's transaction)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # jobs

    def get_job(self, job_id: str) -> JobRecord | None:
        row = self.conn.execute(_GET_JOB, {"job_id": job_id}).first()
        return job_record(row) if row else None

    def list_jobs(
        self, *, where: JobFilter, limit: int, after: tuple[datetime, str] | None
    ) -> list[JobRecord]:
        """Newest first; ``after`` is the (created_at, id) of the last job of the previous page.
        Each filter has an index behind it (docs/query-plans.md)."""
        query = select(jobs).order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit)
        if where.state is not None:
            query = query.where(jobs.c.state == where.state.value)
        if where.idempotency_key is not None:
            query = query.where(jobs.c.idempotency_key == where.idempotency_key)
        if where.since is not None:
            query = query.where(jobs.c.created_at >= where.since)
        if where.until is not None:
            query = query.where(jobs.c.created_at < where.until)
        if where.provider is not None or where.target is not None:
            # The jobs that have such a leg: (provider, job_id) and (target_key, job_id) indexes.
            having = select(legs.c.job_id)
            if where.provider is not None:
                having = having.where(legs.c.provider == where.provider.value)
            if where.target is not None:
                having = having.where(legs.c.target_key == where.target)
            query = query.where(jobs.c.id.in_(having))
        if after is not None:
            created, job_id = after
            query = query.where(
                or_(
                    jobs.c.created_at < created,
                    and_(jobs.c.created_at == created, jobs.c.id < job_id),
                )
            )
        return [job_record(row) for row in self.conn.execute(query)]

    def jobs_by_id(self, job_ids: Sequence[str]) -> dict[str, JobRecord]:
        if not job_ids:
            return {}
        rows = self.conn.execute(select(jobs).where(jobs.c.id.in_(list(job_ids))))
        return {record.id: record for record in map(job_record, rows)}

    # a job's legs

    def legs_from(self, job_id: str, first: int, limit: int) -> list[LegRecord]:
        """Up to ``limit`` of the job's legs from position ``first`` on, in order."""
        rows = self.conn.execute(_LEGS_FROM, {"job_id": job_id, "first": first, "limit": limit})
        return [leg_record(row) for row in rows]

    def first_legs(self, job_ids: Sequence[str], count: int) -> dict[str, list[LegRecord]]:
        """The first ``count`` legs of each job (positions 0 to count-1), in order."""
        found: dict[str, list[LegRecord]] = {job_id: [] for job_id in job_ids}
        if not job_ids or count <= 0:
            return found
        query = (select(legs)
                 .where(legs.c.job_id.in_(list(job_ids)), legs.c.position < count)
                 .order_by(legs.c.job_id, legs.c.position))
        for row in self.conn.execute(query):
            found[row._mapping["job_id"]].append(leg_record(row))
        return found

    def leg_totals(self, job_ids: Sequence[str]) -> dict[str, LegTotals]:
        """Each job's legs by state and calls made, counted by the database."""
        states: dict[str, dict[LegState, int]] = {job_id: {} for job_id in job_ids}
        calls = dict.fromkeys(job_ids, 0)
        if job_ids:
            for job_id, state, n, made in self.conn.execute(_STATE_COUNTS,
                                                            {"job_ids": list(job_ids)}):
                states[job_id][LegState(state)] = int(n)
                calls[job_id] += int(made or 0)
        return {job_id: LegTotals(states[job_id], calls[job_id]) for job_id in job_ids}

    def notable_legs(self, job_id: str, limit: int) -> tuple[list[LegRecord], int]:
        """The first ``limit`` legs a person should read about, and how many there are."""
        where = and_(legs.c.job_id == job_id, _NOTABLE)
        found = self.conn.execute(select(legs).where(where).order_by(legs.c.position)
                                  .limit(limit))
        total = self.conn.execute(select(func.count()).select_from(legs).where(where))
        return [leg_record(row) for row in found], int(total.scalar_one())

    def leg_positions(self, job_id: str, leg_ids: Sequence[str]) -> dict[str, tuple[int, str]]:
        """(position, provider) of the named legs of the job."""
        if not leg_ids:
            return {}
        query = select(legs.c.id, legs.c.position, legs.c.provider).where(
            legs.c.job_id == job_id, legs.c.id.in_(list(leg_ids)))
        return {leg_id: (position, provider)
                for leg_id, position, provider in self.conn.execute(query)}

    # a job's history, for the dashboard's timeline

    def attempts_of_job(self, job_id: str, limit: int) -> list[AttemptRecord]:
        """The latest ``limit`` provider calls made for any of the job's legs, oldest first
        (without the answers' bodies)."""
        query = (
            select(*ATTEMPT_SUMMARY)
            .join(legs, legs.c.id == attempts.c.leg_id)
            .where(legs.c.job_id == job_id)
            .order_by(attempts.c.started_at.desc(), attempts.c.id.desc())
            .limit(limit)
        )
        found = [attempt_record(row) for row in self.conn.execute(query)]
        found.reverse()
        return found

    def callback_pages_of_job(self, job_id: str, limit: int) -> list[dict[str, Any]]:
        """The latest ``limit`` callback pages stored for the job's Paywall legs (by operation,
        or by code for legs that never learned their operation's id), oldest first; no bodies."""
        references = select(legs.c.provider_reference).where(
            _PAYWALL_OF_JOB, legs.c.provider_reference.is_not(None))
        codes = select(legs.c.match_key).where(_PAYWALL_OF_JOB,
                                               legs.c.provider_reference.is_(None))
        query = (
            select(callback_pages.c.bulk_payment_id, callback_pages.c.merchant_unique_code,
                   callback_pages.c.page_number, callback_pages.c.total_pages,
                   callback_pages.c.totals, callback_pages.c.received_at)
            .where(or_(callback_pages.c.bulk_payment_id.in_(references),
                       callback_pages.c.merchant_unique_code.in_(codes)))
            .order_by(callback_pages.c.received_at.desc(), callback_pages.c.id.desc())
            .limit(limit)
        )
        found = [dict(row._mapping) for row in self.conn.execute(query, {"job_id": job_id})]
        found.reverse()
        return found

    def paywall_legs_for(self, job_id: str, references: Sequence[str],
                         codes: Sequence[str]) -> list[LegRecord]:
        """The job's Paywall legs that these operations or codes name."""
        wanted = []
        if references:
            wanted.append(legs.c.provider_reference.in_(list(references)))
        if codes:
            wanted.append(legs.c.match_key.in_(list(codes)))
        if not wanted:
            return []
        query = select(legs).where(_PAYWALL_OF_JOB, or_(*wanted)).order_by(legs.c.position)
        return [leg_record(row) for row in self.conn.execute(query, {"job_id": job_id})]

    # metrics: the tallies, a few dozen rows whatever the history

    def leg_tally(self) -> list[tuple[str, str, int]]:
        """(provider, state, legs) over the whole ledger."""
        return [(provider, state, int(n)) for provider, state, n in self._summed(
            leg_tallies, leg_tallies.c.provider, leg_tallies.c.state)]

    def job_tally(self) -> dict[JobState, int]:
        """Jobs per state over the whole ledger."""
        return {JobState(state): int(n)
                for state, n in self._summed(job_tallies, job_tallies.c.state)}

    def _summed(self, table: Table, *keys: Any) -> list[Any]:
        return list(self.conn.execute(select(*keys, func.sum(table.c.n)).group_by(*keys)))

    def oldest_job_in(self, state: JobState) -> datetime | None:
        """When the oldest job in ``state`` was accepted (the (state, created_at) index)."""
        query = select(func.min(jobs.c.created_at)).where(jobs.c.state == state.value)
        value: datetime | None = self.conn.execute(query).scalar()
        return value

    def events_of(self, job_id: str, limit: int) -> list[JobEvent]:
        """The job's newest ``limit`` events, oldest first (issue 17)."""
        return SqlEventRepository(self.conn).of_job(job_id, limit)

    def notifications_of(self, job_id: str) -> list[OutcomeDelivery]:
        """The job's outcome deliveries, oldest first (issue 17)."""
        return SqlOutcomeRepository(self.conn).of_job(job_id)

    def call_tally(self) -> list[CallTally]:
        """Provider calls that finished with a latency, by provider and operation."""
        buckets = [func.sum(call_tallies.c[latency_column(b)]) for b in LATENCY_BOUNDS_MS]
        query = (select(call_tallies.c.provider, call_tallies.c.operation,
                        func.sum(call_tallies.c.calls), func.sum(call_tallies.c.total_ms),
                        *buckets)
                 .group_by(call_tallies.c.provider, call_tallies.c.operation))
        return [CallTally(row[0], row[1], [int(n) for n in row[4:]], int(row[2]), float(row[3]))
                for row in self.conn.execute(query)]


class LedgerReads:
    """The SQL read side (``worker.services.views.ReadSide``), built from the engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def snapshot(self) -> Iterator[LedgerViews]:
        """The read side over one read-only snapshot of the ledger."""
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{READ_ONLY: True}).begin()
                yield LedgerViews(conn)  # closing the connection rolls its transaction back
        except SQLAlchemyError as exc:
            raise LedgerUnavailable(type(exc).__name__) from exc

    def fold_tallies(self) -> bool:
        try:
            return fold_tallies(self.engine)
        except SQLAlchemyError as exc:
            raise LedgerUnavailable(type(exc).__name__) from exc

    def ping(self) -> None:
        """Raises unless the ledger answers a query."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def encode_cursor(self, created_at: datetime, job_id: str) -> str:
        return encode_cursor(created_at, job_id)

    def decode_cursor(self, cursor: str) -> tuple[datetime, str]:
        return decode_cursor(cursor)


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
