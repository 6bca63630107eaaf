"""The port of the ledger's write side: repositories per aggregate, and the unit of work.

A unit of work is one transaction: ``with ctx.uow() as uow: ...; uow.commit()``; nothing is
written unless ``commit`` is called. The repositories take and return records
(``worker.services.records``); every row shape, column default and storage encoding is theirs.
The SQL implementation is ``worker.ledger.uow.SqlUnitOfWork``; ``tests.fakes.FakeUnitOfWork``
keeps the same contract in memory (``tests/integration/test_ledger_contract.py`` holds both to it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

from worker.domain.deliveries import DeliveryStatus, OutcomeDelivery, OutcomeKind
from worker.domain.states import JobState, LegState, Reason
from worker.services.records import (
    AttemptRecord,
    CallMade,
    JobEvent,
    JobRecord,
    LegClaim,
    LegFinish,
    LegRecord,
    NewCallbackPage,
    NewEvent,
    NewJob,
    NewLeg,
    PageTotals,
)


class JobRepository(Protocol):
    def add_many(self, new: Sequence[tuple[NewJob, Sequence[NewLeg]]]
                 ) -> list[list[LegRecord] | None]:
        """Store each job and its legs once, in order: for each, None (nothing written) when its
        id is stored already or comes earlier in ``new``, else its legs as stored (in order)."""
        ...

    def get(self, job_id: str, *, lock: bool = False) -> JobRecord | None:
        """The job; ``lock`` holds it until the transaction ends (one recomputation at a time)."""
        ...

    def get_many(self, job_ids: Sequence[str], *, lock: bool = False) -> list[JobRecord]:
        """The jobs stored among ``job_ids``, in id order; ``lock`` as for :meth:`get`."""
        ...

    def start(self, job_id: str, now: datetime) -> None:
        """accepted -> in_progress, if it still is accepted."""
        ...

    def set_state(self, job_id: str, state: JobState, reconciliation: dict[str, Any] | None,
                  now: datetime) -> None: ...


class LegRepository(Protocol):
    def get(self, leg_id: str) -> LegRecord | None: ...

    def get_many(self, leg_ids: Sequence[str]) -> list[LegRecord]: ...

    def of_job(self, job_id: str) -> list[LegRecord]:
        """The job's legs by position."""
        ...

    def in_states(self, job_id: str, states: Iterable[LegState]) -> list[LegRecord]: ...

    def state_counts(self, job_ids: Sequence[str]) -> dict[str, dict[LegState, int]]:
        """For each job of ``job_ids``, how many of its legs are in each state."""
        ...

    def evidence(self, job_ids: Sequence[str]
                 ) -> dict[str, list[tuple[str, LegState, dict[str, Any] | None]]]:
        """For each job of ``job_ids``: (id, state, reconciliation in the contract's shape) of
        each of its legs, by position."""
        ...

    def update(self, leg_id: str, expected_version: int, **values: Any) -> bool:
        """Compare-and-set: applies (and bumps the version) only if the leg is still at
        ``expected_version``; enum values are stored as their values."""
        ...

    def claim_many(self, claims: Sequence[LegClaim], token: str, until: datetime,
                   now: datetime) -> set[str]:
        """Compare-and-set legs in flight under one lease, counting the attempt about to be
        made; the ids won."""
        ...

    def finish_many(self, finishes: Sequence[LegFinish]) -> set[str]:
        """Compare-and-set claimed legs out of flight, the lease cleared; the ids applied."""
        ...

    def count_attempts(self, deltas: Mapping[str, int]) -> None:
        """Add ``deltas[leg_id]`` to each leg's count of attempts."""
        ...

    def due(self, now: datetime, states: Iterable[LegState], limit: int) -> list[LegRecord]:
        """Legs in ``states`` whose next attempt time has passed (oldest first)."""
        ...

    def postpone(self, leg_ids: Sequence[str], until: datetime) -> None:
        """Nothing is due for these legs before ``until``."""
        ...

    def with_expired_lease(self, now: datetime, limit: int) -> list[LegRecord]: ...

    def cancelled_without_evidence(self, now: datetime, limit: int) -> list[LegRecord]:
        """Cancelled legs still without final figures whose next read is due."""
        ...

    def waiting_due(self, now: datetime, limit: int) -> list[LegRecord]:
        """Legs waiting on callbacks past their deadline (oldest first)."""
        ...

    def reject_unsent(self, job_id: str, reason: Reason, detail: str | None,
                      now: datetime) -> int:
        """End the job's never-sent legs (pending, no attempt) ``rejected``; how many."""
        ...

    def waiting_for(self, bulk_payment_id: str, code: str) -> list[LegRecord]:
        """Waiting Paywall legs a page may belong to: by operation id, else by code."""
        ...


class AttemptRepository(Protocol):
    def start_many(self, leg_ids: Sequence[str], operation: str,
                   now: datetime) -> dict[str, int]:
        """Rows for calls about to be made (counted by the claim); attempt id by leg."""
        ...

    def start(self, leg_id: str, operation: str, started_at: datetime) -> int:
        """A row for a call about to be made, counted on its leg; its id."""
        ...

    def finish(self, attempt_id: int, call: CallMade) -> None:
        """Fill a row written before its call."""
        ...

    def add(self, leg_id: str, call: CallMade) -> None:
        """A row for a call made (and finished), counted on its leg."""
        ...

    def record_round(self, finished: Sequence[tuple[int, CallMade]],
                     added: Sequence[tuple[str, CallMade]], dropped: Sequence[int]) -> None:
        """Fill rows written before their calls, add the further calls (by leg id), drop the
        rows of calls never made; the legs' counts are the caller's."""
        ...

    def of_leg(self, leg_id: str) -> list[AttemptRecord]: ...


class CallbackPageRepository(Protocol):
    def add(self, page: NewCallbackPage) -> bool:
        """Store a page once; False when that page was stored before (the first copy wins)."""
        ...

    def totals(self, *, bulk_payment_id: str | None, code: str | None) -> list[PageTotals]:
        """The stored pages under an operation id (else under a code), in arrival order."""
        ...

    def stored(self, bulk_payment_id: str, code: str) -> int:
        """How many distinct pages of the operation are in."""
        ...

    def count(self) -> int: ...


class EventRepository(Protocol):
    def add(self, event: NewEvent) -> None:
        """Append an event to its job."""
        ...

    def of_job(self, job_id: str, limit: int) -> list[JobEvent]:
        """The job's newest ``limit`` events, oldest first."""
        ...


class OutcomeRepository(Protocol):
    """The outbox of what finished jobs owe their producers (issue 17)."""

    def owe(self, job_id: str, kind: OutcomeKind, final_state: str,
            destination: dict[str, str], now: datetime) -> str | None:
        """Owe one delivery, due now; its id, or None when it was owed already."""
        ...

    def get(self, delivery_id: str) -> OutcomeDelivery | None: ...

    def claim(self, delivery: OutcomeDelivery, now: datetime, until: datetime) -> bool:
        """Take the next attempt (compare-and-set on attempts)."""
        ...

    def record(self, delivery_id: str, attempt: int, *, status: DeliveryStatus,
               last_status: int | None, last_error: str | None,
               next_attempt_at: datetime | None, now: datetime) -> bool:
        """Record how attempt ``attempt`` went, unless a later one has been claimed."""
        ...

    def overdue(self, before: datetime, limit: int) -> list[str]: ...

    def mark_swept(self, delivery_ids: Sequence[str], now: datetime) -> None: ...


class AbstractUnitOfWork(Protocol):
    jobs: JobRepository
    legs: LegRepository
    attempts: AttemptRepository
    callback_pages: CallbackPageRepository
    events: EventRepository
    outcomes: OutcomeRepository

    def __enter__(self) -> Self: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Roll back whatever was not committed."""
        ...

    def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    """A new unit of work: ``read_only`` ones never write (nor wait for the writer), ``durable``
    ones are on disk when their commit returns (acknowledged, or before a provider call)."""

    def __call__(self, *, read_only: bool = False, durable: bool = False) -> AbstractUnitOfWork:
        ...


__all__ = ["AbstractUnitOfWork", "AttemptRepository", "CallbackPageRepository",
           "JobRepository", "LegRepository", "UnitOfWorkFactory"]
