"""service providers, order service and provider

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 00:20:32.012075
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('service_providers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('services', sa.JSON(), nullable=False),
    sa.Column('communities', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_providers')),
    sa.UniqueConstraint('name', name=op.f('uq_service_providers_name'))
    )
    with op.batch_alter_table('elders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('preferred_provider_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_elders_preferred_provider_id_service_providers'), 'service_providers', ['preferred_provider_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('work_orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('service', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('provider_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_work_orders_provider_id'), ['provider_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_work_orders_provider_id_service_providers'), 'service_providers', ['provider_id'], ['id'], ondelete='RESTRICT')



def downgrade() -> None:
    with op.batch_alter_table('work_orders', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_work_orders_provider_id_service_providers'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_work_orders_provider_id'))
        batch_op.drop_column('provider_id')
        batch_op.drop_column('service')

    with op.batch_alter_table('elders', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_elders_preferred_provider_id_service_providers'), type_='foreignkey')
        batch_op.drop_column('preferred_provider_id')

    op.drop_table('service_providers')
