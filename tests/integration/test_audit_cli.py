"""``cancelflow export`` and ``cancelflow prune`` (issue 17) on a seeded ledger, SQLite and
PostgreSQL: formats and errors of the export; what prune removes, keeps and never touches."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from tests.support import cancelflow, metric_value, one_error_line, scrape, seed_called_job
from webhooks import create_app
from worker.domain.states import JobState
from worker.ledger.audit import SqlAuditLedger
from worker.ledger.tables import attempts, callback_pages, legs
from worker.services.audit import FIELDS, PRUNED_NOTE, prune
from worker.settings import Settings

OLD = datetime.now(UTC).replace(microsecond=0) - timedelta(days=40)
RECENT = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)


def _calls_of(engine: Engine, job_id: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(attempts).join(legs)
                                .where(legs.c.job_id == job_id)).scalar_one())


def _page_body(engine: Engine, code: str) -> bytes:
    with engine.connect() as conn:
        return bytes(conn.execute(select(callback_pages.c.body_zlib).where(
            callback_pages.c.merchant_unique_code == code)).scalar_one())


def test_export_prints_csv_and_ndjson_and_writes_a_file(engine: Engine, ledger_url: str,
                                                        tmp_path: Path) -> None:
    """`export ID --format csv|ndjson` prints the calls; `--output FILE` writes them there."""
    job = seed_called_job(engine, "cli", legs=2, calls=2, at=RECENT, state=JobState.RECONCILED)
    as_csv = cancelflow(ledger_url, "export", job, "--format", "csv")
    assert as_csv.exit_code == 0, as_csv.stderr
    rows = list(csv.reader(io.StringIO(as_csv.stdout, newline="")))
    assert rows[0] == list(FIELDS) and len(rows) == 5
    as_ndjson = cancelflow(ledger_url, "export", job, "--format", "ndjson")
    assert [json.loads(line)["leg_id"] for line in as_ndjson.stdout.splitlines()] == [
        row[FIELDS.index("leg_id")] for row in rows[1:]]
    target = tmp_path / "calls.json"
    written = cancelflow(ledger_url, "export", job, "--output", str(target))
    assert written.exit_code == 0 and written.stdout == ""
    assert len(json.loads(target.read_text())["attempts"]) == 4


@pytest.mark.parametrize(("args", "message"), [
    (["export", "no-such-job"], "error: no job no-such-job"),
    (["export", "x", "--format", "xml"], "error: --format must be csv, json or ndjson, not 'xml'"),
    (["prune", "--older-than", "0"], "error: --older-than must be at least 1 (days)"),
    (["prune", "--older-than", "-3"], "error: --older-than must be at least 1 (days)"),
])
def test_bad_export_and_prune_arguments_areone_error_line(
        ledger_url: str, args: list[str], message: str) -> None:
    """An unknown job, format or a DAYS under 1: one line on stderr and a non-zero exit."""
    assert one_error_line(cancelflow(ledger_url, *args)) == message


def test_prune_removes_only_old_final_jobs_calls_and_page_bodies(engine: Engine,
                                                                 ledger_url: str) -> None:
    """Old final jobs lose their calls and page bodies (totals and counters stay); recent or
    unfinished jobs keep everything; a second run removes nothing."""
    old = seed_called_job(engine, "old", legs=2, calls=3, at=OLD, state=JobState.MISMATCH)
    old_paywall = seed_called_job(engine, "oldpw", legs=1, calls=1, at=OLD,
                                  state=JobState.RECONCILED, paywall=True)
    recent = seed_called_job(engine, "recent", legs=1, calls=2, at=RECENT,
                             state=JobState.RECONCILED)
    running = seed_called_job(engine, "running", legs=1, calls=2, at=OLD,
                              state=JobState.AWAITING_CALLBACKS, paywall=True)

    dry = cancelflow(ledger_url, "prune", "--older-than", "30", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert "would remove 7 attempt rows and 1 callback page bodies" in dry.stdout
    assert _calls_of(engine, old) == 6

    done = cancelflow(ledger_url, "prune", "--older-than", "30")
    assert done.exit_code == 0, done.stderr
    assert done.stdout.strip() == ("2 final jobs older than 30 days: removed 7 attempt rows "
                                   "and 1 callback page bodies")
    assert (_calls_of(engine, old), _calls_of(engine, old_paywall)) == (0, 0)
    assert (_calls_of(engine, recent), _calls_of(engine, running)) == (2, 2)
    assert _page_body(engine, "code-oldpw") == b""
    assert _page_body(engine, "code-running") != b""
    with engine.connect() as conn:
        counters = conn.execute(select(legs.c.attempts).where(legs.c.job_id == old)).scalars()
        assert list(counters) == [3, 3]
        totals = conn.execute(select(callback_pages.c.totals).where(
            callback_pages.c.merchant_unique_code == "code-oldpw")).scalar_one()
        assert totals == {"count": 1}

    again = cancelflow(ledger_url, "prune", "--older-than", "30")
    assert "removed 0 attempt rows and 0 callback page bodies" in again.stdout
    exported = cancelflow(ledger_url, "export", old)
    assert json.loads(exported.stdout)["attempts"] == []
    assert PRUNED_NOTE in exported.stderr


def test_prune_keeps_the_call_latency_histogram(engine: Engine, ledger_url: str) -> None:
    """/metrics counts a pruned job's calls still: its counters never go down."""
    seed_called_job(engine, "counted", legs=2, calls=2, at=OLD, state=JobState.RECONCILED)
    app = create_app(Settings(database_url=ledger_url))  # type: ignore[arg-type]

    def calls() -> tuple[float, float, float]:
        samples = scrape(app.test_client().get("/metrics").get_data(as_text=True))
        name = "cancelflow_provider_call_duration_seconds"
        labels = {"provider": "bambora", "operation": "cancel"}
        return (metric_value(samples, f"{name}_count", **labels),
                metric_value(samples, f"{name}_sum", **labels),
                metric_value(samples, f"{name}_bucket", le="0.025", **labels))

    before = calls()
    assert cancelflow(ledger_url, "prune", "--older-than", "30").exit_code == 0
    assert before[0] == 4 and calls() == before
    app.extensions["cancelflow"]["engine"].dispose()


def test_prune_goes_through_every_batch(engine: Engine) -> None:
    """With one job per transaction, every old final job is still pruned, each once."""
    old = [seed_called_job(engine, f"batch-{n}", legs=1, calls=2, at=OLD,
                           state=JobState.FAILED) for n in range(3)]
    done = prune(SqlAuditLedger(engine), older_than_days=30, now=datetime.now(UTC), batch=1)
    assert (done.jobs, done.attempts, done.page_bodies) == (3, 6, 0)
    assert [_calls_of(engine, job) for job in old] == [0, 0, 0]
