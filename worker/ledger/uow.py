"""The unit of work over SQL: one transaction, rolled back unless committed."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine

from worker.ledger.attempts import SqlAttemptRepository
from worker.ledger.callback_pages import SqlCallbackPageRepository
from worker.ledger.engine import DURABLE, READ_ONLY, writer_lock
from worker.ledger.events import SqlEventRepository
from worker.ledger.jobs import SqlJobRepository
from worker.ledger.legs import SqlLegRepository
from worker.ledger.outcomes import SqlOutcomeRepository
from worker.services.unit_of_work import (
    AttemptRepository,
    CallbackPageRepository,
    EventRepository,
    JobRepository,
    LegRepository,
    OutcomeRepository,
)


class _Transaction:
    """One connection in one transaction, under the SQLite writer lock unless ``read_only``.

    ``read_only`` units never write: on SQLite they take no write lock and never wait.
    ``durable`` units are on disk when ``commit`` returns, power loss included (engine.DURABLE):
    those whose commit is acknowledged to someone or precedes a provider call.
    """

    def __init__(self, engine: Engine, *, read_only: bool = False,
                 durable: bool = False) -> None:
        self._engine = engine
        self._read_only = read_only
        self._durable = durable
        self._conn: Connection | None = None
        self._lock = None if read_only else writer_lock(engine)

    @property
    def conn(self) -> Connection:
        assert self._conn is not None, "outside the unit of work"
        return self._conn

    def _begin(self) -> Connection:
        if self._lock is not None:
            self._lock.acquire()
        try:
            conn = self._engine.connect()
            if self._read_only:
                conn = conn.execution_options(**{READ_ONLY: True})
            elif self._durable:
                conn = conn.execution_options(**{DURABLE: True})
            self._conn = conn
            conn.begin()
        except BaseException:
            if self._lock is not None:
                self._lock.release()
            raise
        return conn

    def commit(self) -> None:
        self.conn.commit()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._conn is not None
        try:
            if self._conn.in_transaction():
                self._conn.rollback()
        finally:
            self._conn.close()
            self._conn = None
            if self._lock is not None:
                self._lock.release()


class SqlUnitOfWork(_Transaction):
    """``with uow: ...; uow.commit()``: the repositories over one transaction."""

    jobs: JobRepository
    legs: LegRepository
    attempts: AttemptRepository
    callback_pages: CallbackPageRepository
    events: EventRepository
    outcomes: OutcomeRepository

    def __enter__(self) -> Self:
        conn = self._begin()
        self.jobs = SqlJobRepository(conn)
        self.legs = SqlLegRepository(conn)
        self.attempts = SqlAttemptRepository(conn)
        self.callback_pages = SqlCallbackPageRepository(conn)
        self.events = SqlEventRepository(conn)
        self.outcomes = SqlOutcomeRepository(conn)
        return self


class SqlUnitOfWorkFactory:
    """What a ``Context`` makes its units of work with: SQL ones over ``engine``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self, *, read_only: bool = False, durable: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, read_only=read_only, durable=durable)
