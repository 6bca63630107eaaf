"""Paywall: callback pages, and what a leg needs to match and recover them.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from worker.ledger.tables import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("legs") as batch:
        batch.add_column(sa.Column("match_key", sa.String(200), nullable=True))
        batch.add_column(sa.Column("expected_count", sa.Integer, nullable=True))
        batch.add_column(
            sa.Column("recovery_stage", sa.Integer, nullable=False, server_default="0")
        )
    op.create_index("ix_legs_match_key", "legs", ["match_key"])
    op.create_index("ix_legs_reference", "legs", ["provider_reference"])
    op.create_table(
        "callback_pages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("bulk_payment_id", sa.String(64), nullable=False),
        sa.Column("merchant_unique_code", sa.String(200), nullable=False),
        sa.Column("page_number", sa.Integer, nullable=False),
        sa.Column("total_pages", sa.Integer, nullable=False),
        sa.Column("body_zlib", sa.LargeBinary, nullable=False),
        sa.Column("payments_zlib", sa.LargeBinary, nullable=False),
        sa.Column("totals", sa.JSON, nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint(
            "bulk_payment_id", "merchant_unique_code", "page_number", name="uq_callback_page"
        ),
    )
    op.create_index("ix_callback_pages_code", "callback_pages", ["merchant_unique_code"])
