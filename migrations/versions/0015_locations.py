"""Locations

Positions from elders' devices (issue 15, seed 5.2): each fix once per (device, message id), WGS-84 and motion
sealed at rest, with accuracy, source and both clocks; geofences per elder (circle or polygon, sealed), their kind
and allowed hours; and each fence's last known side, so a crossing raises one alarm.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def upgrade() -> None:
    op.create_table('positions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('elder_id', sa.Integer(), nullable=True),
    sa.Column('message_id', sa.String(length=64), nullable=False),
    sa.Column('measured_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('received_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('fix', sa.Text(), nullable=False),  # sealed (callcenter.db.sealed)
    sa.Column('accuracy_m', sa.Float(), nullable=False),
    sa.Column('source', _enum('position_source', 'gps', 'lbs', 'wifi'), nullable=False),
    sa.Column('transport', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_positions_device_id_devices'),
                            ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['elder_id'], ['elders.id'], name=op.f('fk_positions_elder_id_elders'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_positions')),
    sa.UniqueConstraint('device_id', 'message_id', name=op.f('uq_positions_device_id_message_id'))
    )
    op.create_index('ix_positions_elder_id_measured_at', 'positions', ['elder_id', 'measured_at'], unique=False)
    op.create_table('geofences',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('elder_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('kind', _enum('geofence_kind', 'stay_inside', 'keep_out'), nullable=False),
    sa.Column('shape', _enum('geofence_shape', 'circle', 'polygon'), nullable=False),
    sa.Column('area', sa.Text(), nullable=False),  # sealed
    sa.Column('allowed_from', sa.Integer(), nullable=True),
    sa.Column('allowed_until', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['elder_id'], ['elders.id'], name=op.f('fk_geofences_elder_id_elders'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_geofences'))
    )
    op.create_index(op.f('ix_geofences_elder_id'), 'geofences', ['elder_id'], unique=False)
    op.create_table('geofence_states',
    sa.Column('geofence_id', sa.Integer(), nullable=False),
    sa.Column('side', _enum('geofence_side', 'inside', 'outside'), nullable=False),
    sa.Column('since', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_measured_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('position_id', sa.Integer(), nullable=True),
    sa.Column('alarm_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['alarm_id'], ['alarms.id'], name=op.f('fk_geofence_states_alarm_id_alarms'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['geofence_id'], ['geofences.id'], name=op.f('fk_geofence_states_geofence_id_geofences'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['position_id'], ['positions.id'], name=op.f('fk_geofence_states_position_id_positions'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('geofence_id', name=op.f('pk_geofence_states'))
    )


def downgrade() -> None:
    op.drop_table('geofence_states')
    op.drop_index(op.f('ix_geofences_elder_id'), table_name='geofences')
    op.drop_table('geofences')
    op.drop_index('ix_positions_elder_id_measured_at', table_name='positions')
    op.drop_table('positions')
