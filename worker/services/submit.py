"""Accept a producer's message: validate it, store the job once, dispatch its legs.

The job id is derived from the idempotency key and is the ledger's primary key: a key submitted
again finds its job and never calls a provider a second time. An invalid message is kept as an
``invalid`` job with its errors, never retried and never lost.
"""

from __future__ import annotations

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
from worker.services.context import Context
from worker.services.legs import INTENT, Claim, run_claimed
from worker.services.outcomes import notify_refusal

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
    with ctx.uow(durable=True) as ledger:
        created = ledger.insert_job(
            {
                "id": job_id,
                "idempotency_key": key,
                "state": JobState.INVALID.value,
                "errors": errors,
                "body_sha256": raw,
                "created_at": now,
                "updated_at": now,
            },
            [],
        )
        existing = ledger.get_job(job_id)
        ledger.commit()
    assert existing is not None
    log.warning("job %s: invalid message (%d errors)", job_id, len(errors))
    return Submitted(job_id, created, existing.state)


def _store_valid(ctx: Context, request: CancellationRequest, raw: str) -> Submitted:
    job_uuid = job_id_for_key(request.idempotency_key)
    job_id = str(job_uuid)
    now = ctx.clock()
    job_row = {
        "id": job_id,
        "idempotency_key": request.idempotency_key,
        "state": JobState.ACCEPTED.value,
        "request": request.model_dump(mode="json", exclude={"legs"}),
        "body_sha256": raw,
        "created_at": now,
        "updated_at": now,
    }
    leg_rows = [
        {
            "id": str(leg_id_for(job_uuid, position)),
            "job_id": job_id,
            "position": position,
            "provider": leg.provider,
            "target": target_of(leg),
            "state": LegState.PENDING.value,
            "match_key": getattr(leg, "merchant_unique_code", None),
            # Every row names the same columns (one INSERT for all), claimed below or not.
            "lease_token": None,
            "lease_expires_at": None,
            "attempts": 0,
            "version": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for position, leg in enumerate(request.legs)
    ]
    first = _first_batch(ctx, leg_rows) if ctx.inline_first_round else []
    token = str(uuid.uuid4())
    expires = now + timedelta(seconds=ctx.lease_seconds)
    for row in first:
        # Inserted already claimed, as claim_legs would leave them: one transaction less.
        row.update(state=LegState.IN_FLIGHT.value, lease_token=token, attempts=1, version=1,
                   lease_expires_at=expires)
    if first:
        job_row["state"] = JobState.IN_PROGRESS.value
    claims: list[Claim] = []
    # Durable: the producer's message is acknowledged, and the first legs called, after this.
    with ctx.uow(durable=True) as ledger:
        stored = ledger.insert_job_returning_legs(job_row, leg_rows, returning=bool(first))
        created = stored is not None
        if stored is not None:
            state = JobState(str(job_row["state"]))
            claimed = {str(row["id"]) for row in first}
            waiting = [(str(row["id"]), Provider(str(row["provider"]))) for row in leg_rows
                       if str(row["id"]) not in claimed]
            if claimed:
                # Written before the calls: a worker killed mid-call still leaves its trace.
                intents = ledger.start_attempts(sorted(claimed), INTENT, now)
                claims = [Claim(leg, 1, token, False, request.on_cutoff, intents[leg.id],
                                expires) for leg in stored if leg.id in claimed]
        else:
            job = ledger.get_job(job_id)
            assert job is not None
            state = job.state
            # A repeat (or a redelivery after a crash between commit and dispatch) re-dispatches
            # only legs nobody has started; claiming is a compare-and-set, so none runs twice.
            waiting = [(leg.id, leg.provider)
                       for leg in ledger.legs_in_states(job_id, [LegState.PENDING])]
        ledger.commit()
    if not created:
        log.info("job %s: idempotency key seen before; answering the existing job", job_id)
    try:
        _dispatch_in_batches(ctx, waiting)
    finally:
        # Legs claimed above are ours to run even if the broker refused the dispatch (an
        # outage): the sweep dispatches the others again, these would wait for their lease.
        if claims:
            run_claimed(ctx, claims)
    return Submitted(job_id, created, state)


def _first_batch(ctx: Context, leg_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The legs the submit task cancels itself: the first batch of the first provider.

    A job of one leg then costs one task and two transactions instead of two and three; the
    other legs are dispatched in batches as usual.
    """
    if not leg_rows:
        return []
    provider = Provider(str(leg_rows[0]["provider"]))
    size = max(1, min(BATCH_SIZE, ctx.pools.limit(provider)))
    return [row for row in leg_rows if row["provider"] == provider.value][:size]


def _dispatch_in_batches(ctx: Context, legs: list[tuple[str, Provider]]) -> None:
    """Batches of one provider, no larger than its concurrency, so no call waits for a slot
    (a queued call would eat into the lease the batch was claimed with)."""
    by_provider: dict[Provider, list[str]] = {}
    for leg_id, provider in legs:
        by_provider.setdefault(provider, []).append(leg_id)
    for provider, ids in by_provider.items():
        size = max(1, min(BATCH_SIZE, ctx.pools.limit(provider)))
        for start in range(0, len(ids), size):
            ctx.dispatcher.process_legs(ids[start : start + size])
