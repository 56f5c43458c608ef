"""log-in lock-outs leave the database

A wrong password no longer writes a failure count and a lock on the account row: the counts live in memory per
source address (callcenter.users.login_guard), so a flood of log-ins is not a flood of writes an SOS waits behind,
and nobody can lock an account for everyone else.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 20:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE … DROP COLUMN (SQLite 3.35+), never a batch copy: copying ``users`` would drop the old table,
# and with foreign keys on that sets every reference to a user (audit entries, orders, calls) to NULL.
def upgrade() -> None:
    op.drop_column('users', 'failed_logins')
    op.drop_column('users', 'locked_until')


def downgrade() -> None:
    op.add_column('users', sa.Column('locked_until', callcenter.db.base.UTCDateTime(timezone=True), nullable=True))
    op.add_column('users', sa.Column('failed_logins', sa.Integer(), nullable=False, server_default='0'))
