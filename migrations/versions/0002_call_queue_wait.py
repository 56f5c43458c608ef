"""call queue wait and source

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 18:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("queue_wait_seconds", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("source", sa.String(length=8), server_default="ami", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("source")
        batch_op.drop_column("queue_wait_seconds")
