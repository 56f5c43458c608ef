"""Positions' retention

Positions past CC_POSITIONS_RETENTION_DAYS are removed by the fix's time (callcenter/locations/retention.py): an
index on it lets each batch find them without reading the whole table.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08 00:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0021'
down_revision: str | None = '0020'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_positions_measured_at', 'positions', ['measured_at'])


def downgrade() -> None:
    op.drop_index('ix_positions_measured_at', table_name='positions')
