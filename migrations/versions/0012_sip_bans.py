"""SIP bans

Source addresses SIP brute-force protection banned in Asterisk's PJSIP ACL: kept so that a restart keeps the bans
in force, with when each was made, until when, and when and by whom it was lifted.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('sip_bans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('address', sa.String(length=45), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('accounts', sa.JSON(), nullable=False),
    sa.Column('first_failure_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('banned_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lifted_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lifted_by', sa.String(length=100), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sip_bans'))
    )
    op.create_index(op.f('ix_sip_bans_expires_at'), 'sip_bans', ['expires_at'], unique=False)
    op.create_index('uq_sip_bans_address_unlifted', 'sip_bans', ['address'], unique=True,
                    sqlite_where=sa.text('lifted_at IS NULL'), postgresql_where=sa.text('lifted_at IS NULL'))


def downgrade() -> None:
    op.drop_index('uq_sip_bans_address_unlifted', table_name='sip_bans')
    op.drop_index(op.f('ix_sip_bans_expires_at'), table_name='sip_bans')
    op.drop_table('sip_bans')
