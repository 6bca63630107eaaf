"""The ports the use cases need: a provider driver per provider and a task dispatcher."""

from __future__ import annotations

from typing import Protocol

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
