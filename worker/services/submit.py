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
from dataclasses import dataclass
from datetime import timedelta
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
from worker.services.legs import INTENT, Claim, run_claimed
from worker.services.outcomes import notify_refusal
from worker.services.records import Lease, NewJob, NewLeg

log = logging.getLogger(__name__)

# Legs per task: one task's claim and record are one transaction each, whatever the batch size,
# and its calls run concurrently. Small enough that a batch's slowest call stalls little.
BATCH_SIZE = 50


@dataclass(frozen=True, slots=True)
class Submitted:
    job_id: str
    created: bool
    state: JobState


def body_sha256(args: Any, kwargs: Any) -> str:
    """A stand-in for the message body's digest when the raw body is not at hand."""
    body = json.dumps([list(args), kwargs, {}], sort_keys=True, default=str).encode()
    return hashlib.sha256(body).hexdigest()


def submit(
    ctx: Context, args: tuple[Any, ...], kwargs: dict[str, Any], digest: str | None = None
) -> Submitted:
    """Validate and store the message as a job; dispatch the legs that still wait.

    ``digest`` is the SHA-256 hex of the message body as received (the worker passes it).
    """
    raw = digest or body_sha256(args, kwargs)
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
        return store_invalid(ctx, usable_idempotency_key(payload), errors, raw)
    return _store_valid(ctx, request, raw)


def store_invalid(
    ctx: Context, key: str | None, errors: list[dict[str, str]], raw: str
) -> Submitted:
    """Keep an invalid message as an ``invalid`` job: under its key's job id when it has a
    usable key, else under the digest of its body (``raw``); a second copy changes nothing."""
    job_id = str(job_id_for_key(key) if key else invalid_job_id(raw))
    now = ctx.clock()
    # Durable: the producer's message is acknowledged once this returns.
    with ctx.uow(durable=True) as uow:
        created = uow.jobs.add(NewJob(job_id, key, JobState.INVALID, raw, now, errors=errors),
                               []) is not None
        existing = uow.jobs.get(job_id)
        uow.commit()
    assert existing is not None
    log.warning("job %s: invalid message (%d errors)", job_id, len(errors))
    return Submitted(job_id, created, existing.state)


def _store_valid(ctx: Context, request: CancellationRequest, raw: str) -> Submitted:
    job_uuid = job_id_for_key(request.idempotency_key)
    job_id = str(job_uuid)
    now = ctx.clock()
    legs = [
        NewLeg(str(leg_id_for(job_uuid, position)), job_id, position, Provider(leg.provider),
               target_of(leg), getattr(leg, "merchant_unique_code", None), now)
        for position, leg in enumerate(request.legs)
    ]
    lease = Lease(str(uuid.uuid4()), now + timedelta(seconds=ctx.lease_seconds))
    if ctx.inline_first_round:
        # Stored already claimed, as claim_legs would leave them: one transaction less.
        first = {leg.id for leg in _first_batch(ctx, legs)}
        legs = [dataclasses.replace(leg, lease=lease) if leg.id in first else leg
                for leg in legs]
    claimed = [leg for leg in legs if leg.lease is not None]
    job = NewJob(job_id, request.idempotency_key,
                 JobState.IN_PROGRESS if claimed else JobState.ACCEPTED, raw, now,
                 request=request.model_dump(mode="json", exclude={"legs"}))
    claims: list[Claim] = []
    # Durable: the producer's message is acknowledged, and the first legs called, after this.
    with ctx.uow(durable=True) as uow:
        stored = uow.jobs.add(job, legs, returning=bool(claimed))
        created = stored is not None
        if stored is not None:
            state = job.state
            waiting = [(leg.id, leg.provider) for leg in legs if leg.lease is None]
            if claimed:
                # Written before the calls: a worker killed mid-call still leaves its trace.
                intents = uow.attempts.start_many(sorted(leg.id for leg in claimed), INTENT, now)
                claims = [Claim(leg, 1, lease.token, False, request.on_cutoff,
                                intents[leg.id], lease.expires_at)
                          for leg in stored if leg.id in intents]
        else:
            existing = uow.jobs.get(job_id)
            assert existing is not None
            state = existing.state
            note_conflict(uow, job_id, request, raw, now)
            # A repeat (or a redelivery after a crash between commit and dispatch) re-dispatches
            # only legs nobody has started; claiming is a compare-and-set, so none runs twice.
            waiting = [(leg.id, leg.provider)
                       for leg in uow.legs.in_states(job_id, [LegState.PENDING])]
        uow.commit()
    if not created:
        log.info("job %s: idempotency key seen before; answering the existing job", job_id)
    try:
        _dispatch_in_batches(ctx, waiting, job_id)
    finally:
        # Legs claimed above are ours to run even if the broker refused the dispatch (an
        # outage): the sweep dispatches the others again, these would wait for their lease.
        if claims:
            run_claimed(ctx, claims)
    return Submitted(job_id, created, state)


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
