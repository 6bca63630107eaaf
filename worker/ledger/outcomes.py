"""The outbox of outcomes a job owes its producer (issue 17): one repository over a connection.

A row is owed in the transaction that makes the job final (insert-once: its id derives from
(job, kind, final state), and a unique constraint backs it), so a worker killed between that commit
and the send leaves the row pending for the sweep. Sending is claimed with a compare-and-set on
``attempts``, so two copies of a delivery task never both send one attempt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Table, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from worker.domain.deliveries import (
    DeliveryStatus,
    OutcomeDelivery,
    OutcomeKind,
    delivery_id_for,
)
from worker.ledger.tables import outcome_deliveries as deliveries


def _record(row: Row[Any]) -> OutcomeDelivery:
    m = row._mapping
    return OutcomeDelivery(
        id=m["id"], job_id=m["job_id"], kind=OutcomeKind(m["kind"]),
        final_state=m["final_state"], destination=dict(m["destination"]),
        status=DeliveryStatus(m["status"]), attempts=m["attempts"],
        last_status=m["last_status"], last_error=m["last_error"],
        next_attempt_at=m["next_attempt_at"], created_at=m["created_at"],
        delivered_at=m["delivered_at"], updated_at=m["updated_at"],
    )


# INSERT ... ON CONFLICT DO NOTHING RETURNING the id, on the two ledgers cancelflow supports.
_INSERT_ONCE: dict[str, Callable[[Table], Any]] = {
    "sqlite": sqlite.insert, "postgresql": postgresql.insert}


class SqlOutcomeRepository:
    """Rows of ``outcome_deliveries`` inside the caller's transaction (it commits)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def owe(self, job_id: str, kind: OutcomeKind, final_state: str,
            destination: dict[str, str], now: datetime) -> str | None:
        """Owe one delivery, due now; its id, or None when it was owed already."""
        row = {
            "id": delivery_id_for(job_id, kind, final_state), "job_id": job_id,
            "kind": kind.value, "final_state": final_state, "destination": destination,
            "status": DeliveryStatus.PENDING.value, "attempts": 0, "next_attempt_at": now,
            "created_at": now, "updated_at": now,
        }
        dialect_insert = _INSERT_ONCE.get(self.conn.dialect.name)
        if dialect_insert is None:
            # Elsewhere the caller holds the job's row lock (refresh_job): look, then insert.
            if self.get(str(row["id"])) is not None:
                return None
            self.conn.execute(insert(deliveries), row)
            return str(row["id"])
        once = dialect_insert(deliveries).on_conflict_do_nothing().returning(deliveries.c.id)
        return str(row["id"]) if self.conn.execute(once, row).first() is not None else None

    def get(self, delivery_id: str) -> OutcomeDelivery | None:
        row = self.conn.execute(
            select(deliveries).where(deliveries.c.id == delivery_id)).first()
        return _record(row) if row is not None else None

    def of_job(self, job_id: str) -> list[OutcomeDelivery]:
        """The job's deliveries, oldest first."""
        rows = self.conn.execute(select(deliveries).where(deliveries.c.job_id == job_id)
                                 .order_by(deliveries.c.created_at, deliveries.c.kind))
        return [_record(row) for row in rows]

    def claim(self, delivery: OutcomeDelivery, now: datetime, until: datetime) -> bool:
        """Take the next attempt (compare-and-set on attempts); it is due again at ``until``
        should its sender die mid-send."""
        result = self.conn.execute(
            update(deliveries)
            .where(deliveries.c.id == delivery.id,
                   deliveries.c.status == DeliveryStatus.PENDING.value,
                   deliveries.c.attempts == delivery.attempts)
            .values(attempts=delivery.attempts + 1, next_attempt_at=until, updated_at=now))
        return result.rowcount == 1

    def record(self, delivery_id: str, attempt: int, *, status: DeliveryStatus,
               last_status: int | None, last_error: str | None,
               next_attempt_at: datetime | None, now: datetime) -> bool:
        """Record how attempt number ``attempt`` went, unless a later one has been claimed."""
        result = self.conn.execute(
            update(deliveries)
            .where(deliveries.c.id == delivery_id, deliveries.c.attempts == attempt,
                   deliveries.c.status == DeliveryStatus.PENDING.value)
            .values(status=status.value, last_status=last_status, last_error=last_error,
                    next_attempt_at=next_attempt_at, updated_at=now,
                    delivered_at=now if status is DeliveryStatus.DELIVERED else None))
        return result.rowcount == 1

    def overdue(self, before: datetime, limit: int) -> list[str]:
        """Pending deliveries due before ``before``: their message was presumably lost."""
        rows = self.conn.execute(
            select(deliveries.c.id)
            .where(deliveries.c.status == DeliveryStatus.PENDING.value,
                   deliveries.c.next_attempt_at < before)
            .order_by(deliveries.c.next_attempt_at).limit(limit))
        return [str(row.id) for row in rows]

    def mark_swept(self, delivery_ids: Sequence[str], now: datetime) -> None:
        """Due from ``now`` on: the next sweep leaves them to the message sent now."""
        if delivery_ids:
            self.conn.execute(
                update(deliveries).where(deliveries.c.id.in_(list(delivery_ids)),
                                         deliveries.c.status == DeliveryStatus.PENDING.value)
                .values(next_attempt_at=now, updated_at=now))
