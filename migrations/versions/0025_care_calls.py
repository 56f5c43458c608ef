"""Care calls

Proactive care calls (issue 16, seed 5.8): schedules per elder (daily, weekly or custom check-ins, birthday and
festival greetings, each in a window of the local day) and the care records the planner makes, one per schedule
and local day (unique: a day's call is never planned twice), with the outcome, the calls, the escalation's work
order and who dealt with an exception.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-08 02:02:07.342107
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = '0025'
down_revision: str | None = '0024'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('care_schedules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('elder_id', sa.Integer(), nullable=False),
    sa.Column('recurrence', sa.Enum('daily', 'weekly', 'custom', 'birthday', 'festivals', name='care_recurrence', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('weekdays', sa.JSON(), nullable=False),
    sa.Column('dates', sa.JSON(), nullable=False),
    sa.Column('festivals', sa.JSON(), nullable=False),
    sa.Column('birthday_calendar', sa.Enum('solar', 'lunar', name='care_birthday_calendar', native_enum=False, create_constraint=True, length=32), nullable=True),
    sa.Column('window_start', sa.String(length=5), nullable=False),
    sa.Column('window_end', sa.String(length=5), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('automatic', sa.Boolean(), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['elder_id'], ['elders.id'], name=op.f('fk_care_schedules_elder_id_elders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_care_schedules'))
    )
    with op.batch_alter_table('care_schedules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_care_schedules_elder_id'), ['elder_id'], unique=False)

    op.create_table('care_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('elder_id', sa.Integer(), nullable=False),
    sa.Column('schedule_id', sa.Integer(), nullable=True),
    sa.Column('local_date', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('occasion', sa.String(length=32), nullable=True),
    sa.Column('window_start', sa.String(length=5), nullable=False),
    sa.Column('window_end', sa.String(length=5), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('outcome', sa.Enum('planned', 'well', 'call_back', 'agent', 'no_key', 'missed', 'greeted', 'unanswered', 'cancelled', name='care_outcome', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('digit', sa.String(length=4), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('call_ids', sa.JSON(), nullable=False),
    sa.Column('planned_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_attempt_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('completed_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('work_order_id', sa.Integer(), nullable=True),
    sa.Column('handled_by_id', sa.Integer(), nullable=True),
    sa.Column('handled_by', sa.String(length=100), nullable=True),
    sa.Column('handled_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('handling_note', sa.Text(), nullable=True),
    sa.Column('callback_call_ids', sa.JSON(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['elder_id'], ['elders.id'], name=op.f('fk_care_records_elder_id_elders'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['handled_by_id'], ['users.id'], name=op.f('fk_care_records_handled_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['job_id'], ['outbound_jobs.id'], name=op.f('fk_care_records_job_id_outbound_jobs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['schedule_id'], ['care_schedules.id'], name=op.f('fk_care_records_schedule_id_care_schedules'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['work_order_id'], ['work_orders.id'], name=op.f('fk_care_records_work_order_id_work_orders'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_care_records')),
    sa.UniqueConstraint('schedule_id', 'local_date', name='uq_care_records_schedule_day')
    )
    with op.batch_alter_table('care_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_care_records_elder_id'), ['elder_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_care_records_job_id'), ['job_id'], unique=False)
        batch_op.create_index('ix_care_records_local_date_outcome', ['local_date', 'outcome'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('care_records', schema=None) as batch_op:
        batch_op.drop_index('ix_care_records_local_date_outcome')
        batch_op.drop_index(batch_op.f('ix_care_records_job_id'))
        batch_op.drop_index(batch_op.f('ix_care_records_elder_id'))

    op.drop_table('care_records')
    with op.batch_alter_table('care_schedules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_care_schedules_elder_id'))

    op.drop_table('care_schedules')
