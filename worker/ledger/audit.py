"""The audit side of the ledger (issue 17): a job's provider calls read a page at a time, and
pruning the attempt rows and stored callback page bodies of final jobs.

Pages of the export are keyset-paged on (started_at, id), so each page is one short query
whatever the job's size. Response bodies are never read here: they may hold provider data.

Pruning keeps what reconciliation reads: a callback page's ``totals`` (and the page row itself,
which makes a re-delivered page a duplicate); only its raw body is emptied. A leg's ``attempts``
counter is a column of the leg and stays. The call latency histogram (``call_tallies``, kept by
triggers that subtract a deleted attempt) is given the pruned calls back in the same
transaction, so ``/metrics`` counters never go down.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    and_,
    case,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from worker.domain.states import FINAL_JOB_STATES, Provider
from worker.ledger.tables import (
    attempts,
    call_tallies,
    callback_pages,
    jobs,
    latency_column,
    legs,
)
from worker.services.records import LATENCY_BOUNDS_MS, AttemptLine, AuditedJob, Pruned

_FINAL = [state.value for state in FINAL_JOB_STATES]




def audited_job(conn: Connection, job_id: str) -> AuditedJob | None:
    row = conn.execute(select(jobs.c.id, jobs.c.state).where(jobs.c.id == job_id)).first()
    if row is None:
        return None
    counted = conn.execute(select(func.coalesce(func.sum(legs.c.attempts), 0))
                           .where(legs.c.job_id == job_id)).scalar_one()
    return AuditedJob(row.id, row.state, int(counted))


_LINE = select(attempts.c.id, attempts.c.leg_id, legs.c.provider, attempts.c.operation,
               attempts.c.started_at, attempts.c.finished_at, attempts.c.http_status,
               attempts.c.outcome, attempts.c.provider_code, attempts.c.request_id,
               attempts.c.latency_ms).join(legs, legs.c.id == attempts.c.leg_id)


def attempts_page(conn: Connection, job_id: str, after: tuple[datetime, int] | None,
                  limit: int) -> list[AttemptLine]:
    """The job's next ``limit`` calls after ``after`` (started_at, id), in that order."""
    query = _LINE.where(legs.c.job_id == job_id)
    if after is not None:
        started, last_id = after
        query = query.where(or_(attempts.c.started_at > started,
                                and_(attempts.c.started_at == started, attempts.c.id > last_id)))
    rows = conn.execute(query.order_by(attempts.c.started_at, attempts.c.id).limit(limit))
    return [AttemptLine(*row) for row in rows]


def prunable_jobs(conn: Connection, older_than: datetime, after_id: str | None,
                  limit: int) -> list[str]:
    """Ids of final jobs last updated before ``older_than``, by id, after ``after_id``."""
    query = select(jobs.c.id).where(jobs.c.state.in_(_FINAL), jobs.c.updated_at < older_than)
    if after_id is not None:
        query = query.where(jobs.c.id > after_id)
    return list(conn.execute(query.order_by(jobs.c.id).limit(limit)).scalars())


def prune_jobs(conn: Connection, job_ids: Sequence[str]) -> Pruned:
    """Delete the jobs' attempt rows and empty their callback pages' bodies (in ``conn``'s
    transaction). A job that is not final (any more) is left alone."""
    final_ids = select(jobs.c.id).where(jobs.c.id.in_(list(job_ids)), jobs.c.state.in_(_FINAL))
    their_legs = select(legs.c.id).where(legs.c.job_id.in_(final_ids))
    _give_back_calls(conn, attempts.c.leg_id.in_(their_legs))
    removed = conn.execute(delete(attempts).where(attempts.c.leg_id.in_(their_legs))).rowcount
    return Pruned(len(job_ids), removed, _empty_page_bodies(conn, final_ids))


def _empty_page_bodies(conn: Connection, final_ids: Select[tuple[str]]) -> int:
    """Empty the bodies of the Paywall pages the jobs' legs point at (by operation or by
    code), unless a leg of a job that is not final points at them too."""
    points_at_page = and_(legs.c.provider == Provider.PAYWALL.value, or_(
        legs.c.provider_reference == callback_pages.c.bulk_payment_id,
        legs.c.match_key == callback_pages.c.merchant_unique_code))
    ours = exists().where(legs.c.job_id.in_(final_ids), points_at_page)
    others = exists().where(jobs.c.id == legs.c.job_id, jobs.c.state.not_in(_FINAL),
                            points_at_page)
    emptied = conn.execute(update(callback_pages).where(
        ours, ~others, func.length(callback_pages.c.body_zlib) > 0).values(body_zlib=b""))
    return int(emptied.rowcount)


def _give_back_calls(conn: Connection, which: ColumnElement[bool]) -> None:
    """Add the calls about to be deleted back to the latency tallies (shard 0), which the
    delete triggers subtract them from: the histogram's counters must never go down."""
    latency = attempts.c.latency_ms
    figures = conn.execute(
        select(legs.c.provider, attempts.c.operation, func.count(), func.sum(latency),
               *(func.sum(case((latency <= bound, 1), else_=0)) for bound in LATENCY_BOUNDS_MS))
        .join(legs, legs.c.id == attempts.c.leg_id)
        .where(which, latency.is_not(None))
        .group_by(legs.c.provider, attempts.c.operation)).all()
    names = ["calls", "total_ms", *(latency_column(bound) for bound in LATENCY_BOUNDS_MS)]
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    for provider, operation, *values in figures:
        row = {"shard": 0, "provider": provider, "operation": operation,
               **{name: value or 0 for name, value in zip(names, values, strict=True)}}
        statement = dialect.insert(call_tallies).values(row)
        conn.execute(statement.on_conflict_do_update(
            index_elements=["shard", "provider", "operation"],
            set_={name: call_tallies.c[name] + statement.excluded[name] for name in names}))


class SqlAuditLedger:
    """The audit port (``worker.services.audit.AuditLedger``) over the SQL ledger."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def job(self, job_id: str) -> AuditedJob | None:
        with self.engine.connect() as conn:
            return audited_job(conn, job_id)

    def attempts_page(self, job_id: str, after: tuple[datetime, int] | None,
                      limit: int) -> list[AttemptLine]:
        """One page of the job's calls, in its own short transaction."""
        with self.engine.connect() as conn:
            return attempts_page(conn, job_id, after, limit)

    def prune_batch(self, older_than: datetime, after_id: str | None, limit: int, *,
                    dry_run: bool) -> tuple[list[str], Pruned]:
        """Prune the next ``limit`` final jobs older than ``older_than`` in one transaction
        (rolled back when ``dry_run``, so its counts are exact); their ids and what went."""
        with self.engine.connect() as conn:
            ids = prunable_jobs(conn, older_than, after_id, limit)
            if not ids:
                return [], Pruned()
            done = prune_jobs(conn, ids)
            if dry_run:
                conn.rollback()
            else:
                conn.commit()
        return ids, done
