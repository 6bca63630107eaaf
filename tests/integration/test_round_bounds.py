"""A round's waits are bounded: the lease is checked right before each provider call (a claimed
leg whose lease ran too short, waiting for a pool slot or behind a slow call, makes no further
call), and pauses set by a provider's 429s cannot hold a leg for ever."""

from __future__ import annotations

from datetime import timedelta

from tests.fakes import (
    BATCH,
    START,
    FakeDispatcher,
    FakeUnitsOfWork,
    ScriptedDriver,
    make_ctx,
    message,
)
from tests.support import Clock
from worker.domain.outcomes import Cancelled, StillCancellable
from worker.providers.calls import CallObserver
from worker.providers.errors import TransportError
from worker.services.legs import claim_legs, process_leg, run_claimed
from worker.services.rounds import LEASE_SLACK
from worker.services.submit import submit

# make_ctx: a 60 s lease; one call is bounded by 10 s (Context.call_timeout_seconds).
LAST_START = timedelta(seconds=60 - 10) - LEASE_SLACK


class SlowReadDriver(ScriptedDriver):
    """Its read of the target takes so long that the lease is nearly gone afterwards."""

    clock: Clock | None = None

    def resolve(self, target: dict[str, str], calls: CallObserver,
                on_cutoff: str = "reject") -> StillCancellable:
        assert self.clock is not None
        answer = super().resolve(target, calls, on_cutoff)
        self.clock.now += LAST_START + timedelta(seconds=1)
        return answer  # type: ignore[return-value]


def test_a_leg_whose_lease_ran_out_waiting_is_given_back_uncalled(
    uows: FakeUnitsOfWork, dispatcher: FakeDispatcher
) -> None:
    """Given a claimed leg that waited past its lease's last safe start, its round calls
    nothing: the leg is pending again with no attempt, and dispatched again at once."""
    clock = Clock(START)
    driver = ScriptedDriver([Cancelled(already=False, reference=BATCH)])
    ctx = make_ctx(uows, dispatcher, driver, clock)
    job_id = submit(ctx, (), message("lease-1")).job_id
    leg_id = dispatcher.legs.pop()[0]
    claims = claim_legs(ctx, [leg_id])
    clock.now += LAST_START + timedelta(seconds=1)  # e.g. queued behind a busy pool

    steps = run_claimed(ctx, claims)

    assert driver.calls == []
    leg = uows.only_leg(job_id)
    assert (leg.state, leg.attempts) == ("pending", 0)
    assert uows.attempts_of(leg_id) == []
    assert dispatcher.legs == [(leg_id, 0.0)]
    assert steps[0].retry_in == 0.0
    # Run again in time, the leg is cancelled by one call.
    step = process_leg(ctx, leg_id)
    assert (step.state is not None and step.state.value, driver.calls[0]) == (
        "cancelled", "cancel_batch")


def test_a_lease_that_runs_short_between_calls_stops_before_the_cancel(
    uows: FakeUnitsOfWork, dispatcher: FakeDispatcher
) -> None:
    """Given a leg read before its cancel, when the read leaves too little lease, the cancel is
    not sent: the leg is unknown (read again first), its one call counted, dispatched at once."""
    clock = Clock(START)
    driver = SlowReadDriver([], resolves=[StillCancellable()])
    driver.clock = clock
    ctx = make_ctx(uows, dispatcher, driver, clock)
    job_id = submit(ctx, (), message("lease-2")).job_id
    leg_id = dispatcher.legs.pop()[0]
    # A timeout after sending leaves the leg to be read before any new cancel.
    driver.cancels.append(TransportError("no answer", provider="sixdot50",
                                         operation="cancel_batch", ambiguous=True))
    process_leg(ctx, leg_id)
    clock.now += timedelta(seconds=400)  # past the retry's countdown

    process_leg(ctx, leg_id)

    assert driver.calls == ["cancel_batch", "get_batch"]
    leg = uows.only_leg(job_id)
    assert (leg.state, leg.attempts) == ("unknown", 2)
    assert [a.operation for a in uows.attempts_of(leg_id)] == ["cancel_batch", "get_batch"]
    assert (len(driver.cancels), leg.reason) == (0, None)


def test_pauses_spend_retries_once_a_leg_outlives_its_retry_budget(
    uows: FakeUnitsOfWork, dispatcher: FakeDispatcher
) -> None:
    """Given a provider paused by 429s, a young leg waits without spending a retry; once older
    than its whole retry budget (attempts x RETRY_MAX_SECONDS) each pause spends one, and the leg
    ends failed / retries_exhausted instead of waiting for ever. No call is made."""
    clock = Clock(START)
    driver = ScriptedDriver([])
    ctx = make_ctx(uows, dispatcher, driver, clock, max_attempts=2)  # budget: 2 x 300 s
    ctx.throttle.pause("sixdot50", 3600)
    job_id = submit(ctx, (), message("paused")).job_id
    leg_id = dispatcher.legs[0][0]

    def round_after(seconds: float) -> tuple[str, int]:
        clock.now += timedelta(seconds=seconds)
        process_leg(ctx, leg_id)
        leg = uows.ledger.legs[leg_id]
        return leg.state.value, leg.retries

    assert round_after(0) == ("retrying", 0)
    assert round_after(4000) == ("retrying", 1)
    assert round_after(4000)[0] == "failed"
    assert uows.only_leg(job_id).reason == "retries_exhausted"
    assert driver.calls == []
