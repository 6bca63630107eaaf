"""The producer message: ``cancellations.submit`` with ``kwargs={"request": R}``.

Validated strictly: a typo in a field name or a number sent as a string is an ``invalid`` job with
its errors, not a guess. Money with real consequences should not be inferred.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

MAX_LEGS = 10_000

NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SixDot50Leg(_Strict):
    provider: Literal["sixdot50"]
    batch_id: uuid.UUID

    @field_validator("batch_id", mode="before")
    @classmethod
    def _guid_string(cls, value: Any) -> Any:
        # JSON has no UUID type: accept the GUID string (strict mode would refuse it).
        return uuid.UUID(value) if isinstance(value, str) else value


class PaywallLeg(_Strict):
    provider: Literal["paywall"]
    scope: Literal["bulk", "payment"]
    merchant_unique_code: NonEmpty
    payment_date: date

    @field_validator("payment_date", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        return date.fromisoformat(value) if isinstance(value, str) else value


class BamboraLeg(_Strict):
    provider: Literal["bambora"]
    merchant: NonEmpty
    payment_reference: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


Leg = Annotated[SixDot50Leg | PaywallLeg | BamboraLeg, Field(discriminator="provider")]


class Expect(_Strict):
    count: Annotated[int, Field(ge=0)]
    amount: Decimal
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None

    @field_validator("amount", mode="before")
    @classmethod
    def _decimal_string(cls, value: Any) -> Any:
        # Amounts travel as decimal strings; a JSON float would already have lost precision.
        if not isinstance(value, str):
            raise ValueError("amount must be a decimal string such as \"18500.00\"")
        try:
            parsed = Decimal(value)
        except ArithmeticError as exc:
            raise ValueError("amount must be a decimal string such as \"18500.00\"") from exc
        if not parsed.is_finite() or parsed < 0:
            raise ValueError("amount must be a finite, non-negative decimal")
        return parsed


class ReplyTo(_Strict):
    """Where the job's outcome is published as a Celery task message (issue 17)."""

    task: NonEmpty
    queue: NonEmpty


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("notify_url must be an http or https URL with a host")
    return value


class CancellationRequest(_Strict):
    idempotency_key: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    reason: Annotated[str, StringConstraints(max_length=1000)] | None = None
    on_cutoff: Literal["reject", "refund"] = "reject"
    mirror: bool = False
    legs: Annotated[list[Leg], Field(min_length=1, max_length=MAX_LEGS)]
    expect: Expect | None = None
    # Outcomes (issue 17): a signed webhook and/or a Celery message when the job ends.
    notify_url: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = None
    reply_to: ReplyTo | None = None

    @field_validator("notify_url", mode="after")
    @classmethod
    def _notify_url_is_http(cls, value: str | None) -> str | None:
        return _http_url(value) if value is not None else None


def job_id_for_key(idempotency_key: str) -> uuid.UUID:
    """The job id a producer can compute without a result backend."""
    return uuid.uuid5(uuid.NAMESPACE_URL, "cancelflow:" + idempotency_key)


def invalid_job_id(body_sha256: str) -> uuid.UUID:
    """The id of an invalid message with no usable idempotency key, from its body's SHA-256."""
    return uuid.uuid5(uuid.NAMESPACE_URL, "cancelflow:invalid:" + body_sha256)


def leg_id_for(job_id: uuid.UUID, position: int) -> uuid.UUID:
    """Legs get ids derived from their job, so re-creating a job re-creates the same legs."""
    return uuid.uuid5(job_id, f"leg:{position}")


def usable_idempotency_key(payload: object) -> str | None:
    """The message's idempotency key when it is a valid one, even if the rest is not."""
    if not isinstance(payload, dict):
        return None
    key = payload.get("idempotency_key")
    if isinstance(key, str) and 1 <= len(key) <= 200:
        return key
    return None


def describe_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Validation errors as ``{"field", "error"}`` pairs, without echoing the input values."""
    return [
        {"field": ".".join(str(part) for part in err["loc"]) or "request", "error": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


# The field that names a leg's target at its provider: what `GET /api/v1/jobs?target=` matches.
TARGET_KEY_FIELDS = ("batch_id", "merchant_unique_code", "payment_reference")


def target_key(target: Mapping[str, Any]) -> str | None:
    """The batch id, merchant unique code or payment reference a target is found by."""
    for name in TARGET_KEY_FIELDS:
        value = target.get(name)
        if value:
            return str(value)
    return None


def target_of(leg: SixDot50Leg | PaywallLeg | BamboraLeg) -> dict[str, str]:
    """The leg's target as shown by the API: its fields but the provider, as JSON strings."""
    return {
        name: str(value) if not isinstance(value, date) else value.isoformat()
        for name, value in leg.model_dump().items()
        if name != "provider"
    }
