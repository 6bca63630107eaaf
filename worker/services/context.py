"""What every use case runs with: the ledger, the provider drivers, a dispatcher, a clock."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine

from worker.domain.states import Provider
from worker.ledger.uow import UnitOfWork
from worker.services.ports import Dispatcher, LegDriver


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_seconds: float
    max_seconds: float
    max_attempts: int


@dataclass
class Context:
    engine: Engine
    drivers: Mapping[Provider, LegDriver]
    dispatcher: Dispatcher
    retry: RetryPolicy
    lease_seconds: float
    callback_timeout_seconds: float = 900
    clock: Callable[[], datetime] = utcnow
    rng: Callable[[], float] = field(default=random.random)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine)
