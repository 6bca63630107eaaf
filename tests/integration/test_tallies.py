"""The metrics tallies: kept exact by the ledger's triggers, and a scrape that never reads history.

Each tally is compared with the same count taken the slow way (aggregating ``legs``, ``jobs`` and
``attempts``), after the use cases, direct updates and deletes have changed those tables, on
SQLite and on PostgreSQL (where concurrent sessions count into shards of their own).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from alembic import command
from flask.testing import FlaskClient
from sqlalchemy import Engine, case, event, func, select, update

from devstack.filled_ledger import fill_job
from devstack.postgres import TemporaryPostgres
from devstack.waiting import wait_until
from tests.support import metric_value, scrape, seed_six_states
from webhooks import create_app
from worker.domain.request import target_key
from worker.ledger import create_ledger_engine, upgrade_ledger
from worker.ledger.migrate import alembic_config
from worker.ledger.tables import attempts, jobs, leg_tallies, legs
from worker.ledger.uow import SqlUnitOfWork
from worker.ledger.views import LedgerReads
from worker.providers.calls import CallRecord
from worker.services.records import LATENCY_BOUNDS_MS, CallMade
from worker.settings import Settings


def truth(engine: Engine) -> tuple[dict[tuple[str, str], int], dict[str, int], dict[
        tuple[str, str], list[int]]]:
    """Legs by (provider, state), jobs by state, and calls by (provider, operation) as
    [calls, under each bound...], counted from the tables themselves."""
    under = [func.sum(case((attempts.c.latency_ms <= bound, 1), else_=0))
             for bound in LATENCY_BOUNDS_MS]
    with engine.connect() as conn:
        leg_rows = conn.execute(select(legs.c.provider, legs.c.state, func.count())
                                .group_by(legs.c.provider, legs.c.state))
        job_rows = conn.execute(select(jobs.c.state, func.count()).group_by(jobs.c.state))
        call_rows = conn.execute(
            select(legs.c.provider, attempts.c.operation, func.count(), *under)
            .select_from(attempts.join(legs, legs.c.id == attempts.c.leg_id))
            .where(attempts.c.latency_ms.is_not(None))
            .group_by(legs.c.provider, attempts.c.operation))
        return ({(p, s): int(n) for p, s, n in leg_rows},
                {s: int(n) for s, n in job_rows},
                {(p, o): [int(n) for n in rest] for p, o, *rest in call_rows})


def tallied(engine: Engine) -> tuple[dict[tuple[str, str], int], dict[str, int], dict[
        tuple[str, str], list[int]]]:
    """The same three, as the scrape reads them from the tallies (zero counts left out)."""
    with LedgerReads(engine).snapshot() as views:
        leg_counts = {(p, s): n for p, s, n in views.leg_tally() if n}
        job_counts = {s.value: n for s, n in views.job_tally().items() if n}
        calls = {(t.provider, t.operation): [t.calls, *t.under] for t in views.call_tally()
                 if t.calls}
    return leg_counts, job_counts, calls


def churn(engine: Engine) -> None:
    """Changes no use case makes today, which the tallies must follow all the same: a leg's
    state set by hand (an operator's fix), a call's latency corrected, calls deleted."""
    with SqlUnitOfWork(engine) as uow:
        conn = uow.conn
        first = conn.execute(select(legs.c.id).order_by(legs.c.id).limit(3)).scalars().all()
        conn.execute(update(legs).where(legs.c.id.in_(first)).values(state="failed"))
        call = conn.execute(select(attempts.c.id).where(attempts.c.latency_ms.is_not(None))
                            .order_by(attempts.c.id).limit(2)).scalars().all()
        conn.execute(update(attempts).where(attempts.c.id == call[0]).values(latency_ms=7000.0))
        conn.execute(attempts.delete().where(attempts.c.id == call[1]))
        uow.commit()


def test_tallies_follow_every_change_of_the_counted_tables(engine: Engine) -> None:
    """After jobs in every state, a half-run big job, hand edits and deletes, each tally
    equals the count taken from the tables."""
    seed_six_states(engine)
    fill_job(engine, "half-run", 120, run=70)
    assert tallied(engine) == truth(engine)
    legs_before, _jobs, calls_before = tallied(engine)

    churn(engine)

    assert tallied(engine) == truth(engine)
    legs_after, _jobs, calls_after = tallied(engine)
    failed = sum(n for (_provider, state), n in legs_after.items() if state == "failed")
    assert failed == 3 and sum(legs_after.values()) == sum(legs_before.values())
    assert sum(c[0] for c in calls_after.values()) == sum(c[0] for c in calls_before.values()) - 1


def test_concurrent_writers_never_share_a_tally_row(engine: Engine, ledger_url: str) -> None:
    """Jobs run at once from several connections (on PostgreSQL: several sessions, each
    counting into its own shard, folded once they close) still add up exactly."""
    engines = [create_ledger_engine(ledger_url) for _ in range(3)]
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            fill_job(engines[index], f"concurrent-{index}", 150)
        except BaseException as exc:  # reported below, on the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(engines))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and not any(thread.is_alive() for thread in threads)
    assert tallied(engine) == truth(engine)

    for other in engines:
        other.dispose()
    if engine.dialect.name == "postgresql":

        def folded() -> bool:
            LedgerReads(engine).fold_tallies()
            with engine.connect() as conn:
                shards = set(conn.execute(select(leg_tallies.c.shard).distinct()).scalars())
            return shards <= {0}

        # The sessions of the disposed engines end asynchronously: fold until they are gone.
        wait_until(folded, timeout=30, what="the closed sessions' tallies to be folded")
    assert tallied(engine) == truth(engine)
    assert tallied(engine)[0][("bambora", "cancelled")] == 450


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_ledger_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                     ) -> str:
    """A ledger with no schema at all."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('migrate') / 'ledger.db'}"
    postgres: TemporaryPostgres | None = request.getfixturevalue("postgres")
    if postgres is None:
        pytest.skip("no PostgreSQL server on this machine")
    return postgres.create_database(f"migrate_{uuid.uuid4().hex}")


def test_the_migration_counts_the_rows_already_there(empty_ledger_url: str) -> None:
    """A ledger filled before the tallies existed is counted when it is upgraded."""
    engine = create_ledger_engine(empty_ledger_url)
    try:
        # Filled by today's code, then taken back to before the tallies (the rows stay).
        upgrade_ledger(engine)
        fill_job(engine, "before-the-tallies", 60, run=40)
        command.downgrade(alembic_config(engine), "0003")
        upgrade_ledger(engine)
        assert tallied(engine) == truth(engine)
        fill_job(engine, "after-the-tallies", 10)
        assert tallied(engine) == truth(engine)
    finally:
        engine.dispose()


@pytest.fixture
def client(engine: Engine, ledger_url: str) -> Iterator[FlaskClient]:
    app = create_app(Settings(database_url=ledger_url))  # type: ignore[arg-type]
    yield app.test_client()
    app.extensions["cancelflow"]["engine"].dispose()


def scrape_statements(client: FlaskClient) -> tuple[list[str], str]:
    """The SQL statements one scrape ran, and its text."""
    app_engine: Engine = client.application.extensions["cancelflow"]["engine"]
    ran: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        ran.append(statement)

    event.listen(app_engine, "before_cursor_execute", record)
    try:
        text = client.get("/metrics").get_data(as_text=True)
    finally:
        event.remove(app_engine, "before_cursor_execute", record)
    return ran, text


def add_calls(engine: Engine, leg_id: str, count: int) -> None:
    """``count`` finished calls for one leg, as the ledger records a round's calls."""
    now = datetime.now(UTC)
    calls = [(leg_id, CallMade("get_payment", now, CallRecord(
        "sixdot50", "get_payment", 200, "ok", float(n % 300)), now)) for n in range(count)]
    with SqlUnitOfWork(engine) as uow:
        uow.attempts.record_round([], calls, [])
        uow.commit()


def test_a_scrape_costs_the_same_with_10_or_10000_calls_recorded(engine: Engine,
                                                                   client: FlaskClient) -> None:
    """The scrape runs the same few statements whatever the attempt history, and none of them
    reads ``attempts`` or aggregates ``legs``; its histogram still counts every call."""
    job_id = fill_job(engine, "history", 1)
    with engine.connect() as conn:
        leg_id = conn.execute(select(legs.c.id).where(legs.c.job_id == job_id)).scalar_one()
    add_calls(engine, leg_id, 9)  # with the cancel: 10 calls

    few, few_text = scrape_statements(client)
    add_calls(engine, leg_id, 9990)
    many, many_text = scrape_statements(client)

    assert few == many
    assert len(many) <= 8
    for statement in many:
        assert "attempts" not in statement
        assert "FROM legs" not in statement
    name = "cancelflow_provider_call_duration_seconds_count"
    labels = {"provider": "bambora", "operation": "get_payment"}
    assert metric_value(scrape(few_text), name, **labels) == 9
    assert metric_value(scrape(many_text), name, **labels) == 9999


def test_the_find_jobs_migration_keys_the_legs_already_there(empty_ledger_url: str) -> None:
    """Legs stored before 0007 get their target key (batch id, code or reference) on upgrade."""
    engine = create_ledger_engine(empty_ledger_url)
    try:
        upgrade_ledger(engine)
        fill_job(engine, "before-the-keys", 3)
        command.downgrade(alembic_config(engine), "0006")
        upgrade_ledger(engine)
        with engine.connect() as conn:
            keyed = conn.execute(select(legs.c.target, legs.c.target_key)).all()
        assert len(keyed) == 3
        assert all(key and key == target_key(target) for target, key in keyed)
    finally:
        engine.dispose()
