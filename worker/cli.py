"""``cancelflow``: submit, status, report, retry, resolve, abandon, export, prune, up, demo,
sandbox, migrate.

Errors are one clear line on stderr and a non-zero exit; ``--json`` is for scripts.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)
# Off a terminal (CI logs, pipes) rich would wrap the report at 80 columns.
out = Console(width=None if sys.stdout.isatty() else 180)
err = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    # soft_wrap: off a terminal rich would break a long message (a path) over several lines.
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _settings() -> Any:
    """The settings (invalid ones stop here, with one line); warnings go to stderr as logs."""
    from worker.logconfig import configure_logging, host_configured_logging
    from worker.settings import load_settings

    settings = load_settings()
    if not host_configured_logging():
        configure_logging(settings, "WARNING")
    return settings


def _engine() -> Any:
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    from worker.ledger import create_ledger_engine, upgrade_ledger

    try:
        engine = create_ledger_engine(_settings().database_url)
        upgrade_ledger(engine)
    except (SQLAlchemyError, OSError) as exc:
        # The driver's own words, first line only (psycopg adds hints on further lines).
        reason = str(exc.orig if isinstance(exc, DBAPIError) else exc).strip().splitlines()
        raise fail(f"cannot open the ledger: {reason[0] if reason else type(exc).__name__}"
                   ) from exc
    return engine


@app.command()
def submit(file: Annotated[Path, typer.Argument(help="the request, as JSON")]) -> None:
    """Publish a cancellation request from FILE.json; prints the job id."""
    from pydantic import ValidationError

    _settings()
    from worker.celery_app import app as celery_app
    from worker.domain.request import CancellationRequest, describe_errors
    from worker.producer import publish

    try:
        request = json.loads(file.read_text())
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise fail(f"{file} is not JSON: {exc.msg} at line {exc.lineno}") from exc
    try:
        CancellationRequest.model_validate(request)
    except ValidationError as exc:
        first = describe_errors(exc)[0]
        raise fail(f"{file}: {first['field']}: {first['error']}") from exc
    try:
        job_id = publish(celery_app, request)
    except Exception as exc:  # kombu raises many classes; the operator needs one line
        raise fail(f"cannot publish to the broker: {exc}") from exc
    out.print(job_id)


def _every_leg(reads: Any) -> Any:
    """Every leg of a job: those it lists, then the rest a page at a time (never all at once)."""
    from itertools import chain

    from worker.services.views import iter_legs

    def legs_of(job: dict[str, Any]) -> Any:
        rest = job["legs_next_cursor"]
        if rest is None:
            return job["legs"]
        return chain(job["legs"], (leg.model_dump(mode="json")
                                   for leg in iter_legs(reads, job["id"], start=rest)))

    return legs_of


@app.command()
def status(
    job_id: str,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
) -> None:
    """Show one job with its legs and reconciliation."""
    from worker.ledger.views import LedgerReads
    from worker.reporting import leg_total, render_report
    from worker.services.views import get_job

    engine = _engine()
    reads = LedgerReads(engine)
    try:
        found = get_job(reads, job_id)
        if found is None:
            raise fail(f"no job {job_id}")
        job = found.model_dump(mode="json")  # the API's answer
        if as_json:
            out.print_json(data=job)
            if job["legs_next_cursor"] is not None:
                # On stderr, so that stdout stays the API's JSON.
                err.print(f"showing the first {len(job['legs'])} of {leg_total(job)} legs; "
                          f"GET /api/v1/jobs/{job_id}/legs?cursor={job['legs_next_cursor']} "
                          "pages the rest", highlight=False, soft_wrap=True)
        else:
            render_report([job], out, _every_leg(reads))
    finally:
        engine.dispose()


@app.command()
def report(
    state: Annotated[str | None, typer.Option(help="only jobs in this state")] = None,
    provider: Annotated[str | None, typer.Option(help="only jobs with a leg there")] = None,
    target: Annotated[str | None, typer.Option(
        help="batch id, merchant unique code or payment reference")] = None,
    idempotency_key: Annotated[str | None, typer.Option("--idempotency-key")] = None,
    since: Annotated[str | None, typer.Option(help="accepted at or after (ISO-8601)")] = None,
    until: Annotated[str | None, typer.Option(help="accepted before (ISO-8601)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
) -> None:
    """The reconciliation table of the newest jobs (filtered as GET /api/v1/jobs is)."""
    from worker.ledger.views import LedgerReads
    from worker.reporting import render_report
    from worker.services.views import job_filter, list_jobs

    try:
        where = job_filter(state=state, provider=provider, target=target,
                           idempotency_key=idempotency_key, since=since, until=until)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    engine = _engine()
    reads = LedgerReads(engine)
    try:
        jobs = list_jobs(reads, where=where, limit=limit, cursor=None).model_dump(
            mode="json")["jobs"]
        if as_json:
            out.print_json(data={"jobs": jobs})
        else:
            render_report(jobs, out, _every_leg(reads))
    finally:
        engine.dispose()


# issue 17: operator actions, straight through the use cases (as status and report read the
# ledger directly); a retry is enqueued on the broker for the workers.
def _act(action: Any) -> None:
    from datetime import UTC, datetime

    from worker.bootstrap import ledger_units
    from worker.ledger.views import LedgerReads
    from worker.services.operator import OperatorError
    from worker.services.views import get_job
    engine = _engine()
    try:
        job_id = action(ledger_units(engine), datetime.now(UTC))
        job = get_job(LedgerReads(engine), job_id, legs=0)
        assert job is not None
        out.print(f"job {job_id}: {job.state}", highlight=False)
    except OperatorError as exc:
        raise fail(str(exc)) from exc
    finally:
        engine.dispose()


@app.command()
def retry(leg_id: str, note: Annotated[str | None, typer.Option()] = None) -> None:
    """Run a failed, unknown or unconfigured leg again (its target is read first)."""
    from worker.celery_app import app as celery_app
    from worker.dispatch import CeleryDispatcher
    from worker.services.operator import retry_leg
    _act(lambda units, now: retry_leg(units, CeleryDispatcher(celery_app), leg_id,
                                       note=note, actor="cli", now=now))


@app.command()
def resolve(leg_id: str, outcome: Annotated[str, typer.Option(help="cancelled | rejected")],
            note: Annotated[str, typer.Option(help="what was done, and by whom")]) -> None:
    """End a leg that a person settled outside cancelflow."""
    from worker.domain.states import LegState
    from worker.services.operator import RESOLVE_OUTCOMES, resolve_leg
    if outcome not in [s.value for s in RESOLVE_OUTCOMES] or not note.strip():
        raise fail("--outcome must be cancelled or rejected, and --note must say why")
    _act(lambda units, now: resolve_leg(units, leg_id, LegState(outcome), note=note,
                                         actor="cli", now=now))


@app.command()
def abandon(job_id: str, note: Annotated[str, typer.Option(help="why")]) -> None:
    """End the job's legs not yet sent: rejected / abandoned."""
    from worker.services.operator import abandon_job

    def act(units: Any, now: Any) -> str:
        abandon_job(units, job_id, note=note, actor="cli", now=now)
        return job_id
    if not note.strip():
        raise fail("--note must say why")
    _act(act)


# issue 17: ``export`` and ``prune`` (worker.audit_commands), straight on the ledger.
def _add_audit_commands() -> None:
    from worker.audit_commands import export, prune

    app.command()(export)
    app.command()(prune)


_add_audit_commands()


@app.command()
def migrate() -> None:
    """Bring the ledger's schema up to date, and nothing else."""
    _engine().dispose()
    out.print("ledger is up to date")


@app.command()
def sandbox(port: int = 9000, host: str = "127.0.0.1") -> None:
    """Run the provider sandbox (the test double; never a production dependency)."""
    try:
        from sandbox.__main__ import main as sandbox_main
    except ModuleNotFoundError as exc:
        raise fail("the sandbox is not installed here: it ships with the source tree "
                   "(make install), not with the production image") from exc
    sandbox_main(["--port", str(port), "--host", host])


@app.command()
def demo(run_dir: Path = Path("var/demo")) -> None:
    """Start everything, submit a sample of cancellations, print the reconciliation report."""
    from devstack.demo import run_demo
    from worker.reporting import render_report

    try:
        jobs = run_demo(run_dir.resolve(), out)
    except (TimeoutError, RuntimeError) as exc:
        raise fail(str(exc)) from exc
    render_report(jobs, out)


@app.command()
def up(run_dir: Path = Path("var/up")) -> None:
    """The whole stack in the foreground until Ctrl-C.

    Receiver on :8000, Flower on :5555, sandbox on :9000.
    """
    from devstack.stack import Stack

    try:
        stack = Stack.prepare(run_dir.resolve(), sandbox_port=9000, receiver_port=8000,
                              flower_port=5555)
    except RuntimeError as exc:  # no Redis-compatible server: the local extra is missing
        raise fail(str(exc)) from exc
    stopping = False

    def _stop(*_args: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        stack.start_sandbox()
        stack.start_receiver()
        stack.start_worker()
        stack.start_beat()
        stack.start_flower()
        out.print(f"receiver  {stack.receiver_url}   (API token: see {run_dir}/api-token)")
        out.print(f"flower    {stack.flower_url}   (basic auth: see {run_dir}/flower-auth)")
        out.print(f"sandbox   {stack.sandbox_url}")
        out.print(f"broker    {stack.env['CANCELFLOW_REDIS_URL']}")
        token_file = run_dir / "api-token"
        token_file.write_text(stack.env["CANCELFLOW_API_TOKEN"] + "\n")
        token_file.chmod(0o600)
        out.print("Ctrl-C stops everything.")
        while not stopping:
            for name, proc in stack.processes.items():
                if proc.poll() is not None:
                    raise fail(f"{name} exited ({proc.returncode}); see {run_dir}/{name}.log")
            time.sleep(0.5)
    finally:
        stack.stop_all()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
