"""log-in sessions, the second factor, when a password last changed

Every bearer token now names a row of ``user_sessions``: a log-out, a revocation, a disabled account, a changed
role or a new password ends tokens, panel pages and WebSockets at once (callcenter.users.sessions). Tokens issued
before this revision carry no session and are refused: everybody logs in again once.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ADD/DROP COLUMN, never a batch copy of ``users`` (see 0007).
def upgrade() -> None:
    op.add_column('users', sa.Column('totp_secret', sa.String(length=64), nullable=True))
    op.add_column('users', sa.Column('totp_enabled_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True))
    op.add_column('users', sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
    op.add_column('users', sa.Column('password_changed_at', callcenter.db.base.UTCDateTime(timezone=True),
                                     nullable=True))
    op.create_table('user_sessions',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('api', 'panel', name='user_session_kind', native_enum=False, create_constraint=True,
                              length=32), nullable=False),
    sa.Column('source_ip', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=200), nullable=True),
    sa.Column('created_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_reason', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_sessions_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_sessions'))
    )
    op.create_index('ix_user_sessions_user_id_revoked_at', 'user_sessions', ['user_id', 'revoked_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_user_sessions_user_id_revoked_at', table_name='user_sessions')
    op.drop_table('user_sessions')
    op.drop_column('users', 'password_changed_at')
    op.drop_column('users', 'totp_last_step')
    op.drop_column('users', 'totp_enabled_at')
    op.drop_column('users', 'totp_secret')
