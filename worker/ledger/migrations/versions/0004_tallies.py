"""Running tallies for /metrics: legs by provider and state, jobs by state, provider calls by
latency bucket; kept by triggers in the same transaction as the rows they count.

A scrape then reads a few dozen tally rows instead of aggregating ``legs``, ``jobs`` and
``attempts``, whose size grows with the ledger's history. Triggers rather than code in the
ledger's queries: every writer (claims, records, callbacks, recovery, operator actions, a
statement added later) is counted without having to know the leg's previous state.

On PostgreSQL each backend counts into rows of its own (``shard`` = its pid), so concurrent
writers never update, wait on or deadlock over the same tally row; the scrape folds the rows of
backends that have gone into shard 0. Inserts are counted per statement (transition tables: a
10,000-leg job is one tally update, not 10,000). SQLite has one writer at a time: shard 0 only,
per row.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Frozen here: the histogram's buckets as this revision made them (milliseconds).
BOUNDS_MS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
BUCKETS = [f"le_{bound}_ms" for bound in BOUNDS_MS]
CALL_COLUMNS = ["calls", "total_ms", *BUCKETS]

# (table, its tally, the columns a tally row is keyed by besides the shard)
LEGS = ("legs", "leg_tallies", ("provider", "state"))
JOBS = ("jobs", "job_tallies", ("state",))


def _create_tables() -> None:
    op.create_table(
        "leg_tallies",
        sa.Column("shard", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("provider", sa.String(16), primary_key=True),
        sa.Column("state", sa.String(32), primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "job_tallies",
        sa.Column("shard", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("state", sa.String(32), primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "call_tallies",
        sa.Column("shard", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("provider", sa.String(16), primary_key=True),
        sa.Column("operation", sa.String(64), primary_key=True),
        sa.Column("calls", sa.BigInteger, nullable=False),
        sa.Column("total_ms", sa.Float, nullable=False),
        *(sa.Column(bucket, sa.BigInteger, nullable=False) for bucket in BUCKETS),
    )


def _upsert(tally: str, keys: tuple[str, ...], columns: list[str], select: str) -> str:
    """INSERT INTO tally SELECT ... adding to the row with the same key if there is one."""
    names = ", ".join(["shard", *keys, *columns])
    added = ", ".join(f"{c} = {tally}.{c} + excluded.{c}" for c in columns)
    return (f"INSERT INTO {tally} ({names}) {select} "
            f"ON CONFLICT (shard, {', '.join(keys)}) DO UPDATE SET {added}")


def _call_figures(row: str, sign: str) -> str:
    """calls, total_ms and the buckets of one attempt row (OLD or NEW), times ``sign``."""
    buckets = ", ".join(f"CASE WHEN {row}.latency_ms <= {bound} THEN {sign} ELSE 0 END"
                        for bound in BOUNDS_MS)
    return f"{sign}, {sign} * {row}.latency_ms, {buckets}"


def _count_rows(shard: str, table: tuple[str, str, tuple[str, ...]],
                *rows: tuple[str, str]) -> str:
    """Add ``sign`` to the tally of each (row, sign): OLD or NEW. One statement: a leg changing
    state is one upsert of two rows (their keys differ, or the trigger would not fire)."""
    _name, tally, keys = table
    values = ", ".join("(" + ", ".join([shard, *(f"{row}.{key}" for key in keys), sign]) + ")"
                       for row, sign in rows)
    names = ", ".join(["shard", *keys, "n"])
    return (f"INSERT INTO {tally} ({names}) VALUES {values} "
            f"ON CONFLICT (shard, {', '.join(keys)}) DO UPDATE SET n = {tally}.n + excluded.n")


def _count_call(shard: str, row: str, sign: str) -> str:
    return _upsert(
        "call_tallies", ("provider", "operation"), CALL_COLUMNS,
        f"SELECT {shard}, legs.provider, {row}.operation, {_call_figures(row, sign)} "
        f"FROM legs WHERE legs.id = {row}.leg_id AND {row}.latency_ms IS NOT NULL")


def _changed(columns: tuple[str, ...], distinct: str) -> str:
    return " OR ".join(f"OLD.{c} {distinct} NEW.{c}" for c in columns)


def _sqlite_triggers() -> list[str]:
    statements = []
    for table in (LEGS, JOBS):
        name, _tally, keys = table
        plus, minus = _count_rows("0", table, ("NEW", "1")), _count_rows("0", table, ("OLD", "-1"))
        change = _count_rows("0", table, ("OLD", "-1"), ("NEW", "1"))
        statements += [
            f"CREATE TRIGGER tally_{name}_insert AFTER INSERT ON {name} BEGIN {plus}; END",
            f"CREATE TRIGGER tally_{name}_update AFTER UPDATE OF {', '.join(keys)} ON {name} "
            f"WHEN {_changed(keys, 'IS NOT')} BEGIN {change}; END",
            f"CREATE TRIGGER tally_{name}_delete AFTER DELETE ON {name} BEGIN {minus}; END",
        ]
    call = ("latency_ms", "operation", "leg_id")
    plus, minus = _count_call("0", "NEW", "1"), _count_call("0", "OLD", "-1")
    return [
        *statements,
        "CREATE TRIGGER tally_attempts_insert AFTER INSERT ON attempts "
        f"WHEN NEW.latency_ms IS NOT NULL BEGIN {plus}; END",
        # A call's first row is filled in once it is made (NULL latency -> its latency): one
        # trigger per side, so that the usual fill runs one statement, not a no-op as well.
        f"CREATE TRIGGER tally_attempts_update_old AFTER UPDATE OF {', '.join(call)} "
        f"ON attempts WHEN OLD.latency_ms IS NOT NULL AND ({_changed(call, 'IS NOT')}) "
        f"BEGIN {minus}; END",
        f"CREATE TRIGGER tally_attempts_update AFTER UPDATE OF {', '.join(call)} ON attempts "
        f"WHEN NEW.latency_ms IS NOT NULL AND ({_changed(call, 'IS NOT')}) BEGIN {plus}; END",
        "CREATE TRIGGER tally_attempts_delete AFTER DELETE ON attempts "
        f"WHEN OLD.latency_ms IS NOT NULL BEGIN {minus}; END",
    ]


def _plpgsql(name: str, body: str) -> str:
    return (f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body} "
            "RETURN NULL; END $$")


def _postgresql_triggers() -> list[str]:
    shard = "pg_backend_pid()"
    statements = []
    for table in (LEGS, JOBS):
        name, tally, keys = table
        key_list = ", ".join(keys)
        inserted = _upsert(tally, keys, ["n"], f"SELECT {shard}, {key_list}, count(*) "
                                               f"FROM inserted GROUP BY {key_list}")
        # Inserts are counted per statement (above); this one counts updates and deletes.
        rows = (f"IF TG_OP = 'UPDATE' THEN "
                f"{_count_rows(shard, table, ('OLD', '-1'), ('NEW', '1'))}; "
                f"ELSE {_count_rows(shard, table, ('OLD', '-1'))}; END IF;")
        statements += [
            _plpgsql(f"tally_inserted_{name}", f"{inserted};"),
            _plpgsql(f"tally_{name}_rows", rows),
            f"CREATE TRIGGER tally_{name}_insert AFTER INSERT ON {name} REFERENCING NEW TABLE "
            f"AS inserted FOR EACH STATEMENT EXECUTE FUNCTION tally_inserted_{name}()",
            f"CREATE TRIGGER tally_{name}_update AFTER UPDATE OF {key_list} ON {name} "
            f"FOR EACH ROW WHEN ({_changed(keys, 'IS DISTINCT FROM')}) "
            f"EXECUTE FUNCTION tally_{name}_rows()",
            f"CREATE TRIGGER tally_{name}_delete AFTER DELETE ON {name} FOR EACH ROW "
            f"EXECUTE FUNCTION tally_{name}_rows()",
        ]
    inserted = _upsert(
        "call_tallies", ("provider", "operation"), CALL_COLUMNS,
        f"SELECT {shard}, legs.provider, a.operation, count(*), sum(a.latency_ms), "
        + ", ".join(f"sum(CASE WHEN a.latency_ms <= {bound} THEN 1 ELSE 0 END)"
                    for bound in BOUNDS_MS)
        + " FROM inserted a JOIN legs ON legs.id = a.leg_id WHERE a.latency_ms IS NOT NULL "
          "GROUP BY legs.provider, a.operation")
    rows = (f"IF TG_OP <> 'INSERT' THEN {_count_call(shard, 'OLD', '-1')}; END IF; "
            f"IF TG_OP <> 'DELETE' THEN {_count_call(shard, 'NEW', '1')}; END IF;")
    call = ("latency_ms", "operation", "leg_id")
    return [
        *statements,
        _plpgsql("tally_inserted_attempts", f"{inserted};"),
        _plpgsql("tally_attempts_rows", rows),
        "CREATE TRIGGER tally_attempts_insert AFTER INSERT ON attempts REFERENCING NEW TABLE "
        "AS inserted FOR EACH STATEMENT EXECUTE FUNCTION tally_inserted_attempts()",
        f"CREATE TRIGGER tally_attempts_update AFTER UPDATE OF {', '.join(call)} ON attempts "
        f"FOR EACH ROW WHEN ({_changed(call, 'IS DISTINCT FROM')}) "
        "EXECUTE FUNCTION tally_attempts_rows()",
        "CREATE TRIGGER tally_attempts_delete AFTER DELETE ON attempts FOR EACH ROW "
        "WHEN (OLD.latency_ms IS NOT NULL) EXECUTE FUNCTION tally_attempts_rows()",
    ]


def _seed() -> list[str]:
    """The tallies of the rows already there (the triggers count every later change)."""
    buckets = ", ".join(f"sum(CASE WHEN a.latency_ms <= {bound} THEN 1 ELSE 0 END)"
                        for bound in BOUNDS_MS)
    return [
        "INSERT INTO leg_tallies (shard, provider, state, n) "
        "SELECT 0, provider, state, count(*) FROM legs GROUP BY provider, state",
        "INSERT INTO job_tallies (shard, state, n) SELECT 0, state, count(*) FROM jobs "
        "GROUP BY state",
        f"INSERT INTO call_tallies (shard, provider, operation, {', '.join(CALL_COLUMNS)}) "
        f"SELECT 0, legs.provider, a.operation, count(*), sum(a.latency_ms), {buckets} "
        "FROM attempts a JOIN legs ON legs.id = a.leg_id WHERE a.latency_ms IS NOT NULL "
        "GROUP BY legs.provider, a.operation",
    ]


def upgrade() -> None:
    _create_tables()
    dialect = op.get_bind().dialect.name
    # Triggers first: on PostgreSQL creating one locks its table against writers until this
    # transaction commits, so the seed below and the triggers see the same rows. (SQLite's
    # migration holds the ledger's write lock throughout.)
    triggers = _postgresql_triggers() if dialect == "postgresql" else _sqlite_triggers()
    for statement in [*triggers, *_seed()]:
        op.execute(statement)


def downgrade() -> None:
    """Back to before the tallies: their triggers, functions and tables go; the rows counted
    stay where they are (an upgrade counts them again)."""
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        for trigger, table in conn.execute(sa.text(
                "SELECT t.tgname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE t.tgname LIKE 'tally\\_%' AND NOT t.tgisinternal")).all():
            op.execute(f'DROP TRIGGER "{trigger}" ON "{table}"')
        for (function,) in conn.execute(sa.text(
                "SELECT proname FROM pg_proc WHERE proname LIKE 'tally\\_%'")).all():
            op.execute(f'DROP FUNCTION "{function}"()')
    else:
        for (trigger,) in conn.execute(sa.text(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' "
                "AND name LIKE 'tally\\_%' ESCAPE '\\'")).all():
            op.execute(f'DROP TRIGGER "{trigger}"')
    for table in ("call_tallies", "job_tallies", "leg_tallies"):
        op.drop_table(table)
