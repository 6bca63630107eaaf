"""Attempt rows: one per provider call made for a leg, written before and after the call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from worker.providers.calls import CallRecord
from worker.services.context import Context


@dataclass
class AttemptRecorder:
    """A ``CallObserver`` that writes attempt rows and renews the leg's lease at each call.

    The row is committed before the call so that a worker killed mid-call still leaves a trace
    (an attempt with no outcome), and the renewed lease covers the call's whole timeout.
    """

    ctx: Context
    leg_id: str
    lease_token: str

    def before(self, operation: str) -> object:
        now = self.ctx.clock()
        with self.ctx.uow() as ledger:
            attempt_id = ledger.start_attempt(self.leg_id, operation, now)
            ledger.renew_lease(
                self.leg_id, self.lease_token, now + timedelta(seconds=self.ctx.lease_seconds)
            )
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
            )
            ledger.commit()
