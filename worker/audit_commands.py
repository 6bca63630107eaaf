"""``cancelflow export`` and ``cancelflow prune`` (issue 17): the audit export of a job's
provider calls, and pruning what final jobs no longer need; ``worker.cli`` adds them. Straight
on the ledger, like ``status`` and ``report``; errors are one line and a non-zero exit."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer

# worker.cli (its helpers) is imported inside the commands: it imports this module.


def export(
    job_id: str,
    form: Annotated[str, typer.Option("--format", help="csv | json | ndjson")] = "json",
    output: Annotated[Path | None, typer.Option(help="a file instead of stdout")] = None,
) -> None:
    """Every provider call of a job (never their response bodies)."""
    from worker.cli import _engine, err, fail
    from worker.ledger.audit import SqlAuditLedger
    from worker.services.audit import ExportFormat, open_export

    try:
        chosen = ExportFormat(form)
    except ValueError as exc:
        raise fail(f"--format must be csv, json or ndjson, not {form!r}") from exc
    engine = _engine()
    try:
        export = open_export(SqlAuditLedger(engine), job_id)
        if export is None:
            raise fail(f"no job {job_id}")
        try:
            with (output.open("w", newline="") if output else nullcontext(sys.stdout)) as sink:
                sink.writelines(export.chunks(chosen))
        except OSError as exc:
            raise fail(f"cannot write {output}: {exc.strerror}") from exc
        if export.note:
            err.print(f"note: {export.note}", highlight=False, soft_wrap=True)
    finally:
        engine.dispose()


def prune(
    older_than: Annotated[int, typer.Option("--older-than", help="days since the job ended")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count, change nothing")] = False,
) -> None:
    """Delete final jobs' attempt rows and empty their callback page bodies (totals stay)."""
    from datetime import UTC, datetime

    from worker.cli import _engine, fail, out
    from worker.ledger.audit import SqlAuditLedger
    from worker.services.audit import prune as prune_ledger

    if older_than < 1:
        raise fail("--older-than must be at least 1 (days)")
    engine = _engine()
    try:
        done = prune_ledger(SqlAuditLedger(engine), older_than_days=older_than,
                            now=datetime.now(UTC), dry_run=dry_run)
    finally:
        engine.dispose()
    verb = "would remove" if dry_run else "removed"
    out.print(f"{done.jobs} final jobs older than {older_than} days: {verb} {done.attempts} "
              f"attempt rows and {done.page_bodies} callback page bodies", highlight=False)
