"""Ingest keys

The signed HTTP ingest of device messages (issue 15): the keys gateways and vendor clouds sign with, the devices
each key may submit for, and the nonces seen within the timestamp window (anti-replay).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('ingest_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('secret', sa.String(length=128), nullable=False),
    sa.Column('created_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ingest_keys')),
    sa.UniqueConstraint('key_id', name=op.f('uq_ingest_keys_key_id'))
    )
    op.create_table('ingest_key_devices',
    sa.Column('ingest_key_id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['ingest_key_id'], ['ingest_keys.id'],
                            name=op.f('fk_ingest_key_devices_ingest_key_id_ingest_keys'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_ingest_key_devices_device_id_devices'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('ingest_key_id', 'device_id', name=op.f('pk_ingest_key_devices'))
    )
    op.create_index(op.f('ix_ingest_key_devices_device_id'), 'ingest_key_devices', ['device_id'], unique=False)
    op.create_table('ingest_nonces',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key_id', sa.String(length=40), nullable=False),
    sa.Column('nonce', sa.String(length=64), nullable=False),
    sa.Column('seen_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ingest_nonces')),
    sa.UniqueConstraint('key_id', 'nonce', name=op.f('uq_ingest_nonces_key_id_nonce'))
    )
    op.create_index(op.f('ix_ingest_nonces_seen_at'), 'ingest_nonces', ['seen_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_ingest_nonces_seen_at'), table_name='ingest_nonces')
    op.drop_table('ingest_nonces')
    op.drop_index(op.f('ix_ingest_key_devices_device_id'), table_name='ingest_key_devices')
    op.drop_table('ingest_key_devices')
    op.drop_table('ingest_keys')
