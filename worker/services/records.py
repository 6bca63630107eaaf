"""The records the use cases and the ledger exchange: what services see instead of rows.

They belong to the ports (``worker.services.unit_of_work``, ``worker.services.audit``), not to the
SQL behind them: ``worker.ledger`` builds them from rows, ``tests.fakes`` from memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from worker.domain.states import JobState, LegState, Provider, Reason
from worker.providers.calls import CallRecord


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: str
    idempotency_key: str | None
    state: JobState
    request: dict[str, Any] | None
    errors: list[dict[str, str]] | None
    reconciliation: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    version: int


@dataclass(frozen=True, slots=True)
class LegRecord:
    id: str
    job_id: str
    position: int
    provider: Provider
    target: dict[str, str]
    state: LegState
    reason: Reason | None
    detail: str | None
    already_cancelled: bool
    attempts: int
    retries: int
    needs_resolve: bool
    provider_reference: str | None
    at_risk: bool
    lease_token: str | None
    lease_expires_at: datetime | None
    next_attempt_at: datetime | None
    reconciliation: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    version: int
    match_key: str | None = None
    expected_count: int | None = None
    recovery_stage: int = 0
    provisional_evidence: dict[str, Any] | None = None
    evidence_deadline: datetime | None = None
    evidence_reads: int = 0


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    id: int
    leg_id: str
    operation: str
    started_at: datetime
    finished_at: datetime | None
    http_status: int | None
    outcome: str | None
    provider_code: str | None
    latency_ms: float | None
    response_body: str | None = None


# What the use cases hand the repositories to write: the repositories own every row shape,
# bind-parameter name, column default and storage encoding.


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to store once under its id (derived from the idempotency key or the body)."""

    id: str
    idempotency_key: str | None
    state: JobState
    body_sha256: str
    created_at: datetime
    request: dict[str, Any] | None = None
    errors: list[dict[str, str]] | None = None


@dataclass(frozen=True, slots=True)
class Lease:
    """A claim on legs: whoever holds the token may call their providers until ``expires_at``."""

    token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class NewLeg:
    """A leg of a new job; with ``lease``, stored already claimed (its first attempt counted)."""

    id: str
    job_id: str
    position: int
    provider: Provider
    target: dict[str, str]
    match_key: str | None
    created_at: datetime
    lease: Lease | None = None


@dataclass(frozen=True, slots=True)
class LegClaim:
    """Take a leg in flight if it is still at ``version``; ``resolve``: read before cancelling."""

    leg_id: str
    version: int
    resolve: bool


@dataclass(frozen=True, slots=True)
class LegFinish:
    """Take a claimed leg out of flight: ``values`` over the round's columns (the others as
    ``leg`` was claimed), if it is still at ``version``; ``attempts_delta``: calls made beyond
    the one the claim counted."""

    leg: LegRecord
    version: int
    values: dict[str, Any]
    attempts_delta: int = 0


@dataclass(frozen=True, slots=True)
class CallMade:
    """One provider call as its attempt row keeps it (``record`` None: no answer recorded)."""

    operation: str
    started_at: datetime
    record: CallRecord | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewCallbackPage:
    """A verified callback page to store once: the raw body and its parsed payments."""

    bulk_payment_id: str
    merchant_unique_code: str
    page_number: int
    total_pages: int
    raw: bytes
    payments: Any
    totals: dict[str, Any]
    received_at: datetime


@dataclass(frozen=True, slots=True)
class PageTotals:
    """What settling a leg reads of a stored page."""

    bulk_payment_id: str
    page_number: int
    total_pages: int
    totals: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class NewEvent:
    job_id: str
    type: str
    at: datetime
    note: str | None = None
    leg_id: str | None = None
    actor: str | None = None
    details: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class JobEvent:
    id: int
    job_id: str
    leg_id: str | None
    type: str
    actor: str | None
    note: str | None
    details: dict[str, Any] | None
    created_at: datetime

@dataclass(frozen=True)
class AuditedJob:
    """A job as the export needs it: its state, and how many calls its legs counted."""

    id: str
    state: str
    calls_counted: int


@dataclass(frozen=True)
class AttemptLine:
    """One provider call of a job's leg, without its response body."""

    id: int
    leg_id: str
    provider: str
    operation: str
    started_at: datetime
    finished_at: datetime | None
    http_status: int | None
    outcome: str | None
    provider_code: str | None
    request_id: str | None
    latency_ms: float | None


@dataclass(frozen=True)
class Pruned:
    """What one prune removed: jobs looked at, attempt rows deleted, page bodies emptied."""

    jobs: int = 0
    attempts: int = 0
    page_bodies: int = 0

    def __add__(self, other: Pruned) -> Pruned:
        return Pruned(self.jobs + other.jobs, self.attempts + other.attempts,
                      self.page_bodies + other.page_bodies)


# Provider call latency buckets of the metrics histogram, in milliseconds (cumulative: a call
# counts in every bucket whose bound is at or above its latency). Fixed by migration 0003.
LATENCY_BOUNDS_MS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
