"""The ledger in memory: what the fake units of work share, and its repositories, keeping the
contract of ``worker.services.unit_of_work`` (``tests/integration/test_ledger_contract.py``)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from worker.domain.deliveries import (
    DeliveryStatus,
    OutcomeDelivery,
    OutcomeKind,
    delivery_id_for,
)
from worker.domain.states import JobState, LegState, Provider, Reason
from worker.services.records import (
    AttemptRecord,
    CallMade,
    JobEvent,
    JobRecord,
    LegClaim,
    LegFinish,
    LegRecord,
    NewCallbackPage,
    NewEvent,
    NewJob,
    NewLeg,
    PageTotals,
)

_ENUMS: dict[str, type[Enum]] = {"state": LegState, "reason": Reason, "provider": Provider}
_WAITING = (LegState.AWAITING_CALLBACKS, LegState.REFUND_REQUESTED)


def _leg_with(leg: LegRecord, values: Mapping[str, Any], **changes: Any) -> LegRecord:
    """The leg with column values (enums by value or as such) applied, its version bumped."""
    typed = {k: _ENUMS[k](v) if k in _ENUMS and v is not None else v for k, v in values.items()}
    return dataclasses.replace(leg, **typed, **changes, version=leg.version + 1)


@dataclass
class FakeLedger:
    """What the fake units of work share: the committed ledger."""

    jobs: dict[str, JobRecord] = field(default_factory=dict)
    legs: dict[str, LegRecord] = field(default_factory=dict)
    attempts: dict[int, AttemptRecord] = field(default_factory=dict)
    pages: list[tuple[NewCallbackPage, int]] = field(default_factory=list)
    events: list[NewEvent] = field(default_factory=list)
    outcomes: dict[str, OutcomeDelivery] = field(default_factory=dict)
    next_id: int = 1
    lock: threading.RLock = field(default_factory=threading.RLock)
    commits: int = 0

    def copy(self) -> FakeLedger:
        return FakeLedger(dict(self.jobs), dict(self.legs), dict(self.attempts), list(self.pages),
                          list(self.events), dict(self.outcomes), self.next_id, self.lock,
                          self.commits)


class _Repository:
    def __init__(self, data: FakeLedger) -> None:
        self.data = data


class FakeJobRepository(_Repository):
    def add_many(self, new: Sequence[tuple[NewJob, Sequence[NewLeg]]]
                 ) -> list[list[LegRecord] | None]:
        return [self._add(job, legs) for job, legs in new]

    def _add(self, job: NewJob, legs: Sequence[NewLeg]) -> list[LegRecord] | None:
        if job.id in self.data.jobs or (job.idempotency_key is not None and any(
                j.idempotency_key == job.idempotency_key for j in self.data.jobs.values())):
            return None
        self.data.jobs[job.id] = JobRecord(job.id, job.idempotency_key, job.state, job.request,
                                           job.errors, None, job.created_at, job.created_at, 0)
        stored = [self._leg(leg) for leg in legs]
        for leg in stored:
            self.data.legs[leg.id] = leg
        return stored

    @staticmethod
    def _leg(leg: NewLeg) -> LegRecord:
        claimed = leg.lease is not None
        return LegRecord(
            id=leg.id, job_id=leg.job_id, position=leg.position, provider=leg.provider,
            target=leg.target, state=LegState.IN_FLIGHT if claimed else LegState.PENDING,
            reason=None, detail=None, already_cancelled=False, attempts=int(claimed), retries=0,
            needs_resolve=False, provider_reference=None, at_risk=False,
            lease_token=leg.lease.token if leg.lease else None,
            lease_expires_at=leg.lease.expires_at if leg.lease else None,
            next_attempt_at=leg.created_at, reconciliation=None, created_at=leg.created_at,
            updated_at=leg.created_at, version=int(claimed), match_key=leg.match_key)

    def get(self, job_id: str, *, lock: bool = False) -> JobRecord | None:
        return self.data.jobs.get(job_id)

    def get_many(self, job_ids: Sequence[str], *, lock: bool = False) -> list[JobRecord]:
        return [self.data.jobs[i] for i in sorted(set(job_ids)) if i in self.data.jobs]

    def start(self, job_id: str, now: datetime) -> None:
        job = self.data.jobs.get(job_id)
        if job is not None and job.state is JobState.ACCEPTED:
            self.data.jobs[job_id] = dataclasses.replace(
                job, state=JobState.IN_PROGRESS, updated_at=now, version=job.version + 1)

    def set_state(self, job_id: str, state: JobState, reconciliation: dict[str, Any] | None,
                  now: datetime) -> None:
        job = self.data.jobs.get(job_id)
        if job is not None:
            self.data.jobs[job_id] = dataclasses.replace(
                job, state=state, reconciliation=reconciliation, updated_at=now,
                version=job.version + 1)


class FakeLegRepository(_Repository):
    def _where(self, keep: Any) -> list[LegRecord]:
        return [leg for leg in self.data.legs.values() if keep(leg)]

    def get(self, leg_id: str) -> LegRecord | None:
        return self.data.legs.get(leg_id)

    def get_many(self, leg_ids: Sequence[str]) -> list[LegRecord]:
        return [self.data.legs[i] for i in dict.fromkeys(leg_ids) if i in self.data.legs]

    def of_job(self, job_id: str) -> list[LegRecord]:
        return sorted(self._where(lambda leg: leg.job_id == job_id), key=lambda leg: leg.position)

    def in_states(self, job_id: str, states: Iterable[LegState]) -> list[LegRecord]:
        wanted = set(states)
        return [leg for leg in self.of_job(job_id) if leg.state in wanted]

    def state_counts(self, job_ids: Sequence[str]) -> dict[str, dict[LegState, int]]:
        counts: dict[str, dict[LegState, int]] = {job_id: {} for job_id in job_ids}
        for job_id, of_job in counts.items():
            for leg in self.of_job(job_id):
                of_job[leg.state] = of_job.get(leg.state, 0) + 1
        return counts

    def evidence(self, job_ids: Sequence[str]
                 ) -> dict[str, list[tuple[str, LegState, dict[str, Any] | None]]]:
        return {job_id: [(leg.id, leg.state, leg.reconciliation) for leg in self.of_job(job_id)]
                for job_id in job_ids}

    def reject_unsent(self, job_id: str, reason: Reason, detail: str | None,
                      now: datetime) -> int:
        unsent = [leg for leg in self.data.legs.values() if leg.job_id == job_id
                  and leg.state is LegState.PENDING and leg.attempts == 0]
        for leg in unsent:
            self.data.legs[leg.id] = _leg_with(
                leg, {"state": LegState.REJECTED, "reason": reason, "detail": detail,
                      "next_attempt_at": None, "updated_at": now})
        return len(unsent)

    def update(self, leg_id: str, expected_version: int, **values: Any) -> bool:
        leg = self.data.legs.get(leg_id)
        if leg is None or leg.version != expected_version:
            return False
        self.data.legs[leg_id] = _leg_with(leg, values)
        return True

    def claim_many(self, claims: Sequence[LegClaim], token: str, until: datetime,
                   now: datetime) -> set[str]:
        won = set()
        for claim in claims:
            leg = self.data.legs.get(claim.leg_id)
            if leg is not None and leg.version == claim.version:
                self.data.legs[leg.id] = _leg_with(
                    leg, {"state": LegState.IN_FLIGHT, "lease_token": token,
                          "lease_expires_at": until, "needs_resolve": claim.resolve,
                          "updated_at": now}, attempts=leg.attempts + 1)
                won.add(leg.id)
        return won

    def finish_many(self, finishes: Sequence[LegFinish]) -> set[str]:
        applied = set()
        for finish in finishes:
            leg = self.data.legs.get(finish.leg.id)
            if leg is not None and leg.version == finish.version:
                self.data.legs[leg.id] = _leg_with(
                    leg, finish.values, lease_token=None, lease_expires_at=None,
                    attempts=leg.attempts + finish.attempts_delta)
                applied.add(leg.id)
        return applied

    def count_attempts(self, deltas: Mapping[str, int]) -> None:
        for leg_id, n in deltas.items():
            leg = self.data.legs.get(leg_id)
            if leg is not None and n:
                self.data.legs[leg_id] = dataclasses.replace(leg, attempts=leg.attempts + n)

    def due(self, now: datetime, states: Iterable[LegState], limit: int) -> list[LegRecord]:
        wanted = set(states)
        found = self._where(lambda leg: leg.state in wanted and (
            leg.next_attempt_at is None or leg.next_attempt_at <= now))
        return sorted(found, key=lambda leg: (leg.next_attempt_at is None,
                                              leg.next_attempt_at or now))[:limit]

    def postpone(self, leg_ids: Sequence[str], until: datetime) -> None:
        for leg_id in leg_ids:
            leg = self.data.legs[leg_id]
            self.data.legs[leg_id] = dataclasses.replace(leg, next_attempt_at=until)

    def with_expired_lease(self, now: datetime, limit: int) -> list[LegRecord]:
        return self._where(lambda leg: leg.state is LegState.IN_FLIGHT and (
            leg.lease_expires_at is not None and leg.lease_expires_at < now))[:limit]

    def cancelled_without_evidence(self, now: datetime, limit: int) -> list[LegRecord]:
        return self._where(lambda leg: leg.state is LegState.CANCELLED
                           and leg.reconciliation is None
                           and (leg.next_attempt_at is None or leg.next_attempt_at <= now))[:limit]

    def waiting_due(self, now: datetime, limit: int) -> list[LegRecord]:
        found = self._where(lambda leg: leg.state in _WAITING and (
            leg.next_attempt_at is not None and leg.next_attempt_at <= now))
        return sorted(found, key=lambda leg: leg.next_attempt_at or now)[:limit]

    def waiting_for(self, bulk_payment_id: str, code: str) -> list[LegRecord]:
        return self._where(lambda leg: leg.provider is Provider.PAYWALL
                           and leg.state in _WAITING
                           and (leg.provider_reference == bulk_payment_id
                                or (leg.match_key == code and leg.provider_reference is None)))


class FakeEventRepository(_Repository):
    def add(self, event: NewEvent) -> None:
        self.data.events.append(event)

    def of_job(self, job_id: str, limit: int) -> list[JobEvent]:
        mine = [(n, e) for n, e in enumerate(self.data.events, 1) if e.job_id == job_id]
        return [JobEvent(n, e.job_id, e.leg_id, e.type, e.actor, e.note, e.details, e.at)
                for n, e in mine[-limit:]]


class FakeOutcomeRepository(_Repository):
    def owe(self, job_id: str, kind: OutcomeKind, final_state: str,
            destination: dict[str, str], now: datetime) -> str | None:
        delivery_id = delivery_id_for(job_id, kind, final_state)
        if delivery_id in self.data.outcomes:
            return None
        self.data.outcomes[delivery_id] = OutcomeDelivery(
            delivery_id, job_id, kind, final_state, destination, DeliveryStatus.PENDING, 0,
            None, None, now, now, None, now)
        return delivery_id

    def get(self, delivery_id: str) -> OutcomeDelivery | None:
        return self.data.outcomes.get(delivery_id)

    def claim(self, delivery: OutcomeDelivery, now: datetime, until: datetime) -> bool:
        found = self.data.outcomes.get(delivery.id)
        if (found is None or found.status is not DeliveryStatus.PENDING
                or found.attempts != delivery.attempts):
            return False
        self.data.outcomes[found.id] = dataclasses.replace(
            found, attempts=found.attempts + 1, next_attempt_at=until, updated_at=now)
        return True

    def record(self, delivery_id: str, attempt: int, *, status: DeliveryStatus,
               last_status: int | None, last_error: str | None,
               next_attempt_at: datetime | None, now: datetime) -> bool:
        found = self.data.outcomes.get(delivery_id)
        if found is None or found.attempts != attempt or found.status is not DeliveryStatus.PENDING:
            return False
        self.data.outcomes[delivery_id] = dataclasses.replace(
            found, status=status, last_status=last_status, last_error=last_error,
            next_attempt_at=next_attempt_at, updated_at=now,
            delivered_at=now if status is DeliveryStatus.DELIVERED else None)
        return True

    def overdue(self, before: datetime, limit: int) -> list[str]:
        due = sorted((d for d in self.data.outcomes.values()
                      if d.status is DeliveryStatus.PENDING and d.next_attempt_at is not None
                      and d.next_attempt_at < before), key=lambda d: d.next_attempt_at or before)
        return [d.id for d in due[:limit]]

    def mark_swept(self, delivery_ids: Sequence[str], now: datetime) -> None:
        for delivery_id in delivery_ids:
            found = self.data.outcomes.get(delivery_id)
            if found is not None and found.status is DeliveryStatus.PENDING:
                self.data.outcomes[delivery_id] = dataclasses.replace(
                    found, next_attempt_at=now, updated_at=now)


class FakeAttemptRepository(_Repository):
    def _new_id(self) -> int:
        attempt_id = self.data.next_id
        self.data.next_id += 1
        return attempt_id

    def _count(self, leg_id: str) -> None:
        leg = self.data.legs[leg_id]
        self.data.legs[leg_id] = dataclasses.replace(leg, attempts=leg.attempts + 1)

    def start_many(self, leg_ids: Sequence[str], operation: str,
                   now: datetime) -> dict[str, int]:
        started = {}
        for leg_id in leg_ids:
            attempt_id = self._new_id()
            self.data.attempts[attempt_id] = AttemptRecord(attempt_id, leg_id, operation, now,
                                                           None, None, None, None, None)
            started[leg_id] = attempt_id
        return started

    def start(self, leg_id: str, operation: str, started_at: datetime) -> int:
        attempt_id = self.start_many([leg_id], operation, started_at)[leg_id]
        self._count(leg_id)
        return attempt_id

    def _record(self, attempt_id: int, leg_id: str, call: CallMade) -> AttemptRecord:
        record = call.record
        return AttemptRecord(
            attempt_id, leg_id, call.operation, call.started_at, call.finished_at,
            record.http_status if record else None, record.outcome if record else None,
            record.provider_code if record else None,
            round(record.latency_ms, 3) if record else None, record.body if record else None)

    def finish(self, attempt_id: int, call: CallMade) -> None:
        leg_id = self.data.attempts[attempt_id].leg_id
        self.data.attempts[attempt_id] = self._record(attempt_id, leg_id, call)

    def add(self, leg_id: str, call: CallMade) -> None:
        attempt_id = self._new_id()
        self.data.attempts[attempt_id] = self._record(attempt_id, leg_id, call)
        self._count(leg_id)

    def record_round(self, finished: Sequence[tuple[int, CallMade]],
                     added: Sequence[tuple[str, CallMade]], dropped: Sequence[int]) -> None:
        for attempt_id, call in finished:
            self.finish(attempt_id, call)
        for leg_id, call in added:
            attempt_id = self._new_id()
            self.data.attempts[attempt_id] = self._record(attempt_id, leg_id, call)
        for attempt_id in dropped:
            self.data.attempts.pop(attempt_id, None)

    def of_leg(self, leg_id: str) -> list[AttemptRecord]:
        return [a for _, a in sorted(self.data.attempts.items()) if a.leg_id == leg_id]


class FakeCallbackPageRepository(_Repository):
    def add(self, page: NewCallbackPage) -> bool:
        key = (page.bulk_payment_id, page.merchant_unique_code, page.page_number)
        if any((p.bulk_payment_id, p.merchant_unique_code, p.page_number) == key
               for p, _ in self.data.pages):
            return False
        self.data.pages.append((page, len(self.data.pages)))
        return True

    def totals(self, *, bulk_payment_id: str | None, code: str | None) -> list[PageTotals]:
        return [PageTotals(p.bulk_payment_id, p.page_number, p.total_pages, p.totals)
                for p, _ in self.data.pages
                if (p.bulk_payment_id == bulk_payment_id if bulk_payment_id is not None
                    else p.merchant_unique_code == code)]

    def stored(self, bulk_payment_id: str, code: str) -> int:
        return sum(1 for p, _ in self.data.pages
                   if (p.bulk_payment_id, p.merchant_unique_code) == (bulk_payment_id, code))

    def count(self) -> int:
        return len(self.data.pages)
