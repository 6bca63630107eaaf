"""What every use case runs with: units of work over the ledger, the provider drivers, a
dispatcher, a clock."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from worker.domain.rounds import RetryPolicy
from worker.domain.states import Provider
from worker.services.pools import ProviderPools
from worker.services.ports import Dispatcher, LegDriver
from worker.services.throttle import MemoryThrottle, Throttle
from worker.services.unit_of_work import AbstractUnitOfWork, UnitOfWorkFactory

__all__ = ["Context", "RetryPolicy", "utcnow"]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    uow_factory: UnitOfWorkFactory
    drivers: Mapping[Provider, LegDriver]
    dispatcher: Dispatcher
    retry: RetryPolicy
    lease_seconds: float
    # One provider call's time bound (HTTP_TIMEOUT_SECONDS): the margin of the lease check.
    call_timeout_seconds: float = 10
    callback_timeout_seconds: float = 900
    clock: Callable[[], datetime] = utcnow
    rng: Callable[[], float] = field(default=random.random)
    throttle: Throttle = field(default_factory=MemoryThrottle)
    # The submit task runs the first batch of a new job itself (the worker does; tests that
    # drive each step by hand leave it off).
    inline_first_round: bool = False
    pools: ProviderPools = field(default_factory=ProviderPools)
    # Outcomes (issue 17): whether CANCELFLOW_NOTIFY_SECRET is set (else notify_url is invalid).
    notify_configured: bool = False
    # Outcomes (issue 17): the job as GET /api/v1/jobs/{id} shows it (the read side's view).
    read_job: Callable[[str], dict[str, Any] | None] | None = None

    def uow(self, *, read_only: bool = False, durable: bool = False) -> AbstractUnitOfWork:
        """A new unit of work (``worker.services.unit_of_work``)."""
        return self.uow_factory(read_only=read_only, durable=durable)
