"""The unit of work: one transaction, rolled back unless committed."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import Connection, Engine

from worker.ledger.engine import DURABLE, READ_ONLY, writer_lock
from worker.ledger.queries import Ledger


class UnitOfWork:
    """``with uow: ...; uow.commit()``: nothing is written unless ``commit`` is called.

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

    def __enter__(self) -> Ledger:
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
        return Ledger(self._conn)

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
