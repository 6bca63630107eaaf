"""Finding jobs (issue 17): the leg's target key, and indexes behind the jobs list's filters.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from worker.domain.request import target_key

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BACKFILL_BATCH = 1000


def upgrade() -> None:
    op.add_column("legs", sa.Column("target_key", sa.String(200), nullable=True))
    legs = sa.table("legs", sa.column("id", sa.String), sa.column("target", sa.JSON),
                    sa.column("target_key", sa.String))
    conn = op.get_bind()
    # Existing legs get their key in batches (a big ledger is not read into memory at once).
    last = ""
    while True:
        rows = conn.execute(sa.select(legs.c.id, legs.c.target).where(legs.c.id > last)
                            .order_by(legs.c.id).limit(BACKFILL_BATCH)).all()
        if not rows:
            break
        keyed = [{"b_id": row.id, "b_key": target_key(row.target or {})} for row in rows]
        conn.execute(sa.update(legs).where(legs.c.id == sa.bindparam("b_id"))
                     .values(target_key=sa.bindparam("b_key")), keyed)
        last = rows[-1].id
    op.create_index("ix_legs_target_key", "legs", ["target_key", "job_id"])
    op.create_index("ix_legs_provider_job", "legs", ["provider", "job_id"])


def downgrade() -> None:
    op.drop_index("ix_legs_provider_job", table_name="legs")
    op.drop_index("ix_legs_target_key", table_name="legs")
    op.drop_column("legs", "target_key")
