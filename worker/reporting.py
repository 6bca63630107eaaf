"""The reconciliation report, as a table for people (rich) or JSON for scripts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from worker.domain.money import format_amount

STATE_STYLE = {
    "reconciled": "green",
    "cancelled": "green",
    "refunded": "green",
    "mismatch": "yellow",
    "failed": "red",
    "rejected": "red",
    "invalid": "magenta",
}


def _styled(state: str) -> str:
    style = STATE_STYLE.get(state)
    return f"[{style}]{state}[/{style}]" if style else state


def _target(leg: dict[str, Any]) -> str:
    target = leg["target"]
    text = next(iter(target.values()), "") if len(target) == 1 else " ".join(target.values())
    return text if len(text) <= 40 else text[:37] + "..."


def _figures(legs: list[dict[str, Any]]) -> tuple[str, str, str, str]:
    """Expected, cancelled (or refunded), settled and failed, summed over the legs' evidence."""
    evidence = [(leg.get("reconciliation") or {}).get("evidence") for leg in legs]
    found = [e for e in evidence if e]
    if not found:
        return ("", "", "", "")
    currencies = {e["currency"] for e in found}
    currency = currencies.pop() if len(currencies) == 1 else "mixed"

    def total(part: str, count: str, amount: str) -> str:
        n = sum(int(e[part][count]) for e in found)
        money = sum((Decimal(e[part][amount]) for e in found), Decimal(0))
        return f"{n} / {format_amount(money)}"

    undone_n = sum(e["reported"]["cancelled_count"] + e["reported"]["refunded_count"]
                   for e in found)
    undone = sum((Decimal(e["reported"]["cancelled_amount"])
                  + Decimal(e["reported"]["refunded_amount"]) for e in found), Decimal(0))
    return (
        f"{total('expected', 'count', 'amount')} {currency}",
        f"{undone_n} / {format_amount(undone)}",
        total("reported", "settled_count", "settled_amount"),
        str(sum(e["reported"]["failed_count"] for e in found)),
    )


# Jobs with more legs than this show one row per provider and state, with summed figures.
LEGS_SHOWN = 4


def _rows(job: dict[str, Any]) -> list[tuple[str, str, str, str, list[dict[str, Any]]]]:
    """(provider, target, state, attempts, legs) rows: one per leg, or grouped when many."""
    legs = job["legs"]
    if len(legs) <= LEGS_SHOWN:
        return [(leg["provider"], _target(leg),
                 _styled(leg["state"]) + (" (already)" if leg["already_cancelled"] else ""),
                 str(leg["attempts"]), [leg]) for leg in legs]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for leg in legs:
        groups.setdefault((leg["provider"], leg["state"]), []).append(leg)
    return [(provider, f"{len(group)} legs", _styled(state),
             str(sum(leg["attempts"] for leg in group)), group)
            for (provider, state), group in groups.items()]


def explain(job: dict[str, Any]) -> list[str]:
    """One line per thing a person should know about the job's outcome."""
    lines = [f"{e['field']}: {e['error']}" for e in job["errors"]]
    for leg in job["legs"]:
        where = f"{leg['provider']} {_target(leg)}"
        if leg["reason"]:
            lines.append(f"{where}: {leg['reason']} - {leg['detail']}")
        elif leg["already_cancelled"]:
            lines.append(f"{where}: already cancelled before we asked")
        elif leg["detail"] and len(job["legs"]) <= LEGS_SHOWN:
            lines.append(f"{where}: {leg['detail']}")
        if leg.get("at_risk"):
            lines.append(f"{where}: sent in the last minutes of the payment day (at risk)")
    for diff in job["reconciliation"]["differences"]:
        where = f"leg {diff['leg'][:8]}" if diff["leg"] else "job totals"
        lines.append(
            f"{where}: {diff['field']} expected {diff['expected']}, reported {diff['reported']}"
        )
    return lines


def render_report(jobs: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="cancelflow reconciliation", show_lines=True)
    for column in ("job", "state", "provider", "target", "leg state", "calls",
                   "expected (n / amount)", "cancelled (n / amount)", "settled", "failed"):
        table.add_column(column, overflow="fold")
    for job in jobs:
        label = f"{job['idempotency_key'] or '-'}\n{job['id'][:8]}"
        rows = _rows(job)
        if not rows:
            table.add_row(label, _styled(job["state"]), "", "", "", "", "", "", "", "")
        for index, (provider, target, state, calls, legs) in enumerate(rows):
            first = index == 0
            table.add_row(label if first else "", _styled(job["state"]) if first else "",
                          provider, target, state, calls, *_figures(legs))
    console.print(table)
    for job in jobs:
        notes = explain(job)
        if notes:
            console.print(f"[bold]{job['idempotency_key'] or job['id']}[/bold] "
                          f"({_styled(job['state'])}):")
            for note in notes:
                console.print(f"  - {note}", highlight=False)
