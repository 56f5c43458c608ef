"""Contact cascades

Elders' responder lists (their contacts in calling order, each with a channel, a wait and an expected arrival),
the cascades run for alarms and orders, and each responder reached with the key they pressed (issue 16).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-08 02:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = '0023'
down_revision: str | None = '0022'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('responders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('elder_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.Enum('call', 'sms', 'both', name='responder_channel', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('wait_seconds', sa.Integer(), nullable=False),
    sa.Column('eta_minutes', sa.Integer(), nullable=False),
    sa.Column('created_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_responders_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['elder_id'], ['elders.id'], name=op.f('fk_responders_elder_id_elders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_responders')),
    sa.UniqueConstraint('elder_id', 'position', name=op.f('uq_responders_elder_id_position'))
    )
    with op.batch_alter_table('responders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_responders_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_responders_elder_id'), ['elder_id'], unique=False)

    op.create_table('cascades',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('elder_id', sa.Integer(), nullable=False),
    sa.Column('alarm_id', sa.Integer(), nullable=True),
    sa.Column('work_order_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Enum('alarm', 'unanswered_sos', 'missed_checkin', name='cascade_reason', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('state', sa.Enum('running', 'paused', 'accepted', 'exhausted', 'stopped', name='cascade_state', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('steps', sa.Integer(), nullable=False),
    sa.Column('next_position', sa.Integer(), nullable=False),
    sa.Column('step_deadline', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('started_by', sa.String(length=100), nullable=False),
    sa.Column('started_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('accepted_by', sa.String(length=100), nullable=True),
    sa.Column('accepted_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('eta_minutes', sa.Integer(), nullable=True),
    sa.Column('finished_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['alarm_id'], ['alarms.id'], name=op.f('fk_cascades_alarm_id_alarms'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['elder_id'], ['elders.id'], name=op.f('fk_cascades_elder_id_elders'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['work_order_id'], ['work_orders.id'], name=op.f('fk_cascades_work_order_id_work_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cascades'))
    )
    with op.batch_alter_table('cascades', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cascades_alarm_id'), ['alarm_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cascades_elder_id'), ['elder_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cascades_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_cascades_step_deadline'), ['step_deadline'], unique=False)
        batch_op.create_index(batch_op.f('ix_cascades_work_order_id'), ['work_order_id'], unique=False)

    op.create_table('cascade_calls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cascade_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('channel', sa.Enum('call', 'sms', 'both', name='responder_channel', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('state', sa.Enum('calling', 'accepted', 'declined', 'to_agent', 'no_key', 'no_answer', 'failed', 'cancelled', 'sms_only', name='cascade_call_state', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('eta_minutes', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=4), nullable=True),
    sa.Column('key_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('call_id', sa.Integer(), nullable=True),
    sa.Column('started_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['call_id'], ['calls.id'], name=op.f('fk_cascade_calls_call_id_calls'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['cascade_id'], ['cascades.id'], name=op.f('fk_cascade_calls_cascade_id_cascades'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_cascade_calls_contact_id_contacts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['job_id'], ['outbound_jobs.id'], name=op.f('fk_cascade_calls_job_id_outbound_jobs'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cascade_calls'))
    )
    with op.batch_alter_table('cascade_calls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cascade_calls_cascade_id'), ['cascade_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cascade_calls_job_id'), ['job_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('cascade_calls', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cascade_calls_job_id'))
        batch_op.drop_index(batch_op.f('ix_cascade_calls_cascade_id'))

    op.drop_table('cascade_calls')
    with op.batch_alter_table('cascades', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cascades_work_order_id'))
        batch_op.drop_index(batch_op.f('ix_cascades_step_deadline'))
        batch_op.drop_index(batch_op.f('ix_cascades_state'))
        batch_op.drop_index(batch_op.f('ix_cascades_elder_id'))
        batch_op.drop_index(batch_op.f('ix_cascades_alarm_id'))

    op.drop_table('cascades')
    with op.batch_alter_table('responders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_responders_elder_id'))
        batch_op.drop_index(batch_op.f('ix_responders_contact_id'))

    op.drop_table('responders')
