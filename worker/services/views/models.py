"""The answers the API gives, as typed models: the views build them, the receiver serializes them,
and the OpenAPI document's schemas are generated from them (``webhooks/apidoc.py``).

Every model forbids keys it does not name, so an answer cannot carry a field its schema does not
declare. Amounts are the contract's decimal strings; times are timezone-aware and serialize as
ISO-8601 (UTC as ``Z``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, create_model

from worker.domain.deliveries import DeliveryStatus, OutcomeKind
from worker.domain.events import EventType
from worker.domain.reconciliation import ReconciliationState, Source
from worker.domain.states import JobState, LegState, Provider, Reason

Amount = Annotated[str, Field(pattern=r"^-?[0-9]+(\.[0-9]+)?$", description="decimal")]
Count = Annotated[int, Field(ge=0)]


class Answer(BaseModel):
    """An API answer: closed (no undeclared keys) and immutable once built."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Difference(Answer):
    """Where what a provider reported differs from what was asked."""

    leg: str | None
    field: str
    expected: str
    reported: str


class Figures(Answer):
    count: Count
    amount: Amount


class Reported(Answer):
    """What the provider reported for a leg, in the shape of 6DOT50's batch summary."""

    cancelled_count: Count
    cancelled_amount: Amount
    refunded_count: Count
    refunded_amount: Amount
    failed_count: Count
    settled_count: Count
    settled_amount: Amount


class LegReconciliation(Answer):
    """The contract's shape: the evidence's keys at the top, beside the leg's differences. All
    four null: the leg's wait for figures ended without any (its difference says so)."""

    source: Source | None
    currency: str | None = Field(description="ISO 4217")
    expected: Figures | None
    reported: Reported | None
    differences: list[Difference]


class Leg(Answer):
    id: str = Field(json_schema_extra={"format": "uuid"})
    provider: Provider
    target: dict[str, str]
    state: LegState
    reason: Reason | None
    detail: str | None
    already_cancelled: bool
    at_risk: bool
    attempts: Count
    provider_reference: str | None
    reconciliation: LegReconciliation | None
    updated_at: AwareDatetime


# Every leg state with its count, zeros included, so readers never miss a key.
LegCounts = create_model(
    "LegCounts",
    __base__=Answer,
    __doc__="Every leg of the job, counted by state (listed or not).",
    **{state.value: (Count, ...) for state in LegState},  # type: ignore[call-overload]
)


class JobReconciliation(Answer):
    # not_applicable: an invalid job has nothing to reconcile.
    state: ReconciliationState | Literal["not_applicable"]
    differences: list[Difference]


class FieldError(Answer):
    """A validation error of the producer's request."""

    field: str
    error: str


class Event(Answer):
    """An operator action, idempotency conflict or notification, in the job's history."""

    type: str = Field(examples=[t.value for t in EventType])
    at: AwareDatetime
    note: str | None
    leg: str | None
    actor: str | None
    details: dict[str, Any]


class ReplyTo(Answer):
    task: str
    queue: str


class Notification(Answer):
    """An outcome owed to the producer once the job ended: a webhook or a reply message."""

    kind: OutcomeKind
    url: str | None
    reply_to: ReplyTo | None
    final_state: JobState
    status: DeliveryStatus
    attempts: Count
    last_http_status: int | None
    last_error: str | None = Field(description="the error class")
    next_attempt_at: AwareDatetime | None
    delivered_at: AwareDatetime | None


class Job(Answer):
    id: str = Field(json_schema_extra={"format": "uuid"})
    idempotency_key: str | None
    state: JobState
    created_at: AwareDatetime
    updated_at: AwareDatetime
    errors: list[FieldError]
    leg_counts: LegCounts  # type: ignore[valid-type]
    legs: list[Leg] = Field(description="the job's first legs: up to 1,000 "
                                        "(GET /api/v1/jobs/{job_id}), up to 100 per job in a list")
    legs_next_cursor: str | None = Field(
        description="when the job has more legs than it lists: the cursor of "
                    "GET /api/v1/jobs/{job_id}/legs for the rest")
    reconciliation: JobReconciliation


class JobDetail(Job):
    """One job as ``GET /api/v1/jobs/{job_id}`` answers it: with its history and outcomes."""

    events: list[Event] = Field(description="operator actions, idempotency conflicts and "
                                            "notifications, newest last")
    notifications: list[Notification] = Field(
        description="the outcomes owed to the producer once the job ended (notify_url "
                    "webhooks, reply_to messages)")


class JobList(Answer):
    """A page of jobs, newest first; ``next_cursor`` is null on the last page."""

    jobs: list[Job]
    next_cursor: str | None


class LegPage(Answer):
    """A page of a job's legs, in order; ``next_cursor`` is null on the last page."""

    legs: list[Leg]
    next_cursor: str | None


class AttemptCall(Answer):
    """One provider call; never its response body."""

    attempt_id: int
    leg_id: str
    provider: str
    operation: str
    started_at: AwareDatetime
    finished_at: AwareDatetime | None
    http_status: int | None
    outcome: str | None
    provider_code: str | None
    request_id: str | None
    duration_ms: float | None


class AttemptExport(Answer):
    """A job's provider calls, by start time (the JSON form of the audit export)."""

    job_id: str
    attempts: list[AttemptCall]
    note: str | None = Field(description="why there are no calls, when they were pruned")
