"""Engines for the ledger: SQLite (WAL, one writer at a time) or PostgreSQL."""

from __future__ import annotations

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

_writer_locks: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for other backends and in-memory databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def create_ledger_engine(url: str) -> Engine:
    """An engine configured for many processes sharing one ledger."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=10)

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
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            # WAL readers see a snapshot and never wait for the writer.
            conn.exec_driver_sql("BEGIN")
            return
        # A deferred transaction that reads then writes can fail with SQLITE_BUSY without
        # waiting; taking the write lock up front makes concurrent writers queue instead.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    _writer_locks[engine] = threading.Lock()
    return engine


def writer_lock(engine: Engine) -> threading.Lock | None:
    """The lock a process's threads take before writing to a SQLite ledger.

    SQLite has one writer at a time. Threads that met in SQLite's busy handler would sleep and
    poll (in steps up to 100 ms); queueing on a lock in the process wakes the next one at once.
    Other processes still wait in the busy handler.
    """
    return _writer_locks.get(engine)
