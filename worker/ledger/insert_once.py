"""Insert a row unless one with the same key is stored: the idempotency of jobs and pages."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Connection, Executable, Table, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError


@functools.cache
def _statement(table: Table, dialect: str) -> Executable | None:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING the key, where the dialect has it (a repeat
    then costs no savepoint, and other integrity errors still raise); None elsewhere."""
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing().returning(table.c.id)
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing().returning(table.c.id)
    return None


def insert_once(conn: Connection, table: Table, row: dict[str, Any]) -> bool:
    """Insert the row unless one with the same key is there; whether it was inserted."""
    once = _statement(table, conn.dialect.name)
    if once is not None:
        # RETURNING rather than the row count, which psycopg does not give here.
        return conn.execute(once, row).first() is not None
    nested = conn.begin_nested()
    try:
        conn.execute(insert(table), row)
    except IntegrityError:
        nested.rollback()
        return False
    nested.commit()
    return True


def insert_many_once(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> set[Any]:
    """Insert each row unless one with the same key is there (or comes earlier in ``rows``);
    the keys of the rows inserted. One statement where the dialect has ON CONFLICT."""
    once = _statement(table, conn.dialect.name)
    unique = list({row["id"]: row for row in reversed(rows)}.values())[::-1]
    if once is None:
        return {row["id"] for row in unique if insert_once(conn, table, row)}
    if not unique:
        return set()
    return set(conn.execute(once, unique).scalars())
