"""Health records

An elder's health record (issue 15; seed 5.4, 5.5, 5.11.2): physical examinations, follow-up visits, the doctor's
notes, GB/T 42195-2022 capability assessments, chronic-disease plans, and the work orders raised for their overdue
visits (one per plan and due date). What is medical is sealed (callcenter.db.sealed).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def _recorded_by(table: str) -> list[sa.schema.SchemaItem]:
    return [
        sa.Column('recorded_by_id', sa.Integer(), nullable=True),
        sa.Column('recorded_by', sa.String(length=100), nullable=False),
        sa.Column('recorded_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id'], name=op.f(f'fk_{table}_recorded_by_id_users'),
                                ondelete='SET NULL'),
    ]


def _of_elder(table: str) -> list[sa.schema.SchemaItem]:
    return [
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('elder_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['elder_id'], ['elders.id'], name=op.f(f'fk_{table}_elder_id_elders'),
                                ondelete='RESTRICT'),
        sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{table}')),
    ]


def _index(table: str, *columns: str) -> None:
    for column in columns:
        op.create_index(op.f(f'ix_{table}_{column}'), table, [column], unique=False)


def upgrade() -> None:
    op.create_table('health_examinations', *_of_elder('health_examinations'),
    sa.Column('examined_on', sa.Date(), nullable=False),
    sa.Column('examiner', sa.String(length=100), nullable=False),
    sa.Column('institution', sa.String(length=200), nullable=True),
    sa.Column('findings', sa.Text(), nullable=False),  # sealed (callcenter.db.sealed)
    *_recorded_by('health_examinations'))
    _index('health_examinations', 'elder_id')
    op.create_table('health_doctor_notes', *_of_elder('health_doctor_notes'),
    sa.Column('written_on', sa.Date(), nullable=False),
    sa.Column('doctor', sa.String(length=100), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),  # sealed
    *_recorded_by('health_doctor_notes'))
    _index('health_doctor_notes', 'elder_id')
    op.create_table('capability_assessments', *_of_elder('capability_assessments'),
    sa.Column('assessed_on', sa.Date(), nullable=False),
    sa.Column('assessor', sa.String(length=100), nullable=False),
    sa.Column('second_assessor', sa.String(length=100), nullable=True),
    sa.Column('reason', _enum('assessment_reason', 'first', 'routine', 'immediate', 'review', 'other'),
              nullable=False),
    sa.Column('standard', sa.String(length=32), nullable=False),
    sa.Column('scores', sa.Text(), nullable=False),  # sealed
    sa.Column('grounds', sa.Text(), nullable=False),  # sealed
    sa.Column('level', sa.Integer(), nullable=False),
    *_recorded_by('capability_assessments'))
    _index('capability_assessments', 'elder_id')
    op.create_table('chronic_disease_plans', *_of_elder('chronic_disease_plans'),
    sa.Column('conditions', sa.Text(), nullable=False),  # sealed
    sa.Column('measurements', sa.Text(), nullable=False),  # sealed
    sa.Column('targets', sa.Text(), nullable=False),  # sealed
    sa.Column('medications', sa.Text(), nullable=False),  # sealed
    sa.Column('visit_interval_days', sa.Integer(), nullable=False),
    sa.Column('next_visit_due', sa.Date(), nullable=False),
    sa.Column('started_on', sa.Date(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('ended_on', sa.Date(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    *_recorded_by('chronic_disease_plans'))
    _index('chronic_disease_plans', 'active', 'elder_id', 'next_visit_due')
    op.create_table('health_visits', *_of_elder('health_visits'),
    sa.Column('visited_on', sa.Date(), nullable=False),
    sa.Column('doctor', sa.String(length=100), nullable=False),
    sa.Column('kind', _enum('health_visit_kind', 'home', 'clinic', 'phone', 'video'), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),  # sealed
    sa.ForeignKeyConstraint(['plan_id'], ['chronic_disease_plans.id'],
                            name=op.f('fk_health_visits_plan_id_chronic_disease_plans'), ondelete='RESTRICT'),
    *_recorded_by('health_visits'))
    _index('health_visits', 'elder_id', 'plan_id')
    op.create_table('chronic_plan_overdue_orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('work_order_id', sa.Integer(), nullable=False),
    sa.Column('raised_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['chronic_disease_plans.id'],
                            name=op.f('fk_chronic_plan_overdue_orders_plan_id_chronic_disease_plans'),
                            ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['work_order_id'], ['work_orders.id'],
                            name=op.f('fk_chronic_plan_overdue_orders_work_order_id_work_orders'),
                            ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chronic_plan_overdue_orders')),
    sa.UniqueConstraint('plan_id', 'due_on', name=op.f('uq_chronic_plan_overdue_orders_plan_id_due_on')))
    _index('chronic_plan_overdue_orders', 'plan_id', 'work_order_id')


def downgrade() -> None:
    for table, columns in (('chronic_plan_overdue_orders', ('plan_id', 'work_order_id')),
                           ('health_visits', ('elder_id', 'plan_id')),
                           ('chronic_disease_plans', ('active', 'elder_id', 'next_visit_due')),
                           ('capability_assessments', ('elder_id',)), ('health_doctor_notes', ('elder_id',)),
                           ('health_examinations', ('elder_id',))):
        for column in columns:
            op.drop_index(op.f(f'ix_{table}_{column}'), table_name=table)
        op.drop_table(table)
