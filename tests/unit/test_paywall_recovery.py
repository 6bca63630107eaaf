"""Paywall's callback recovery behind the CallbackRecovery port: re-send, then the query."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tests.fakes.providers import paywall_api, paywall_envelope
from tests.fakes.providers import sixdot50_api as sixdot50
from worker.providers.calls import NullObserver
from worker.providers.paywall.driver import PaywallDriver
from worker.providers.paywall.recovery import PaywallRecovery
from worker.providers.sixdot50.driver import SixDot50Driver
from worker.services.ports import CallbackRecovery, QueriedResult, ResultStatus

TARGET = {"merchant_unique_code": "bulk-1", "payment_date": "2026-11-21"}


def row(scope: Any, status: Any, amount: Any = 10) -> dict[str, Any]:
    return {"MerchantUniqueCode": "p", "PaymentId": 1, "Amount": amount, "Status": status,
            "Scope": scope}


def querying(rows: list[dict[str, Any]]) -> PaywallRecovery:
    """Recovery over a query answering `rows` on one short page."""
    return PaywallRecovery(paywall_api(
        lambda request: httpx.Response(200, json=paywall_envelope({"Payments": rows}))))


def test_query_results_are_the_scope_rows_by_status() -> None:
    """Status 4 is ok, 5 and 7 failed, anything unreadable pending; other scopes are skipped."""
    recovery = querying([row("cancel", 4, "10.25"), row("cancel", 5), row("cancel", 7),
                         row("cancel", 2), row("cancel", "done"), row("cancel", 4, "ten"),
                         row("refund", 4), row("sale", 4)])
    results = list(recovery.query_results(TARGET, "cancel", NullObserver()))
    assert results == [
        QueriedResult(Decimal("10.25"), ResultStatus.OK),
        QueriedResult(Decimal(10), ResultStatus.FAILED),
        QueriedResult(Decimal(10), ResultStatus.FAILED),
        QueriedResult(Decimal(10), ResultStatus.PENDING),
        QueriedResult(Decimal(10), ResultStatus.PENDING),
        QueriedResult(None, ResultStatus.PENDING),
    ]


def test_request_resend_posts_the_code_and_day_and_says_nothing_when_accepted() -> None:
    """An accepted re-send answers None; the request carries the target's code and day."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=paywall_envelope(None))

    assert PaywallRecovery(paywall_api(handler)).request_resend(TARGET, NullObserver()) is None
    (request,) = seen
    assert request.url.path.endswith("/bulk/send/callback")
    assert request.read() == b'{"Date":"2026-11-21","MerchantUniqueCode":"bulk-1"}'


def test_request_resend_refused_says_why() -> None:
    """A refused re-send answers the refusal in words, with Paywall's code."""
    recovery = PaywallRecovery(paywall_api(
        lambda request: httpx.Response(200, json=paywall_envelope(None, code=56, result=False))))
    said = recovery.request_resend(TARGET, NullObserver())
    assert said is not None and "56" in said


def test_only_the_paywall_driver_offers_callback_recovery() -> None:
    """The capability is read from the port, not from the provider's class."""
    paywall = PaywallDriver(paywall_api(lambda request: httpx.Response(500)),
                            ZoneInfo("Europe/Istanbul"), lambda: datetime.now(UTC))
    assert isinstance(paywall, CallbackRecovery)
    assert not isinstance(SixDot50Driver(sixdot50(lambda request: httpx.Response(500))),
                          CallbackRecovery)
