"""The read side's port: what the views read from the ledger, one consistent snapshot at a time.

The composition root builds the SQL read side from the engine (``worker.ledger.views``); tests
may hand the views any object of this shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from worker.domain.deliveries import OutcomeDelivery
from worker.domain.states import JobState, LegState, Provider
from worker.services.records import AttemptRecord, JobEvent, JobRecord, LegRecord

__all__ = ["AttemptRecord", "CallTally", "JobEvent", "JobFilter", "JobRecord",
           "LedgerUnavailable", "LegRecord", "LegTotals", "ReadSide", "Snapshot"]


@dataclass(frozen=True, slots=True)
class JobFilter:
    """What a jobs list keeps (issue 17); every field given must match. ``target`` is a batch
    id, merchant unique code or payment reference, matched exactly; ``since`` is inclusive and
    ``until`` exclusive, on when the job was accepted."""

    state: JobState | None = None
    provider: Provider | None = None
    target: str | None = None
    idempotency_key: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class LegTotals:
    """A job's legs counted by state, and the provider calls made for them."""

    by_state: dict[LegState, int]
    calls: int

    @property
    def legs(self) -> int:
        return sum(self.by_state.values())


@dataclass(frozen=True, slots=True)
class CallTally:
    """Provider calls of one provider and operation: how many at or under each bound."""

    provider: str
    operation: str
    under: list[int]
    calls: int
    total_ms: float


class LedgerUnavailable(Exception):
    """The read side could not read the ledger; the message names the underlying error's class."""


class Snapshot(Protocol):
    """Bounded reads over one read-only snapshot of the ledger."""

    def get_job(self, job_id: str) -> JobRecord | None: ...

    def list_jobs(self, *, where: JobFilter, limit: int,
                  after: tuple[datetime, str] | None) -> list[JobRecord]: ...

    def jobs_by_id(self, job_ids: Sequence[str]) -> dict[str, JobRecord]: ...

    def legs_from(self, job_id: str, first: int, limit: int) -> list[LegRecord]: ...

    def first_legs(self, job_ids: Sequence[str], count: int) -> dict[str, list[LegRecord]]: ...

    def leg_totals(self, job_ids: Sequence[str]) -> dict[str, LegTotals]: ...

    def notable_legs(self, job_id: str, limit: int) -> tuple[list[LegRecord], int]: ...

    def leg_positions(self, job_id: str,
                      leg_ids: Sequence[str]) -> dict[str, tuple[int, str]]: ...

    def attempts_of_job(self, job_id: str, limit: int) -> list[AttemptRecord]: ...

    def callback_pages_of_job(self, job_id: str, limit: int) -> list[dict[str, Any]]: ...

    def paywall_legs_for(self, job_id: str, references: Sequence[str],
                         codes: Sequence[str]) -> list[LegRecord]: ...

    def leg_tally(self) -> list[tuple[str, str, int]]: ...

    def job_tally(self) -> dict[JobState, int]: ...

    def oldest_job_in(self, state: JobState) -> datetime | None: ...

    def call_tally(self) -> list[CallTally]: ...

    def events_of(self, job_id: str, limit: int) -> list[JobEvent]: ...

    def notifications_of(self, job_id: str) -> list[OutcomeDelivery]: ...


class ReadSide(Protocol):
    """Opens snapshots; folds the tallies; answers readiness; owns the job list's cursors."""

    def snapshot(self) -> AbstractContextManager[Snapshot]:
        """One read-only snapshot; LedgerUnavailable when the ledger cannot be read."""
        ...

    def fold_tallies(self) -> bool:
        """Fold finished sessions' tallies (PostgreSQL); whether this call did."""
        ...

    def ping(self) -> None:
        """Raises (any error) unless the ledger answers."""
        ...

    def encode_cursor(self, created_at: datetime, job_id: str) -> str: ...

    def decode_cursor(self, cursor: str) -> tuple[datetime, str]: ...
