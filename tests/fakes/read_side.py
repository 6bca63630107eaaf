"""An in-memory read side (``worker.services.views.ReadSide``) for the views' unit tests."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from worker.domain.deliveries import OutcomeDelivery
from worker.domain.request import target_key
from worker.domain.states import JobState, LegState, Provider
from worker.services.views.read_side import (
    AttemptRecord,
    CallTally,
    JobEvent,
    JobFilter,
    JobRecord,
    LedgerUnavailable,
    LegRecord,
    LegTotals,
)

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def job_record(job_id: str, created_at: datetime = T0,
               state: JobState = JobState.IN_PROGRESS) -> JobRecord:
    return JobRecord(job_id, f"key-{job_id}", state, None, None, None, created_at, created_at, 1)


def leg_record(job_id: str, position: int, state: LegState = LegState.PENDING) -> LegRecord:
    return LegRecord(
        id=f"{job_id}-leg-{position}", job_id=job_id, position=position,
        provider=Provider.BAMBORA, target={"merchant": "T1", "payment_reference": str(position)},
        state=state, reason=None, detail=None, already_cancelled=False, attempts=0, retries=0,
        needs_resolve=False, provider_reference=None, at_risk=False, lease_token=None,
        lease_expires_at=None, next_attempt_at=None, reconciliation=None, created_at=T0,
        updated_at=T0, version=1)


class FakeReadSide:
    """Jobs and legs in lists; ``down`` makes every read raise LedgerUnavailable."""

    def __init__(self) -> None:
        self.jobs: dict[str, JobRecord] = {}
        self.legs: list[LegRecord] = []
        self.folds = 0
        self.snapshots = 0
        self.down = False

    def add_job(self, job: JobRecord, legs: int) -> None:
        self.jobs[job.id] = job
        self.legs += [leg_record(job.id, position) for position in range(legs)]

    @contextmanager
    def snapshot(self) -> Iterator[FakeSnapshot]:
        if self.down:
            raise LedgerUnavailable("OperationalError")
        self.snapshots += 1
        yield FakeSnapshot(self)

    def fold_tallies(self) -> bool:
        if self.down:
            raise LedgerUnavailable("OperationalError")
        self.folds += 1
        return True

    def ping(self) -> None:
        if self.down:
            raise ConnectionError("down")

    def encode_cursor(self, created_at: datetime, job_id: str) -> str:
        return json.dumps([created_at.isoformat(), job_id])

    def decode_cursor(self, cursor: str) -> tuple[datetime, str]:
        try:
            created, job_id = json.loads(cursor)
            return datetime.fromisoformat(created), str(job_id)
        except (ValueError, TypeError) as exc:
            raise ValueError("invalid cursor") from exc


class FakeSnapshot:
    def __init__(self, side: FakeReadSide) -> None:
        self.side = side

    def _legs_of(self, job_id: str) -> list[LegRecord]:
        return sorted((leg for leg in self.side.legs if leg.job_id == job_id),
                      key=lambda leg: leg.position)

    def get_job(self, job_id: str) -> JobRecord | None:
        return self.side.jobs.get(job_id)

    def list_jobs(self, *, where: JobFilter, limit: int,
                  after: tuple[datetime, str] | None) -> list[JobRecord]:
        found = sorted(self.side.jobs.values(), key=lambda j: (j.created_at, j.id), reverse=True)
        return [job for job in found
                if (where.state is None or job.state is where.state)
                and (where.idempotency_key is None or job.idempotency_key == where.idempotency_key)
                and (where.since is None or job.created_at >= where.since)
                and (where.until is None or job.created_at < where.until)
                and ((where.provider is None and where.target is None) or any(
                    (where.provider is None or leg.provider is where.provider)
                    and (where.target is None or target_key(leg.target) == where.target)
                    for leg in self._legs_of(job.id)))
                and (after is None or (job.created_at, job.id) < after)][:limit]

    def jobs_by_id(self, job_ids: Sequence[str]) -> dict[str, JobRecord]:
        return {job_id: self.side.jobs[job_id] for job_id in job_ids}

    def legs_from(self, job_id: str, first: int, limit: int) -> list[LegRecord]:
        return [leg for leg in self._legs_of(job_id) if leg.position >= first][:limit]

    def first_legs(self, job_ids: Sequence[str], count: int) -> dict[str, list[LegRecord]]:
        return {job_id: self._legs_of(job_id)[:count] for job_id in job_ids}

    def leg_totals(self, job_ids: Sequence[str]) -> dict[str, LegTotals]:
        totals = {}
        for job_id in job_ids:
            by_state: dict[LegState, int] = {}
            for leg in self._legs_of(job_id):
                by_state[leg.state] = by_state.get(leg.state, 0) + 1
            totals[job_id] = LegTotals(by_state, sum(leg.attempts for leg in self._legs_of(job_id)))
        return totals

    def notable_legs(self, job_id: str, limit: int) -> tuple[list[LegRecord], int]:
        notable = [leg for leg in self._legs_of(job_id)
                   if leg.reason is not None or leg.already_cancelled or leg.at_risk]
        return notable[:limit], len(notable)

    def leg_positions(self, job_id: str, leg_ids: Sequence[str]) -> dict[str, tuple[int, str]]:
        return {leg.id: (leg.position, leg.provider.value) for leg in self._legs_of(job_id)
                if leg.id in leg_ids}

    def attempts_of_job(self, job_id: str, limit: int) -> list[AttemptRecord]:
        return []

    def callback_pages_of_job(self, job_id: str, limit: int) -> list[dict[str, Any]]:
        return []

    def paywall_legs_for(self, job_id: str, references: Sequence[str],
                         codes: Sequence[str]) -> list[LegRecord]:
        return []

    def leg_tally(self) -> list[tuple[str, str, int]]:
        counted: dict[tuple[str, str], int] = {}
        for leg in self.side.legs:
            key = (leg.provider.value, leg.state.value)
            counted[key] = counted.get(key, 0) + 1
        return [(provider, state, n) for (provider, state), n in counted.items()]

    def job_tally(self) -> dict[JobState, int]:
        counted: dict[JobState, int] = {}
        for job in self.side.jobs.values():
            counted[job.state] = counted.get(job.state, 0) + 1
        return counted

    def oldest_job_in(self, state: JobState) -> datetime | None:
        return min((job.created_at for job in self.side.jobs.values() if job.state is state),
                   default=None)

    def call_tally(self) -> list[CallTally]:
        return []

    def events_of(self, job_id: str, limit: int) -> list[JobEvent]:
        return []

    def notifications_of(self, job_id: str) -> list[OutcomeDelivery]:
        return []
