"""Alarms

Device and sensor alarms (issue 15): the alarms with their state, outcome and work order, their precise location
and the device's details sealed at rest; and every device message the intake took, by the device's message id
(exactly-once alarms).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def upgrade() -> None:
    op.create_table('alarms',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('type', _enum('alarm_type', 'fall', 'inactivity', 'smoke', 'gas', 'water_leak', 'door_open_night',
                            'bed_exit', 'sos_silent', 'geofence', 'vital_sign'), nullable=False),
    sa.Column('severity', _enum('alarm_severity', 'critical', 'high', 'medium', 'low'), nullable=False),
    sa.Column('state', _enum('alarm_state', 'new', 'taken', 'responding', 'resolved'), nullable=False),
    sa.Column('source', _enum('alarm_source', 'mqtt', 'http', 'scaip', 'manual'), nullable=False),
    sa.Column('elder_id', sa.Integer(), nullable=True),
    sa.Column('device_id', sa.Integer(), nullable=True),
    sa.Column('device_message_id', sa.String(length=64), nullable=True),
    sa.Column('occurred_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('received_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('repeat_count', sa.Integer(), nullable=False),
    sa.Column('last_received_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('location', sa.Text(), nullable=True),  # sealed (callcenter.db.sealed)
    sa.Column('payload', sa.Text(), nullable=False),  # sealed
    sa.Column('work_order_id', sa.Integer(), nullable=True),
    sa.Column('taken_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('taken_by_id', sa.Integer(), nullable=True),
    sa.Column('taken_by', sa.String(length=100), nullable=True),
    sa.Column('responding_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolved_by_id', sa.Integer(), nullable=True),
    sa.Column('resolved_by', sa.String(length=100), nullable=True),
    sa.Column('outcome', _enum('alarm_outcome', 'genuine', 'false', 'test'), nullable=True),
    sa.Column('outcome_note', sa.Text(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_alarms_created_by_id_users'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_alarms_device_id_devices'),
                            ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['elder_id'], ['elders.id'], name=op.f('fk_alarms_elder_id_elders'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['resolved_by_id'], ['users.id'], name=op.f('fk_alarms_resolved_by_id_users'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['taken_by_id'], ['users.id'], name=op.f('fk_alarms_taken_by_id_users'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['work_order_id'], ['work_orders.id'], name=op.f('fk_alarms_work_order_id_work_orders'),
                            ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alarms')),
    sa.UniqueConstraint('device_id', 'device_message_id', name=op.f('uq_alarms_device_id_device_message_id')),
    sa.UniqueConstraint('number', name=op.f('uq_alarms_number'))
    )
    for column in ('device_id', 'elder_id', 'received_at', 'state', 'type', 'work_order_id'):
        op.create_index(op.f(f'ix_alarms_{column}'), 'alarms', [column], unique=False)
    op.create_table('alarm_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.String(length=64), nullable=False),
    sa.Column('alarm_id', sa.Integer(), nullable=False),
    sa.Column('merged', sa.Boolean(), nullable=False),
    sa.Column('received_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['alarm_id'], ['alarms.id'], name=op.f('fk_alarm_messages_alarm_id_alarms'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_alarm_messages_device_id_devices'),
                            ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alarm_messages')),
    sa.UniqueConstraint('device_id', 'message_id', name=op.f('uq_alarm_messages_device_id_message_id'))
    )
    op.create_index(op.f('ix_alarm_messages_alarm_id'), 'alarm_messages', ['alarm_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_alarm_messages_alarm_id'), table_name='alarm_messages')
    op.drop_table('alarm_messages')
    for column in ('work_order_id', 'type', 'state', 'received_at', 'elder_id', 'device_id'):
        op.drop_index(op.f(f'ix_alarms_{column}'), table_name='alarms')
    op.drop_table('alarms')
