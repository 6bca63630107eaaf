"""Shared fixtures: a migrated ledger, fakes of the ports, and the servers the tiers need."""

from __future__ import annotations

import itertools
import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from celery import Celery
from sqlalchemy import Engine

from sandbox import create_app as create_sandbox
from sandbox import start_in_thread
from worker.celery_app import create_celery
from worker.devstack.embedded_redis import EmbeddedRedis
from worker.devstack.postgres import PostgresUnavailable, TemporaryPostgres
from worker.devstack.sandbox_control import SandboxControl
from worker.devstack.stack import Stack
from worker.ledger import create_ledger_engine, upgrade_ledger

# Ledgers: every test that takes `ledger_url` (or `engine`) runs on SQLite and on PostgreSQL.


@pytest.fixture(scope="session")
def postgres() -> Iterator[TemporaryPostgres | None]:
    """A PostgreSQL server for the run (None when there is none, which CI never allows)."""
    try:
        server = TemporaryPostgres().start()
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must test the PostgreSQL ledger: {exc}")
        yield None
        return
    try:
        engine = create_ledger_engine(server.create_database("ledger_template"))
        upgrade_ledger(engine)
        engine.dispose()
        yield server
    finally:
        server.stop()


def fresh_postgres_url(postgres: TemporaryPostgres | None) -> str:
    """A new database, migrated (copied from the migrated template)."""
    if postgres is None:
        pytest.skip("no PostgreSQL server on this machine")
    # A random name: this module is imported twice (as conftest, and as tests.conftest).
    return postgres.create_database(f"ledger_{uuid.uuid4().hex}", template="ledger_template")


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return fresh_postgres_url(request.getfixturevalue("postgres"))


@pytest.fixture
def engine(ledger_url: str) -> Iterator[Engine]:
    engine = create_ledger_engine(ledger_url)
    upgrade_ledger(engine)
    yield engine
    engine.dispose()


@dataclass
class FakeDispatcher:
    """Records what would have been enqueued."""

    legs: list[tuple[str, float]] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    settles: list[str] = field(default_factory=list)
    recoveries: list[str] = field(default_factory=list)
    outcomes: list[tuple[str, float]] = field(default_factory=list)

    def process_leg(self, leg_id: str, countdown: float = 0) -> None:
        self.legs.append((leg_id, countdown))

    def process_legs(self, leg_ids: list[str]) -> None:
        self.legs.extend((leg_id, 0) for leg_id in leg_ids)

    def read_evidence(self, leg_id: str) -> None:
        self.evidence.append(leg_id)

    def settle_callbacks(self, leg_id: str) -> None:
        self.settles.append(leg_id)

    def recover_callbacks(self, leg_id: str) -> None:
        self.recoveries.append(leg_id)

    def deliver_outcome(self, delivery_id: str, countdown: float = 0) -> None:
        self.outcomes.append((delivery_id, countdown))


@pytest.fixture
def dispatcher() -> FakeDispatcher:
    return FakeDispatcher()


# Servers: a real Redis-compatible server, the sandbox over HTTP, worker processes.

_redis_db = itertools.count(1)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """The broker for the whole run: CANCELFLOW_REDIS_URL if set, else an embedded server."""
    given = os.environ.get("CANCELFLOW_REDIS_URL")
    if given:
        yield given
        return
    server = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="cancelflow-redis-"))).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def redis_url(redis_server: str) -> str:
    """A database of its own per test module, so that workers of two modules never meet."""
    base = redis_server.rsplit("/", 1)[0]
    return f"{base}/{next(_redis_db) % 16}"


# A stack of real processes per test module. A module says what it needs with module-level
# STACK_ENV (settings) and STACK_PROCESSES ("worker", "beat", "receiver"); the sandbox runs in
# this process, in a thread, so tests can steer it and read its call log.


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    running = start_in_thread(create_sandbox())
    yield running.url
    running.shutdown()


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          redis_url: str, sandbox_url: str) -> Iterator[Stack]:
    env = getattr(request.module, "STACK_ENV", {})
    processes = getattr(request.module, "STACK_PROCESSES", ("worker",))
    database_url = None
    if getattr(request.module, "STACK_LEDGER", "sqlite") == "postgresql":
        database_url = fresh_postgres_url(request.getfixturevalue("postgres"))
    stack = Stack.prepare(tmp_path_factory.mktemp("stack"), redis_url=redis_url,
                          sandbox_url=sandbox_url, database_url=database_url, extra_env=env)
    try:
        if "receiver" in processes:
            stack.start_receiver()
        if "worker" in processes:
            stack.start_worker(concurrency=2)
        if "beat" in processes:
            stack.start_beat()
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture(scope="module")
def producer(stack: Stack) -> Iterator[Celery]:
    app = create_celery(stack.settings())
    yield app
    app.close()


@pytest.fixture(scope="module")
def ledger(stack: Stack) -> Iterator[Engine]:
    engine = create_ledger_engine(stack.settings().database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sandbox(sandbox_url: str) -> Iterator[SandboxControl]:
    control = SandboxControl(sandbox_url)
    control.clear_faults()
    yield control
    control.close()
