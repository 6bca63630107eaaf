"""The legs repository: compare-and-set changes, claims under a lease, and what is due."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Executable, and_, bindparam, func, or_, select, update

from worker.domain.states import LegState, Provider, Reason
from worker.ledger.rows import leg_reconciliation_as_stored, leg_record, stored_values
from worker.ledger.tables import legs
from worker.services.records import LegClaim, LegFinish, LegRecord

# What a round may change on a leg; every other column stays as the claim found it.
ROUND_COLUMNS = ("state", "reason", "detail", "already_cancelled", "provider_reference",
                 "reconciliation", "retries", "needs_resolve", "next_attempt_at", "at_risk",
                 "expected_count", "updated_at", "provisional_evidence", "evidence_deadline",
                 "evidence_reads")
WAITING_STATES = (LegState.AWAITING_CALLBACKS.value, LegState.REFUND_REQUESTED.value)

_GET_LEGS = select(legs).where(legs.c.id.in_(bindparam("leg_ids", expanding=True)))
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
_FINISH = (
    update(legs)
    .where(legs.c.id == bindparam("b_id"), legs.c.version == bindparam("b_version"))
    .values(
        lease_token=None,
        lease_expires_at=None,
        version=legs.c.version + 1,
        attempts=legs.c.attempts + bindparam("b_attempts_delta"),
        **{column: bindparam(f"b_{column}") for column in ROUND_COLUMNS},
    )
)
_FINISHED = select(legs.c.id, legs.c.version).where(
    legs.c.id.in_(bindparam("leg_ids", expanding=True)), legs.c.lease_token.is_(None))
_COUNT_ATTEMPTS = (update(legs).where(legs.c.id == bindparam("b_id"))
                   .values(attempts=legs.c.attempts + bindparam("b_n")))
_OF_JOBS = legs.c.job_id.in_(bindparam("job_ids", expanding=True))
_STATE_COUNTS = (select(legs.c.job_id, legs.c.state, func.count())
                 .where(_OF_JOBS).group_by(legs.c.job_id, legs.c.state))
_EVIDENCE = (select(legs.c.job_id, legs.c.id, legs.c.state, legs.c.reconciliation)
             .where(_OF_JOBS).order_by(legs.c.job_id, legs.c.position))


@functools.cache
def _update(columns: tuple[str, ...]) -> Executable:
    return (update(legs)
            .where(legs.c.id == bindparam("b_id"), legs.c.version == bindparam("b_version"))
            .values(version=legs.c.version + 1,
                    **{column: bindparam(f"b_{column}") for column in columns}))


def finish_row(finish: LegFinish) -> dict[str, Any]:
    """The round's columns from ``values``, the others as the leg was claimed."""
    row: dict[str, Any] = {"b_id": finish.leg.id, "b_version": finish.version,
                           "b_attempts_delta": finish.attempts_delta}
    for column in ROUND_COLUMNS:
        value = finish.values[column] if column in finish.values else getattr(finish.leg, column)
        row[f"b_{column}"] = value
    return stored_values(row)


class SqlLegRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _select(self, query: Executable, params: Mapping[str, Any] | None = None
                ) -> list[LegRecord]:
        return [leg_record(row) for row in self.conn.execute(query, params)]

    def get(self, leg_id: str) -> LegRecord | None:
        found = self.get_many([leg_id])
        return found[0] if found else None

    def get_many(self, leg_ids: Sequence[str]) -> list[LegRecord]:
        return self._select(_GET_LEGS, {"leg_ids": list(leg_ids)}) if leg_ids else []

    def of_job(self, job_id: str) -> list[LegRecord]:
        return self._select(select(legs).where(legs.c.job_id == job_id).order_by(legs.c.position))

    def in_states(self, job_id: str, states: Iterable[LegState]) -> list[LegRecord]:
        return self._select(
            select(legs)
            .where(legs.c.job_id == job_id, legs.c.state.in_([s.value for s in states]))
            .order_by(legs.c.position))

    def state_counts(self, job_ids: Sequence[str]) -> dict[str, dict[LegState, int]]:
        counts: dict[str, dict[LegState, int]] = {job_id: {} for job_id in job_ids}
        if job_ids:
            for job_id, state, count in self.conn.execute(_STATE_COUNTS,
                                                          {"job_ids": list(job_ids)}):
                counts[job_id][LegState(state)] = count
        return counts

    def evidence(self, job_ids: Sequence[str]
                 ) -> dict[str, list[tuple[str, LegState, dict[str, Any] | None]]]:
        found: dict[str, list[tuple[str, LegState, dict[str, Any] | None]]] = {
            job_id: [] for job_id in job_ids}
        if job_ids:
            for job_id, leg_id, state, recon in self.conn.execute(_EVIDENCE,
                                                                  {"job_ids": list(job_ids)}):
                found[job_id].append((leg_id, LegState(state), leg_reconciliation_as_stored(recon)))
        return found

    def update(self, leg_id: str, expected_version: int, **values: Any) -> bool:
        params = {"b_id": leg_id, "b_version": expected_version,
                  **{f"b_{k}": v for k, v in stored_values(values).items()}}
        return self.conn.execute(_update(tuple(sorted(values))), params).rowcount == 1

    def claim_many(self, claims: Sequence[LegClaim], token: str, until: datetime,
                   now: datetime) -> set[str]:
        if not claims:
            return set()
        params = [{"b_id": c.leg_id, "b_version": c.version, "b_resolve": c.resolve,
                   "b_token": token, "b_until": until, "b_now": now} for c in claims]
        if self.conn.execute(_CLAIM, params).rowcount == len(claims):
            # One row per primary key: as many rows changed as asked means every claim won.
            return {c.leg_id for c in claims}
        won = self.conn.execute(_CLAIMED, {"leg_ids": [c.leg_id for c in claims],
                                           "token": token})
        return set(won.scalars())

    def finish_many(self, finishes: Sequence[LegFinish]) -> set[str]:
        if not finishes:
            return set()
        rows = [finish_row(finish) for finish in finishes]
        if self.conn.execute(_FINISH, rows).rowcount == len(rows):
            return {row["b_id"] for row in rows}
        applied = self.conn.execute(_FINISHED, {"leg_ids": [row["b_id"] for row in rows]})
        versions = {row["b_id"]: row["b_version"] + 1 for row in rows}
        return {leg_id for leg_id, version in applied if versions.get(leg_id) == version}

    def count_attempts(self, deltas: Mapping[str, int]) -> None:
        changed = [{"b_id": leg_id, "b_n": n} for leg_id, n in deltas.items() if n]
        if changed:
            self.conn.execute(_COUNT_ATTEMPTS, changed)

    def due(self, now: datetime, states: Iterable[LegState], limit: int) -> list[LegRecord]:
        return self._select(
            select(legs)
            .where(
                legs.c.state.in_([s.value for s in states]),
                or_(legs.c.next_attempt_at.is_(None), legs.c.next_attempt_at <= now),
            )
            .order_by(legs.c.next_attempt_at)
            .limit(limit)
            # Concurrent sweeps (two beats, several machines) share the work instead of
            # waiting on each other or taking the same legs. SQLite ignores it: one writer.
            .with_for_update(skip_locked=True))

    def postpone(self, leg_ids: Sequence[str], until: datetime) -> None:
        if leg_ids:
            self.conn.execute(
                update(legs).where(legs.c.id.in_(list(leg_ids))).values(next_attempt_at=until))

    def with_expired_lease(self, now: datetime, limit: int) -> list[LegRecord]:
        return self._select(
            select(legs)
            .where(legs.c.state == LegState.IN_FLIGHT.value, legs.c.lease_expires_at < now)
            .limit(limit)
            .with_for_update(skip_locked=True))

    def cancelled_without_evidence(self, now: datetime, limit: int) -> list[LegRecord]:
        return self._select(
            select(legs)
            .where(
                legs.c.state == LegState.CANCELLED.value,
                legs.c.reconciliation.is_(None),
                or_(legs.c.next_attempt_at.is_(None), legs.c.next_attempt_at <= now),
            )
            .limit(limit))

    def waiting_due(self, now: datetime, limit: int) -> list[LegRecord]:
        return self._select(
            select(legs)
            .where(legs.c.state.in_(WAITING_STATES), legs.c.next_attempt_at <= now)
            .order_by(legs.c.next_attempt_at)
            .limit(limit))

    def reject_unsent(self, job_id: str, reason: Reason, detail: str | None,
                      now: datetime) -> int:
        """End every leg of the job no provider was called for (pending, no attempt)
        ``rejected`` with ``reason``, in one statement: a compare-and-set on each row's state,
        so a leg a worker claims meanwhile is left alone. How many ended."""
        result = self.conn.execute(
            update(legs)
            .where(legs.c.job_id == job_id, legs.c.state == LegState.PENDING.value,
                   legs.c.attempts == 0)
            .values(state=LegState.REJECTED.value, reason=reason.value, detail=detail,
                    next_attempt_at=None, updated_at=now, version=legs.c.version + 1)
        )
        return int(result.rowcount)

    def waiting_for(self, bulk_payment_id: str, code: str) -> list[LegRecord]:
        return self._select(select(legs).where(
            legs.c.provider == Provider.PAYWALL.value,
            legs.c.state.in_(WAITING_STATES),
            or_(
                legs.c.provider_reference == bulk_payment_id,
                and_(legs.c.match_key == code, legs.c.provider_reference.is_(None)),
            ),
        ))
