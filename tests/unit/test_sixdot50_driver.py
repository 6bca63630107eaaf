"""The 6DOT50 driver's decisions, over httpx.MockTransport."""

from __future__ import annotations

import uuid

import httpx
import pytest
from pydantic import SecretStr

from worker.domain.outcomes import Cancelled, Rejected
from worker.domain.states import Reason
from worker.providers.calls import NullObserver
from worker.providers.errors import Conflict, InvalidRequest
from worker.providers.sixdot50.adapter import SixDot50
from worker.providers.sixdot50.driver import SixDot50Driver

BATCH = str(uuid.uuid4())
TARGET = {"batch_id": BATCH}


def driver(answers: list[tuple[int, dict[str, object]]]) -> SixDot50Driver:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/getToken"):
            return httpx.Response(200, json={"success": True, "token": "t",
                                             "expiresAt": "2099-01-01T00:00:00Z"})
        status, body = answers.pop(0)
        return httpx.Response(status, json=body)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    return SixDot50Driver(SixDot50(client, "https://pay", SecretStr("k"), SecretStr("s")))


def batch(status: str, payments: int, cancelled: int, settled: int = 0) -> dict[str, object]:
    return {"id": BATCH, "statusCode": status, "summary": {
        "paymentsCount": payments, "paymentsAmount": payments * 10.0,
        "cancelledCount": cancelled, "cancelledAmount": cancelled * 10.0,
        "settledCount": settled, "settledAmount": settled * 10.0}}


def test_refusal_then_cancelled_batch_is_already_cancelled() -> None:
    """A refused cancel on a batch that reads CANCELLED is cancelled, already_cancelled."""
    outcome = driver([(400, {"message": "no"}), (200, batch("CANCELLED", 2, 2))]).cancel(
        TARGET, NullObserver())
    assert isinstance(outcome, Cancelled) and outcome.already


def test_refusal_then_open_batch_is_not_cancellable() -> None:
    """A refused cancel on an OPEN batch is rejected/not_cancellable."""
    outcome = driver([(400, {"message": "no"}), (200, batch("OPEN", 2, 0))]).cancel(
        TARGET, NullObserver())
    assert isinstance(outcome, Rejected) and outcome.reason is Reason.NOT_CANCELLABLE


def test_a_summary_still_moving_is_read_as_it_is_but_not_complete() -> None:
    """Until cancelled and settled account for every payment, the figures are not complete."""
    moving = driver([(200, batch("CANCELLED", 3, 2, settled=0))])
    evidence = moving.read_evidence(TARGET, NullObserver())
    assert evidence is not None and not evidence.complete
    assert evidence.reported.cancelled_count == 2
    settled = driver([(200, batch("CANCELLED", 3, 2, settled=1))])
    evidence = settled.read_evidence(TARGET, NullObserver())
    assert evidence is not None and evidence.complete
    assert evidence.reported.settled_count == 1


def test_a_refusal_of_a_draft_batch_keeps_the_refusals_meaning() -> None:
    """Refused while still DRAFT: a 409 is tried again later, a 400 is our request's fault."""
    with pytest.raises(Conflict):
        driver([(409, {"message": "busy"}), (200, batch("DRAFT", 2, 0))]).cancel(
            TARGET, NullObserver())
    with pytest.raises(InvalidRequest):
        driver([(400, {"message": "bad"}), (200, batch("DRAFT", 2, 0))]).cancel(
            TARGET, NullObserver())
