"""Attempt rows: one per provider call made for a leg, written before and after the call."""

from __future__ import annotations

from dataclasses import dataclass

from worker.providers.calls import CallRecord
from worker.services.context import Context


@dataclass
class AttemptRecorder:
    """A ``CallObserver`` that writes an attempt row for each call, for calls made outside a
    leg's round (the sweep's callback recovery).

    The row is committed before the call so that a worker killed mid-call still leaves a trace
    (an attempt with no outcome).
    """

    ctx: Context
    leg_id: str

    def before(self, operation: str) -> object:
        now = self.ctx.clock()
        with self.ctx.uow() as ledger:
            attempt_id = ledger.start_attempt(self.leg_id, operation, now)
            ledger.commit()
        return attempt_id

    def after(self, handle: object, record: CallRecord) -> None:
        assert isinstance(handle, int)
        with self.ctx.uow() as ledger:
            ledger.finish_attempt(
                handle,
                finished_at=self.ctx.clock(),
                http_status=record.http_status,
                outcome=record.outcome,
                provider_code=record.provider_code,
                request_id=record.request_id,
                latency_ms=round(record.latency_ms, 3),
                response_body=record.body,
            )
            ledger.commit()
