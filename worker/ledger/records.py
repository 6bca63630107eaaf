"""Plain records read from the ledger: what services see instead of rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from worker.domain.states import JobState, LegState, Provider, Reason


def leg_reconciliation_as_stored(stored: dict[str, Any] | None) -> dict[str, Any] | None:
    """A leg's stored ``reconciliation`` in the contract's shape, whichever shape it was written in.

    Until issue 12 the evidence's fields were nested: ``{"evidence": {source, currency, expected,
    reported}, "differences": [...]}``. Ledgers keep such rows, and a worker of the previous
    release still writes them during a rolling deploy, so they are lifted on every read rather
    than rewritten once by a migration (which could not catch the rows written after it ran).
    """
    if not stored or "evidence" not in stored:
        return stored
    evidence = stored["evidence"] or {}
    return {**evidence, "differences": stored.get("differences") or []}


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
