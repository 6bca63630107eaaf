"""Shared fixtures: a migrated ledger, fakes of the ports, and the servers the tiers need."""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from celery import Celery
from sqlalchemy import Engine

from devstack.embedded_redis import EmbeddedRedis
from devstack.postgres import PostgresUnavailable, TemporaryPostgres
from devstack.sandbox_control import SandboxControl
from devstack.stack import Stack
from sandbox import create_app as create_sandbox
from sandbox import start_in_thread
from tests.support import fresh_postgres_url
from worker.celery_app import create_celery
from worker.domain.task_label import TaskLabel
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
    # The label of each process_leg(s) dispatch, in order (what Flower would show as its args).
    labels: list[TaskLabel | None] = field(default_factory=list)

    def process_leg(self, leg_id: str, countdown: float = 0, *,
                    label: TaskLabel | None = None) -> None:
        self.legs.append((leg_id, countdown))
        self.labels.append(label)

    def process_legs(self, leg_ids: list[str], *, label: TaskLabel | None = None) -> None:
        self.legs.extend((leg_id, 0) for leg_id in leg_ids)
        self.labels.append(label)

    def read_evidence(self, leg_id: str, *, label: TaskLabel | None = None) -> None:
        self.evidence.append(leg_id)

    def settle_callbacks(self, leg_id: str, *, label: TaskLabel | None = None) -> None:
        self.settles.append(leg_id)

    def recover_callbacks(self, leg_id: str, *, label: TaskLabel | None = None) -> None:
        self.recoveries.append(leg_id)


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
def redis_url(redis_server: str, stack_ledger: str) -> str:
    """A database of its own per test module (and stack ledger), so that workers of two modules
    never meet."""
    base = redis_server.rsplit("/", 1)[0]
    return f"{base}/{next(_redis_db) % 16}"


# A stack of real processes per test module. A module says what it needs with module-level
# STACK_ENV (settings) and STACK_PROCESSES ("worker", "beat", "receiver"); the sandbox runs in
# this process, in a thread, so tests can steer it and read its call log.


@pytest.fixture(scope="module")
def sandbox_url(stack_ledger: str) -> Iterator[str]:
    """A sandbox per test module (and stack ledger)."""
    running = start_in_thread(create_sandbox())
    yield running.url
    running.shutdown()


def _marks_also_on_postgresql(module: object) -> bool:
    return any(mark.name == "also_on_postgresql"
               for test in vars(module).values() for mark in getattr(test, "pytestmark", ()))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # A stack test marked `also_on_postgresql` runs twice: on the stack's SQLite ledger, then on
    # a PostgreSQL one shared by the worker, the receiver and beat. The module's other stack tests
    # take the SQLite parameter too, so that they share its stack (one stack per ledger).
    if "stack" not in metafunc.fixturenames or not _marks_also_on_postgresql(metafunc.module):
        return
    marked = metafunc.definition.get_closest_marker("also_on_postgresql") is not None
    metafunc.parametrize("stack_ledger", ["sqlite", "postgresql"] if marked else ["sqlite"],
                         indirect=True, scope="module")


@pytest.fixture(scope="module")
def stack_ledger(request: pytest.FixtureRequest) -> str:
    """The ledger of the module's stack: "sqlite" unless the test is parametrized otherwise."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          redis_url: str, sandbox_url: str, stack_ledger: str) -> Iterator[Stack]:
    env = getattr(request.module, "STACK_ENV", {})
    processes = getattr(request.module, "STACK_PROCESSES", ("worker",))
    database_url = None
    if stack_ledger == "postgresql":
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
