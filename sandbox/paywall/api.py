"""Paywall's public API under `/paywall` and private API under `/paywall-private`.

Every answer is the envelope `{ErrorCodeType, ErrorMessage, ErrorCode, Result, Message, Body}`
(an accepted cancel exactly as seed 001's example); business refusals are HTTP 200 with an
ErrorCode, bad API headers HTTP 401 with ErrorCode 401. The query's totals are left out unless
the `query_totals` setting names them (no document does).
Check order: headers, request fields (2), the code and its Date (56), already done (94, 93,
97), the payment day (269).
"""

from __future__ import annotations

import math
import secrets
from datetime import date
from typing import Any

from flask import Blueprint, request

from sandbox.intercept import Answer, Operations
from sandbox.paywall.callbacks import sender
from sandbox.paywall.model import (
    INVALID_DATA,
    NAME,
    PAYMENT_NOT_FOUND,
    UNAUTHORIZED,
    Bulk,
    Kind,
    Payment,
    PaywallStore,
    summary,
)
from sandbox.paywall.settings import MAX_PAGE_SIZE, parse_day
from sandbox.state import current_state, effect_key

PUBLIC_PREFIX = "/paywall"
PRIVATE_PREFIX = "/paywall-private"
BULK = "/api/paywall/payment/bulk"
ERROR_CODE_TYPE = 1  # [doc seed 001] its meaning is not documented; the example says 1
ENQUEUED = "Bulk payment created and enqueued"  # [doc seed 001] the Message of an accepted cancel

public = Blueprint(f"{NAME}_public", __name__, url_prefix=PUBLIC_PREFIX)
private = Blueprint(f"{NAME}_private", __name__, url_prefix=PRIVATE_PREFIX)
operation = Operations(NAME)


def envelope(body: Any, message: str | None = None) -> dict[str, Any]:
    """A success envelope around `body`, as seed 001's example answer is."""
    return {
        "ErrorCodeType": ERROR_CODE_TYPE,
        "ErrorMessage": None,
        "ErrorCode": 0,
        "Result": True,
        "Message": message,
        "Body": body,
    }


def error_body(code: int, message: str) -> dict[str, Any]:
    """A refusal envelope; also the provider's body for HTTP errors (ErrorCode = status)."""
    return {
        "ErrorCodeType": ERROR_CODE_TYPE,
        "ErrorMessage": message,
        "ErrorCode": code,
        "Result": False,
        "Message": None,
        "Body": None,
    }


def refused(code: int, message: str, status: int = 200) -> Answer:
    return Answer(error_body(code, message), status)


def request_code() -> str | None:
    """The MerchantUniqueCode a call is about (JSON body, or query string): its target."""
    if request.method == "GET":
        code = _query().get("merchantuniquecode")
    else:
        body = request.get_json(silent=True)
        code = body.get("MerchantUniqueCode") if isinstance(body, dict) else None
    return code if isinstance(code, str) and code else None


def _query() -> dict[str, str]:
    """Query parameters by lower-case name (ASP.NET binds them case-insensitively)."""
    return {name.lower(): value for name, value in request.args.items()}


def _authorized(store: PaywallStore, *, private_api: bool) -> bool:
    side = "private" if private_api else "public"
    pairs = [(request.headers.get(f"{name}{side}", ""), store.config[f"{name}{side}"])
             for name in ("apikey", "apiclient")]  # fmt: skip
    return all(
        secrets.compare_digest(sent.encode(), str(wanted).encode()) for sent, wanted in pairs
    )


def _unauthorized() -> Answer:
    return refused(UNAUTHORIZED, "Unauthorized: missing or wrong API headers", 401)


def _date_and_code() -> tuple[date, str] | Answer:
    """`{"Date": "YYYY-MM-DD", "MerchantUniqueCode": str}` from the body, or the refusal."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return refused(INVALID_DATA, "the body must be a JSON object")
    code = body.get("MerchantUniqueCode")
    if not (isinstance(code, str) and code):
        return refused(INVALID_DATA, "MerchantUniqueCode is required")
    try:
        return parse_day(body.get("Date"), "Date"), code
    except ValueError as error:
        return refused(INVALID_DATA, str(error))


def _operate(store: PaywallStore, kind: Kind, *, private_api: bool) -> Answer:
    """Cancel or refund a bulk (public API) or one payment (private API)."""
    if not _authorized(store, private_api=private_api):
        return _unauthorized()
    parsed = _date_and_code()
    if isinstance(parsed, Answer):
        return parsed
    day, code = parsed
    subject: Bulk | Payment | None = (
        store.payments.get(code) if private_api else store.bulks.get(code)
    )
    what = "payment" if private_api else "bulk"
    if subject is None:
        return refused(PAYMENT_NOT_FOUND, f"no {what} with MerchantUniqueCode {code}")
    holder = subject.holder if isinstance(subject, Payment) else subject
    if holder.day != day:
        return refused(PAYMENT_NOT_FOUND, f"no {what} {code} on {day.isoformat()}")
    done = subject.state if isinstance(subject, Payment) else subject.done()
    refusal = store.refusal(kind, done, day)
    if refusal is not None:
        return refused(*refusal)
    op, changed = store.accept(kind, subject)
    if private_api:
        effect = op.succeeded == 1  # counted by the interceptor as {kind}_payment:<code>
    else:
        effect = True  # {kind}_bulk:<code>; each payment changed counts on its own
        current_state().effects.update(effect_key(NAME, f"{kind}_payment", c) for c in changed)
    plan = store.plan(op)
    if plan is not None:
        sender().submit(plan)
    body = {"Result": True, "BulkPaymentId": op.id, "TotalPaymentCount": len(op.payments)}
    return Answer(envelope(body, ENQUEUED), effect=effect)


@public.post(f"{BULK}/payment/cancel")
@operation("cancel_bulk", target=request_code)
def cancel_bulk(store: PaywallStore) -> Answer:
    """Cancel every payment of a bulk, on its payment day only."""
    return _operate(store, "cancel", private_api=False)


@public.post(f"{BULK}/payment/refund")
@operation("refund_bulk", target=request_code)
def refund_bulk(store: PaywallStore) -> Answer:
    """Refund every payment of a bulk, after its payment day only."""
    return _operate(store, "refund", private_api=False)


@public.get(f"{BULK}/payment/query")
@operation("query_bulk", target=request_code)
def query_bulk(store: PaywallStore) -> Answer:
    """One page of rows (sale, cancel, refund per payment) under a bulk or payment code."""
    if not _authorized(store, private_api=False):
        return _unauthorized()
    args = _query()
    try:
        size, number = int(args.get("pagesize", MAX_PAGE_SIZE)), int(args.get("pagenumber", 1))
    except ValueError:
        return refused(INVALID_DATA, "pageSize and pageNumber must be integers")
    if not (1 <= size <= MAX_PAGE_SIZE and number >= 1):
        return refused(INVALID_DATA, f"pageSize must be 1..{MAX_PAGE_SIZE}, pageNumber >= 1")
    subject = _subject(store)
    if isinstance(subject, Answer):
        return subject
    offset = (number - 1) * size
    if isinstance(subject, Bulk):
        total, rows = subject.total_rows(), subject.rows(offset, size)
    else:
        every = subject.rows()
        total, rows = len(every), every[offset : offset + size]
    # No document names the totals: by default there are none, so nothing may depend on them.
    body: dict[str, Any] = {"Payments": rows}
    total_name = store.config["query_totals"]
    if total_name is not None:
        body = {total_name: total, "TotalPages": math.ceil(total / size), "PageSize": size,
                "PageNumber": number, **body}
    return Answer(envelope(body))


@public.get(f"{BULK}/payment/query/summary")
@operation("query_summary", target=request_code)
def query_summary(store: PaywallStore) -> Answer:
    """Sale, cancel and refund totals under a bulk or payment code."""
    if not _authorized(store, private_api=False):
        return _unauthorized()
    subject = _subject(store)
    return subject if isinstance(subject, Answer) else Answer(envelope(summary(subject)))


def _subject(store: PaywallStore) -> Bulk | Payment | Answer:
    code = _query().get("merchantuniquecode")
    if not code:
        return refused(INVALID_DATA, "merchantuniquecode is required")
    subject = store.find_subject(code)
    if subject is None:
        return refused(PAYMENT_NOT_FOUND, f"nothing with MerchantUniqueCode {code}")
    return subject


@public.post(f"{BULK}/send/callback")
@operation("send_callback", target=request_code)
def send_callback(store: PaywallStore) -> Answer:
    """Send every page of the latest operation on a code again (last 7 days)."""
    if not _authorized(store, private_api=False):
        return _unauthorized()
    parsed = _date_and_code()
    if isinstance(parsed, Answer):
        return parsed
    day, code = parsed
    subject = store.find_subject(code)
    op = store.latest_op(code)
    holder = subject.holder if isinstance(subject, Payment) else subject
    if holder is None or op is None or holder.day != day:
        return refused(PAYMENT_NOT_FOUND, f"no operation on {code} on {day.isoformat()}")
    refusal = store.resend_refusal(op)
    if refusal is not None:
        return refused(*refusal)
    plan = store.plan(op, resend=True)
    assert plan is not None
    sender().submit(plan)
    return Answer(envelope({"Result": True}))


@private.post("/api/paywall/private/cancel")
@operation("cancel_payment", target=request_code)
def cancel_payment(store: PaywallStore) -> Answer:
    """Cancel one payment by its own code, on its payment day only."""
    return _operate(store, "cancel", private_api=True)


@private.post("/api/paywall/private/refund")
@operation("refund_payment", target=request_code)
def refund_payment(store: PaywallStore) -> Answer:
    """Refund one payment by its own code, after its payment day only."""
    return _operate(store, "refund", private_api=True)
