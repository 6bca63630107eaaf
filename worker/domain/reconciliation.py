"""Reconciliation arithmetic: what each leg was asked to cancel against what its provider reports.

Every leg is described in one shape, 6DOT50's batch summary extended with refunds and failures.
A job's reconciliation is a pure function of its legs' latest evidence, so recomputing it after
duplicate or reordered evidence gives the same answer.

"Undone" below means cancelled or refunded: both take the money back, and a Paywall leg past its
payment day is refunded instead of cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from worker.domain.money import format_amount
from worker.domain.states import LegState


class Source(StrEnum):
    SIXDOT50_SUMMARY = "sixdot50_summary"
    PAYWALL_CALLBACKS = "paywall_callbacks"
    PAYWALL_QUERY = "paywall_query"
    BAMBORA_PAYMENT = "bambora_payment"


class ReconciliationState(StrEnum):
    PENDING = "pending"
    MATCHED = "matched"
    MISMATCH = "mismatch"


@dataclass(frozen=True, slots=True)
class Figures:
    count: int
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Reported:
    cancelled_count: int = 0
    cancelled_amount: Decimal = Decimal("0")
    refunded_count: int = 0
    refunded_amount: Decimal = Decimal("0")
    failed_count: int = 0
    settled_count: int = 0
    settled_amount: Decimal = Decimal("0")

    @property
    def undone_count(self) -> int:
        return self.cancelled_count + self.refunded_count

    @property
    def undone_amount(self) -> Decimal:
        return self.cancelled_amount + self.refunded_amount


@dataclass(frozen=True, slots=True)
class LegEvidence:
    """One leg's figures, from one source."""

    source: Source
    currency: str
    expected: Figures
    reported: Reported

    @property
    def complete(self) -> bool:
        """Every payment is accounted for: cancelled, refunded, settled or failed.

        A 6DOT50 summary read while a payment was still settling accounts for fewer: its
        figures are not final yet, and are read again (for a bounded time).
        """
        r = self.reported
        accounted = r.undone_count + r.settled_count + r.failed_count
        return accounted >= self.expected.count

    def to_json(self) -> dict[str, Any]:
        r = self.reported
        return {
            "source": self.source.value,
            "currency": self.currency,
            "expected": {
                "count": self.expected.count,
                "amount": format_amount(self.expected.amount),
            },
            "reported": {
                "cancelled_count": r.cancelled_count,
                "cancelled_amount": format_amount(r.cancelled_amount),
                "refunded_count": r.refunded_count,
                "refunded_amount": format_amount(r.refunded_amount),
                "failed_count": r.failed_count,
                "settled_count": r.settled_count,
                "settled_amount": format_amount(r.settled_amount),
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LegEvidence:
        rep = data["reported"]
        return cls(
            source=Source(data["source"]),
            currency=data["currency"],
            expected=Figures(int(data["expected"]["count"]), Decimal(data["expected"]["amount"])),
            reported=Reported(
                cancelled_count=int(rep["cancelled_count"]),
                cancelled_amount=Decimal(rep["cancelled_amount"]),
                refunded_count=int(rep["refunded_count"]),
                refunded_amount=Decimal(rep["refunded_amount"]),
                failed_count=int(rep["failed_count"]),
                settled_count=int(rep["settled_count"]),
                settled_amount=Decimal(rep["settled_amount"]),
            ),
        )


@dataclass(frozen=True, slots=True)
class Difference:
    leg: str | None
    field: str
    expected: str
    reported: str

    def to_json(self) -> dict[str, str | None]:
        return {
            "leg": self.leg,
            "field": self.field,
            "expected": self.expected,
            "reported": self.reported,
        }


@dataclass(frozen=True, slots=True)
class LegView:
    """What reconciliation needs of a leg."""

    leg_id: str
    state: LegState
    evidence: LegEvidence | None
    # Final without figures: every read within the bounded wait failed or carried none.
    figures_missing: bool = False


@dataclass(frozen=True, slots=True)
class Expectation:
    count: int
    amount: Decimal
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class JobReconciliation:
    state: ReconciliationState
    differences: list[Difference] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "differences": [d.to_json() for d in self.differences],
        }


# The keys of a leg's ``reconciliation`` object, as the contract puts them: the evidence's own
# fields at the top, beside the leg's differences (never nested under another key).
LEG_RECONCILIATION_KEYS = frozenset({"source", "currency", "expected", "reported", "differences"})


def leg_reconciliation(leg_id: str, evidence: LegEvidence) -> dict[str, Any]:
    """A leg's ``reconciliation`` object in the contract's shape: its evidence and differences."""
    return {
        **evidence.to_json(),
        "differences": [d.to_json() for d in leg_differences(leg_id, evidence)],
    }


def missing_figures(leg_id: str) -> Difference:
    """The difference of a leg that ended its bounded wait with no figures at all."""
    return Difference(leg_id, "figures", "provider figures", "none")


def leg_reconciliation_without_figures(leg_id: str) -> dict[str, Any]:
    """A leg's ``reconciliation`` object when the provider gave no figures within the wait:
    the contract's keys, their figures null, and the difference that says so."""
    return {"source": None, "currency": None, "expected": None, "reported": None,
            "differences": [missing_figures(leg_id).to_json()]}


def leg_differences(leg_id: str, evidence: LegEvidence) -> list[Difference]:
    """A leg whose provider undid less (or more) than was asked, or failed some payments."""
    diffs: list[Difference] = []
    rep = evidence.reported
    if rep.undone_count != evidence.expected.count:
        diffs.append(
            Difference(
                leg_id, "cancelled_count", str(evidence.expected.count), str(rep.undone_count)
            )
        )
    if rep.undone_amount != evidence.expected.amount:
        diffs.append(
            Difference(
                leg_id,
                "cancelled_amount",
                format_amount(evidence.expected.amount),
                format_amount(rep.undone_amount),
            )
        )
    if rep.failed_count:
        diffs.append(Difference(leg_id, "failed_count", "0", str(rep.failed_count)))
    return diffs


def _needs_evidence(leg: LegView) -> bool:
    return leg.state in (LegState.CANCELLED, LegState.REFUNDED)


def reconcile(
    legs: list[LegView], *, expect: Expectation | None = None, mirror: bool = False
) -> JobReconciliation:
    """The job's reconciliation from its legs; pending until every undone leg has evidence."""
    if any(not leg.state.is_final for leg in legs) or any(
        _needs_evidence(leg) and leg.evidence is None and not leg.figures_missing
        for leg in legs
    ):
        return JobReconciliation(ReconciliationState.PENDING)
    undone = [leg for leg in legs if _needs_evidence(leg) and leg.evidence is not None]
    diffs: list[Difference] = [missing_figures(leg.leg_id) for leg in legs
                               if _needs_evidence(leg) and leg.figures_missing]
    for leg in undone:
        assert leg.evidence is not None
        diffs.extend(leg_differences(leg.leg_id, leg.evidence))
    if mirror:
        diffs.extend(_mirror_differences(legs))
    if expect is not None:
        diffs.extend(_expect_differences(undone, expect))
    state = ReconciliationState.MISMATCH if diffs else ReconciliationState.MATCHED
    return JobReconciliation(state, diffs)


def _mirror_differences(legs: list[LegView]) -> list[Difference]:
    """Mirrored legs move the same money: each must agree with the first leg."""
    if len(legs) < 2:
        return []
    first = legs[0]
    if first.evidence is None:
        return [Difference(first.leg_id, "cancelled_count", "mirrored", "not cancelled")]
    ref = first.evidence
    diffs: list[Difference] = []
    for leg in legs[1:]:
        if leg.evidence is None:
            diffs.append(
                Difference(leg.leg_id, "cancelled_count", str(ref.reported.undone_count), "0")
            )
            continue
        ev = leg.evidence
        if ev.currency != ref.currency:
            diffs.append(Difference(leg.leg_id, "currency", ref.currency, ev.currency))
        if ev.reported.undone_count != ref.reported.undone_count:
            diffs.append(
                Difference(
                    leg.leg_id,
                    "cancelled_count",
                    str(ref.reported.undone_count),
                    str(ev.reported.undone_count),
                )
            )
        if ev.reported.undone_amount != ref.reported.undone_amount:
            diffs.append(
                Difference(
                    leg.leg_id,
                    "cancelled_amount",
                    format_amount(ref.reported.undone_amount),
                    format_amount(ev.reported.undone_amount),
                )
            )
    return diffs


def _expect_differences(undone: list[LegView], expect: Expectation) -> list[Difference]:
    """The producer's totals against the sum of what was undone, per currency."""
    currencies = {leg.evidence.currency for leg in undone if leg.evidence is not None}
    diffs: list[Difference] = []
    if expect.currency is not None and currencies - {expect.currency}:
        diffs.append(
            Difference(None, "currency", expect.currency, ",".join(sorted(currencies)))
        )
    elif len(currencies) > 1:
        # Adding ZAR to EUR means nothing: say so rather than compare a meaningless sum.
        diffs.append(Difference(None, "currency", "one currency", ",".join(sorted(currencies))))
    count = sum(leg.evidence.reported.undone_count for leg in undone if leg.evidence)
    amount = sum(
        (leg.evidence.reported.undone_amount for leg in undone if leg.evidence), Decimal("0")
    )
    if count != expect.count:
        diffs.append(Difference(None, "cancelled_count", str(expect.count), str(count)))
    if amount != expect.amount:
        diffs.append(
            Difference(
                None, "cancelled_amount", format_amount(expect.amount), format_amount(amount)
            )
        )
    return diffs
