"""Engines for the ledger: SQLite (WAL, one writer at a time) or PostgreSQL."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

SQLITE_BUSY_TIMEOUT_MS = 60_000
# An execution option: this connection only reads.
READ_ONLY = "cancelflow_read_only"
# An execution option: this transaction's commit is acknowledged to someone (a 200 to Paywall, a
# producer's message acked) or precedes a provider call, so it must survive an OS crash or a
# power loss, not only a crash of the process. SQLite in WAL mode with synchronous=NORMAL (the
# ledger's default: fast, consistent, but the last commits can be lost on power loss) syncs such
# a commit with synchronous=FULL instead. PostgreSQL's commits are durable already.
DURABLE = "cancelflow_durable"


class WriterLock:
    """The turn to write to a SQLite ledger: threads queue on a lock, processes on a file lock.

    SQLite has one writer at a time, and writers that meet in its busy handler sleep and poll
    (in steps up to 100 ms) instead of taking turns: a queue here hands the ledger to the next
    writer as soon as the last one commits. The file lock (``flock`` on a file beside the
    ledger) is opened once per process, as a forked child must not share its parent's.
    """

    def __init__(self, path: Path | None) -> None:
        self._threads = threading.Lock()
        self._path = path.with_name(path.name + ".writer-lock") if path is not None else None
        self._fd: tuple[int, int] | None = None  # (pid, descriptor)

    def _descriptor(self) -> int | None:
        if self._path is None:
            return None
        if self._fd is None or self._fd[0] != os.getpid():
            self._fd = (os.getpid(), os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600))
        return self._fd[1]

    def acquire(self) -> None:
        self._threads.acquire()
        try:
            fd = self._descriptor()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise

    def release(self) -> None:
        try:
            fd = self._descriptor()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()


_writer_locks: weakref.WeakKeyDictionary[Engine, WriterLock] = weakref.WeakKeyDictionary()


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for other backends and in-memory databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


PG_POOL_MAX = 32


def create_ledger_engine(url: str, *, durable_synchronous: str = "FULL") -> Engine:
    """An engine configured for many processes sharing one ledger.

    ``durable_synchronous`` is what a durable unit of work commits with on SQLite; only the
    benchmark sets it (to NORMAL, to measure what FULL costs).
    """
    if durable_synchronous not in ("FULL", "NORMAL"):
        raise ValueError("durable_synchronous is FULL or NORMAL")
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        # Up to one connection per worker thread (the threads pool runs 32), so no thread waits
        # on the pool; five stay open between bursts, the rest close when handed back.
        return create_engine(parsed, pool_pre_ping=True, pool_size=5,
                             max_overflow=PG_POOL_MAX - 5)

    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Let SQLAlchemy drive transactions, so that BEGIN IMMEDIATE below is ours to emit.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        _record.info["synchronous"] = "NORMAL"
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        options = conn.get_execution_options()
        if options.get(READ_ONLY):
            # WAL readers see a snapshot and never wait for the writer.
            conn.exec_driver_sql("BEGIN")
            return
        # The level is a property of the connection, and SQLite refuses to change it inside a
        # transaction: it is set here, before BEGIN, when it differs from the connection's.
        level = durable_synchronous if options.get(DURABLE) else "NORMAL"
        if conn.info.get("synchronous") != level:
            conn.exec_driver_sql(f"PRAGMA synchronous={level}")
            conn.info["synchronous"] = level
        # A deferred transaction that reads then writes can fail with SQLITE_BUSY without
        # waiting; taking the write lock up front makes concurrent writers queue instead.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    _writer_locks[engine] = WriterLock(path)
    return engine


def writer_lock(engine: Engine) -> WriterLock | None:
    """The lock a writer takes before writing to a SQLite ledger (None for PostgreSQL)."""
    return _writer_locks.get(engine)
