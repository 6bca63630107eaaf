"""What ``/metrics`` reads from the ledger at scrape time: a few dozen tally rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from worker.domain.states import JobState
from worker.services.records import LATENCY_BOUNDS_MS
from worker.services.views.read_side import CallTally, ReadSide

__all__ = ["LATENCY_BOUNDS_MS", "CallTally", "LedgerFigures", "ledger_figures"]


@dataclass(frozen=True, slots=True)
class LedgerFigures:
    """Legs by (provider, state), jobs by state, the oldest job awaiting callbacks, and the
    provider calls' latency tallies."""

    legs: list[tuple[str, str, int]]
    jobs: dict[JobState, int]
    oldest_awaiting_callbacks: datetime | None
    calls: list[CallTally]


def ledger_figures(reads: ReadSide) -> LedgerFigures:
    """Folds finished sessions' tallies first (PostgreSQL), then reads one snapshot;
    LedgerUnavailable when the ledger cannot be read."""
    reads.fold_tallies()
    with reads.snapshot() as views:
        return LedgerFigures(views.leg_tally(), views.job_tally(),
                             views.oldest_job_in(JobState.AWAITING_CALLBACKS), views.call_tally())
