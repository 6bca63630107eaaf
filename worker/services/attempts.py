"""Attempt rows: one per provider call made for a leg, written before and after the call."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from worker.providers.calls import CallRecord
from worker.services.context import Context
from worker.services.records import CallMade


@dataclass
class AttemptRecorder:
    """A ``CallObserver`` that writes an attempt row for each call, for calls made outside a
    leg's round (the sweep's callback recovery).

    The row is committed before the call so that a worker killed mid-call still leaves a trace
    (an attempt with no outcome).
    """

    ctx: Context
    leg_id: str
    _started: dict[int, tuple[str, datetime]] = field(default_factory=dict)

    def before(self, operation: str) -> object:
        now = self.ctx.clock()
        with self.ctx.uow() as uow:
            attempt_id = uow.attempts.start(self.leg_id, operation, now)
            uow.commit()
        self._started[attempt_id] = (operation, now)
        return attempt_id

    def after(self, handle: object, record: CallRecord) -> None:
        assert isinstance(handle, int)
        operation, started = self._started.pop(handle)
        with self.ctx.uow() as uow:
            uow.attempts.finish(handle, CallMade(operation, started, record, self.ctx.clock()))
            uow.commit()
