"""What a finished job owes its producer (issue 17): a webhook or a reply, per final state."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class OutcomeKind(StrEnum):
    WEBHOOK = "webhook"
    REPLY = "reply"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class OutcomeDelivery:
    id: str
    job_id: str
    kind: OutcomeKind
    final_state: str
    destination: dict[str, str]
    status: DeliveryStatus
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    updated_at: datetime


def delivery_id_for(job_id: str, kind: OutcomeKind, final_state: str) -> str:
    """The same (job, kind, final state) always names the same row: owing it twice is a no-op."""
    return str(uuid.uuid5(uuid.UUID(job_id), f"outcome:{kind.value}:{final_state}"))
