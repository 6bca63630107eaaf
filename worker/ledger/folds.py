"""PostgreSQL: folding the metrics tallies of finished database sessions into shard 0.

Triggers (migration 0003) count into one row per session (its backend pid); a scrape first moves
the counts of sessions that are gone into shard 0, so the rows it reads stay as few as the live
sessions.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import (
    Engine,
    Executable,
    Table,
    column,
    delete,
    exists,
    func,
    literal,
    select,
    table,
    text,
)
from sqlalchemy.dialects import postgresql

from worker.ledger.tables import (
    call_tallies,
    job_tallies,
    latency_column,
    leg_tallies,
)
from worker.services.records import LATENCY_BOUNDS_MS

# One scrape at a time folds the tallies of backends that have gone.
_FOLD_LOCK = 0x63616E63  # "canc"


_PG_SESSIONS = table("pg_stat_activity", column("pid"))


def _fold(tally: Table, keys: Sequence[str], columns: Sequence[str]) -> Executable:
    """Move the counts of database sessions that are gone into shard 0. Rows a live session
    holds are skipped, never waited on (the next scrape folds them), so a scrape never blocks a
    writer or deadlocks with one."""
    dead = (select(tally.c.shard, *(tally.c[k] for k in keys))
            .where(tally.c.shard != 0,
                   ~exists().where(_PG_SESSIONS.c.pid == tally.c.shard))
            .with_for_update(skip_locked=True)
            .cte("dead"))
    moved = (delete(tally)
             .where(*(tally.c[k] == dead.c[k] for k in ("shard", *keys)))
             .returning(*(tally.c[k] for k in (*keys, *columns)))
             .cte("moved"))
    folded = select(literal(0), *(moved.c[k] for k in keys),
                    *(func.sum(moved.c[c]) for c in columns)).group_by(*(moved.c[k] for k in keys))
    insert = postgresql.insert(tally).from_select(["shard", *keys, *columns], folded)
    return insert.on_conflict_do_update(
        index_elements=["shard", *keys],
        set_={c: tally.c[c] + insert.excluded[c] for c in columns})


_FOLDS = (
    _fold(leg_tallies, ("provider", "state"), ("n",)),
    _fold(job_tallies, ("state",), ("n",)),
    _fold(call_tallies, ("provider", "operation"),
          ("calls", "total_ms", *(latency_column(b) for b in LATENCY_BOUNDS_MS))),
)


def fold_tallies(engine: Engine) -> bool:
    """PostgreSQL: fold the tallies of finished backends into shard 0, so the rows a scrape
    reads stay as few as the live connections; whether this call did (another may be at it)."""
    if engine.dialect.name != "postgresql":
        return False  # one shard on SQLite
    with engine.connect() as conn, conn.begin() as transaction:
        if not conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"),
                            {"key": _FOLD_LOCK}).scalar():
            transaction.rollback()
            return False
        for statement in _FOLDS:
            conn.execute(statement)
    return True
