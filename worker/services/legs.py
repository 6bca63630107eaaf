"""Cancel legs: claim a batch, call the providers concurrently, record every result at once.

Every state change is a compare-and-set on the leg's version, and a claimed leg carries a lease
token: two workers handed the same leg (a redelivered message, a sweep's re-dispatch) cannot both
call the provider, and a worker that died mid-call leaves a lease that expires into a read of the
target's state, never a blind second cancel. The round between the claim and the record, with
the lease checked before each call, is ``worker.services.rounds``.

A batch costs two ledger transactions whatever its size: the claim (which also writes, before any
call, one attempt row per leg for the call about to be made) and the record of the results.
Provider calls are latency-bound, so a batch's rounds run concurrently, bounded per provider.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from worker.domain.reconciliation import leg_reconciliation, leg_reconciliation_without_figures
from worker.domain.rounds import LegAtClaim, claimable
from worker.domain.states import JobState, LegState, can_transition
from worker.domain.task_label import TaskLabel
from worker.services.context import Context
from worker.services.evidence import after_read
from worker.services.jobs import refresh_job, refresh_jobs
from worker.services.outcome_log import last_answer, leg_ended
from worker.services.outcomes import dispatch_outcomes
from worker.services.records import CallMade, LegClaim, LegFinish, LegRecord
from worker.services.rounds import CallLog, Claim, RoundResult, run_round, try_read_evidence
from worker.services.unit_of_work import AbstractUnitOfWork

__all__ = ["INTENT", "Claim", "LegStep", "Recorder", "claim_leg", "claim_legs", "process_leg",
           "process_legs", "record_results", "refresh_evidence", "run_claimed"]

log = logging.getLogger(__name__)

# The attempt row written before the first call of a round, renamed once the call is known.
INTENT = "in_flight"
WAITING_STATES = (LegState.AWAITING_CALLBACKS, LegState.REFUND_REQUESTED)


@dataclass(frozen=True, slots=True)
class LegStep:
    """What became of a leg in a round: its new state, and when to run it again if at all."""

    state: LegState | None
    retry_in: float | None = None


# Writes rounds' results, one step per result in order: record_results, or the worker's
# group commit of it (several tasks' results in one transaction).
Recorder = Callable[[Sequence[RoundResult]], list[LegStep]]


def claim_legs(ctx: Context, leg_ids: Sequence[str]) -> list[Claim]:
    """Take the legs that are ours to take now, in one transaction of a few statements."""
    now = ctx.clock()
    token = str(uuid.uuid4())
    expires = now + timedelta(seconds=ctx.lease_seconds)
    # Durable: the attempt rows written here must outlive a power loss after the calls they
    # announce, or a leg could be called again with no trace of the first call.
    with ctx.uow(durable=True) as uow:
        wanted: dict[str, tuple[LegRecord, bool]] = {}
        for leg in uow.legs.get_many(leg_ids):
            resolve_first = _claimable(leg, now)
            if resolve_first is not None:
                wanted[leg.id] = (leg, resolve_first)
        won = uow.legs.claim_many(
            [LegClaim(leg.id, leg.version, resolve) for leg, resolve in wanted.values()],
            token, expires, now,
        )
        if not won:
            return []
        # Written before the calls: a worker killed mid-call still leaves its trace.
        intents = uow.attempts.start_many(sorted(won), INTENT, now)
        options = {job_id: _job_options(uow, job_id, now)
                   for job_id in {wanted[leg_id][0].job_id for leg_id in won}}
        uow.commit()
    return [
        Claim(leg, leg.version + 1, token, resolve, options[leg.job_id], intents[leg.id], expires)
        for leg_id, (leg, resolve) in wanted.items() if leg_id in won
    ]


def _claimable(leg: LegRecord, now: datetime) -> bool | None:
    """None if the leg is not ours to take now; else whether to read its state first."""
    resolve_first = claimable(LegAtClaim(leg.state, leg.needs_resolve, leg.next_attempt_at,
                                         leg.lease_expires_at), now)
    if resolve_first is not None and leg.state is LegState.IN_FLIGHT:
        log.warning("leg %s: lease expired in flight, reading before any cancel", leg.id)
    return resolve_first


def _job_options(uow: AbstractUnitOfWork, job_id: str, now: datetime) -> str:
    job = uow.jobs.get(job_id)
    if job is not None and job.state is JobState.ACCEPTED:
        # A leg is in flight: the job is in progress (no need to count its legs for that).
        uow.jobs.start(job_id, now)
    return str(((job.request if job else None) or {}).get("on_cutoff") or "reject")


def claim_leg(ctx: Context, leg_id: str) -> Claim | None:
    claims = claim_legs(ctx, [leg_id])
    return claims[0] if claims else None


def process_legs(ctx: Context, leg_ids: Sequence[str]) -> list[LegStep]:
    """One round for each leg that can be claimed; their follow-ups are dispatched."""
    return run_claimed(ctx, claim_legs(ctx, leg_ids))


def run_claimed(ctx: Context, claims: Sequence[Claim],
                record: Recorder | None = None) -> list[LegStep]:
    """One round for each claimed leg, concurrently; record them (with ``record``, by default
    in a transaction of their own), dispatch their follow-ups."""
    if not claims:
        return []
    if len(claims) == 1:
        results = [run_round(ctx, claims[0])]
    else:
        futures = [ctx.pools.submit(c.leg.provider, run_round, ctx, c) for c in claims]
        results = [future.result() for future in futures]
    steps = record(results) if record is not None else record_results(ctx, results)
    for result, step in zip(results, steps, strict=True):
        if step.retry_in is not None:
            ctx.dispatcher.process_leg(result.claim.leg.id, step.retry_in,
                                       label=TaskLabel.for_leg(result.claim.leg))
        elif step.state in WAITING_STATES:
            # Pages may have arrived before the operation's id was recorded.
            ctx.dispatcher.settle_callbacks(result.claim.leg.id,
                                            label=TaskLabel.for_leg(result.claim.leg))
    return steps


def process_leg(ctx: Context, leg_id: str) -> LegStep:
    """One round for one leg (a retry, a sweep's re-dispatch); follow-ups are the caller's."""
    claims = claim_legs(ctx, [leg_id])
    if not claims:
        return LegStep(None)
    result = run_round(ctx, claims[0])
    step = record_results(ctx, [result])[0]
    if step.state in WAITING_STATES:
        ctx.dispatcher.settle_callbacks(leg_id, label=TaskLabel.for_leg(claims[0].leg))
    return step

def record_results(ctx: Context, results: Sequence[RoundResult]) -> list[LegStep]:
    """Apply every round's result (if the leg is still ours) and its calls, in one transaction."""
    now = ctx.clock()
    finished, added, dropped = _attempt_rows(results)
    # The claim counted one attempt per leg; the calls made beyond it (or none at all).
    delta: dict[str, int] = {}
    for leg_id, _call in added:
        delta[leg_id] = delta.get(leg_id, 0) + 1
    for leg_id, _attempt_id in dropped:
        delta[leg_id] = delta.get(leg_id, 0) - 1
    finishes = []
    for result in results:
        assert can_transition(LegState.IN_FLIGHT, result.state), result.state
        leg = result.claim.leg
        values = {"needs_resolve": False, "next_attempt_at": None, **result.values,
                  "state": result.state, "updated_at": now}
        finishes.append(LegFinish(leg, result.claim.version, values, delta.get(leg.id, 0)))
    owed: list[str] = []  # outcomes (issue 17)
    with ctx.uow() as uow:
        applied = uow.legs.finish_many(finishes)
        for result in (r for r in results if r.claim.leg.id in applied):
            leg_ended(result.claim.leg, result.state, result.values.get("reason"),
                      result.values.get("detail"), last_answer(c[2] for c in result.calls.calls))
        uow.attempts.record_round(finished, added, [attempt_id for _, attempt_id in dropped])
        # A leg whose change did not apply still made its calls: count them on it.
        uow.legs.count_attempts({leg_id: n for leg_id, n in delta.items() if leg_id not in applied})
        refresh_jobs(uow, {r.claim.leg.job_id for r in results if r.claim.leg.id in applied},
                     now, owed)
        uow.commit()
    dispatch_outcomes(ctx, owed)  # outcomes (issue 17)
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
) -> tuple[list[tuple[int, CallMade]], list[tuple[str, CallMade]], list[tuple[str, int]]]:
    """The rounds' calls: the first fills the attempt written before it (by attempt id), the
    others are added (by leg id); an attempt written for a call never made is dropped."""
    finished: list[tuple[int, CallMade]] = []
    added: list[tuple[str, CallMade]] = []
    dropped: list[tuple[str, int]] = []
    for result in results:
        claim = result.claim
        for index, call in enumerate(result.calls.made()):
            if index == 0 and claim.intent_id is not None:
                finished.append((claim.intent_id, call))
            else:
                added.append((claim.leg.id, call))
        if not result.calls.calls and claim.intent_id is not None:
            dropped.append((claim.leg.id, claim.intent_id))
    return finished, added, dropped


def refresh_evidence(ctx: Context, leg_id: str) -> bool:
    """Read a cancelled leg's figures again (a read that failed, or figures not adding up yet);
    true when the leg got its final figures. The wait is bounded (``worker.services.evidence``).
    """
    with ctx.uow(read_only=True) as uow:
        leg = uow.legs.get(leg_id)
    if leg is None or leg.state is not LegState.CANCELLED or leg.reconciliation is not None:
        return False
    driver = ctx.drivers.get(leg.provider)
    if driver is None:
        return False
    calls = CallLog(ctx.clock)
    evidence = try_read_evidence(driver, leg, calls)
    now = ctx.clock()
    owed: list[str] = []  # outcomes (issue 17)
    with ctx.uow() as uow:
        for call in calls.made():
            uow.attempts.add(leg_id, call)
        current = uow.legs.get(leg_id)
        if current is None or current.reconciliation is not None:
            uow.commit()
            return False
        decided = after_read(current, evidence, now, ctx.callback_timeout_seconds)
        values = dict(decided.columns)
        ended = decided.final is not None or decided.without_figures
        if decided.final is not None:
            values["reconciliation"] = leg_reconciliation(leg_id, decided.final)
        elif decided.without_figures:
            values["reconciliation"] = leg_reconciliation_without_figures(leg_id)
        if decided.note:
            log.warning("leg %s: %s", leg_id, decided.note)
            values["detail"] = "; ".join(d for d in (current.detail, decided.note) if d)
        applied = uow.legs.update(leg_id, current.version, updated_at=now, **values)
        if applied and ended:
            refresh_job(uow, leg.job_id, now, owed)
        uow.commit()
    dispatch_outcomes(ctx, owed)  # outcomes (issue 17)
    return applied and ended
