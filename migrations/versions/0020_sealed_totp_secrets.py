"""Sealed second-factor secrets

Staff's TOTP secrets (users.totp_secret) are sealed at rest with the data keys, as personal data is (0013): whoever
reads a copy of the database (a backup, a dump) no longer gets every admin's and auditor's second factor with it.
Existing secrets are sealed here, in batches.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 23:30:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision: str = '0020'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000
PURPOSE = 'users.totp_secret'


def _keyring() -> Any:
    from callcenter.db.migrate import migration_keyring

    return migration_keyring(context.config.attributes)


def _convert(*, sealing: bool) -> None:
    """Copy totp_secret into totp_secret_new sealed (or opened), in batches by id; only accounts that have one."""
    bind = op.get_bind()
    users = sa.table('users', sa.column('id', sa.Integer()), sa.column('totp_secret', sa.Text()),
                     sa.column('totp_secret_new', sa.Text()))
    last = 0
    for _ in range(10_000_000 // BATCH + 1):  # bounded: more staff than any centre has
        rows = bind.execute(sa.select(users.c.id, users.c.totp_secret)
                            .where(users.c.id > last, users.c.totp_secret.is_not(None))
                            .order_by(users.c.id).limit(BATCH)).all()
        if not rows:
            return
        keyring = _keyring()
        updates = [{'row_id': row.id,
                    'secret': keyring.seal(row.totp_secret.encode(), PURPOSE) if sealing
                    else keyring.open(row.totp_secret, PURPOSE).decode()} for row in rows]
        bind.execute(users.update().where(users.c.id == sa.bindparam('row_id'))
                     .values(totp_secret_new=sa.bindparam('secret')), updates)
        last = rows[-1].id
    raise RuntimeError("users: more rows than this migration is bounded to")


def _swap(kind_before: Any) -> None:
    with op.batch_alter_table('users') as batch_op:
        batch_op.drop_column('totp_secret')
        batch_op.alter_column('totp_secret_new', new_column_name='totp_secret', existing_type=kind_before)


def upgrade() -> None:
    op.add_column('users', sa.Column('totp_secret_new', sa.Text(), nullable=True))
    _convert(sealing=True)
    _swap(sa.Text())


def downgrade() -> None:
    op.add_column('users', sa.Column('totp_secret_new', sa.String(length=64), nullable=True))
    _convert(sealing=False)
    _swap(sa.String(length=64))
