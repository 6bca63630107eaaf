"""Attempt rows keep the answer's body; a cancelled leg waits a bounded time for its figures.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from worker.ledger.tables import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("response_body", sa.Text, nullable=True))
    with op.batch_alter_table("legs") as batch:
        batch.add_column(sa.Column("provisional_evidence", sa.JSON, nullable=True))
        batch.add_column(sa.Column("evidence_deadline", UTCDateTime(), nullable=True))
        batch.add_column(
            sa.Column("evidence_reads", sa.Integer, nullable=False, server_default="0")
        )
