"""The receiver's own answers and inputs as models (the jobs' answers are the views':
``worker.services.views.models``): errors, health, the callback acknowledgement, the jobs list's
query, the operator actions' bodies, and Paywall's callback page as the OpenAPI document shows it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from worker.domain.states import JobState, Provider
from worker.services.audit import ExportFormat
from worker.services.operator import NOTE_MAX
from worker.services.views import LEGS_PAGE_MAX
from worker.services.views.filters import TEXT_MAX
from worker.services.views.models import Answer


class ErrorBody(Answer):
    """Every error answer: a short code (the HTTP reason, snake_case) and what to do about it."""

    error: str
    detail: str


class Health(Answer):
    status: Literal["ok"]


class ReadinessChecks(Answer):
    ledger: str = Field(description='"ok", or "unavailable: <error class>"')
    redis: str = Field(description='"ok", or "unavailable: <error class>"')


class Readiness(Answer):
    status: Literal["ready", "not_ready"]
    checks: ReadinessChecks


class CallbackAck(Answer):
    """Stored (or a duplicate, which changes nothing)."""

    received: Literal[True]


class CallbackPayment(BaseModel):
    MerchantUniqueCode: str
    PaymentId: int | str
    Amount: Annotated[float, Field(ge=0)]
    Status: int
    Scope: str | None = None


class CallbackPage(BaseModel):
    """A Paywall callback page as PROVIDERS.md describes it. The receiver reads pages with its
    own tolerant reader (``worker.providers.paywall.callbacks``); fields Paywall sends that are not
    named here (Type, DateTime, ErrorMessage, ...) are accepted and kept in the raw body."""

    model_config = ConfigDict(extra="allow")

    BulkPaymentId: int | str
    MerchantUniqueCode: Annotated[str, Field(min_length=1, max_length=200)]
    Hash: str = Field(description="lowercase hex SHA-256 of "
                                  "{hashKey}###{BulkPaymentId}###{MerchantUniqueCode}")
    PageNumber: Annotated[int, Field(ge=1)] = 1
    TotalPages: Annotated[int, Field(ge=1)] = 1
    IsCompressed: bool = Field(default=False, description="true is refused (400)")
    Payments: list[CallbackPayment] = []


FilterText = Annotated[str | None, Field(max_length=TEXT_MAX)]


class JobsQuery(BaseModel):
    """The jobs list's query: each filter given must match (``job_filter`` reads them)."""

    state: JobState | None = None
    provider: Provider | None = None
    target: FilterText = Field(
        default=None, description="a batch id, merchant unique code or payment reference, exactly")
    idempotency_key: FilterText = None
    since: AwareDatetime | None = Field(
        default=None, description="accepted at or after (ISO-8601 with its offset)")
    until: AwareDatetime | None = Field(
        default=None, description="accepted before (ISO-8601 with its offset)")
    limit: Annotated[int, Field(ge=1, le=500)] = 50
    cursor: str | None = None


class LegsQuery(BaseModel):
    cursor: str | None = None
    limit: Annotated[int, Field(ge=1, le=LEGS_PAGE_MAX)] = LEGS_PAGE_MAX


class AttemptsQuery(BaseModel):
    format: ExportFormat | None = Field(
        default=None, description="when absent, the best match of the Accept header, else json")


Note = Annotated[str, Field(max_length=NOTE_MAX, pattern=r"^[^\x00]*$")]


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RetryBody(_Action):
    note: Note | None = None


class _Noted(_Action):
    note: Note = Field(min_length=1)

    @field_validator("note")
    @classmethod
    def _not_blank(cls, note: str) -> str:
        if not note.strip():
            raise ValueError("note must be a non-empty string")
        return note


class ResolveBody(_Noted):
    outcome: Literal["cancelled", "rejected"]


class AbandonBody(_Noted):
    pass
