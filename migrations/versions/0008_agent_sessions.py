"""agents' queue sessions

Who is logged in to which queues and who is paused (with the reason), kept by the platform: Asterisk holds queue
members in memory only, and after it crashes or restarts the agent service puts them back from this table.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 20:10:26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('agent_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('interface', sa.String(length=64), nullable=False),
    sa.Column('queues', sa.JSON(), nullable=False),
    sa.Column('paused', sa.Boolean(), nullable=False),
    sa.Column('pause_reason', sa.String(length=100), nullable=True),
    sa.Column('updated_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_agent_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agent_sessions')),
    sa.UniqueConstraint('user_id', name=op.f('uq_agent_sessions_user_id'))
    )


def downgrade() -> None:
    op.drop_table('agent_sessions')
