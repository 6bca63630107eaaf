"""Paywall's state: bulks, payments, the operations on them and the delivery log.

Plain code, no Flask. A bulk holds its payments; a payment seeded on its own gets a holder bulk
of one (`standalone`) that the bulk endpoints never find. An operation (cancel or refund, of a
bulk or of one payment) decides every payment's result when it is accepted and keeps only the
failures, so a 150,000-payment bulk costs one pass and its pages and query rows are built on
demand. Wire details follow docs/providers-assumed.md (section Paywall).
"""

from __future__ import annotations

import hashlib
import math
import random
from bisect import bisect_left, insort
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sandbox.paywall.settings import (
    DELIVERY_CHECKS,
    SECRETS,
    SETTING_CHECKS,
    SETTINGS_DEFAULTS,
    checked,
)
from sandbox.state import Clock, JSONObject, iso_utc

NAME = "paywall"
Kind = Literal["cancel", "refund"]
SALE = "sale"
DONE = {"cancel": "cancelled", "refund": "refunded"}

# [doc] payment statuses: 4 successful, 5 failed.
STATUS_SUCCESSFUL = 4
STATUS_FAILED = 5
# The .NET SDK's ErrorCodes, the numbering the sandbox answers with.
INVALID_DATA = 2
PAYMENT_NOT_FOUND = 56
NOT_CONVENIENT = 92  # PaymentNotConvenientForOperation: a payment marked to fail
HAS_REFUND = 93  # PaymentHasSuccessfulRefund
HAS_CANCEL = 94  # PaymentHasSuccessfulCancel
ALREADY_FINALIZED = 97  # PaymentAlreadyFinalized
NOT_NOW = 269  # ThisOperationCannotDoInThisTime
UNAUTHORIZED = 401

RESEND_WINDOW = timedelta(days=7)  # [doc] send/callback only for the last 7 days
FIRST_PAYMENT_ID = 9001
FIRST_OPERATION_ID = 81001
CALLBACK_TYPES = {  # [assume] the values of Type are unknown; nobody relies on them
    (False, "cancel"): "BulkCancel", (False, "refund"): "BulkRefund",
    (True, "cancel"): "PaymentCancel", (True, "refund"): "PaymentRefund",
}  # fmt: skip


def wire_time(moment: datetime) -> str:
    """UTC to the second with a Z, as the callback example shows (`2026-11-21T10:00:00Z`)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def callback_hash(key: str, bulk_payment_id: int, code: str) -> str:
    """[doc] lowercase hex SHA-256 of `{hashKey}###{BulkPaymentId}###{MerchantUniqueCode}`."""
    return hashlib.sha256(f"{key}###{bulk_payment_id}###{code}".encode()).hexdigest()


@dataclass(slots=True, eq=False)
class Payment:
    """One card payment (a sale); `state` is the operation that succeeded on it, if any."""

    code: str
    payment_id: int
    amount: Decimal
    holder: Bulk
    index: int  # position in the holder's payments
    fail: bool = False
    state: str = SALE
    own_ops: list[Operation] | None = None  # single-payment (private API) operations

    def sale_row(self) -> JSONObject:
        return {
            "MerchantUniqueCode": self.code,
            "PaymentId": self.payment_id,
            "Amount": float(self.amount),
            "Status": STATUS_SUCCESSFUL,
            "Scope": SALE,
        }

    def operations(self) -> list[Operation]:
        """Every operation that covered this payment, oldest first."""
        ops = self.holder.ops
        return sorted(ops + self.own_ops, key=lambda op: op.id) if self.own_ops else ops

    def rows(self) -> list[JSONObject]:
        """Its query rows: the sale, then one per operation, oldest first."""
        return [self.sale_row(), *(op.row(self) for op in self.operations())]


@dataclass(eq=False)
class Bulk:
    """A bulk of payments made on one day (or the holder of one payment seeded on its own)."""

    code: str
    day: date
    callback_url: str | None
    created_at: datetime
    payments: list[Payment] = field(default_factory=list)
    total: Decimal = Decimal("0.00")
    standalone: bool = False
    delivery: JSONObject = field(default_factory=dict)  # overrides of the delivery settings
    ops: list[Operation] = field(default_factory=list)  # operations on the bulk itself
    private_ops: list[Operation] = field(default_factory=list)  # on single payments of it
    private_indices: list[int] = field(default_factory=list)  # sorted, one per private op

    def done(self) -> str | None:
        """The kind of operation already accepted on the bulk, if any."""
        return self.ops[-1].kind if self.ops else None

    def total_rows(self) -> int:
        return len(self.payments) * (1 + len(self.ops)) + len(self.private_indices)

    def _first_row(self, index: int) -> int:
        return index * (1 + len(self.ops)) + bisect_left(self.private_indices, index)

    def rows(self, offset: int, limit: int) -> list[JSONObject]:
        """Query rows `offset`..`offset+limit`, ordered by PaymentId then operation."""
        if offset >= self.total_rows() or limit <= 0:
            return []
        low, high = 0, len(self.payments) - 1  # the last payment whose rows start <= offset
        while low < high:
            middle = (low + high + 1) // 2
            if self._first_row(middle) <= offset:
                low = middle
            else:
                high = middle - 1
        skip = offset - self._first_row(low)
        found: list[JSONObject] = []
        for payment in self.payments[low:]:
            found.extend(payment.rows()[skip:])
            skip = 0
            if len(found) >= limit:
                break
        return found[:limit]

    def summary_ops(self) -> list[Operation]:
        return self.ops + self.private_ops


@dataclass(eq=False)
class Operation:
    """An accepted cancel or refund; results were decided at acceptance, failures kept."""

    id: int
    kind: Kind
    code: str  # the MerchantUniqueCode it was asked for: the bulk's, or one payment's
    holder: Bulk
    payments: Sequence[Payment]
    failures: dict[int, tuple[int, str]]
    created_at: datetime
    private: bool
    page_size: int
    succeeded_amount: Decimal
    held: bool = False

    @property
    def total_pages(self) -> int:
        return max(1, math.ceil(len(self.payments) / self.page_size))

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def succeeded(self) -> int:
        return len(self.payments) - len(self.failures)

    def result(self, index: int) -> tuple[int, int, str | None]:
        """Status, ErrorCode and ErrorMessage for the payment at `index` of this operation."""
        failure = self.failures.get(index)
        if failure is None:
            return STATUS_SUCCESSFUL, 0, None
        return STATUS_FAILED, failure[0], failure[1]

    def row(self, payment: Payment) -> JSONObject:
        """The query row of this operation for `payment`."""
        status, _, _ = self.result(0 if self.private else payment.index)
        return {
            "MerchantUniqueCode": payment.code,
            "PaymentId": payment.payment_id,
            "Amount": float(payment.amount),
            "Status": status,
            "Scope": self.kind,
        }

    def callback_rows(self, page: int) -> list[JSONObject]:
        """The payments of callback page `page` (from 1), built on demand."""
        start = (page - 1) * self.page_size
        rows = []
        for offset, payment in enumerate(self.payments[start : start + self.page_size]):
            status, code, message = self.result(start + offset)
            rows.append({
                "MerchantUniqueCode": payment.code,
                "PaymentId": payment.payment_id,
                "Amount": float(payment.amount),
                "Status": status,
                "Scope": self.kind,
                "ErrorCode": code,
                "ErrorMessage": message,
            })  # fmt: skip
        return rows

    def to_json(self) -> JSONObject:
        """The operation as the control API shows it."""
        return {
            "bulk_payment_id": self.id,
            "kind": self.kind,
            "code": self.code,
            "private": self.private,
            "payments": len(self.payments),
            "succeeded": self.succeeded,
            "failed": self.failed,
            "succeeded_amount": str(self.succeeded_amount),
            "pages": self.total_pages,
            "held": self.held,
            "created_at": iso_utc(self.created_at),
        }


@dataclass
class Plan:
    """How one operation's callback pages are to be delivered."""

    store: PaywallStore
    op: Operation
    url: str | None
    pages: list[int]
    hash_key: str
    delay_ms: int
    retries: int
    backoff_ms: int

    def page_body(self, page: int, now: datetime) -> JSONObject:
        """The callback JSON for one page."""
        op = self.op
        return {
            "Type": CALLBACK_TYPES[(op.private, op.kind)],
            "BulkPaymentId": op.id,
            "MerchantUniqueCode": op.code,
            "ErrorMessage": None,
            "DateTime": wire_time(now),
            "FinishedAt": wire_time(op.created_at),
            "CreatedAt": wire_time(op.created_at),
            "DurationTime": "00:00:00",
            "Hash": callback_hash(self.hash_key, op.id, op.code),
            "IsCompressed": False,
            "PageNumber": page,
            "TotalPages": op.total_pages,
            "HasMorePages": page < op.total_pages,
            "Payments": op.callback_rows(page),
        }


def page_sequence(total: int, control: Mapping[str, Any], *, drop: bool) -> list[int]:
    """Pages 1..total in the delivery order, duplicates right after their first copy."""
    pages = list(range(1, total + 1))
    if control["order"] == "reverse":
        pages.reverse()
    elif control["order"] == "shuffle":
        random.Random(control["seed"]).shuffle(pages)
    dropped = set(control["drop_pages"]) if drop else set()
    twice = set(control["duplicate_pages"])
    return [
        copy for page in pages if page not in dropped for copy in [page] * (1 + (page in twice))
    ]


class PaywallStore:
    """Settings, bulks, payments, operations and deliveries of one emulated Paywall account."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.config: JSONObject = {
            name: list(value) if isinstance(value, list) else value
            for name, value in SETTINGS_DEFAULTS.items()
        }
        self.bulks: dict[str, Bulk] = {}  # real bulks only, by code
        self.payments: dict[str, Payment] = {}
        self.ops_by_code: dict[str, list[Operation]] = {}
        self.held: list[Plan] = []
        self.deliveries: list[JSONObject] = []
        self._next_payment_id = FIRST_PAYMENT_ID
        self._next_operation_id = FIRST_OPERATION_ID

    # --- settings --------------------------------------------------------------------------

    def settings(self) -> JSONObject:
        """Every setting; API keys and the hash key masked."""
        return {
            name: "***" if name in SECRETS else list(v) if isinstance(v, list) else v
            for name, v in self.config.items()
        }

    def update_settings(self, changes: Mapping[str, Any]) -> None:
        """Apply a partial change, all or nothing."""
        self.config.update(checked(changes, SETTING_CHECKS))

    def today(self) -> date:
        """The `today` setting, else the clock's date in the Paywall timezone."""
        if self.config["today"] is not None:
            return date.fromisoformat(self.config["today"])
        return self.clock().astimezone(ZoneInfo(self.config["timezone"])).date()

    def delivery_control(self, holder: Bulk) -> JSONObject:
        return {name: holder.delivery.get(name, self.config[name]) for name in DELIVERY_CHECKS}

    # --- seeding ---------------------------------------------------------------------------

    def taken(self, code: str) -> bool:
        return code in self.bulks or code in self.payments

    def add_payments(self, holder: Bulk, specs: Sequence[tuple[str, Decimal, bool]]) -> None:
        """Give `holder` its payments (code, amount, fail) with fresh PaymentIds."""
        first = self._next_payment_id
        holder.payments = [
            Payment(code, first + index, amount, holder, index, fail)
            for index, (code, amount, fail) in enumerate(specs)
        ]
        self._next_payment_id += len(specs)
        self.payments.update((p.code, p) for p in holder.payments)
        if not holder.standalone:
            self.bulks[holder.code] = holder

    def find_subject(self, code: str) -> Bulk | Payment | None:
        """A real bulk by its code, else a payment by its code."""
        return self.bulks.get(code) or self.payments.get(code)

    # --- operations ------------------------------------------------------------------------

    def refusal(self, kind: Kind, done: str | None, day: date) -> tuple[int, str] | None:
        """Why `kind` is refused on something in state `done` paid on `day`, or None."""
        if done == kind:
            code = HAS_CANCEL if kind == "cancel" else HAS_REFUND
            return code, f"already {DONE[kind]}"
        if done is not None and done != SALE:
            return ALREADY_FINALIZED, f"already {DONE[done]}: cannot {kind}"
        today = self.today()
        if kind == "cancel" and today != day:
            return NOT_NOW, "a cancel is only possible on the payment day; refund instead"
        if kind == "refund" and today <= day:
            return NOT_NOW, "a refund is only possible after the payment day; cancel instead"
        return None

    def accept(self, kind: Kind, subject: Bulk | Payment) -> tuple[Operation, Iterator[str]]:
        """Record an accepted operation, deciding each payment's result now.

        Returns the operation and the codes of the payments it actually changed.
        """
        private = isinstance(subject, Payment)
        holder = subject.holder if isinstance(subject, Payment) else subject
        payments: Sequence[Payment] = (
            [subject] if isinstance(subject, Payment) else subject.payments
        )
        failures: dict[int, tuple[int, str]] = {}
        changed: list[Payment] = []
        for index, payment in enumerate(payments):
            failure = self._payment_failure(kind, payment)
            if failure is None:
                payment.state = kind
                changed.append(payment)
            else:
                failures[index] = failure
        op = Operation(
            id=self._next_operation_id,
            kind=kind,
            code=subject.code,
            holder=holder,
            payments=payments,
            failures=failures,
            created_at=self.clock(),
            private=private,
            page_size=self.delivery_control(holder)["page_size"],
            succeeded_amount=sum((p.amount for p in changed), Decimal("0.00")),
        )
        self._next_operation_id += 1
        self.ops_by_code.setdefault(op.code, []).append(op)
        if isinstance(subject, Payment):
            subject.own_ops = [*(subject.own_ops or []), op]
            holder.private_ops.append(op)
            insort(holder.private_indices, subject.index)
        else:
            subject.ops.append(op)
        return op, (p.code for p in changed)

    @staticmethod
    def _payment_failure(kind: Kind, payment: Payment) -> tuple[int, str] | None:
        if payment.state == kind:
            return (HAS_CANCEL if kind == "cancel" else HAS_REFUND), f"already {DONE[kind]}"
        if payment.state != SALE:
            return ALREADY_FINALIZED, f"already {DONE[payment.state]}: cannot {kind}"
        if payment.fail:
            return NOT_CONVENIENT, f"the payment cannot be {DONE[kind]}"
        return None

    def plan(self, op: Operation, *, resend: bool = False) -> Plan | None:
        """The delivery plan of `op`'s callback; None (parked in `held`) when held.

        A resend (send/callback) ignores `drop_pages` and `hold`.
        """
        control = self.delivery_control(op.holder)
        key = str(self.config["hash_key"])
        plan = Plan(
            store=self,
            op=op,
            url=op.holder.callback_url or self.config["callback_url"],
            pages=page_sequence(op.total_pages, control, drop=not resend),
            hash_key=key + "-wrong" if control["bad_hash"] else key,
            delay_ms=control["delay_ms"],
            retries=self.config["retries"],
            backoff_ms=self.config["retry_backoff_ms"],
        )
        if control["hold"] and not resend:
            op.held = True
            self.held.append(plan)
            return None
        return plan

    def release(self, code: str) -> list[Plan]:
        """The held plans of operations on `code` (or on the payments of bulk `code`)."""
        released = [p for p in self.held if code in (p.op.code, p.op.holder.code)]
        self.held = [p for p in self.held if p not in released]
        for plan in released:
            plan.op.held = False
        return released

    def latest_op(self, code: str) -> Operation | None:
        ops = self.ops_by_code.get(code)
        return ops[-1] if ops else None

    def resend_refusal(self, op: Operation) -> tuple[int, str] | None:
        if self.clock() - op.created_at > RESEND_WINDOW:
            return NOT_NOW, "callbacks can only be sent again for the last 7 days"
        return None

    def log_delivery(self, op: Operation, page: int, attempt: int, status: int | str) -> None:
        self.deliveries.append({
            "code": op.code,
            "bulk_payment_id": op.id,
            "page": page,
            "attempt": attempt,
            "status": status,
            "at": iso_utc(self.clock()),
        })  # fmt: skip


def summary(subject: Bulk | Payment) -> JSONObject:
    """The query/summary Body: sale, cancel and refund totals."""
    totals: dict[str, JSONObject] = {
        "Sale": {"Count": 0, "Amount": Decimal("0.00")},
        "Cancel": {"Count": 0, "Amount": Decimal("0.00"), "FailedCount": 0},
        "Refund": {"Count": 0, "Amount": Decimal("0.00"), "FailedCount": 0},
    }
    if isinstance(subject, Bulk):
        totals["Sale"].update(Count=len(subject.payments), Amount=subject.total)
        for op in subject.summary_ops():
            bucket = totals[op.kind.capitalize()]
            bucket["Count"] += op.succeeded
            bucket["Amount"] += op.succeeded_amount
            bucket["FailedCount"] += op.failed
    else:
        for row in subject.rows():
            bucket = totals[str(row["Scope"]).capitalize()]
            if row["Status"] == STATUS_SUCCESSFUL:
                bucket["Count"] += 1
                bucket["Amount"] += subject.amount
            else:
                bucket["FailedCount"] += 1
    return {
        name: {k: float(v) if isinstance(v, Decimal) else v for k, v in bucket.items()}
        for name, bucket in totals.items()
    }
