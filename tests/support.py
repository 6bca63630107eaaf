"""Helpers shared by the tiers that run real processes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from click.testing import Result
from sqlalchemy import Engine

from worker.devstack.waiting import wait_until
from worker.services.views import get_job

FINAL_JOB_STATES = {"reconciled", "mismatch", "failed", "invalid"}


def wait_for_job(engine: Engine, job_id: str, timeout: float = 30) -> dict[str, Any]:
    """The job once it is final (the test fails naming it if it is not by the deadline)."""

    def final() -> dict[str, Any] | None:
        job = get_job(engine, job_id)
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


def submit_job(engine: Engine, request: dict[str, Any], now: datetime) -> str:
    """Store a job as the submit task would, calling nobody (no drivers, nothing dispatched)."""
    from tests.conftest import FakeDispatcher
    from worker.services.context import Context, RetryPolicy
    from worker.services.submit import submit

    ctx = Context(engine, {}, FakeDispatcher(), RetryPolicy(1, 1, 1), 60, clock=lambda: now)
    return submit(ctx, (), {"request": request}).job_id


def set_leg(engine: Engine, leg_id: str, **values: Any) -> None:
    """Put a leg in the state a test needs (a compare-and-set, as every writer does)."""
    from worker.ledger.uow import UnitOfWork

    with UnitOfWork(engine) as ledger:
        leg = ledger.get_leg(leg_id)
        assert leg is not None and ledger.update_leg(leg_id, leg.version, **values)
        ledger.commit()


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
