"""legal holds on calls and work orders, the retention log

A legal hold (flag, reason, who, when) on a call or a work order (complaints included) keeps its call log and
recordings from retention. The retention log records every removal and is the engine's intent journal.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 00:58:55.290901
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('retention_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('rule', sa.Enum('recording.expired', 'call_log.archive', 'call_log.purge', name='retention_rule', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('target_type', sa.String(length=32), nullable=False),
    sa.Column('target_id', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'done', name='retention_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('started_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_retention_log')),
    sa.UniqueConstraint('target_type', 'target_id', name=op.f('uq_retention_log_target_type_target_id'))
    )
    with op.batch_alter_table('retention_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_retention_log_finished_at'), ['finished_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_retention_log_rule'), ['rule'], unique=False)
        batch_op.create_index(batch_op.f('ix_retention_log_run_id'), ['run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_retention_log_status'), ['status'], unique=False)

    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('legal_hold', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('legal_hold_reason', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('legal_hold_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('legal_hold_by', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('legal_hold_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_calls_legal_hold_by_id_users'), 'users', ['legal_hold_by_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('work_order_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_work_order_events_call_id'), ['call_id'], unique=False)

    with op.batch_alter_table('work_orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('legal_hold', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('legal_hold_reason', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('legal_hold_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('legal_hold_by', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('legal_hold_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_work_orders_legal_hold_by_id_users'), 'users', ['legal_hold_by_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('work_orders', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_work_orders_legal_hold_by_id_users'), type_='foreignkey')
        batch_op.drop_column('legal_hold_at')
        batch_op.drop_column('legal_hold_by')
        batch_op.drop_column('legal_hold_by_id')
        batch_op.drop_column('legal_hold_reason')
        batch_op.drop_column('legal_hold')

    with op.batch_alter_table('work_order_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_work_order_events_call_id'))

    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_calls_legal_hold_by_id_users'), type_='foreignkey')
        batch_op.drop_column('legal_hold_at')
        batch_op.drop_column('legal_hold_by')
        batch_op.drop_column('legal_hold_by_id')
        batch_op.drop_column('legal_hold_reason')
        batch_op.drop_column('legal_hold')

    with op.batch_alter_table('retention_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_retention_log_status'))
        batch_op.drop_index(batch_op.f('ix_retention_log_run_id'))
        batch_op.drop_index(batch_op.f('ix_retention_log_rule'))
        batch_op.drop_index(batch_op.f('ix_retention_log_finished_at'))

    op.drop_table('retention_log')