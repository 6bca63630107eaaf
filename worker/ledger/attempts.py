"""The attempts repository: one row per provider call, written before the call and after it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, bindparam, insert, select, update

from worker.ledger.rows import ATTEMPT_FIELDS, attempt_columns, attempt_record
from worker.ledger.tables import attempts, legs
from worker.services.records import AttemptRecord, CallMade

_START_ATTEMPTS = insert(attempts).returning(attempts.c.leg_id, attempts.c.id,
                                             sort_by_parameter_order=True)
_FILL_ATTEMPT = update(attempts).where(attempts.c.id == bindparam("b_attempt")).values(
    **{name: bindparam(f"b_{name}") for name in ATTEMPT_FIELDS})
_INSERT_ATTEMPTS = insert(attempts)
_COUNT_ONE = (update(legs).where(legs.c.id == bindparam("b_leg"))
              .values(attempts=legs.c.attempts + 1))


def _fill_params(attempt_id: int, call: CallMade) -> dict[str, object]:
    return {"b_attempt": attempt_id,
            **{f"b_{name}": value for name, value in attempt_columns(call).items()}}


class SqlAttemptRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def start_many(self, leg_ids: Sequence[str], operation: str,
                   now: datetime) -> dict[str, int]:
        if not leg_ids:
            return {}
        result = self.conn.execute(
            _START_ATTEMPTS, [{"leg_id": leg_id, "operation": operation, "started_at": now}
                              for leg_id in leg_ids])
        return {leg_id: attempt_id for leg_id, attempt_id in result}

    def start(self, leg_id: str, operation: str, started_at: datetime) -> int:
        attempt_id = self.start_many([leg_id], operation, started_at)[leg_id]
        self.conn.execute(_COUNT_ONE, {"b_leg": leg_id})
        return attempt_id

    def finish(self, attempt_id: int, call: CallMade) -> None:
        self.conn.execute(_FILL_ATTEMPT, _fill_params(attempt_id, call))

    def add(self, leg_id: str, call: CallMade) -> None:
        self.conn.execute(_INSERT_ATTEMPTS, {"leg_id": leg_id, **attempt_columns(call)})
        self.conn.execute(_COUNT_ONE, {"b_leg": leg_id})

    def record_round(self, finished: Sequence[tuple[int, CallMade]],
                     added: Sequence[tuple[str, CallMade]], dropped: Sequence[int]) -> None:
        if finished:
            self.conn.execute(_FILL_ATTEMPT, [_fill_params(attempt_id, call)
                                              for attempt_id, call in finished])
        if added:
            self.conn.execute(_INSERT_ATTEMPTS, [{"leg_id": leg_id, **attempt_columns(call)}
                                                 for leg_id, call in added])
        for attempt_id in dropped:
            self.conn.execute(attempts.delete().where(attempts.c.id == attempt_id))

    def of_leg(self, leg_id: str) -> list[AttemptRecord]:
        query = select(attempts).where(attempts.c.leg_id == leg_id).order_by(attempts.c.id)
        return [attempt_record(row) for row in self.conn.execute(query)]
