"""Alarm offers

The distribution of alarms to agents (issue 15): whose panel an alarm is offered on and since when, when it was
first offered and how often, and when it overflowed to the supervisors past the answer target.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('alarms') as batch:
        batch.add_column(sa.Column('offered_to', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('offered_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('first_offered_at', callcenter.db.base.UTCDateTime(timezone=True),
                                   nullable=True))
        batch.add_column(sa.Column('offer_count', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('overflowed_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('alarms') as batch:
        batch.drop_column('overflowed_at')
        batch.drop_column('offer_count')
        batch.drop_column('first_offered_at')
        batch.drop_column('offered_at')
        batch.drop_column('offered_to')
