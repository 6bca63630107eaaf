"""The one mapping from ledger rows to records, shared by the write queries and the read side."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from worker.domain.states import JobState, LegState, Provider, Reason
from worker.ledger.records import (
    AttemptRecord,
    JobRecord,
    LegRecord,
    leg_reconciliation_as_stored,
)
from worker.ledger.tables import attempts

# Attempt rows without their bodies: what views of many attempts read.
ATTEMPT_SUMMARY = [column for column in attempts.c if column.name != "response_body"]


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


def leg_record(row: Row[Any]) -> LegRecord:
    m = row._mapping
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

