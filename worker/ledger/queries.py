"""Every query the services make. The only module that writes SQL statements."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Executable,
    Table,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from worker.domain.states import JobState, LegState, Provider
from worker.ledger.records import (
    AttemptRecord,
    JobRecord,
    LegRecord,
    leg_reconciliation_as_stored,
)
from worker.ledger.rows import attempt_record as _attempt
from worker.ledger.rows import job_record as _job
from worker.ledger.rows import leg_record as _leg
from worker.ledger.tables import attempts, callback_pages, jobs, legs

ATTEMPT_FIELDS = ("operation", "started_at", "finished_at", "http_status", "outcome",
                  "provider_code", "request_id", "latency_ms", "response_body")


# The statements every job runs, built once: on SQLite, building a statement and its cache key
# costs more than running it (bench/README: 64 us to build and run a lookup, 22 us to run it).
_GET_JOB = select(jobs).where(jobs.c.id == bindparam("job_id"))
_GET_JOB_LOCKED = _GET_JOB.with_for_update()
_GET_LEGS = select(legs).where(legs.c.id.in_(bindparam("leg_ids", expanding=True)))
_INSERT_LEGS = insert(legs)
_INSERT_LEGS_RETURNING = insert(legs).returning(*legs.c, sort_by_parameter_order=True)
_START_ATTEMPTS = insert(attempts).returning(attempts.c.leg_id, attempts.c.id,
                                             sort_by_parameter_order=True)
_CLAIM = (
    update(legs)
    .where(legs.c.id == bindparam("b_id"), legs.c.version == bindparam("b_version"))
    .values(
        state=LegState.IN_FLIGHT.value,
        lease_token=bindparam("b_token"),
        lease_expires_at=bindparam("b_until"),
        needs_resolve=bindparam("b_resolve"),
        attempts=legs.c.attempts + 1,
        version=legs.c.version + 1,
        updated_at=bindparam("b_now"),
    )
)
_CLAIMED = select(legs.c.id).where(legs.c.id.in_(bindparam("leg_ids", expanding=True)),
                                   legs.c.lease_token == bindparam("token"))
_FINISHED = select(legs.c.id, legs.c.version).where(
    legs.c.id.in_(bindparam("leg_ids", expanding=True)), legs.c.lease_token.is_(None))
_FILL_ATTEMPT = update(attempts).where(attempts.c.id == bindparam("b_attempt")).values(
    **{name: bindparam(f"b_{name}") for name in ATTEMPT_FIELDS})
_INSERT_ATTEMPTS = insert(attempts)
_COUNT_ATTEMPTS = (update(legs).where(legs.c.id == bindparam("b_id"))
                   .values(attempts=legs.c.attempts + bindparam("b_n")))
_LEG_STATE_COUNTS = (select(legs.c.state, func.count())
                     .where(legs.c.job_id == bindparam("job_id")).group_by(legs.c.state))
_LEG_EVIDENCE = (select(legs.c.id, legs.c.state, legs.c.reconciliation)
                 .where(legs.c.job_id == bindparam("job_id")).order_by(legs.c.position))


@functools.cache
def _insert_once(table: Table, dialect: str) -> Executable | None:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING the key, where the dialect has it (a repeat
    then costs no savepoint, and other integrity errors still raise); None elsewhere."""
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing().returning(table.c.id)
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing().returning(table.c.id)
    return None


@functools.cache
def _update_job(columns: tuple[str, ...]) -> Executable:
    return update(jobs).where(jobs.c.id == bindparam("b_job")).values(
        version=jobs.c.version + 1, **{c: bindparam(f"b_{c}") for c in columns})


@functools.cache
def _finish(columns: tuple[str, ...]) -> Executable:
    """Out of flight, compare-and-set, the lease cleared, the attempts count adjusted."""
    return (
        update(legs)
        .where(legs.c.id == bindparam("b_id"), legs.c.version == bindparam("b_version"))
        .values(
            lease_token=None,
            lease_expires_at=None,
            version=legs.c.version + 1,
            attempts=legs.c.attempts + bindparam("b_attempts_delta"),
            **{column: bindparam(f"b_{column}") for column in columns},
        )
    )


class Ledger:
    """Queries over one connection inside the unit of work's transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def commit(self) -> None:
        self.conn.commit()

    def _insert_once(self, table: Table, row: dict[str, Any]) -> bool:
        """Insert the row unless one with the same key is there; whether it was inserted."""
        once = _insert_once(table, self.conn.dialect.name)
        if once is not None:
            # RETURNING rather than the row count, which psycopg does not give here.
            return self.conn.execute(once, row).first() is not None
        nested = self.conn.begin_nested()
        try:
            self.conn.execute(insert(table), row)
        except IntegrityError:
            nested.rollback()
            return False
        nested.commit()
        return True

    # jobs

    def insert_job(self, job: dict[str, Any], leg_rows: Sequence[dict[str, Any]]) -> bool:
        """Insert a job and its legs; False (and nothing written) when the id exists already."""
        return self.insert_job_returning_legs(job, leg_rows, returning=False) is not None

    def insert_job_returning_legs(
        self, job: dict[str, Any], leg_rows: Sequence[dict[str, Any]], *, returning: bool = True
    ) -> list[LegRecord] | None:
        """Insert a job and its legs, answering the legs as stored (in ``leg_rows`` order);
        None (and nothing written) when the id exists already."""
        if not self._insert_once(jobs, job):
            return None
        if not leg_rows:
            return []
        if not returning:
            self.conn.execute(_INSERT_LEGS, list(leg_rows))
            return []
        return [_leg(row) for row in self.conn.execute(_INSERT_LEGS_RETURNING, list(leg_rows))]

    def get_job(self, job_id: str, *, lock: bool = False) -> JobRecord | None:
        """The job; ``lock`` holds its row until the transaction ends (PostgreSQL), so that
        concurrent recomputations of one job's state run one after the other."""
        query = _GET_JOB_LOCKED if lock else _GET_JOB
        row = self.conn.execute(query, {"job_id": job_id}).first()
        return _job(row) if row else None

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

    def start_job(self, job_id: str, now: datetime) -> None:
        """accepted -> in_progress, if it still is accepted."""
        self.conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.state == JobState.ACCEPTED.value)
            .values(state=JobState.IN_PROGRESS.value, updated_at=now, version=jobs.c.version + 1)
        )

    def update_job(self, job_id: str, **values: Any) -> None:
        self.conn.execute(_update_job(tuple(sorted(values))),
                          {"b_job": job_id, **{f"b_{k}": v for k, v in values.items()}})

    # legs

    def get_leg(self, leg_id: str) -> LegRecord | None:
        row = self.conn.execute(select(legs).where(legs.c.id == leg_id)).first()
        return _leg(row) if row else None

    def get_legs(self, leg_ids: Sequence[str]) -> list[LegRecord]:
        if not leg_ids:
            return []
        return [_leg(row) for row in self.conn.execute(_GET_LEGS, {"leg_ids": list(leg_ids)})]

    def legs_of(self, job_id: str) -> list[LegRecord]:
        query = select(legs).where(legs.c.job_id == job_id).order_by(legs.c.position)
        return [_leg(row) for row in self.conn.execute(query)]

    def leg_evidence(self, job_id: str) -> list[tuple[str, LegState, dict[str, Any] | None]]:
        """(id, state, reconciliation) of each leg: what a job's reconciliation reads."""
        rows = self.conn.execute(_LEG_EVIDENCE, {"job_id": job_id})
        return [(row[0], LegState(row[1]), leg_reconciliation_as_stored(row[2])) for row in rows]

    def legs_in_states(self, job_id: str, states: Iterable[LegState]) -> list[LegRecord]:
        query = (
            select(legs)
            .where(legs.c.job_id == job_id, legs.c.state.in_([s.value for s in states]))
            .order_by(legs.c.position)
        )
        return [_leg(row) for row in self.conn.execute(query)]

    def leg_state_counts(self, job_id: str) -> dict[LegState, int]:
        rows = self.conn.execute(_LEG_STATE_COUNTS, {"job_id": job_id})
        return {LegState(state): count for state, count in rows}

    def update_leg(self, leg_id: str, expected_version: int, **values: Any) -> bool:
        """Compare-and-set: applies only if nobody changed the leg since it was read."""
        result = self.conn.execute(
            update(legs)
            .where(legs.c.id == leg_id, legs.c.version == expected_version)
            .values(version=legs.c.version + 1, **values)
        )
        return result.rowcount == 1

    def claim_many(self, rows: Sequence[dict[str, Any]], token: str, until: datetime,
                   now: datetime) -> set[str]:
        """Compare-and-set a batch of legs to in flight under one lease token; the ids won.

        Each row is ``{"b_id", "b_version", "b_resolve"}``. The claim also counts the attempt
        about to be made (its row is written by :meth:`start_attempts`).
        """
        if not rows:
            return set()
        params = [{**row, "b_token": token, "b_until": until, "b_now": now} for row in rows]
        if self.conn.execute(_CLAIM, params).rowcount == len(rows):
            # One row per primary key: as many rows changed as asked means every claim won.
            return {row["b_id"] for row in rows}
        won = self.conn.execute(_CLAIMED, {"leg_ids": [row["b_id"] for row in rows],
                                           "token": token})
        return set(won.scalars())

    def start_attempts(self, leg_ids: Sequence[str], operation: str,
                       now: datetime) -> dict[str, int]:
        """Attempt rows for calls about to be made (counted by the claim); id by leg."""
        if not leg_ids:
            return {}
        result = self.conn.execute(
            _START_ATTEMPTS, [{"leg_id": leg_id, "operation": operation, "started_at": now}
                              for leg_id in leg_ids])
        return {leg_id: attempt_id for leg_id, attempt_id in result}

    def finish_many(self, rows: Sequence[dict[str, Any]]) -> set[str]:
        """Compare-and-set a batch of legs out of flight; the ids whose change applied.

        Every row carries the same columns (``b_``-prefixed), plus ``b_id``, ``b_version`` (the
        version the claim left) and ``b_attempts_delta`` (calls made beyond the one the claim
        counted); the lease is cleared.
        """
        if not rows:
            return set()
        columns = tuple(name.removeprefix("b_") for name in rows[0]
                        if name not in ("b_id", "b_version", "b_attempts_delta"))
        if self.conn.execute(_finish(columns), list(rows)).rowcount == len(rows):
            return {row["b_id"] for row in rows}
        applied = self.conn.execute(_FINISHED, {"leg_ids": [row["b_id"] for row in rows]})
        versions = {row["b_id"]: row["b_version"] + 1 for row in rows}
        return {leg_id for leg_id, version in applied if versions.get(leg_id) == version}

    def record_attempts(self, finished: Sequence[dict[str, Any]],
                        added: Sequence[dict[str, Any]], dropped: Sequence[dict[str, Any]]) -> None:
        """Fill attempt rows written before their calls, add the further calls, drop the rows
        of calls never made (the legs' counts are :meth:`count_attempts`' or the finish's)."""
        if finished:
            self.conn.execute(_FILL_ATTEMPT, [
                {"b_attempt": row["attempt_id"], **{f"b_{n}": row[n] for n in ATTEMPT_FIELDS}}
                for row in finished])
        if added:
            self.conn.execute(_INSERT_ATTEMPTS, list(added))
        for row in dropped:
            self.conn.execute(attempts.delete().where(attempts.c.id == row["attempt_id"]))

    def count_attempts(self, deltas: Mapping[str, int]) -> None:
        """Add ``deltas[leg_id]`` to each leg's count of attempts."""
        changed = [{"b_id": leg_id, "b_n": n} for leg_id, n in deltas.items() if n]
        if changed:
            self.conn.execute(_COUNT_ATTEMPTS, changed)

    def legs_due(self, now: datetime, states: Iterable[LegState], limit: int) -> list[LegRecord]:
        """Legs in ``states`` whose next attempt time has passed (oldest first)."""
        query = (
            select(legs)
            .where(
                legs.c.state.in_([s.value for s in states]),
                or_(legs.c.next_attempt_at.is_(None), legs.c.next_attempt_at <= now),
            )
            .order_by(legs.c.next_attempt_at)
            .limit(limit)
            # Concurrent sweeps (two beats, several machines) share the work instead of
            # waiting on each other or taking the same legs. SQLite ignores it: one writer.
            .with_for_update(skip_locked=True)
        )
        return [_leg(row) for row in self.conn.execute(query)]

    def mark_swept(self, leg_ids: Sequence[str], now: datetime) -> None:
        """Due again as of now: the next sweep waits a full grace before dispatching again."""
        self.postpone_legs(leg_ids, now)

    def legs_with_expired_lease(self, now: datetime, limit: int) -> list[LegRecord]:
        query = (
            select(legs)
            .where(legs.c.state == LegState.IN_FLIGHT.value, legs.c.lease_expires_at < now)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [_leg(row) for row in self.conn.execute(query)]

    def cancelled_legs_without_evidence(self, now: datetime, limit: int) -> list[LegRecord]:
        """Cancelled legs still without final figures whose next read is due."""
        query = (
            select(legs)
            .where(
                legs.c.state == LegState.CANCELLED.value,
                legs.c.reconciliation.is_(None),
                or_(legs.c.next_attempt_at.is_(None), legs.c.next_attempt_at <= now),
            )
            .limit(limit)
        )
        return [_leg(row) for row in self.conn.execute(query)]

    def postpone_legs(self, leg_ids: Sequence[str], until: datetime) -> None:
        """Nothing is due for these legs before ``until`` (a read was just asked for)."""
        if leg_ids:
            self.conn.execute(
                update(legs).where(legs.c.id.in_(list(leg_ids))).values(next_attempt_at=until)
            )

    def legs_waiting_due(self, now: datetime, limit: int) -> list[LegRecord]:
        """Legs waiting on callbacks past their deadline: recovery is due."""
        query = (
            select(legs)
            .where(
                legs.c.state.in_(
                    [LegState.AWAITING_CALLBACKS.value, LegState.REFUND_REQUESTED.value]
                ),
                legs.c.next_attempt_at <= now,
            )
            .order_by(legs.c.next_attempt_at)
            .limit(limit)
        )
        return [_leg(row) for row in self.conn.execute(query)]

    def waiting_legs_for(self, bulk_payment_id: str, code: str) -> list[LegRecord]:
        """Paywall legs a page may belong to: by operation id, else by code (id unknown)."""
        waiting = [LegState.AWAITING_CALLBACKS.value, LegState.REFUND_REQUESTED.value]
        query = select(legs).where(
            legs.c.provider == Provider.PAYWALL.value,
            legs.c.state.in_(waiting),
            or_(
                legs.c.provider_reference == bulk_payment_id,
                and_(legs.c.match_key == code, legs.c.provider_reference.is_(None)),
            ),
        )
        return [_leg(row) for row in self.conn.execute(query)]

    # callback pages

    def insert_page(self, page: dict[str, Any]) -> bool:
        """Store a callback page once; False when that page was stored before."""
        return self._insert_once(callback_pages, page)

    def page_totals(self, *, bulk_payment_id: str | None, code: str | None) -> list[Any]:
        """(bulk_payment_id, page_number, total_pages, totals) of the pages under an id or code."""
        query = select(
            callback_pages.c.bulk_payment_id,
            callback_pages.c.page_number,
            callback_pages.c.total_pages,
            callback_pages.c.totals,
        ).order_by(callback_pages.c.id)
        if bulk_payment_id is not None:
            query = query.where(callback_pages.c.bulk_payment_id == bulk_payment_id)
        else:
            query = query.where(callback_pages.c.merchant_unique_code == code)
        return list(self.conn.execute(query))

    def pages_stored(self, bulk_payment_id: str, code: str) -> int:
        query = select(func.count()).select_from(callback_pages).where(
            callback_pages.c.bulk_payment_id == bulk_payment_id,
            callback_pages.c.merchant_unique_code == code,
        )
        return int(self.conn.execute(query).scalar_one())

    def count_pages(self) -> int:
        return int(self.conn.execute(select(func.count()).select_from(callback_pages)).scalar_one())

    # attempts

    def start_attempt(self, leg_id: str, operation: str, started_at: datetime) -> int:
        """Record a provider call before it is made, so a crash mid-call still counts it."""
        result = self.conn.execute(
            insert(attempts).values(leg_id=leg_id, operation=operation, started_at=started_at)
        )
        self.conn.execute(
            update(legs).where(legs.c.id == leg_id).values(attempts=legs.c.attempts + 1)
        )
        pk = result.inserted_primary_key
        assert pk is not None
        return int(pk[0])

    def add_attempt(self, leg_id: str, **values: Any) -> None:
        """Record a call made (and finished) for a leg."""
        self.conn.execute(insert(attempts).values(leg_id=leg_id, **values))
        self.conn.execute(
            update(legs).where(legs.c.id == leg_id).values(attempts=legs.c.attempts + 1)
        )

    def finish_attempt(self, attempt_id: int, **values: Any) -> None:
        self.conn.execute(update(attempts).where(attempts.c.id == attempt_id).values(**values))

    def attempts_of(self, leg_id: str) -> list[AttemptRecord]:
        query = select(attempts).where(attempts.c.leg_id == leg_id).order_by(attempts.c.id)
        return [
            _attempt(row) for row in self.conn.execute(query)
        ]
