"""Audit export and prune (issue 17): every provider call of a job as JSON, CSV or NDJSON,
streamed a page at a time; and pruning what final jobs no longer need.

The export never holds more than a page of calls: each page is read in its own short
transaction, so a streamed answer holds no connection between pages. It never includes the
calls' response bodies (they may hold provider data).

A pruned job keeps its legs' ``attempts`` counters; its export is empty, with a note saying so.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from worker.domain.states import JobState
from worker.services.records import AttemptLine, AuditedJob, Pruned
from worker.services.views.models import AttemptCall

EXPORT_PAGE = 1000  # calls read per query
PRUNE_BATCH = 500  # jobs pruned per transaction

FIELDS = tuple(AttemptCall.model_fields)  # the CSV's columns

PRUNED_NOTE = ("this job's provider calls were pruned (cancelflow prune); its legs' attempts "
               "counters remain")


class AuditLedger(Protocol):
    """What the audit use cases read and prune (``worker.ledger.audit.SqlAuditLedger``)."""

    def job(self, job_id: str) -> AuditedJob | None: ...

    def attempts_page(self, job_id: str, after: tuple[datetime, int] | None,
                      limit: int) -> list[AttemptLine]: ...

    def prune_batch(self, older_than: datetime, after_id: str | None, limit: int, *,
                    dry_run: bool) -> tuple[list[str], Pruned]: ...


class ExportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    NDJSON = "ndjson"

    @property
    def media_type(self) -> str:
        return {"json": "application/json", "csv": "text/csv",
                "ndjson": "application/x-ndjson"}[self.value]


def call_view(line: AttemptLine) -> AttemptCall:
    """One call as the export shows it."""
    return AttemptCall(attempt_id=line.id, leg_id=line.leg_id, provider=line.provider,
                       operation=line.operation, started_at=line.started_at,
                       finished_at=line.finished_at, http_status=line.http_status,
                       outcome=line.outcome, provider_code=line.provider_code,
                       request_id=line.request_id, duration_ms=line.latency_ms)


@dataclass
class AttemptExport:
    """A job's calls, ready to stream: ``note`` says why there are none when they were pruned."""

    ledger: AuditLedger
    job_id: str
    first_page: list[AttemptLine]
    note: str | None
    page_size: int = EXPORT_PAGE

    def calls(self) -> Iterator[AttemptCall]:
        """Every call, in (started_at, id) order, one page in memory at a time."""
        page = self.first_page
        while page:
            yield from (call_view(line) for line in page)
            if len(page) < self.page_size:
                return
            last = page[-1]
            page = self.ledger.attempts_page(self.job_id, (last.started_at, last.id),
                                             self.page_size)

    def chunks(self, form: ExportFormat) -> Iterator[str]:
        """The export as text, in chunks of at most a page; the JSON form is an
        ``AttemptExport`` streamed."""
        if form is ExportFormat.CSV:
            yield _csv_rows([list(FIELDS)])
            for page in _batched(self.calls(), self.page_size):
                yield _csv_rows([["" if value is None else value
                                  for value in call.model_dump(mode="json").values()]
                                 for call in page])
        elif form is ExportFormat.NDJSON:
            for page in _batched(self.calls(), self.page_size):
                yield "".join(call.model_dump_json() + "\n" for call in page)
        else:
            yield f'{{"job_id":{json.dumps(self.job_id)},"attempts":['
            first = True
            for page in _batched(self.calls(), self.page_size):
                yield ("" if first else ",") + ",".join(call.model_dump_json() for call in page)
                first = False
            yield f'],"note":{json.dumps(self.note)}}}\n'


def _csv_rows(rows: list[list[Any]]) -> str:
    """RFC 4180: comma-separated, quoted where needed, CRLF line ends."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


def _batched(calls: Iterator[AttemptCall], size: int) -> Iterator[list[AttemptCall]]:
    batch: list[AttemptCall] = []
    for call in calls:
        batch.append(call)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def open_export(ledger: AuditLedger, job_id: str,
                page_size: int = EXPORT_PAGE) -> AttemptExport | None:
    """The job's export (its first page read), or None when there is no such job."""
    job = ledger.job(job_id)
    if job is None:
        return None
    first = ledger.attempts_page(job_id, None, page_size)
    pruned = not first and job.calls_counted > 0 and JobState(job.state).is_final
    return AttemptExport(ledger, job_id, first, PRUNED_NOTE if pruned else None, page_size)


def prune(ledger: AuditLedger, *, older_than_days: int, now: datetime, dry_run: bool = False,
          batch: int = PRUNE_BATCH) -> Pruned:
    """Prune the final jobs last updated more than ``older_than_days`` days before ``now``,
    ``batch`` jobs per transaction; with ``dry_run`` count what would go and change nothing."""
    if older_than_days < 1:
        raise ValueError("--older-than must be at least 1 day")
    cutoff = now - timedelta(days=older_than_days)
    total = Pruned()
    after: str | None = None
    while True:
        ids, done = ledger.prune_batch(cutoff, after, batch, dry_run=dry_run)
        if not ids:
            return total
        total += done
        after = ids[-1]
