"""SMS messages

The notification service's messages (issue 16): one row per SMS with its channel, purpose, template, recipient and
text, its links to an elder, an alarm and a work order, its state from queued to delivered or failed, the attempts
and the next one, and the SMSC's or provider's message id with the delivery receipt (the id is unique per channel:
a receipt finds its message by it, also after a restart).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-08 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = '0024'
down_revision: str | None = '0023'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def upgrade() -> None:
    op.create_table('sms_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('purpose', _enum('sms_purpose', 'cascade', 'care_call', 'alarm_notice', 'help_coming', 'reminder'),
              nullable=False),
    sa.Column('template', sa.String(length=64), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('recipient', sa.String(length=32), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('elder_id', sa.Integer(), nullable=True),
    sa.Column('alarm_id', sa.Integer(), nullable=True),
    sa.Column('work_order_id', sa.Integer(), nullable=True),
    sa.Column('state', _enum('sms_state', 'queued', 'submitted', 'delivered', 'failed', 'expired'), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('provider_message_id', sa.String(length=65), nullable=True),
    sa.Column('submitted_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('receipt_status', sa.String(length=16), nullable=True),
    sa.Column('receipt_error', sa.String(length=16), nullable=True),
    sa.Column('receipt_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=300), nullable=True),
    sa.Column('created_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['alarm_id'], ['alarms.id'], name=op.f('fk_sms_messages_alarm_id_alarms'),
                            ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['elder_id'], ['elders.id'], name=op.f('fk_sms_messages_elder_id_elders'),
                            ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['work_order_id'], ['work_orders.id'],
                            name=op.f('fk_sms_messages_work_order_id_work_orders'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_messages')),
    sa.UniqueConstraint('channel', 'provider_message_id', name=op.f('uq_sms_messages_channel_provider_message_id'))
    )
    for column in ('alarm_id', 'elder_id', 'next_attempt_at', 'state', 'work_order_id'):
        op.create_index(op.f(f'ix_sms_messages_{column}'), 'sms_messages', [column], unique=False)


def downgrade() -> None:
    for column in ('work_order_id', 'state', 'next_attempt_at', 'elder_id', 'alarm_id'):
        op.drop_index(op.f(f'ix_sms_messages_{column}'), table_name='sms_messages')
    op.drop_table('sms_messages')
