"""Cancel legs: claim a batch, call the providers concurrently, record every result at once.

Every state change is a compare-and-set on the leg's version, and a claimed leg carries a lease
token: two workers handed the same leg (a redelivered message, a sweep's re-dispatch) cannot both
call the provider, and a worker that died mid-call leaves a lease that expires into a read of the
target's state, never a blind second cancel.

A batch costs two ledger transactions whatever its size: the claim (which also writes, before any
call, one attempt row per leg for the call about to be made) and the record of the results.
Provider calls are latency-bound, so a batch's rounds run concurrently, bounded per provider.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
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
from worker.domain.states import CLAIMABLE_LEG_STATES, JobState, LegState, Reason, can_transition
from worker.ledger.queries import Ledger
from worker.ledger.records import LegRecord
from worker.providers.calls import CallRecord
from worker.providers.errors import (
    AuthFailed,
    InvalidRequest,
    NotCancellable,
    NotFound,
    ProviderError,
    RateLimited,
)
from worker.providers.retry import retry_delay, should_retry
from worker.services.context import Context
from worker.services.jobs import refresh_job
from worker.services.outcome_log import last_answer, leg_ended
from worker.services.ports import LegDriver

log = logging.getLogger(__name__)

# A message that arrives this early for a leg scheduled later is a stray duplicate, not its turn.
EARLY_SLACK = timedelta(seconds=1)
# The attempt row written before the first call of a round, renamed once the call is known.
INTENT = "in_flight"
WAITING_STATES = (LegState.AWAITING_CALLBACKS, LegState.REFUND_REQUESTED)


@dataclass(frozen=True, slots=True)
class Claim:
    leg: LegRecord
    version: int
    token: str
    resolve_first: bool
    on_cutoff: str = "reject"
    intent_id: int | None = None


@dataclass(frozen=True, slots=True)
class LegStep:
    """What became of a leg in a round: its new state, and when to run it again if at all."""

    state: LegState | None
    retry_in: float | None = None


@dataclass
class CallLog:
    """A ``CallObserver`` that keeps the round's calls, written with the round's results."""

    clock: Any
    calls: list[tuple[str, datetime, CallRecord | None, datetime | None]] = field(
        default_factory=list
    )

    def before(self, operation: str) -> object:
        self.calls.append((operation, self.clock(), None, None))
        return len(self.calls) - 1

    def after(self, handle: object, record: CallRecord) -> None:
        assert isinstance(handle, int)
        operation, started, _record, _finished = self.calls[handle]
        self.calls[handle] = (operation, started, record, self.clock())


@dataclass
class RoundResult:
    claim: Claim
    state: LegState
    values: dict[str, Any]
    calls: CallLog
    evidence: LegEvidence | None = None
    retry_in: float | None = None


def claim_legs(ctx: Context, leg_ids: Sequence[str]) -> list[Claim]:
    """Take the legs that are ours to take now, in one transaction of a few statements."""
    now = ctx.clock()
    token = str(uuid.uuid4())
    with ctx.uow() as ledger:
        wanted: dict[str, tuple[LegRecord, bool]] = {}
        for leg in ledger.get_legs(leg_ids):
            resolve_first = _claimable(leg, now)
            if resolve_first is not None:
                wanted[leg.id] = (leg, resolve_first)
        won = ledger.claim_many(
            [{"b_id": leg.id, "b_version": leg.version, "b_resolve": resolve}
             for leg, resolve in wanted.values()],
            token, now + timedelta(seconds=ctx.lease_seconds), now,
        )
        if not won:
            return []
        # Written before the calls: a worker killed mid-call still leaves its trace.
        intents = ledger.start_attempts(sorted(won), INTENT, now)
        options = {job_id: _job_options(ledger, job_id, now)
                   for job_id in {wanted[leg_id][0].job_id for leg_id in won}}
        ledger.commit()
    return [
        Claim(leg, leg.version + 1, token, resolve, options[leg.job_id], intents[leg.id])
        for leg_id, (leg, resolve) in wanted.items() if leg_id in won
    ]


def _claimable(leg: LegRecord, now: datetime) -> bool | None:
    """None if the leg is not ours to take now; else whether to read its state first."""
    if leg.state in CLAIMABLE_LEG_STATES:
        if leg.next_attempt_at is not None and leg.next_attempt_at > now + EARLY_SLACK:
            return None
        return leg.needs_resolve or leg.state is LegState.UNKNOWN
    if leg.state is LegState.IN_FLIGHT and (
        leg.lease_expires_at is None or leg.lease_expires_at < now
    ):
        # Its holder died mid-call: whether that call took effect is unknown.
        log.warning("leg %s: lease expired in flight, reading before any cancel", leg.id)
        return True
    return None


def _job_options(ledger: Ledger, job_id: str, now: datetime) -> str:
    job = ledger.get_job(job_id)
    if job is not None and job.state is JobState.ACCEPTED:
        # A leg is in flight: the job is in progress (no need to count its legs for that).
        ledger.start_job(job_id, now)
    return str(((job.request if job else None) or {}).get("on_cutoff") or "reject")


def claim_leg(ctx: Context, leg_id: str) -> Claim | None:
    claims = claim_legs(ctx, [leg_id])
    return claims[0] if claims else None


def process_legs(ctx: Context, leg_ids: Sequence[str]) -> list[LegStep]:
    """One round for each leg that can be claimed; their follow-ups are dispatched."""
    return run_claimed(ctx, claim_legs(ctx, leg_ids))


def run_claimed(ctx: Context, claims: Sequence[Claim]) -> list[LegStep]:
    """One round for each claimed leg, concurrently; record them, dispatch their follow-ups."""
    if not claims:
        return []
    if len(claims) == 1:
        results = [run_round(ctx, claims[0])]
    else:
        futures = [ctx.pools.submit(c.leg.provider, run_round, ctx, c) for c in claims]
        results = [future.result() for future in futures]
    steps = record_results(ctx, results)
    for result, step in zip(results, steps, strict=True):
        if step.retry_in is not None:
            ctx.dispatcher.process_leg(result.claim.leg.id, step.retry_in)
        elif step.state in WAITING_STATES:
            # Pages may have arrived before the operation's id was recorded.
            ctx.dispatcher.settle_callbacks(result.claim.leg.id)
    return steps


def process_leg(ctx: Context, leg_id: str) -> LegStep:
    """One round for one leg (a retry, a sweep's re-dispatch); follow-ups are the caller's."""
    claims = claim_legs(ctx, [leg_id])
    if not claims:
        return LegStep(None)
    result = run_round(ctx, claims[0])
    step = record_results(ctx, [result])[0]
    if step.state in WAITING_STATES:
        ctx.dispatcher.settle_callbacks(leg_id)
    return step


def run_round(ctx: Context, claim: Claim) -> RoundResult:
    """Call the provider for one claimed leg; no ledger access here."""
    calls = CallLog(ctx.clock)
    leg = claim.leg
    driver = ctx.drivers.get(leg.provider)
    if driver is None:
        refusal = Rejected(Reason.PROVIDER_NOT_CONFIGURED,
                           f"{leg.provider.value} settings are missing")
        return _outcome_result(ctx, claim, refusal, None, calls)
    paused = ctx.throttle.paused_for(leg.provider.value)
    if paused > 0:
        # The provider asked everyone to slow down: wait without spending a retry.
        state = LegState.UNKNOWN if claim.resolve_first else LegState.RETRYING
        values: dict[str, Any] = {"needs_resolve": claim.resolve_first,
                                  "next_attempt_at": ctx.clock() + timedelta(seconds=paused)}
        return RoundResult(claim, state, values, calls, retry_in=paused)
    try:
        outcome = _drive(driver, claim, calls)
    except ProviderError as err:
        return _after_error(ctx, claim, err, calls)
    evidence = None
    if isinstance(outcome, Cancelled):
        evidence = outcome.evidence or _try_read_evidence(driver, leg, calls)
    return _outcome_result(ctx, claim, outcome, evidence, calls)


def _drive(driver: LegDriver, claim: Claim, calls: CallLog) -> Outcome:
    if claim.resolve_first:
        resolved = driver.resolve(claim.leg.target, calls, claim.on_cutoff)
        if not isinstance(resolved, StillCancellable):
            return resolved
    return driver.cancel(claim.leg.target, calls, claim.on_cutoff)


def _try_read_evidence(driver: LegDriver, leg: LegRecord, calls: CallLog) -> LegEvidence | None:
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


def _after_error(ctx: Context, claim: Claim, err: ProviderError, calls: CallLog) -> RoundResult:
    if not should_retry(err):
        return _outcome_result(ctx, claim, Rejected(_reason_for(err), str(err)), None, calls)
    retries = claim.leg.retries + 1
    if retries >= ctx.retry.max_attempts:
        exhausted = {"reason": Reason.RETRIES_EXHAUSTED.value,
                     "detail": f"{retries} tries; last: {err}"}
        return RoundResult(claim, LegState.FAILED, exhausted, calls)
    delay = retry_delay(err, retries - 1, ctx.retry.base_seconds, ctx.retry.max_seconds, ctx.rng)
    if isinstance(err, RateLimited):
        ctx.throttle.pause(claim.leg.provider.value, delay)
    # A failed read while resolving leaves the leg as unresolved as it was.
    ambiguous = err.ambiguous or claim.resolve_first
    values: dict[str, Any] = {
        "retries": retries,
        "needs_resolve": ambiguous,
        "detail": str(err),
        "next_attempt_at": ctx.clock() + timedelta(seconds=delay),
    }
    state = LegState.UNKNOWN if ambiguous else LegState.RETRYING
    return RoundResult(claim, state, values, calls, retry_in=delay)


def _outcome_result(ctx: Context, claim: Claim, outcome: Outcome,
                    evidence: LegEvidence | None, calls: CallLog) -> RoundResult:
    values: dict[str, Any]
    if isinstance(outcome, Cancelled):
        state = LegState.CANCELLED
        values = {"already_cancelled": outcome.already, "provider_reference": outcome.reference,
                  "detail": outcome.detail, "reason": None}
    elif isinstance(outcome, Rejected):
        state = LegState.REJECTED
        values = {"reason": outcome.reason.value, "detail": outcome.detail}
    else:
        assert isinstance(outcome, AwaitingCallbacks | RefundRequested)
        state = (LegState.AWAITING_CALLBACKS if isinstance(outcome, AwaitingCallbacks)
                 else LegState.REFUND_REQUESTED)
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
    return RoundResult(claim, state, values, calls, evidence=evidence)


def leg_reconciliation(leg_id: str, evidence: LegEvidence) -> dict[str, Any]:
    """What the API shows per leg: the evidence and its differences."""
    return {
        "evidence": evidence.to_json(),
        "differences": [d.to_json() for d in leg_differences(leg_id, evidence)],
    }


# What a round may change on a leg; every other column stays as the claim found it.
ROUND_COLUMNS = ("state", "reason", "detail", "already_cancelled", "provider_reference",
                 "reconciliation", "retries", "needs_resolve", "next_attempt_at", "at_risk",
                 "expected_count", "updated_at")


def record_results(ctx: Context, results: Sequence[RoundResult]) -> list[LegStep]:
    """Apply every round's result (if the leg is still ours) and its calls, in one transaction."""
    now = ctx.clock()
    finished, added, dropped = _attempt_rows(results)
    # The claim counted one attempt per leg; the calls made beyond it (or none at all).
    delta: dict[str, int] = {}
    for added_row in added:
        delta[added_row["leg_id"]] = delta.get(added_row["leg_id"], 0) + 1
    for dropped_row in dropped:
        delta[dropped_row["leg_id"]] = delta.get(dropped_row["leg_id"], 0) - 1
    rows = []
    for result in results:
        assert can_transition(LegState.IN_FLIGHT, result.state), result.state
        leg = result.claim.leg
        values = {"needs_resolve": False, "next_attempt_at": None, **result.values,
                  "state": result.state.value, "updated_at": now}
        row: dict[str, Any] = {"b_id": leg.id, "b_version": result.claim.version,
                               "b_attempts_delta": delta.get(leg.id, 0)}
        for column in ROUND_COLUMNS:
            current = getattr(leg, column)
            row[f"b_{column}"] = values.get(
                column, current.value if isinstance(current, Enum) else current)
        rows.append(row)
    with ctx.uow() as ledger:
        applied = ledger.finish_many(rows)
        for result in (r for r in results if r.claim.leg.id in applied):
            leg_ended(result.claim.leg, result.state, result.values.get("reason"),
                      result.values.get("detail"), last_answer(c[2] for c in result.calls.calls))
        ledger.record_attempts(finished, added, dropped)
        # A leg whose change did not apply still made its calls: count them on it.
        ledger.count_attempts({leg_id: n for leg_id, n in delta.items() if leg_id not in applied})
        for job_id in {r.claim.leg.job_id for r in results if r.claim.leg.id in applied}:
            refresh_job(ledger, job_id, now)
        ledger.commit()
    steps = []
    for result in results:
        if result.claim.leg.id in applied:
            steps.append(LegStep(result.state, result.retry_in))
        else:
            # Our lease expired and another worker took the leg over; it reads the target's
            # state before acting, so dropping our result loses nothing.
            log.warning("leg %s: lost its lease before recording %s", result.claim.leg.id,
                        result.state.value)
            steps.append(LegStep(None))
    if log.isEnabledFor(logging.DEBUG):
        for result, step in zip(results, steps, strict=True):
            log.debug("leg %s: %s", result.claim.leg.id, step.state)
    return steps


def _attempt_rows(
    results: Sequence[RoundResult],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The rounds' calls as attempt rows: the first fills the row written before it."""
    finished: list[dict[str, Any]] = []
    added: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    for result in results:
        claim = result.claim
        for index, (operation, started, record, done) in enumerate(result.calls.calls):
            row = {
                "operation": operation,
                "started_at": started,
                "finished_at": done,
                "http_status": record.http_status if record else None,
                "outcome": record.outcome if record else None,
                "provider_code": record.provider_code if record else None,
                "request_id": record.request_id if record else None,
                "latency_ms": round(record.latency_ms, 3) if record else None,
            }
            if index == 0 and claim.intent_id is not None:
                finished.append({"attempt_id": claim.intent_id, **row})
            else:
                added.append({"leg_id": claim.leg.id, **row})
        if not result.calls.calls and claim.intent_id is not None:
            dropped.append({"attempt_id": claim.intent_id, "leg_id": claim.leg.id})
    return finished, added, dropped


def refresh_evidence(ctx: Context, leg_id: str) -> bool:
    """Read a cancelled leg's figures again (a summary read that failed, or one that can move)."""
    with ctx.uow(read_only=True) as ledger:
        leg = ledger.get_leg(leg_id)
    if leg is None or leg.state is not LegState.CANCELLED:
        return False
    driver = ctx.drivers.get(leg.provider)
    if driver is None:
        return False
    calls = CallLog(ctx.clock)
    evidence = _try_read_evidence(driver, leg, calls)
    now = ctx.clock()
    with ctx.uow() as ledger:
        for operation, started, record, finished in calls.calls:
            ledger.add_attempt(
                leg_id, operation=operation, started_at=started, finished_at=finished,
                http_status=record.http_status if record else None,
                outcome=record.outcome if record else None,
                latency_ms=round(record.latency_ms, 3) if record else None,
            )
        current = ledger.get_leg(leg_id)
        if evidence is None or current is None or not ledger.update_leg(
            leg_id, current.version,
            reconciliation=leg_reconciliation(leg_id, evidence), updated_at=now,
        ):
            ledger.commit()
            return False
        refresh_job(ledger, leg.job_id, now)
        ledger.commit()
    return True
