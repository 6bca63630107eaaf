"""What an internal task message says about itself in Flower: job, provider, leg count."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from worker.domain.states import Provider


class OneLeg(Protocol):
    """A leg as the ledger returns it; only its job and provider are read."""

    @property
    def job_id(self) -> str: ...

    @property
    def provider(self) -> Provider: ...


@dataclass(frozen=True, slots=True)
class TaskLabel:
    """The readable arguments of a task message (Celery's ``argsrepr``).

    Names the job, the provider and how many legs the message carries: never a target, never a
    secret, so that an operator reading Flower sees which job a task works for.
    """

    job_id: str | None
    provider: str | None
    legs: int = 1

    @classmethod
    def of(cls, job_id: str, provider: Provider | str, legs: int = 1) -> TaskLabel:
        return cls(job_id, str(provider), legs)

    @classmethod
    def for_leg(cls, leg: OneLeg) -> TaskLabel:
        return cls.of(leg.job_id, leg.provider)

    def __str__(self) -> str:
        parts = [f"job={self.job_id}" if self.job_id else "",
                 f"provider={self.provider}" if self.provider else "",
                 f"legs={self.legs}"]
        return " ".join(part for part in parts if part)
