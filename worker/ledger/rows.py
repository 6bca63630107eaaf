"""The one mapping between ledger rows and records, both ways."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from sqlalchemy import Row

from worker.domain.states import JobState, LegState, Provider, Reason
from worker.ledger.tables import attempts
from worker.services.records import AttemptRecord, CallMade, JobRecord, LegRecord

# Attempt rows without their bodies: what views of many attempts read.
ATTEMPT_SUMMARY = [column for column in attempts.c if column.name != "response_body"]
# The columns a finished call fills on its attempt row.
ATTEMPT_FIELDS = ("operation", "started_at", "finished_at", "http_status", "outcome",
                  "provider_code", "request_id", "latency_ms", "response_body")


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


def stored_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Column values as stored: enums by their values."""
    return {k: v.value if isinstance(v, Enum) else v for k, v in values.items()}


def attempt_columns(call: CallMade) -> dict[str, Any]:
    """The attempt row's columns for a call (every one of ``ATTEMPT_FIELDS``)."""
    record = call.record
    return {
        "operation": call.operation,
        "started_at": call.started_at,
        "finished_at": call.finished_at,
        "http_status": record.http_status if record else None,
        "outcome": record.outcome if record else None,
        "provider_code": record.provider_code if record else None,
        "request_id": record.request_id if record else None,
        "latency_ms": round(record.latency_ms, 3) if record else None,
        "response_body": record.body if record else None,
    }


def job_record(row: Row[Any]) -> JobRecord:
    m = row._mapping
    return JobRecord(
        id=m["id"],
        idempotency_key=m["idempotency_key"],
        state=JobState(m["state"]),
        request=m["request"],
        errors=m["errors"],
        reconciliation=m["reconciliation"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        version=m["version"],
    )


def leg_record(row: Row[Any] | Mapping[str, Any]) -> LegRecord:
    m = row._mapping if isinstance(row, Row) else row
    return LegRecord(
        id=m["id"],
        job_id=m["job_id"],
        position=m["position"],
        provider=Provider(m["provider"]),
        target=m["target"],
        state=LegState(m["state"]),
        reason=Reason(m["reason"]) if m["reason"] else None,
        detail=m["detail"],
        already_cancelled=m["already_cancelled"],
        attempts=m["attempts"],
        retries=m["retries"],
        needs_resolve=m["needs_resolve"],
        provider_reference=m["provider_reference"],
        at_risk=m["at_risk"],
        lease_token=m["lease_token"],
        lease_expires_at=m["lease_expires_at"],
        next_attempt_at=m["next_attempt_at"],
        reconciliation=leg_reconciliation_as_stored(m["reconciliation"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        version=m["version"],
        match_key=m["match_key"],
        expected_count=m["expected_count"],
        recovery_stage=m["recovery_stage"],
        provisional_evidence=m["provisional_evidence"],
        evidence_deadline=m["evidence_deadline"],
        evidence_reads=m["evidence_reads"],
    )


def attempt_record(row: Row[Any]) -> AttemptRecord:
    m = row._mapping
    return AttemptRecord(
        id=m["id"],
        leg_id=m["leg_id"],
        operation=m["operation"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
        http_status=m["http_status"],
        outcome=m["outcome"],
        provider_code=m["provider_code"],
        latency_ms=m["latency_ms"],
        response_body=m.get("response_body"),
    )
