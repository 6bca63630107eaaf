"""A ledger filled with big jobs through the real use cases, for benchmarks and tests of reads.

Each job is submitted and its legs run in batches like a worker runs them, against a scripted
Bambora driver that answers at once: every leg ends cancelled with its evidence and one recorded
call, so the ledger holds what production leaves behind (legs, attempts, tallies), fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Engine

from worker.bootstrap import ledger_units
from worker.domain.outcomes import Cancelled, Outcome, ResolveOutcome
from worker.domain.reconciliation import Figures, LegEvidence, Reported, Source
from worker.domain.states import Provider
from worker.domain.task_label import TaskLabel
from worker.providers.calls import CallObserver, CallRecord
from worker.services.context import Context, RetryPolicy, utcnow
from worker.services.legs import process_legs
from worker.services.submit import submit

BATCH = 50
PAYMENT = LegEvidence(Source.BAMBORA_PAYMENT, "EUR", Figures(1, Decimal("25.00")),
                      Reported(cancelled_count=1, cancelled_amount=Decimal("25.00")))


@dataclass
class InstantBambora:
    """Cancels every payment at once, with its figures; each call is recorded at ``latency_ms``."""

    latency_ms: float = 40.0
    provider: Provider = Provider.BAMBORA

    def cancel(self, target: dict[str, str], calls: CallObserver,
               on_cutoff: str = "reject") -> Outcome:
        handle = calls.before("cancel_payment")
        calls.after(handle, CallRecord("bambora", "cancel_payment", 201, "ok", self.latency_ms))
        return Cancelled(already=False, reference=target["payment_reference"], evidence=PAYMENT)

    def resolve(self, target: dict[str, str], calls: CallObserver,
                on_cutoff: str = "reject") -> ResolveOutcome:
        return self.cancel(target, calls, on_cutoff)

    def read_evidence(self, target: dict[str, str], calls: CallObserver) -> LegEvidence | None:
        return PAYMENT


@dataclass
class CollectingDispatcher:
    """Keeps the legs a submit dispatches, so that they can be run here, in batches."""

    legs: list[str] = field(default_factory=list)

    def process_leg(self, leg_id: str, countdown: float = 0, *,
                    label: TaskLabel | None = None) -> None:
        self.legs.append(leg_id)

    def process_legs(self, leg_ids: list[str], *, label: TaskLabel | None = None) -> None:
        self.legs.extend(leg_ids)

    def read_evidence(self, leg_id: str, *, label: TaskLabel | None = None) -> None:
        pass

    def settle_callbacks(self, leg_id: str, *, label: TaskLabel | None = None) -> None:
        pass

    def recover_callbacks(self, leg_id: str, *, label: TaskLabel | None = None) -> None:
        pass

    def deliver_outcome(self, delivery_id: str, countdown: float = 0) -> None:
        pass


def fill_job(engine: Engine, key: str, legs: int, *, run: int | None = None,
             clock: Callable[[], datetime] = utcnow) -> str:
    """Submit a Bambora job of ``legs`` payments and cancel the first ``run`` of them (all by
    default); its id."""
    dispatcher = CollectingDispatcher()
    ctx = Context(ledger_units(engine), {Provider.BAMBORA: InstantBambora()}, dispatcher,
                  RetryPolicy(1, 1, 3), 60, clock=clock)
    request = {"idempotency_key": key, "legs": [
        {"provider": "bambora", "merchant": "T123456789", "payment_reference": f"{key}-{n}"}
        for n in range(legs)]}
    try:
        job_id = submit(ctx, (), {"request": request}).job_id
        wanted = dispatcher.legs[:legs if run is None else run]
        for start in range(0, len(wanted), BATCH):
            process_legs(ctx, wanted[start:start + BATCH])
    finally:
        ctx.pools.shutdown()  # a pool per call: left running, each would keep its threads
    return job_id
