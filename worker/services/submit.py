"""Accept a producer's message: validate it, store the job once, dispatch its legs.

The job id is derived from the idempotency key and is the ledger's primary key: a key submitted
again finds its job and never calls a provider a second time. An invalid message is kept as an
``invalid`` job with its errors, never retried and never lost.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from worker.domain.request import (
    CancellationRequest,
    describe_errors,
    invalid_job_id,
    job_id_for_key,
    leg_id_for,
    target_of,
    usable_idempotency_key,
)
from worker.domain.states import JobState, LegState, Provider
from worker.domain.task_label import TaskLabel
from worker.services.context import Context
from worker.services.idempotency import note_conflict
from worker.services.legs import INTENT, Claim, Recorder, run_claimed
from worker.services.outcomes import notify_refusal
from worker.services.records import Lease, LegRecord, NewJob, NewLeg
from worker.services.unit_of_work import AbstractUnitOfWork

log = logging.getLogger(__name__)

# Legs per task: one task's claim and record are one transaction each, whatever the batch size,
# and its calls run concurrently. Small enough that a batch's slowest call stalls little.
BATCH_SIZE = 50


@dataclass(frozen=True, slots=True)
class Submitted:
    job_id: str
    created: bool
    state: JobState


@dataclass(frozen=True, slots=True)
class Message:
    """A producer's message as the submit task receives it; ``digest`` is the SHA-256 hex of
    its body as received (the worker passes it)."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class Accepted:
    """A message stored as a job: the answer, the legs to dispatch, the legs claimed already."""

    submitted: Submitted
    waiting: list[tuple[str, Provider]]
    claims: list[Claim]


@dataclass(frozen=True, slots=True)
class _Checked:
    request: CancellationRequest
    raw: str


@dataclass(frozen=True, slots=True)
class _Refused:
    key: str | None
    errors: list[dict[str, str]]
    raw: str


def body_sha256(args: Any, kwargs: Any) -> str:
    """A stand-in for the message body's digest when the raw body is not at hand."""
    body = json.dumps([list(args), kwargs, {}], sort_keys=True, default=str).encode()
    return hashlib.sha256(body).hexdigest()


def submit(
    ctx: Context, args: tuple[Any, ...], kwargs: dict[str, Any], digest: str | None = None
) -> Submitted:
    """Validate and store the message as a job; cancel its first legs and dispatch the others.

    The worker's task does the same in steps (:func:`accept`, :func:`carry_out`), sharing each
    step's transaction with the other messages being taken at the same moment.
    """
    accepted = accept(ctx, [Message(args, kwargs, digest)])[0]
    carry_out(ctx, accepted)
    return accepted.submitted


def accept(ctx: Context, messages: Sequence[Message]) -> list[Accepted]:
    """Store each message as a job, or find the job its idempotency key already has, all in one
    durable transaction: the producers' messages are acknowledged once this returns."""
    return _store(ctx, [_check(ctx, message) for message in messages])


def carry_out(ctx: Context, accepted: Accepted, record: Recorder | None = None) -> None:
    """Dispatch the job's waiting legs and run the ones it claimed (``record`` writes their
    results; by default in a transaction of their own)."""
    try:
        _dispatch_in_batches(ctx, accepted.waiting, accepted.submitted.job_id)
    finally:
        # Legs claimed above are ours to run even if the broker refused the dispatch (an
        # outage): the sweep dispatches the others again, these would wait for their lease.
        if accepted.claims:
            run_claimed(ctx, accepted.claims, record)


def store_invalid(
    ctx: Context, key: str | None, errors: list[dict[str, str]], raw: str
) -> Submitted:
    """Keep an invalid message as an ``invalid`` job: under its key's job id when it has a
    usable key, else under the digest of its body (``raw``); a second copy changes nothing."""
    return _store(ctx, [_Refused(key, errors, raw)])[0].submitted


def _check(ctx: Context, message: Message) -> _Checked | _Refused:
    args, kwargs = message.args, message.kwargs
    raw = message.digest or body_sha256(args, kwargs)
    errors: list[dict[str, str]] = []
    if args or set(kwargs) != {"request"}:
        errors.append(
            {"field": "request", "error": 'the task takes exactly kwargs={"request": {...}}'}
        )
    payload = kwargs.get("request")
    request: CancellationRequest | None = None
    if not isinstance(payload, dict):
        errors.append({"field": "request", "error": "request must be a JSON object"})
    elif not errors:
        try:
            request = CancellationRequest.model_validate(payload)
        except ValidationError as exc:
            errors.extend(describe_errors(exc))
    if request is not None and (refused := notify_refusal(request, ctx.notify_configured)):
        errors.extend(refused)  # outcomes (issue 17): nothing could sign its webhook
        request = None
    if request is None:
        return _Refused(usable_idempotency_key(payload), errors, raw)
    return _Checked(request, raw)


def _store(ctx: Context, checked: Sequence[_Checked | _Refused]) -> list[Accepted]:
    now = ctx.clock()
    planned = [_plan(ctx, item, now) for item in checked]
    # Durable: the producers' messages are acknowledged, and the first legs called, after this.
    with ctx.uow(durable=True) as uow:
        stored = uow.jobs.add_many(planned)
        # Written before the calls: a worker killed mid-call still leaves its trace.
        intents = uow.attempts.start_many(
            sorted(leg.id for legs in stored if legs for leg in legs if leg.lease_token),
            INTENT, now)
        accepted = [_accepted(uow, item, plan, legs, now, intents)
                    for item, plan, legs in zip(checked, planned, stored, strict=True)]
        uow.commit()
    for item, done in zip(checked, accepted, strict=True):
        if isinstance(item, _Refused):
            log.warning("job %s: invalid message (%d errors)", done.submitted.job_id,
                        len(item.errors))
        elif not done.submitted.created:
            log.info("job %s: idempotency key seen before; answering the existing job",
                     done.submitted.job_id)
    return accepted


def _plan(ctx: Context, item: _Checked | _Refused, now: datetime) -> tuple[NewJob, list[NewLeg]]:
    """The job's and its legs' rows; the first legs stored claimed, as claim_legs would leave
    them (one transaction less for a job of one leg)."""
    if isinstance(item, _Refused):
        job_id = str(job_id_for_key(item.key) if item.key else invalid_job_id(item.raw))
        return NewJob(job_id, item.key, JobState.INVALID, item.raw, now,
                      errors=item.errors), []
    request = item.request
    job_uuid = job_id_for_key(request.idempotency_key)
    job_id = str(job_uuid)
    legs = [
        NewLeg(str(leg_id_for(job_uuid, position)), job_id, position, Provider(leg.provider),
               target_of(leg), getattr(leg, "merchant_unique_code", None), now)
        for position, leg in enumerate(request.legs)
    ]
    if ctx.inline_first_round:
        lease = Lease(str(uuid.uuid4()), now + timedelta(seconds=ctx.lease_seconds))
        first = {leg.id for leg in _first_batch(ctx, legs)}
        legs = [dataclasses.replace(leg, lease=lease) if leg.id in first else leg
                for leg in legs]
    claimed = any(leg.lease is not None for leg in legs)
    return NewJob(job_id, request.idempotency_key,
                  JobState.IN_PROGRESS if claimed else JobState.ACCEPTED, item.raw, now,
                  request=request.model_dump(mode="json", exclude={"legs"})), legs


def _accepted(uow: AbstractUnitOfWork, item: _Checked | _Refused,
              plan: tuple[NewJob, list[NewLeg]], stored: list[LegRecord] | None,
              now: datetime, intents: dict[str, int]) -> Accepted:
    job, legs = plan
    if stored is not None:
        leases = {leg.id: leg.lease for leg in legs if leg.lease is not None}
        waiting = [(leg.id, leg.provider) for leg in legs if leg.lease is None]
        claims = [Claim(leg, 1, lease.token, False, item.request.on_cutoff, intents[leg.id],
                        lease.expires_at)
                  for leg in stored if (lease := leases.get(leg.id)) is not None
                  and isinstance(item, _Checked)]
        return Accepted(Submitted(job.id, True, job.state), waiting, claims)
    existing = uow.jobs.get(job.id)
    assert existing is not None
    if isinstance(item, _Refused):
        return Accepted(Submitted(job.id, False, existing.state), [], [])
    note_conflict(uow, job.id, item.request, item.raw, now)
    # A repeat (or a redelivery after a crash between commit and dispatch) re-dispatches only
    # legs nobody has started; claiming is a compare-and-set, so none runs twice.
    waiting = [(leg.id, leg.provider) for leg in uow.legs.in_states(job.id, [LegState.PENDING])]
    return Accepted(Submitted(job.id, False, existing.state), waiting, [])


def _first_batch(ctx: Context, legs: list[NewLeg]) -> list[NewLeg]:
    """The legs the submit task cancels itself: the first batch of the first provider.

    A job of one leg then costs one task and two transactions instead of two and three; the
    other legs are dispatched in batches as usual.
    """
    if not legs:
        return []
    provider = legs[0].provider
    size = max(1, min(BATCH_SIZE, ctx.pools.limit(provider)))
    return [leg for leg in legs if leg.provider is provider][:size]


def _dispatch_in_batches(ctx: Context, legs: list[tuple[str, Provider]], job_id: str) -> None:
    """Batches of one provider, no larger than its concurrency, so no call waits for a slot
    (a queued call would eat into the lease the batch was claimed with)."""
    by_provider: dict[Provider, list[str]] = {}
    for leg_id, provider in legs:
        by_provider.setdefault(provider, []).append(leg_id)
    for provider, ids in by_provider.items():
        size = max(1, min(BATCH_SIZE, ctx.pools.limit(provider)))
        for start in range(0, len(ids), size):
            batch = ids[start : start + size]
            ctx.dispatcher.process_legs(batch, label=TaskLabel.of(job_id, provider, len(batch)))
