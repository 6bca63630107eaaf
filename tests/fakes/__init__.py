"""Fakes of the ports, shared by the tests: the ledger in memory, a dispatcher that records.

``FakeUnitOfWork`` keeps the contract of ``worker.services.unit_of_work`` (compare-and-set
versions, insert-once on ids, claims under a lease, rollback unless committed) without a database;
``tests/integration/test_ledger_contract.py`` holds it and the SQL one to the same tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType
from typing import Self

from tests.fakes.repositories import (
    FakeAttemptRepository,
    FakeCallbackPageRepository,
    FakeEventRepository,
    FakeJobRepository,
    FakeLedger,
    FakeLegRepository,
    FakeOutcomeRepository,
)
from tests.support import Clock
from worker.domain.outcomes import Outcome, ResolveOutcome
from worker.domain.reconciliation import Figures, LegEvidence, Reported, Source
from worker.domain.rounds import RetryPolicy
from worker.domain.states import Provider
from worker.domain.task_label import TaskLabel
from worker.providers.calls import CallObserver, CallRecord
from worker.providers.errors import ProviderError
from worker.services.context import Context
from worker.services.ports import LegDriver
from worker.services.records import (
    AttemptRecord,
    JobRecord,
    LegRecord,
)
from worker.services.unit_of_work import UnitOfWorkFactory


class FakeUnitOfWork:
    """One transaction over a copy of the shared ledger; ``commit`` makes the copy the ledger."""

    def __init__(self, ledger: FakeLedger, *, read_only: bool = False,
                 durable: bool = False) -> None:
        self.ledger = ledger
        self.read_only = read_only
        self.durable = durable
        self.committed = False

    def __enter__(self) -> Self:
        self.ledger.lock.acquire()  # one writer at a time, as SQLite's writer lock
        self._work = self.ledger.copy()
        self.jobs = FakeJobRepository(self._work)
        self.legs = FakeLegRepository(self._work)
        self.attempts = FakeAttemptRepository(self._work)
        self.callback_pages = FakeCallbackPageRepository(self._work)
        self.events = FakeEventRepository(self._work)
        self.outcomes = FakeOutcomeRepository(self._work)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.ledger.lock.release()

    def commit(self) -> None:
        assert not self.read_only, "a read-only unit of work never writes"
        work = self._work
        self.ledger.jobs, self.ledger.legs = dict(work.jobs), dict(work.legs)
        self.ledger.attempts, self.ledger.pages = dict(work.attempts), list(work.pages)
        self.ledger.events, self.ledger.outcomes = list(work.events), dict(work.outcomes)
        self.ledger.next_id = work.next_id
        self.ledger.commits += 1
        self.committed = True


@dataclass
class FakeUnitsOfWork:
    """A ``UnitOfWorkFactory`` over one in-memory ledger; ``made`` keeps every unit it made."""

    ledger: FakeLedger = field(default_factory=FakeLedger)
    made: list[FakeUnitOfWork] = field(default_factory=list)

    def __call__(self, *, read_only: bool = False, durable: bool = False) -> FakeUnitOfWork:
        uow = FakeUnitOfWork(self.ledger, read_only=read_only, durable=durable)
        self.made.append(uow)
        return uow

    # What the tests read of the committed ledger.

    def job(self, job_id: str) -> JobRecord:
        return self.ledger.jobs[job_id]

    def legs_of(self, job_id: str) -> list[LegRecord]:
        return sorted((leg for leg in self.ledger.legs.values() if leg.job_id == job_id),
                      key=lambda leg: leg.position)

    def only_leg(self, job_id: str) -> LegRecord:
        (leg,) = self.legs_of(job_id)
        return leg

    def attempts_of(self, leg_id: str) -> list[AttemptRecord]:
        return [a for _, a in sorted(self.ledger.attempts.items()) if a.leg_id == leg_id]


@dataclass
class FakeDispatcher:
    """Records what would have been enqueued."""

    legs: list[tuple[str, float]] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    settles: list[str] = field(default_factory=list)
    recoveries: list[str] = field(default_factory=list)
    # The label of each process_leg(s) dispatch, in order (what Flower would show as its args).
    labels: list[TaskLabel | None] = field(default_factory=list)
    outcomes: list[tuple[str, float]] = field(default_factory=list)

    def process_leg(self, leg_id: str, countdown: float = 0, *,
                    label: TaskLabel | None = None) -> None:
        self.legs.append((leg_id, countdown))
        self.labels.append(label)

    def process_legs(self, leg_ids: list[str], *, label: TaskLabel | None = None) -> None:
        self.legs.extend((leg_id, 0) for leg_id in leg_ids)
        self.labels.append(label)

    def read_evidence(self, leg_id: str, *, label: TaskLabel | None = None) -> None:
        self.evidence.append(leg_id)

    def settle_callbacks(self, leg_id: str, *, label: TaskLabel | None = None) -> None:
        self.settles.append(leg_id)

    def recover_callbacks(self, leg_id: str, *, label: TaskLabel | None = None) -> None:
        self.recoveries.append(leg_id)

    def deliver_outcome(self, delivery_id: str, countdown: float = 0) -> None:
        self.outcomes.append((delivery_id, countdown))


# A provider driver that answers from a script, and a context over the fakes.

BATCH = "f945d71c-b00f-4e77-8175-253093157a2f"
START = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
EVIDENCE = LegEvidence(
    Source.SIXDOT50_SUMMARY, "ZAR", Figures(2, Decimal("200.00")),
    Reported(cancelled_count=2, cancelled_amount=Decimal("200.00")),
)


@dataclass
class ScriptedDriver:
    """A driver whose cancel answers come from a script; every call is observed."""

    cancels: list[Outcome | ProviderError]
    resolves: list[ResolveOutcome | ProviderError] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    provider: Provider = Provider.SIXDOT50

    def _observe(self, calls: CallObserver, operation: str) -> None:
        handle = calls.before(operation)  # where a call is refused (the lease check)
        self.calls.append(operation)
        calls.after(handle, CallRecord("sixdot50", operation, 200, "ok", 1.0))

    def cancel(self, target: dict[str, str], calls: CallObserver,
               on_cutoff: str = "reject") -> Outcome:
        self._observe(calls, "cancel_batch")
        answer = self.cancels.pop(0)
        if isinstance(answer, ProviderError):
            raise answer
        return answer

    def resolve(self, target: dict[str, str], calls: CallObserver,
                on_cutoff: str = "reject") -> ResolveOutcome:
        self._observe(calls, "get_batch")
        answer = self.resolves.pop(0)
        if isinstance(answer, ProviderError):
            raise answer
        return answer

    def read_evidence(self, target: dict[str, str], calls: CallObserver) -> LegEvidence | None:
        self._observe(calls, "get_batch")
        return EVIDENCE


def make_ctx(uows: UnitOfWorkFactory, dispatcher: FakeDispatcher, driver: LegDriver | None,
             clock: Clock | None = None, max_attempts: int = 8) -> Context:
    """A 60 s lease, retries after 2 s doubling up to 300 s, no jitter."""
    return Context(
        uow_factory=uows,
        drivers={driver.provider: driver} if driver else {},
        dispatcher=dispatcher,
        retry=RetryPolicy(2, 300, max_attempts),
        lease_seconds=60,
        clock=clock or Clock(START),
        rng=lambda: 1.0,
    )


def message(key: str = "k1", **extra: object) -> dict[str, object]:
    """A producer's message of one 6DOT50 leg."""
    return {"request": {"idempotency_key": key,
                        "legs": [{"provider": "sixdot50", "batch_id": BATCH}], **extra}}
