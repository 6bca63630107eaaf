"""The ports the use cases need: a provider driver per provider and a task dispatcher."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from worker.domain.outcomes import Outcome, ResolveOutcome
from worker.domain.reconciliation import LegEvidence
from worker.domain.states import Provider
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


class Dispatcher(Protocol):
    """Enqueues internal work. Every task is idempotent, so a duplicate dispatch is harmless."""

    def process_leg(self, leg_id: str, countdown: float = 0) -> None: ...

    def process_legs(self, leg_ids: list[str]) -> None: ...

    def read_evidence(self, leg_id: str) -> None: ...

    def settle_callbacks(self, leg_id: str) -> None: ...

    def recover_callbacks(self, leg_id: str) -> None: ...

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
