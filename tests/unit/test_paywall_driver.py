"""The Paywall driver: the same-day rule in Paywall's zone, refunds, refusals, resolving."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import SecretStr

from worker.domain.outcomes import AwaitingCallbacks, RefundRequested, Rejected, StillCancellable
from worker.domain.states import Reason
from worker.providers.calls import NullObserver
from worker.providers.errors import ProviderUnavailable
from worker.providers.paywall.adapter import Paywall
from worker.providers.paywall.driver import UNNAMED, PaywallDriver

ISTANBUL = ZoneInfo("Europe/Istanbul")
BULK = {"scope": "bulk", "merchant_unique_code": "bulk-1", "payment_date": "2026-11-21"}


def driver_at(utc: datetime, answers: dict[str, Any], calls: list[str],
              clock: Any = None) -> PaywallDriver:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path.rsplit("/", 1)[-1])
        return httpx.Response(200, json=answers[calls[-1]])

    api = Paywall(httpx.Client(transport=httpx.MockTransport(handler)),
                  public_url="https://pw/p", private_url="https://pw/s",
                  public_headers=(SecretStr("k"), SecretStr("c")),
                  private_headers=(SecretStr("k"), SecretStr("c")))
    return PaywallDriver(api, ISTANBUL, clock or (lambda: utc))


OK = {"ErrorCode": 0, "Result": True, "Body": {"Result": True, "BulkPaymentId": 9,
                                               "TotalPaymentCount": 3}}
NOT_NOW = {"ErrorCode": 269, "Result": False, "ErrorMessage": "ThisOperationCannotDoInThisTime"}


def test_on_the_payment_day_the_bulk_is_cancelled() -> None:
    """On the payment day (Istanbul), cancel is called and the leg waits for callbacks."""
    calls: list[str] = []
    outcome = driver_at(datetime(2026, 11, 21, 9, 0, tzinfo=UTC), {"cancel": OK}, calls).cancel(
        BULK, NullObserver())
    assert outcome == AwaitingCallbacks("9", 3, at_risk=False)
    assert calls == ["cancel"]


def test_day_over_in_istanbul_but_not_in_utc_rejects_without_calling() -> None:
    """At 22:30 UTC it is already the next day in Istanbul: reject, zero calls."""
    calls: list[str] = []
    outcome = driver_at(datetime(2026, 11, 21, 22, 30, tzinfo=UTC), {}, calls).cancel(
        BULK, NullObserver(), "reject")
    assert isinstance(outcome, Rejected) and outcome.reason is Reason.CUTOFF_PASSED
    assert calls == []


def test_day_over_with_refund_asks_for_a_refund_not_a_cancel() -> None:
    """on_cutoff=refund calls the refund endpoint and never the cancel endpoint."""
    calls: list[str] = []
    outcome = driver_at(datetime(2026, 11, 23, 9, 0, tzinfo=UTC), {"refund": OK}, calls).cancel(
        BULK, NullObserver(), "refund")
    assert isinstance(outcome, RefundRequested) and outcome.reference == "9"
    assert calls == ["refund"]


def test_last_ten_minutes_are_sent_but_marked_at_risk() -> None:
    """At 23:55 Istanbul the cancel is still sent, and the leg says it is at risk."""
    calls: list[str] = []
    outcome = driver_at(datetime(2026, 11, 21, 20, 55, tzinfo=UTC), {"cancel": OK}, calls).cancel(
        BULK, NullObserver())
    assert isinstance(outcome, AwaitingCallbacks) and outcome.at_risk
    assert outcome.detail is not None and "midnight" in outcome.detail


def test_already_cancelled_waits_for_pages_matched_by_code() -> None:
    """Paywall's 'already cancelled' leaves the leg waiting, its pages matched by code."""
    calls: list[str] = []
    refused = {"ErrorCode": 94, "Result": False, "ErrorMessage": "has successful cancel"}
    outcome = driver_at(datetime(2026, 11, 21, 9, 0, tzinfo=UTC), {"cancel": refused},
                        calls).cancel(BULK, NullObserver())
    assert isinstance(outcome, AwaitingCallbacks)
    assert outcome.reference is None and outcome.already


def test_not_found_is_rejected() -> None:
    """An unknown code is rejected/not_found."""
    calls: list[str] = []
    refused = {"ErrorCode": 56, "Result": False, "ErrorMessage": "payment not found"}
    outcome = driver_at(datetime(2026, 11, 21, 9, 0, tzinfo=UTC), {"cancel": refused},
                        calls).cancel(BULK, NullObserver())
    assert isinstance(outcome, Rejected) and outcome.reason is Reason.NOT_FOUND


def test_resolve_reads_the_query_before_any_new_cancel() -> None:
    """After a lost answer, cancel rows in the query mean the cancel was taken."""
    rows = {"ErrorCode": 0, "Result": True, "Body": {"Payments": [
        {"MerchantUniqueCode": "p", "PaymentId": 1, "Amount": 1, "Status": 4, "Scope": "cancel"}]}}
    calls: list[str] = []
    outcome = driver_at(datetime(2026, 11, 21, 9, 0, tzinfo=UTC), {"query": rows}, calls).resolve(
        BULK, NullObserver())
    assert isinstance(outcome, AwaitingCallbacks) and calls == ["query"]
    sale_only = {"ErrorCode": 0, "Result": True, "Body": {"Payments": [
        {"MerchantUniqueCode": "p", "PaymentId": 1, "Amount": 1, "Status": 4, "Scope": "sale"}]}}
    assert isinstance(driver_at(datetime(2026, 11, 21, 9, 0, tzinfo=UTC), {"query": sale_only},
                                []).resolve(BULK, NullObserver()), StillCancellable)


def test_269_while_our_day_is_on_is_retried_not_refunded() -> None:
    """Paywall says "not at this time" at noon in Istanbul: a retryable error, no refund."""
    calls: list[str] = []
    driver = driver_at(datetime(2026, 11, 21, 9, 0, tzinfo=UTC), {"cancel": NOT_NOW}, calls)
    with pytest.raises(ProviderUnavailable) as caught:
        driver.cancel(BULK, NullObserver(), "refund")
    assert caught.value.retryable and not caught.value.ambiguous
    assert caught.value.provider_code == "269" and calls == ["cancel"]


def test_269_when_our_day_ended_during_the_call_refunds() -> None:
    """The day ends between the check and Paywall's 269: the cutoff rule applies at once."""
    calls: list[str] = []
    times = iter([datetime(2026, 11, 21, 20, 59, 59, tzinfo=UTC)])
    driver = driver_at(datetime(2026, 11, 21, 21, 0, 1, tzinfo=UTC),
                       {"cancel": NOT_NOW, "refund": OK}, calls,
                       clock=lambda: next(times, datetime(2026, 11, 21, 21, 0, 1, tzinfo=UTC)))
    outcome = driver.cancel(BULK, NullObserver(), "refund")
    assert isinstance(outcome, RefundRequested) and calls == ["cancel", "refund"]


def test_269_answering_a_refund_is_retried() -> None:
    """A refund Paywall says is too early (its day not over yet) is retried, not rejected."""
    calls: list[str] = []
    driver = driver_at(datetime(2026, 11, 22, 9, 0, tzinfo=UTC), {"refund": NOT_NOW}, calls)
    with pytest.raises(ProviderUnavailable) as caught:
        driver.cancel(BULK, NullObserver(), "refund")
    assert caught.value.retryable and calls == ["refund"]


def test_queued_without_its_id_waits_for_pages_matched_by_code() -> None:
    """Body.Result true with no BulkPaymentId: the cancel is queued; pages are matched by code."""
    calls: list[str] = []
    queued = {"ErrorCode": 0, "Result": True, "Body": {"Result": True, "TotalPaymentCount": 3}}
    outcome = driver_at(datetime(2026, 11, 21, 9, 0, tzinfo=UTC) + timedelta(hours=1),
                        {"cancel": queued}, calls).cancel(BULK, NullObserver())
    assert outcome == AwaitingCallbacks(None, 3, detail=UNNAMED)
    assert calls == ["cancel"]
