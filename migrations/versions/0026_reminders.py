"""Reminders

Reminders (issue 16): medication reminders per elder (the medicine and the SMS label sealed; times of the local
day, daily or on weekdays, by call, SMS or both) and the reminder log, one row per reminder made (unique per kind,
source, local date and due time: the planner makes each once), with its outbound job, its SMS and the outcome.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-08 02:25:16.843739
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = '0026'
down_revision: str | None = '0025'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('medication_reminders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('elder_id', sa.Integer(), nullable=False),
    sa.Column('medication', sa.Text(), nullable=False),  # sealed (callcenter.db.sealed)
    sa.Column('sms_label', sa.Text(), nullable=True),  # sealed (callcenter.db.sealed)
    sa.Column('times', sa.JSON(), nullable=False),
    sa.Column('days', sa.Enum('daily', 'weekdays', name='medication_reminder_days', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('weekdays', sa.JSON(), nullable=False),
    sa.Column('channel', sa.Enum('call', 'sms', 'both', name='reminder_channel', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['elder_id'], ['elders.id'], name=op.f('fk_medication_reminders_elder_id_elders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_medication_reminders'))
    )
    with op.batch_alter_table('medication_reminders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_medication_reminders_elder_id'), ['elder_id'], unique=False)

    op.create_table('reminder_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('medication', 'measurement', 'visit', name='reminder_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('elder_id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('local_date', sa.Date(), nullable=False),
    sa.Column('due_time', sa.String(length=5), nullable=False),
    sa.Column('channel', sa.Enum('call', 'sms', 'both', name='reminder_channel', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('sms_id', sa.Integer(), nullable=True),
    sa.Column('outcome', sa.Enum('planned', 'acknowledged', 'answered_no_key', 'unanswered', 'sms_sent', 'failed', 'cancelled', name='reminder_outcome', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('digit', sa.String(length=4), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('call_ids', sa.JSON(), nullable=False),
    sa.Column('planned_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('completed_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('details', sa.Text(), nullable=False),  # sealed (callcenter.db.sealed)
    sa.ForeignKeyConstraint(['elder_id'], ['elders.id'], name=op.f('fk_reminder_log_elder_id_elders'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['job_id'], ['outbound_jobs.id'], name=op.f('fk_reminder_log_job_id_outbound_jobs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['sms_id'], ['sms_messages.id'], name=op.f('fk_reminder_log_sms_id_sms_messages'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reminder_log')),
    sa.UniqueConstraint('kind', 'source_id', 'local_date', 'due_time', name='uq_reminder_log_source_due')
    )
    with op.batch_alter_table('reminder_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reminder_log_elder_id'), ['elder_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reminder_log_job_id'), ['job_id'], unique=False)
        batch_op.create_index('ix_reminder_log_local_date_elder_id', ['local_date', 'elder_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('reminder_log', schema=None) as batch_op:
        batch_op.drop_index('ix_reminder_log_local_date_elder_id')
        batch_op.drop_index(batch_op.f('ix_reminder_log_job_id'))
        batch_op.drop_index(batch_op.f('ix_reminder_log_elder_id'))

    op.drop_table('reminder_log')
    with op.batch_alter_table('medication_reminders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_medication_reminders_elder_id'))

    op.drop_table('medication_reminders')
