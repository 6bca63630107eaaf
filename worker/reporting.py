"""The reconciliation report, as a table for people (rich) or JSON for scripts.

A job's legs are read once, as an iterable (``legs_of``): the CLI hands over every leg of a big
job a page at a time, and the report keeps only sums per provider and state and a capped list of
notes, so its memory does not grow with the job.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
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
# Jobs with more legs than this show one row per provider and state, with summed figures.
LEGS_SHOWN = 4
# Notes printed per job; the rest are counted.
NOTES_SHOWN = 50


def _styled(state: str) -> str:
    style = STATE_STYLE.get(state)
    return f"[{style}]{state}[/{style}]" if style else state


def _target(leg: dict[str, Any]) -> str:
    target = leg["target"]
    text = next(iter(target.values()), "") if len(target) == 1 else " ".join(target.values())
    return text if len(text) <= 40 else text[:37] + "..."


def leg_total(job: dict[str, Any]) -> int:
    """How many legs the job has (its counts by state cover every leg, listed or not)."""
    return sum(job["leg_counts"].values())


@dataclass
class Figures:
    """Expected, undone (cancelled or refunded), settled and failed, summed over legs' evidence
    (each leg's ``reconciliation`` holds them at its top level)."""

    found: int = 0
    currencies: set[str] = field(default_factory=set)
    expected: tuple[int, Decimal] = (0, Decimal(0))
    undone: tuple[int, Decimal] = (0, Decimal(0))
    settled: tuple[int, Decimal] = (0, Decimal(0))
    failed: int = 0

    def add(self, leg: dict[str, Any]) -> None:
        recon = leg.get("reconciliation")
        if not recon or recon.get("reported") is None:
            return
        exp, rep = recon["expected"], recon["reported"]
        self.found += 1
        self.currencies.add(recon["currency"])
        self.expected = _plus(self.expected, exp["count"], exp["amount"])
        self.undone = _plus(_plus(self.undone, rep["cancelled_count"], rep["cancelled_amount"]),
                            rep["refunded_count"], rep["refunded_amount"])
        self.settled = _plus(self.settled, rep["settled_count"], rep["settled_amount"])
        self.failed += int(rep["failed_count"])

    def columns(self) -> tuple[str, str, str, str]:
        if not self.found:
            return ("", "", "", "")
        currency = next(iter(self.currencies)) if len(self.currencies) == 1 else "mixed"
        return (f"{_text(self.expected)} {currency}", _text(self.undone), _text(self.settled),
                str(self.failed))


def _plus(total: tuple[int, Decimal], count: object, amount: object) -> tuple[int, Decimal]:
    return total[0] + int(str(count)), total[1] + Decimal(str(amount))


def _text(figures: tuple[int, Decimal]) -> str:
    return f"{figures[0]} / {format_amount(figures[1])}"


@dataclass
class Row:
    """A table row: one leg, or (for a big job) every leg of one provider in one state."""

    provider: str
    target: str
    state: str
    calls: int = 0
    legs: int = 0
    figures: Figures = field(default_factory=Figures)

    def add(self, leg: dict[str, Any]) -> None:
        self.legs += 1
        self.calls += int(leg["attempts"])
        self.figures.add(leg)


def _leg_notes(leg: dict[str, Any], small: bool) -> list[str]:
    where = f"{leg['provider']} {_target(leg)}"
    lines = []
    if leg["reason"]:
        lines.append(f"{where}: {leg['reason']} - {leg['detail']}")
    elif leg["already_cancelled"]:
        lines.append(f"{where}: already cancelled before we asked")
    elif leg["detail"] and small:
        lines.append(f"{where}: {leg['detail']}")
    if leg.get("at_risk"):
        lines.append(f"{where}: sent in the last minutes of the payment day (at risk)")
    return lines


def _difference_notes(job: dict[str, Any]) -> list[str]:
    lines = []
    for diff in job["reconciliation"]["differences"]:
        where = f"leg {diff['leg'][:8]}" if diff["leg"] else "job totals"
        lines.append(
            f"{where}: {diff['field']} expected {diff['expected']}, reported {diff['reported']}"
        )
    return lines


def explain(job: dict[str, Any]) -> list[str]:
    """One line per thing a person should know about the job's outcome (its listed legs)."""
    small = leg_total(job) <= LEGS_SHOWN
    lines = [f"{e['field']}: {e['error']}" for e in job["errors"]]
    for leg in job["legs"]:
        lines += _leg_notes(leg, small)
    return lines + _difference_notes(job)


@dataclass
class JobReport:
    """A job's rows and notes, from one pass over its legs."""

    job: dict[str, Any]
    rows: list[Row]
    notes: list[str]
    more_notes: int


def summarize(job: dict[str, Any], legs: Iterable[dict[str, Any]]) -> JobReport:
    """Read ``legs`` (every leg of the job) once, keeping sums and at most NOTES_SHOWN notes."""
    small = leg_total(job) <= LEGS_SHOWN
    rows: dict[Any, Row] = {}
    notes = [f"{e['field']}: {e['error']}" for e in job["errors"]]
    more = 0
    for leg in legs:
        key = leg["id"] if small else (leg["provider"], leg["state"])
        if key not in rows:
            state = _styled(leg["state"]) + (" (already)" if small and leg["already_cancelled"]
                                             else "")
            rows[key] = Row(leg["provider"], _target(leg) if small else "", state)
        rows[key].add(leg)
        for line in _leg_notes(leg, small):
            if len(notes) < NOTES_SHOWN:
                notes.append(line)
            else:
                more += 1
    if not small:
        for row in rows.values():
            row.target = f"{row.legs} legs"
    return JobReport(job, list(rows.values()), notes + _difference_notes(job), more)


def render_report(jobs: list[dict[str, Any]], console: Console,
                  legs_of: Callable[[dict[str, Any]], Iterable[dict[str, Any]]] | None = None,
                  ) -> None:
    """The table of the jobs, then what to know about each; ``legs_of`` gives every leg of a
    job (by default the legs the job lists)."""
    reports = [summarize(job, legs_of(job) if legs_of else job["legs"]) for job in jobs]
    table = Table(title="cancelflow reconciliation", show_lines=True)
    for column in ("job", "state", "provider", "target", "leg state", "calls",
                   "expected (n / amount)", "cancelled (n / amount)", "settled", "failed"):
        table.add_column(column, overflow="fold")
    for report in reports:
        job = report.job
        label = f"{job['idempotency_key'] or '-'}\n{job['id'][:8]}"
        if not report.rows:
            table.add_row(label, _styled(job["state"]), "", "", "", "", "", "", "", "")
        for index, row in enumerate(report.rows):
            first = index == 0
            table.add_row(label if first else "", _styled(job["state"]) if first else "",
                          row.provider, row.target, row.state, str(row.calls),
                          *row.figures.columns())
    console.print(table)
    for report in reports:
        job = report.job
        if report.notes:
            console.print(f"[bold]{job['idempotency_key'] or job['id']}[/bold] "
                          f"({_styled(job['state'])}):")
            for note in report.notes:
                console.print(f"  - {note}", highlight=False)
            if report.more_notes:
                console.print(f"  - and {report.more_notes} more notes on legs (GET "
                              f"/api/v1/jobs/{job['id']}/legs pages through every leg)",
                              highlight=False)
