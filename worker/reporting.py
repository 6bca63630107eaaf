"""The reconciliation report, as a table for people (rich) or JSON for scripts."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

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


def _figures(leg: dict[str, Any]) -> tuple[str, str, str, str]:
    evidence = (leg.get("reconciliation") or {}).get("evidence")
    if not evidence:
        return ("", "", "", "")
    exp, rep = evidence["expected"], evidence["reported"]
    return (
        f"{exp['count']} / {exp['amount']}",
        f"{rep['cancelled_count'] + rep['refunded_count']} / {rep['cancelled_amount']}",
        f"{rep['settled_count']} / {rep['settled_amount']}",
        str(rep["failed_count"]),
    )


def explain(job: dict[str, Any]) -> list[str]:
    """One line per thing a person should know about the job's outcome."""
    lines = [f"{e['field']}: {e['error']}" for e in job["errors"]]
    for leg in job["legs"]:
        if leg["reason"]:
            lines.append(f"{leg['provider']} {_target(leg)}: {leg['reason']} - {leg['detail']}")
        elif leg["already_cancelled"]:
            lines.append(f"{leg['provider']} {_target(leg)}: already cancelled before we asked")
    for diff in job["reconciliation"]["differences"]:
        where = f"leg {diff['leg'][:8]}" if diff["leg"] else "job totals"
        lines.append(
            f"{where}: {diff['field']} expected {diff['expected']}, reported {diff['reported']}"
        )
    return lines


def render_report(jobs: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="cancelflow reconciliation", show_lines=True)
    for column in ("job", "state", "provider", "target", "leg state", "attempts",
                   "expected (n / amount)", "cancelled (n / amount)", "settled", "failed"):
        table.add_column(column, overflow="fold")
    for job in jobs:
        label = f"{job['idempotency_key'] or '-'}\n{job['id'][:8]}"
        legs = job["legs"] or [None]
        for index, leg in enumerate(legs):
            first = index == 0
            if leg is None:
                table.add_row(label, _styled(job["state"]), "", "", "", "", "", "", "", "")
                continue
            table.add_row(
                label if first else "",
                _styled(job["state"]) if first else "",
                leg["provider"],
                _target(leg),
                _styled(leg["state"]) + (" (already)" if leg["already_cancelled"] else ""),
                str(leg["attempts"]),
                *_figures(leg),
            )
    console.print(table)
    for job in jobs:
        notes = explain(job)
        if notes:
            console.print(f"[bold]{job['idempotency_key'] or job['id']}[/bold] "
                          f"({_styled(job['state'])}):")
            for note in notes:
                console.print(f"  - {note}")
