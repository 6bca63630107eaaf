"""One round for one claimed leg: the provider calls, and what they make of the leg.

A round reads the target first when its last outcome is unknown, then cancels, then reads the
figures; it touches no ledger (the claim before it and the record after it are
``worker.services.legs``). Its calls are observed by a :class:`CallLog`, which becomes the
leg's attempt rows.

A claimed leg may wait for a free slot of its provider's pool, and a round makes several calls:
the lease is checked right before each call, with a margin of one whole call (each is bounded by
``HTTP_TIMEOUT_SECONDS``) plus slack, so no call runs past the lease while the sweep hands the
leg to another worker. A leg whose lease is too short is given back (:func:`_given_back`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from worker.domain.outcomes import Cancelled, Outcome, Rejected, StillCancellable
from worker.domain.reconciliation import LegEvidence
from worker.domain.rounds import (
    RoundDecision,
    after_error,
    after_outcome,
    given_back,
    paused,
)
from worker.domain.states import LegState, Reason
from worker.providers.calls import CallRecord
from worker.providers.errors import ProviderError, RateLimited
from worker.services.context import Context
from worker.services.ports import LegDriver
from worker.services.records import CallMade, LegRecord

log = logging.getLogger(__name__)

# Beyond one whole call: time to record the round, and clocks of several machines that differ.
LEASE_SLACK = timedelta(seconds=2)


@dataclass(frozen=True, slots=True)
class Claim:
    leg: LegRecord
    version: int
    token: str
    resolve_first: bool
    on_cutoff: str = "reject"
    intent_id: int | None = None
    lease_expires_at: datetime | None = None

class LeaseRunningOut(Exception):
    """The claim's lease would end before another call could: the call is not made."""

@dataclass
class CallLog:
    """A ``CallObserver`` that keeps the round's calls, written with the round's results.

    With ``last_start``, a call about to start later than that is refused (the lease check).
    """

    clock: Any
    last_start: datetime | None = None
    calls: list[tuple[str, datetime, CallRecord | None, datetime | None]] = field(
        default_factory=list
    )

    def before(self, operation: str) -> object:
        now = self.clock()
        if self.last_start is not None and now > self.last_start:
            raise LeaseRunningOut(f"{operation} not called: the lease ends too soon")
        self.calls.append((operation, now, None, None))
        return len(self.calls) - 1

    def after(self, handle: object, record: CallRecord) -> None:
        assert isinstance(handle, int)
        operation, started, _record, _finished = self.calls[handle]
        self.calls[handle] = (operation, started, record, self.clock())

    def made(self) -> list[CallMade]:
        """The calls as their attempt rows keep them."""
        return [CallMade(*call) for call in self.calls]

@dataclass
class RoundResult:
    claim: Claim
    state: LegState
    values: dict[str, Any]
    calls: CallLog
    evidence: LegEvidence | None = None
    retry_in: float | None = None

def run_round(ctx: Context, claim: Claim) -> RoundResult:
    """Call the provider for one claimed leg; no ledger access here."""
    calls = CallLog(ctx.clock, _last_call_start(ctx, claim))
    leg = claim.leg
    driver = ctx.drivers.get(leg.provider)
    if driver is None:
        refusal = Rejected(Reason.PROVIDER_NOT_CONFIGURED,
                           f"{leg.provider.value} settings are missing")
        return _outcome_result(ctx, claim, refusal, None, calls)
    pause = ctx.throttle.paused_for(leg.provider.value)
    if pause > 0 and ctx.clock() - leg.created_at <= ctx.retry.pause_budget():
        # The provider asked everyone to slow down: wait without spending a retry.
        return _result(claim, paused(claim.resolve_first, pause, ctx.clock()), calls)
    if pause > 0:
        # Held by pauses for longer than a leg's whole retry budget: from now on each pause
        # spends a retry, so a provider that never stops answering 429 ends the leg (failed,
        # retries_exhausted) instead of holding it forever.
        held = RateLimited("still paused by the provider's 429s", retry_after=pause,
                           provider=leg.provider.value, operation="pause")
        return _after_error(ctx, claim, held, calls, pause_provider=False)
    try:
        outcome = _drive(driver, claim, calls)
    except ProviderError as err:
        return _after_error(ctx, claim, err, calls)
    except LeaseRunningOut:
        return _given_back(ctx, claim, calls)
    evidence = None
    if isinstance(outcome, Cancelled):
        evidence = outcome.evidence
        if evidence is None or not evidence.complete:
            # Lost, or not adding up yet (a 6DOT50 payment still settling): read them now.
            evidence = try_read_evidence(driver, leg, calls) or evidence
    return _outcome_result(ctx, claim, outcome, evidence, calls)


def _drive(driver: LegDriver, claim: Claim, calls: CallLog) -> Outcome:
    if claim.resolve_first:
        resolved = driver.resolve(claim.leg.target, calls, claim.on_cutoff)
        if not isinstance(resolved, StillCancellable):
            return resolved
    return driver.cancel(claim.leg.target, calls, claim.on_cutoff)


def try_read_evidence(driver: LegDriver, leg: LegRecord, calls: CallLog) -> LegEvidence | None:
    """The figures right after the cancel; a failure here is left to the sweep, not retried now."""
    try:
        return driver.read_evidence(leg.target, calls)
    except (ProviderError, LeaseRunningOut) as err:
        log.warning("leg %s: evidence read failed (%s); the sweep will read it again", leg.id, err)
        return None


def _last_call_start(ctx: Context, claim: Claim) -> datetime | None:
    """The latest a call may start and still end, with slack, before the lease does."""
    if claim.lease_expires_at is None:
        return None
    return claim.lease_expires_at - timedelta(seconds=ctx.call_timeout_seconds) - LEASE_SLACK


def _given_back(ctx: Context, claim: Claim, calls: CallLog) -> RoundResult:
    """The lease ran short (the leg waited for a pool slot, or the round's calls were slow):
    the leg is dispatched again at once, to any worker (``worker.domain.rounds.given_back``)."""
    log.warning("leg %s: lease too short for its next call after %d call(s); given back",
                claim.leg.id, len(calls.calls))
    return _result(claim, given_back(claim.leg.state, claim.leg.needs_resolve,
                                     len(calls.calls), ctx.clock()), calls)


def _after_error(ctx: Context, claim: Claim, err: ProviderError, calls: CallLog, *,
                 pause_provider: bool = True) -> RoundResult:
    decision = after_error(err, retries=claim.leg.retries, resolve_first=claim.resolve_first,
                           policy=ctx.retry, now=ctx.clock(), rng=ctx.rng,
                           pause_provider=pause_provider)
    if decision.pause_provider and decision.retry_in is not None:
        ctx.throttle.pause(claim.leg.provider.value, decision.retry_in)
    return _result(claim, decision, calls)


def _outcome_result(ctx: Context, claim: Claim, outcome: Outcome,
                    evidence: LegEvidence | None, calls: CallLog) -> RoundResult:
    return _result(claim, after_outcome(claim.leg.id, outcome, evidence, ctx.clock(),
                                        ctx.callback_timeout_seconds), calls)


def _result(claim: Claim, decision: RoundDecision, calls: CallLog) -> RoundResult:
    return RoundResult(claim, decision.state, decision.values, calls, decision.evidence,
                       decision.retry_in)
