"""What a job's ``events`` record: operator actions, idempotency conflicts and
notifications that ended (past tense)."""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    LEG_RETRIED = "leg_retried"
    LEG_RESOLVED = "leg_resolved"
    JOB_ABANDONED = "job_abandoned"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    NOTIFICATION_DELIVERED = "notification_delivered"
    NOTIFICATION_FAILED = "notification_failed"
