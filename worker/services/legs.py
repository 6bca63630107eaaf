"""Cancel one leg: claim it, call its provider, record what happened, schedule what is next.

Every state change is a compare-and-set on the leg's version, and a claimed leg carries a lease
token: two workers handed the same leg (a redelivered message, a sweep's re-dispatch) cannot both
call the provider, and a worker that died mid-call leaves a lease that expires into a read of the
target's state, never a blind second cancel.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from worker.domain.outcomes import (
    AwaitingCallbacks,
    Cancelled,
    Outcome,
    RefundRequested,
    Rejected,
    StillCancellable,
)
from worker.domain.reconciliation import LegEvidence, leg_differences
from worker.domain.states import CLAIMABLE_LEG_STATES, LegState, Reason, can_transition
from worker.ledger.records import LegRecord
from worker.providers.errors import (
    AuthFailed,
    InvalidRequest,
    NotCancellable,
    NotFound,
    ProviderError,
)
from worker.providers.retry import retry_delay, should_retry
from worker.services.attempts import AttemptRecorder
from worker.services.context import Context
from worker.services.jobs import refresh_job
from worker.services.ports import LegDriver

log = logging.getLogger(__name__)

# A message that arrives this early for a leg scheduled later is a stray duplicate, not its turn.
EARLY_SLACK = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Claim:
    leg: LegRecord
    version: int
    token: str
    resolve_first: bool
    on_cutoff: str = "reject"


@dataclass(frozen=True, slots=True)
class LegStep:
    """What the task should do next: nothing, or run again after ``retry_in`` seconds."""

    state: LegState | None
    retry_in: float | None = None


def claim_leg(ctx: Context, leg_id: str) -> Claim | None:
    """Take the leg for one provider round, or None if it is not ours to take now."""
    now = ctx.clock()
    with ctx.uow() as ledger:
        leg = ledger.get_leg(leg_id)
        if leg is None:
            log.warning("leg %s: not in the ledger", leg_id)
            return None
        if leg.state in CLAIMABLE_LEG_STATES:
            if leg.next_attempt_at is not None and leg.next_attempt_at > now + EARLY_SLACK:
                return None
            resolve_first = leg.needs_resolve or leg.state is LegState.UNKNOWN
        elif leg.state is LegState.IN_FLIGHT and (
            leg.lease_expires_at is None or leg.lease_expires_at < now
        ):
            # Its holder died mid-call: whether that call took effect is unknown.
            log.warning("leg %s: lease expired in flight, reading before any cancel", leg_id)
            resolve_first = True
        else:
            return None
        token = str(uuid.uuid4())
        if not ledger.update_leg(
            leg.id,
            leg.version,
            state=LegState.IN_FLIGHT.value,
            lease_token=token,
            lease_expires_at=now + timedelta(seconds=ctx.lease_seconds),
            needs_resolve=resolve_first,
            updated_at=now,
        ):
            return None
        refresh_job(ledger, leg.job_id, now)
        job = ledger.get_job(leg.job_id)
        ledger.commit()
    on_cutoff = str(((job.request if job else None) or {}).get("on_cutoff") or "reject")
    return Claim(leg, leg.version + 1, token, resolve_first, on_cutoff)


def process_leg(ctx: Context, leg_id: str) -> LegStep:
    """One round for a leg: claim, resolve if needed, cancel, read evidence, record."""
    claim = claim_leg(ctx, leg_id)
    if claim is None:
        return LegStep(None)
    leg = claim.leg
    driver = ctx.drivers.get(leg.provider)
    if driver is None:
        return _finish(
            ctx,
            claim,
            Rejected(Reason.PROVIDER_NOT_CONFIGURED, f"{leg.provider.value} settings are missing"),
        )
    calls = AttemptRecorder(ctx, leg.id, claim.token)
    try:
        outcome = _drive(driver, claim, calls)
    except ProviderError as err:
        return _after_error(ctx, claim, err)
    evidence = None
    if isinstance(outcome, Cancelled):
        evidence = outcome.evidence or _try_read_evidence(driver, leg, calls)
    return _finish(ctx, claim, outcome, evidence)


def _drive(driver: LegDriver, claim: Claim, calls: AttemptRecorder) -> Outcome:
    if claim.resolve_first:
        resolved = driver.resolve(claim.leg.target, calls, claim.on_cutoff)
        if not isinstance(resolved, StillCancellable):
            return resolved
    return driver.cancel(claim.leg.target, calls, claim.on_cutoff)


def _try_read_evidence(
    driver: LegDriver, leg: LegRecord, calls: AttemptRecorder
) -> LegEvidence | None:
    """The figures right after the cancel; a failure here is left to the sweep, not retried now."""
    try:
        return driver.read_evidence(leg.target, calls)
    except ProviderError as err:
        log.warning("leg %s: evidence read failed (%s); the sweep will read it again", leg.id, err)
        return None


def _reason_for(err: ProviderError) -> Reason:
    if isinstance(err, AuthFailed):
        return Reason.AUTH_FAILED
    if isinstance(err, NotFound):
        return Reason.NOT_FOUND
    if isinstance(err, NotCancellable):
        return Reason.NOT_CANCELLABLE
    if isinstance(err, InvalidRequest):
        return Reason.INVALID_REQUEST
    return Reason.PROVIDER_ERROR


def _after_error(ctx: Context, claim: Claim, err: ProviderError) -> LegStep:
    if not should_retry(err):
        return _finish(ctx, claim, Rejected(_reason_for(err), str(err)))
    retries = claim.leg.retries + 1
    if retries >= ctx.retry.max_attempts:
        return _record(
            ctx,
            claim,
            LegState.FAILED,
            {"reason": Reason.RETRIES_EXHAUSTED.value, "detail": f"{retries} tries; last: {err}"},
        )
    delay = retry_delay(err, retries - 1, ctx.retry.base_seconds, ctx.retry.max_seconds, ctx.rng)
    # A failed read while resolving leaves the leg as unresolved as it was.
    ambiguous = err.ambiguous or claim.resolve_first
    state = LegState.UNKNOWN if ambiguous else LegState.RETRYING
    step = _record(
        ctx,
        claim,
        state,
        {
            "retries": retries,
            "needs_resolve": ambiguous,
            "detail": str(err),
            "next_attempt_at": ctx.clock() + timedelta(seconds=delay),
        },
    )
    return LegStep(step.state, delay) if step.state is not None else step


def _finish(
    ctx: Context, claim: Claim, outcome: Outcome, evidence: LegEvidence | None = None
) -> LegStep:
    values: dict[str, Any]
    if isinstance(outcome, Cancelled):
        state = LegState.CANCELLED
        values = {
            "already_cancelled": outcome.already,
            "provider_reference": outcome.reference,
            "detail": outcome.detail,
            "reason": None,
        }
    elif isinstance(outcome, Rejected):
        state = LegState.REJECTED
        values = {"reason": outcome.reason.value, "detail": outcome.detail}
    elif isinstance(outcome, AwaitingCallbacks | RefundRequested):
        state = (
            LegState.AWAITING_CALLBACKS
            if isinstance(outcome, AwaitingCallbacks)
            else LegState.REFUND_REQUESTED
        )
        values = {
            "provider_reference": outcome.reference,
            "expected_count": outcome.expected_count,
            "already_cancelled": outcome.already,
            "at_risk": outcome.at_risk,
            "detail": outcome.detail,
            # The callbacks have until then; the sweep starts recovery after it.
            "next_attempt_at": ctx.clock() + timedelta(seconds=ctx.callback_timeout_seconds),
        }
    if evidence is not None:
        values["reconciliation"] = leg_reconciliation(claim.leg.id, evidence)
    step = _record(ctx, claim, state, values, evidence=evidence)
    if step.state in (LegState.AWAITING_CALLBACKS, LegState.REFUND_REQUESTED):
        # Pages may have arrived before the operation's id was recorded: settle now if so.
        ctx.dispatcher.settle_callbacks(claim.leg.id)
    return step


def leg_reconciliation(leg_id: str, evidence: LegEvidence) -> dict[str, Any]:
    """What the API shows per leg: the evidence and its differences."""
    return {
        "evidence": evidence.to_json(),
        "differences": [d.to_json() for d in leg_differences(leg_id, evidence)],
    }


def _record(
    ctx: Context,
    claim: Claim,
    state: LegState,
    values: dict[str, Any],
    *,
    evidence: LegEvidence | None = None,
) -> LegStep:
    """Apply the round's result if the leg is still ours (our lease, unchanged version)."""
    assert can_transition(LegState.IN_FLIGHT, state), state
    now = ctx.clock()
    values.setdefault("needs_resolve", False)
    values.setdefault("next_attempt_at", None)
    with ctx.uow() as ledger:
        applied = ledger.update_leg(
            claim.leg.id,
            claim.version,
            state=state.value,
            lease_token=None,
            lease_expires_at=None,
            updated_at=now,
            **values,
        )
        if not applied:
            # Our lease expired and another worker took the leg over; it reads the target's
            # state before acting, so dropping our result loses nothing.
            log.warning("leg %s: lost its lease before recording %s", claim.leg.id, state.value)
            return LegStep(None)
        if evidence is not None:
            ledger.replace_evidence(
                claim.leg.id, evidence.source.value, "latest", evidence.to_json(), now
            )
        refresh_job(ledger, claim.leg.job_id, now)
        ledger.commit()
    log.info("leg %s: %s", claim.leg.id, state.value)
    return LegStep(state)


def refresh_evidence(ctx: Context, leg_id: str) -> bool:
    """Read a cancelled leg's figures again (a summary read that failed, or one that can move)."""
    with ctx.uow() as ledger:
        leg = ledger.get_leg(leg_id)
    if leg is None or leg.state is not LegState.CANCELLED:
        return False
    driver = ctx.drivers.get(leg.provider)
    if driver is None:
        return False
    evidence = _try_read_evidence(driver, leg, AttemptRecorder(ctx, leg.id, lease_token=""))
    if evidence is None:
        return False
    now = ctx.clock()
    with ctx.uow() as ledger:
        current = ledger.get_leg(leg_id)
        if current is None or not ledger.update_leg(
            leg_id,
            current.version,
            reconciliation=leg_reconciliation(leg_id, evidence),
            updated_at=now,
        ):
            return False
        ledger.replace_evidence(leg_id, evidence.source.value, "latest", evidence.to_json(), now)
        refresh_job(ledger, leg.job_id, now)
        ledger.commit()
    return True
