"""What the dashboard's templates show, built from the read side's bounded answers.

A job page never holds all of a big job's legs: it gets a page of legs, the legs a person should
read about (capped), counts by state, and the few legs that differences and the timeline name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from worker.domain.states import LegState
from worker.reporting import explain
from worker.services.views.read_side import AttemptRecord, LegRecord


def utc(value: str | datetime | None, millis: bool = False) -> str:
    """A UTC time in ISO 8601, to the second (or millisecond): ``2026-11-21T09:00:00Z``."""
    if value is None:
        return ""
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    text = when.astimezone(UTC).isoformat(timespec="milliseconds" if millis else "seconds")
    return text.replace("+00:00", "Z")


def label(position: int, provider: str) -> str:
    """How a page names a leg: its number in the request, from 1, and its provider."""
    return f"leg {position + 1} ({provider})"


def labels_of(legs: Iterable[LegRecord]) -> dict[str, str]:
    return {leg.id: label(leg.position, leg.provider.value) for leg in legs}


def counted_states(leg_counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """The states some leg is in, in the states' order, with their counts."""
    return [(s.value, leg_counts[s.value]) for s in LegState if leg_counts.get(s.value)]


@dataclass(frozen=True, slots=True)
class Notes:
    """What a person should know, capped: the lines shown and how many more there are."""

    shown: list[str]
    more: int


def notes_of(job: dict[str, Any], shown: int, unlisted: int = 0) -> Notes:
    """``explain``'s lines for the job's listed legs, the differences left out (they have their
    own table); ``unlisted`` counts the legs worth a note that were not listed."""
    lines = explain({**job, "reconciliation": {**job["reconciliation"], "differences": []}})
    return Notes(lines[:shown], max(0, len(lines) - shown) + unlisted)


def job_view(job: dict[str, Any], notes: Notes, labels: Mapping[str, str]) -> dict[str, Any]:
    """A job with its legs counted by state and its differences labelled."""
    return {
        "job": job,
        "leg_total": sum(job["leg_counts"].values()),
        "leg_counts": counted_states(job["leg_counts"]),
        "differences": [{**d, "where": _where(d["leg"], labels)}
                        for d in job["reconciliation"]["differences"]],
        "notes": notes.shown,
        "more_notes": notes.more,
    }


def _where(leg_id: str | None, labels: Mapping[str, str]) -> str:
    if leg_id is None:
        return "job totals"
    return labels.get(leg_id, f"leg {leg_id[:8]}")


def leg_row(number: int, leg: dict[str, Any]) -> dict[str, Any]:
    """A row of the legs table: the leg and its figures (its reconciliation's top-level keys)."""
    recon = leg["reconciliation"] or {}
    return {"number": number, "leg": leg, "evidence": recon if recon.get("reported") else None,
            "differences": recon.get("differences", [])}


def _page_counts(totals: dict[str, Any]) -> str:
    return "; ".join(
        f"{scope}: {t['count']} {'payment' if t['count'] == 1 else 'payments'} ({t['amount']}), "
        f"{t['ok_count']} ok ({t['ok_amount']}), {t['failed_count']} failed, "
        f"{t['pending_count']} pending"
        for scope, t in sorted(totals.items()))


def timeline(calls: list[AttemptRecord], pages: list[dict[str, Any]],
             call_labels: Mapping[str, str], paywall: list[LegRecord]) -> list[dict[str, Any]]:
    """The job's provider calls and callback pages, one list in time order; ``paywall`` holds
    the job's Paywall legs that the pages name."""
    by_reference = {leg.provider_reference: label(leg.position, leg.provider.value)
                    for leg in paywall if leg.provider_reference}
    by_code = {leg.match_key: label(leg.position, leg.provider.value) for leg in paywall}
    rows = [{"at": call.started_at, "leg": call_labels.get(call.leg_id, call.leg_id),
             "kind": "call", "what": call.operation, "finished": call.finished_at,
             "http": call.http_status, "outcome": call.outcome or "no answer recorded",
             "code": call.provider_code, "latency": call.latency_ms} for call in calls]
    rows += [{"at": page["received_at"], "kind": "callback page",
              "leg": by_reference.get(page["bulk_payment_id"])
              or by_code.get(page["merchant_unique_code"], ""),
              "what": f"page {page['page_number']} of {page['total_pages']}, "
                      f"operation {page['bulk_payment_id']}",
              "finished": None, "http": None, "code": None, "latency": None,
              "outcome": _page_counts(page["totals"] or {})} for page in pages]
    return sorted(rows, key=lambda row: row["at"])
