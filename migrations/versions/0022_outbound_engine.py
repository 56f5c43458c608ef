"""Outbound engine

The outbound engine's queue (issue 16): jobs (one person to reach for one purpose, with its priority, window and
retries) and their attempts (each dial's channel id, stored before the Originate is sent, and the key pressed), and
the purpose of an outbound call in the call log.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-08 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = '0022'
down_revision: str | None = '0021'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('outbound_jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.Enum('cascade', 'notification', 'callback', 'care_call', 'reminder', name='outbound_purpose', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('state', sa.Enum('queued', 'dialling', 'done', 'failed', 'expired', 'cancelled', name='outbound_job_state', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('owner', sa.String(length=32), nullable=False),
    sa.Column('owner_ref', sa.Integer(), nullable=True),
    sa.Column('target', sa.String(length=64), nullable=False),
    sa.Column('via_trunk', sa.Boolean(), nullable=False),
    sa.Column('dial_basis', sa.String(length=16), nullable=False),
    sa.Column('elder_id', sa.Integer(), nullable=True),
    sa.Column('alarm_id', sa.Integer(), nullable=True),
    sa.Column('work_order_id', sa.Integer(), nullable=True),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('script', sa.JSON(), nullable=False),
    sa.Column('ring_seconds', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('retry_seconds', sa.Integer(), nullable=False),
    sa.Column('retry_factor', sa.Float(), nullable=False),
    sa.Column('quiet_hours', sa.Boolean(), nullable=False),
    sa.Column('window_start', sa.String(length=5), nullable=True),
    sa.Column('window_end', sa.String(length=5), nullable=True),
    sa.Column('expires_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('next_attempt_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=True),
    sa.Column('digit', sa.String(length=4), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['alarm_id'], ['alarms.id'], name=op.f('fk_outbound_jobs_alarm_id_alarms'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['elder_id'], ['elders.id'], name=op.f('fk_outbound_jobs_elder_id_elders'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['work_order_id'], ['work_orders.id'], name=op.f('fk_outbound_jobs_work_order_id_work_orders'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbound_jobs'))
    )
    with op.batch_alter_table('outbound_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbound_jobs_alarm_id'), ['alarm_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbound_jobs_elder_id'), ['elder_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbound_jobs_next_attempt_at'), ['next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbound_jobs_owner_ref'), ['owner_ref'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbound_jobs_purpose'), ['purpose'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbound_jobs_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbound_jobs_work_order_id'), ['work_order_id'], unique=False)

    op.create_table('outbound_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('channel_id', sa.String(length=64), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=True),
    sa.Column('state', sa.Enum('dialling', 'uncertain', 'answered', 'completed', 'no_answer', 'busy', 'failed', 'never_rang', name='outbound_attempt_state', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('reason', sa.String(length=100), nullable=True),
    sa.Column('started_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('answered_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ended_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('digit', sa.String(length=4), nullable=True),
    sa.Column('digit_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('choice', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['call_id'], ['calls.id'], name=op.f('fk_outbound_attempts_call_id_calls'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['job_id'], ['outbound_jobs.id'], name=op.f('fk_outbound_attempts_job_id_outbound_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbound_attempts')),
    sa.UniqueConstraint('channel_id', name=op.f('uq_outbound_attempts_channel_id'))
    )
    with op.batch_alter_table('outbound_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbound_attempts_call_id'), ['call_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbound_attempts_job_id'), ['job_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbound_attempts_state'), ['state'], unique=False)

    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purpose', sa.String(length=24), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_column('purpose')

    with op.batch_alter_table('outbound_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbound_attempts_state'))
        batch_op.drop_index(batch_op.f('ix_outbound_attempts_job_id'))
        batch_op.drop_index(batch_op.f('ix_outbound_attempts_call_id'))

    op.drop_table('outbound_attempts')
    with op.batch_alter_table('outbound_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbound_jobs_work_order_id'))
        batch_op.drop_index(batch_op.f('ix_outbound_jobs_state'))
        batch_op.drop_index(batch_op.f('ix_outbound_jobs_purpose'))
        batch_op.drop_index(batch_op.f('ix_outbound_jobs_owner_ref'))
        batch_op.drop_index(batch_op.f('ix_outbound_jobs_next_attempt_at'))
        batch_op.drop_index(batch_op.f('ix_outbound_jobs_elder_id'))
        batch_op.drop_index(batch_op.f('ix_outbound_jobs_alarm_id'))

    op.drop_table('outbound_jobs')
