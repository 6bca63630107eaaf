"""Helpers the test modules share: waiting on processes, PostgreSQL databases, seeding a
ledger, reading what the receiver answers (metrics, pages, Paywall callbacks), and the imports
of a source file."""

from __future__ import annotations

import ast
import html
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from click.testing import Result
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy import Engine
from werkzeug.test import TestResponse

from devstack.postgres import TemporaryPostgres
from devstack.waiting import wait_until
from worker.domain.outcomes import AwaitingCallbacks, Cancelled, Outcome, Rejected
from worker.domain.reconciliation import Figures, LegEvidence, Reported, Source
from worker.domain.states import JobState, Provider, Reason
from worker.ledger.uow import SqlUnitOfWorkFactory
from worker.ledger.views import LedgerReads
from worker.providers.calls import CallObserver, CallRecord
from worker.services.context import Context, RetryPolicy
from worker.services.legs import process_leg
from worker.services.records import CallMade, NewCallbackPage
from worker.services.submit import submit
from worker.services.views import JobList, ReadSide, get_job

FINAL_JOB_STATES = {"reconciled", "mismatch", "failed", "invalid"}


def job_answer(reads: ReadSide, job_id: str) -> dict[str, Any] | None:
    """The job as ``GET /api/v1/jobs/{job_id}`` answers it (JSON), or None."""
    found = get_job(reads, job_id)
    return found.model_dump(mode="json") if found is not None else None


def jobs_answer(page: JobList) -> list[dict[str, Any]]:
    """A page's jobs as ``GET /api/v1/jobs`` lists them (JSON)."""
    return [job.model_dump(mode="json") for job in page.jobs]


def wait_for_job(engine: Engine, job_id: str, timeout: float = 30) -> dict[str, Any]:
    """The job once it is final (the test fails naming it if it is not by the deadline)."""

    def final() -> dict[str, Any] | None:
        job = job_answer(LedgerReads(engine), job_id)
        return job if job is not None and job["state"] in FINAL_JOB_STATES else None

    return wait_until(final, timeout=timeout, what=f"job {job_id} to end")


def midday_zone() -> str:
    """A fixed-offset zone where it is now near noon, so no test runs across a midnight.

    Paywall's same-day rule is computed in a zone; tests set both the worker and the sandbox to
    this one instead of racing Istanbul's midnight.
    """
    from datetime import UTC, datetime

    offset = 12 - datetime.now(UTC).hour
    offset = max(-12, min(14, offset))
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"


def today_in(zone: str) -> str:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo(zone)).date().isoformat()


class Clock:
    """A settable clock, so expiries and day boundaries are tested without waiting."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def fresh_postgres_url(postgres: TemporaryPostgres | None) -> str:
    """A new database, migrated (copied from the migrated template)."""
    if postgres is None:
        pytest.skip("no PostgreSQL server on this machine")
    # A random name: every caller gets a database of its own.
    return postgres.create_database(f"ledger_{uuid.uuid4().hex}", template="ledger_template")


# Seeding: a ledger with one job in each of six states, through the use cases.

# Seeded jobs are accepted an hour before the test reads them, so the oldest waiting job's age
# is known.
SEEDED_AT = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
SEEDED_EVIDENCE = LegEvidence(
    Source.SIXDOT50_SUMMARY, "ZAR", Figures(2, Decimal("200.00")),
    Reported(cancelled_count=2, cancelled_amount=Decimal("200.00")),
)


@dataclass
class TimedDriver:
    """The seeding's driver: answers every cancel with ``outcome``; each call is recorded with a
    scripted latency."""

    provider: Provider
    cancel_operation: str
    outcome: Outcome
    cancel_ms: float
    read_ms: float = 3.0
    read_operation: str = "get_batch"
    calls: list[str] = field(default_factory=list)

    def _observe(self, calls: CallObserver, operation: str, latency_ms: float) -> None:
        handle = calls.before(operation)
        calls.after(handle, CallRecord(self.provider.value, operation, 200, "ok", latency_ms))

    def cancel(self, target: dict[str, str], calls: CallObserver,
               on_cutoff: str = "reject") -> Outcome:
        self._observe(calls, self.cancel_operation, self.cancel_ms)
        return self.outcome

    def resolve(self, target: dict[str, str], calls: CallObserver,
                on_cutoff: str = "reject") -> Outcome:
        raise AssertionError("no ambiguous answers in this script")

    def read_evidence(self, target: dict[str, str], calls: CallObserver) -> LegEvidence | None:
        self._observe(calls, self.read_operation, self.read_ms)
        return SEEDED_EVIDENCE


def run_seeded_job(engine: Engine, request: dict[str, Any], driver: TimedDriver | None) -> str:
    """Submit ``request`` and, given a driver, run its one leg a single round."""
    from tests.fakes import FakeDispatcher  # imported here: tests.fakes imports this module

    dispatcher = FakeDispatcher()
    ctx = Context(SqlUnitOfWorkFactory(engine), {driver.provider: driver} if driver else {},
                  dispatcher, RetryPolicy(2, 300, 8), 60, clock=lambda: SEEDED_AT,
                  rng=lambda: 1.0)
    job_id = submit(ctx, (), {"request": request}).job_id
    if driver is not None:
        process_leg(ctx, dispatcher.legs[0][0])
    return job_id


def seed_six_states(engine: Engine) -> list[str]:
    """One job in each of six states, with provider calls of known latencies."""
    batch = {"provider": "sixdot50", "batch_id": "f945d71c-b00f-4e77-8175-253093157a2f"}
    six = {"legs": [batch]}
    cancelled = Cancelled(already=False)
    return [
        run_seeded_job(engine, {**six, "idempotency_key": "mismatch",
                                "expect": {"count": 3, "amount": "300.00"}},
                       TimedDriver(Provider.SIXDOT50, "cancel_batch", cancelled, 30)),
        run_seeded_job(engine, {**six, "idempotency_key": "reconciled",
                                "expect": {"count": 2, "amount": "200.00"}},
                       TimedDriver(Provider.SIXDOT50, "cancel_batch", cancelled, 240)),
        run_seeded_job(engine, {"idempotency_key": "waiting", "legs": [
            {"provider": "paywall", "scope": "bulk", "merchant_unique_code": "secret-code-77",
             "payment_date": SEEDED_AT.date().isoformat()}]},
                       TimedDriver(Provider.PAYWALL, "cancel_bulk",
                                   AwaitingCallbacks(reference="bulk-1"), 700)),
        run_seeded_job(engine, {"idempotency_key": "refused", "legs": [
            {"provider": "bambora", "merchant": "T1", "payment_reference": "ref-secret-1"}]},
                       TimedDriver(Provider.BAMBORA, "cancel_payment",
                                   Rejected(Reason.NOT_CANCELLABLE, "captured"), 12_000)),
        run_seeded_job(engine, {"idempotency_key": "queued", "legs": [
            {"provider": "bambora", "merchant": "T1", "payment_reference": "ref-secret-2"}]},
                       None),
        run_seeded_job(engine, {"idempotency_key": "broken", "legs": [{"provider": "acme"}]},
                       None),
    ]


# Reading the receiver's answers.

def scrape(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the exposition, by name and labels."""
    samples: list[Sample] = [s for family in text_string_to_metric_families(text)
                             for s in family.samples]
    return {(s.name, frozenset(s.labels.items())): s.value for s in samples}


def metric_value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
                 **labels: str) -> float:
    """The sample ``name`` with exactly ``labels`` (a KeyError names a missing one)."""
    return samples[(name, frozenset(labels.items()))]


def text_of_html(markup: str) -> str:
    """The markup's visible text, with tags dropped and whitespace squeezed."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", markup))).strip()


def text_of(response: TestResponse) -> str:
    """The page's visible text, with tags dropped and whitespace squeezed."""
    return text_of_html(response.get_data(as_text=True))


# Paywall callbacks.

# Imports, for the tests that hold the layering.


class ImportSite(NamedTuple):
    module: str
    function: str  # the top-level function holding the import; "" at module level or in a class
    line: int


def imports_in(path: Path) -> list[ImportSite]:
    """Every absolute import in the file, lazy ones too. ``from a import b`` names ``a`` and
    ``a.b`` (``b`` may be a module)."""
    sites: list[ImportSite] = []
    for top in ast.parse(path.read_text(), str(path)).body:
        function = top.name if isinstance(top, ast.FunctionDef | ast.AsyncFunctionDef) else ""
        for node in ast.walk(top):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            else:
                continue
            sites.extend(ImportSite(module, function, node.lineno) for module in modules)
    return sites


def is_within(module: str, package: str) -> bool:
    """``module`` is ``package`` or inside it."""
    return module == package or module.startswith(f"{package}.")


# Operator actions' tests: a job stored as submit would, a leg put in the state a test needs.

def submit_job(engine: Engine, request: dict[str, Any], now: datetime) -> str:
    """Store a job as the submit task would, calling nobody (no drivers, nothing dispatched)."""
    from tests.fakes import FakeDispatcher  # imported here: tests.fakes imports this module

    ctx = Context(SqlUnitOfWorkFactory(engine), {}, FakeDispatcher(), RetryPolicy(1, 1, 1), 60,
                  clock=lambda: now)
    return submit(ctx, (), {"request": request}).job_id


def set_leg(engine: Engine, leg_id: str, **values: Any) -> None:
    """Put a leg in the state a test needs (a compare-and-set, as every writer does)."""
    with SqlUnitOfWorkFactory(engine)() as uow:
        leg = uow.legs.get(leg_id)
        assert leg is not None and uow.legs.update(leg_id, leg.version, **values)
        uow.commit()


def cancelflow(ledger_url: str, *args: str) -> Result:
    """Run the CLI in this process, its settings read afresh from this environment."""
    from typer.testing import CliRunner

    from worker.cli import app
    from worker.settings import load_settings

    # The CLI reads its settings once per process (load_settings is cached): forget them on
    # both sides, so that neither an earlier test's ledger nor this one leaks.
    load_settings.cache_clear()
    try:
        return CliRunner().invoke(app, list(args), env={"CANCELFLOW_DATABASE_URL": ledger_url})
    finally:
        load_settings.cache_clear()


def one_error_line(result: Result) -> str:
    """The single line the CLI wrote to stderr, after asserting it failed with nothing else."""
    assert result.exit_code != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# Audit export and prune (issue 17): a job with known calls, ended when a test needs.

def seed_called_job(engine: Engine, key: str, *, legs: int, calls: int, at: datetime,
                    state: JobState | None, paywall: bool = False) -> str:
    """A job of ``legs`` legs with ``calls`` recorded calls each (a second apart, from ``at``),
    then put in ``state`` at ``at`` (None: left as submitted). A Paywall job's one leg names
    the operation ``bulk-<key>``, of which one callback page is stored."""
    target = ({"provider": "paywall", "scope": "bulk", "merchant_unique_code": f"code-{key}",
               "payment_date": at.date().isoformat()} if paywall else
              {"provider": "bambora", "merchant": "T1"})
    job_id = submit_job(engine, {"idempotency_key": key, "legs": [
        {**target, **({} if paywall else {"payment_reference": f"{key}-{i}"})}
        for i in range(legs)]}, at)
    with SqlUnitOfWorkFactory(engine)() as uow:
        for leg in uow.legs.of_job(job_id):
            for n in range(calls):
                started = at + timedelta(seconds=n, milliseconds=leg.position)
                uow.attempts.add(leg.id, CallMade("cancel", started, CallRecord(
                    leg.provider.value, "cancel", 200, "ok", 12.5 + n, provider_code='A,"1"',
                    request_id=f"req-{n}", body="SECRET-BODY"), started + timedelta(seconds=1)))
            if paywall:
                uow.legs.update(leg.id, leg.version, provider_reference=f"bulk-{key}")
                uow.callback_pages.add(NewCallbackPage(
                    f"bulk-{key}", f"code-{key}", 1, 1, b"RAW-BODY", [], {"count": 1}, at))
        if state is not None:
            uow.jobs.set_state(job_id, state, None, at)
        uow.commit()
    return job_id
