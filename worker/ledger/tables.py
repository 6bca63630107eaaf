"""The ledger's tables. Timestamps are stored timezone-aware, in UTC.

Idempotency lives here: a job's id is derived from its idempotency key and is the primary key;
legs are unique per (job, position); callback pages are unique per (operation, code, page), so a
duplicate page changes nothing. A leg's latest evidence lives in its ``reconciliation`` column;
figures that do not add up yet wait in ``provisional_evidence`` until they do or their deadline.
A job's legs have the positions 0 to n-1, in the order of the request (reads page by position).

The ``*_tallies`` tables are running counts for ``/metrics``, kept by database triggers
(migration 0004) in the same transaction as the rows they count, so that a scrape reads a few
dozen rows whatever the ledger's history. A migration that rebuilds ``jobs``, ``legs`` or
``attempts`` (SQLite's batch mode copies a table and drops its triggers) must install the
triggers again (``tests/integration/test_tallies.py`` fails otherwise).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect

from worker.services.records import LATENCY_BOUNDS_MS


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no offset of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the ledger")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

# Python None is SQL NULL (not the JSON text "null"), so "IS NULL" finds a missing value.
NULLABLE_JSON = JSON(none_as_null=True)

UUID_LEN = 36

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(UUID_LEN), primary_key=True),
    Column("idempotency_key", String(200), nullable=True, unique=True),
    Column("state", String(32), nullable=False),
    Column("request", NULLABLE_JSON, nullable=True),
    Column("errors", NULLABLE_JSON, nullable=True),
    Column("reconciliation", NULLABLE_JSON, nullable=True),
    Column("body_sha256", String(64), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("version", Integer, nullable=False, default=0),
    Index("ix_jobs_state_created", "state", "created_at"),
    Index("ix_jobs_created", "created_at", "id"),
)

legs = Table(
    "legs",
    metadata,
    Column("id", String(UUID_LEN), primary_key=True),
    Column("job_id", String(UUID_LEN), ForeignKey("jobs.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("provider", String(16), nullable=False),
    Column("target", JSON, nullable=False),
    Column("state", String(32), nullable=False),
    Column("reason", String(32), nullable=True),
    Column("detail", Text, nullable=True),
    Column("already_cancelled", Boolean, nullable=False, default=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("retries", Integer, nullable=False, default=0),
    Column("needs_resolve", Boolean, nullable=False, default=False),
    Column("provider_reference", String(200), nullable=True),
    Column("at_risk", Boolean, nullable=False, default=False),
    Column("lease_token", String(UUID_LEN), nullable=True),
    Column("lease_expires_at", UTCDateTime(), nullable=True),
    Column("next_attempt_at", UTCDateTime(), nullable=True),
    Column("reconciliation", NULLABLE_JSON, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("version", Integer, nullable=False, default=0),
    # Paywall: the code callbacks name the leg by, how many payments the cancel covered, and
    # how far recovery of lost callbacks has gone (0 none, 1 re-send asked, 2 query read).
    Column("match_key", String(200), nullable=True),
    Column("expected_count", Integer, nullable=True),
    Column("recovery_stage", Integer, nullable=False, default=0),
    # A cancelled leg whose figures do not add up yet (a 6DOT50 payment still settling): the
    # latest figures, when the wait ends (CALLBACK_TIMEOUT_SECONDS after the cancel), and how
    # many reads it took; its next read is due at next_attempt_at.
    Column("provisional_evidence", NULLABLE_JSON, nullable=True),
    Column("evidence_deadline", UTCDateTime(), nullable=True),
    Column("evidence_reads", Integer, nullable=False, default=0),
    # The batch id, merchant unique code or payment reference the leg's target is found by
    # (`GET /api/v1/jobs?target=`); indexed, as is the provider, for the jobs list's filters.
    Column("target_key", String(200), nullable=True),
    UniqueConstraint("job_id", "position", name="uq_legs_job_position"),
    Index("ix_legs_job_state", "job_id", "state"),
    Index("ix_legs_state_next", "state", "next_attempt_at"),
    Index("ix_legs_match_key", "match_key"),
    Index("ix_legs_reference", "provider_reference"),
    Index("ix_legs_target_key", "target_key", "job_id"),
    Index("ix_legs_provider_job", "provider", "job_id"),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("leg_id", String(UUID_LEN), ForeignKey("legs.id"), nullable=False, index=True),
    Column("operation", String(64), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("http_status", Integer, nullable=True),
    Column("outcome", String(64), nullable=True),
    Column("provider_code", String(64), nullable=True),
    Column("request_id", String(128), nullable=True),
    Column("latency_ms", Float, nullable=True),
    # The answer as received, secrets masked, at most 64 KiB (worker.providers.bodies).
    Column("response_body", Text, nullable=True),
)

# One row per Paywall callback page: the raw body as received and its parsed payments (as JSON
# rows), both zlib-compressed, which costs less than writing them out (pages are ~140 KiB), and
# the page's totals per scope; stored together. A page delivered twice is the same row.
callback_pages = Table(
    "callback_pages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("bulk_payment_id", String(64), nullable=False),
    Column("merchant_unique_code", String(200), nullable=False),
    Column("page_number", Integer, nullable=False),
    Column("total_pages", Integer, nullable=False),
    Column("body_zlib", LargeBinary, nullable=False),
    Column("payments_zlib", LargeBinary, nullable=False),
    Column("totals", JSON, nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    UniqueConstraint(
        "bulk_payment_id", "merchant_unique_code", "page_number", name="uq_callback_page"
    ),
    Index("ix_callback_pages_code", "merchant_unique_code"),
)

# issue 17: what happened to a job besides its legs' own rounds, newest last (the job's
# ``events``): operator actions (retry, resolve, abandon) with their note, and idempotency
# conflicts. Written once, never updated. Migration 0006.
job_events = Table(
    "job_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(UUID_LEN), ForeignKey("jobs.id"), nullable=False),
    Column("leg_id", String(UUID_LEN), nullable=True),
    Column("type", String(64), nullable=False),
    Column("actor", String(200), nullable=True),
    Column("note", Text, nullable=True),
    Column("details", NULLABLE_JSON, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_job_events_job", "job_id", "id"),
)

def latency_column(bound_ms: int) -> str:
    return f"le_{bound_ms}_ms"


# shard: 0 on SQLite (one writer at a time); on PostgreSQL the pid of the backend that wrote the
# count, so that concurrent writers never update (and wait on) the same row; a finished backend's
# rows are folded into shard 0 by the next scrape. A count is the sum over shards.
leg_tallies = Table(
    "leg_tallies",
    metadata,
    Column("shard", Integer, primary_key=True, autoincrement=False),
    Column("provider", String(16), primary_key=True),
    Column("state", String(32), primary_key=True),
    Column("n", BigInteger, nullable=False),
)

job_tallies = Table(
    "job_tallies",
    metadata,
    Column("shard", Integer, primary_key=True, autoincrement=False),
    Column("state", String(32), primary_key=True),
    Column("n", BigInteger, nullable=False),
)

call_tallies = Table(
    "call_tallies",
    metadata,
    Column("shard", Integer, primary_key=True, autoincrement=False),
    Column("provider", String(16), primary_key=True),
    Column("operation", String(64), primary_key=True),
    Column("calls", BigInteger, nullable=False),
    Column("total_ms", Float, nullable=False),
    *(Column(latency_column(bound), BigInteger, nullable=False) for bound in LATENCY_BOUNDS_MS),
)

# Outcomes (issue 17): the outbox of what a job owes its producer once it ends, a row per
# (job, kind, final state): the unique constraint is "once per final state". Kinds: `webhook`
# (destination {"url"}) and `reply` (destination {"task", "queue"}). Status pending, delivered or
# failed; a pending row is due at next_attempt_at (the sweep re-dispatches overdue ones).
outcome_deliveries = Table(
    "outcome_deliveries",
    metadata,
    Column("id", String(UUID_LEN), primary_key=True),
    Column("job_id", String(UUID_LEN), ForeignKey("jobs.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("final_state", String(32), nullable=False),
    Column("destination", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_status", Integer, nullable=True),
    Column("last_error", String(200), nullable=True),
    Column("next_attempt_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("delivered_at", UTCDateTime(), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("job_id", "kind", "final_state", name="uq_outcome_once_per_state"),
    Index("ix_outcome_status_next", "status", "next_attempt_at"),
)
