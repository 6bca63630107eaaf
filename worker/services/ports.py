"""The ports the use cases need: a provider driver per provider, callback recovery for the
providers that answer by callback, and a task dispatcher."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from worker.domain.outcomes import Outcome, ResolveOutcome
from worker.domain.reconciliation import LegEvidence
from worker.domain.states import Provider
from worker.domain.task_label import TaskLabel
from worker.providers.calls import CallObserver


class LegDriver(Protocol):
    """Drives one provider's legs. Raises ``ProviderError`` for what the use case must decide."""

    provider: Provider

    def cancel(
        self, target: dict[str, str], calls: CallObserver, on_cutoff: str = "reject"
    ) -> Outcome:
        """Ask the provider to cancel the target; refusals are read back and decided."""
        ...

    def resolve(
        self, target: dict[str, str], calls: CallObserver, on_cutoff: str = "reject"
    ) -> ResolveOutcome:
        """Read the target's state after an ambiguous answer, before any new cancel."""
        ...

    def read_evidence(self, target: dict[str, str], calls: CallObserver) -> LegEvidence | None:
        """The provider's figures for reconciliation, or None if it has none (yet)."""
        ...


class ResultStatus(StrEnum):
    """Where one payment of an operation stands, as the provider's own records show it."""

    OK = "ok"
    FAILED = "failed"
    PENDING = "pending"


@dataclass(frozen=True, slots=True)
class QueriedResult:
    """One payment's result read back from the provider; ``amount`` None when unreadable."""

    amount: Decimal | None
    status: ResultStatus


@runtime_checkable
class CallbackRecovery(Protocol):
    """What a driver whose provider answers by callback offers when the callbacks are lost."""

    def request_resend(self, target: dict[str, str], calls: CallObserver) -> str | None:
        """Ask the provider to send the callbacks again; its refusal in words, or None."""
        ...

    def query_results(self, target: dict[str, str], scope: str,
                      calls: CallObserver) -> Iterator[QueriedResult]:
        """Every payment result of the target's ``scope`` operation ("cancel" or "refund")."""
        ...


class Dispatcher(Protocol):
    """Enqueues internal work. Every task is idempotent, so a duplicate dispatch is harmless.

    ``label`` names the job and provider a message works for (what Flower shows as its args).
    """

    def process_leg(self, leg_id: str, countdown: float = 0, *,
                    label: TaskLabel | None = None) -> None: ...

    def process_legs(self, leg_ids: list[str], *, label: TaskLabel | None = None) -> None: ...

    def read_evidence(self, leg_id: str, *, label: TaskLabel | None = None) -> None: ...

    def settle_callbacks(self, leg_id: str, *, label: TaskLabel | None = None) -> None: ...

    def recover_callbacks(self, leg_id: str, *, label: TaskLabel | None = None) -> None: ...
    # Outcomes (issue 17): send one owed webhook or reply message (worker/services/outcomes.py).
    def deliver_outcome(self, delivery_id: str, countdown: float = 0) -> None: ...


# Outcomes (issue 17): how a finished job's outcome reaches its producer.


class DeliveryError(Exception):
    """A delivery did not get through (no answer, broker refused); ``error`` names the class."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class OutcomeChannels(Protocol):
    def post_webhook(self, url: str, msg_id: str, when: datetime, body: bytes) -> int:
        """POST the body signed (Standard Webhooks); the HTTP status, or DeliveryError."""
        ...

    def publish_reply(self, task: str, queue: str, job: dict[str, Any]) -> None:
        """Publish Celery task ``task`` to ``queue`` with kwargs={"job": job}, or DeliveryError."""
        ...
