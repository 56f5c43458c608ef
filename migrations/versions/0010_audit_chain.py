"""the audit log's hash chain

Each entry gets its position in the chain and a SHA-256 over the previous entry's hash and its own content
(callcenter.audit.chain). Existing entries are sealed by the platform's sealer job after the upgrade, oldest first.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 02:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('audit_log', sa.Column('seq', sa.BigInteger(), nullable=True))
    op.add_column('audit_log', sa.Column('entry_hash', sa.String(length=64), nullable=True))
    op.create_index('ix_audit_log_seq', 'audit_log', ['seq'], unique=True)


def downgrade() -> None:
    op.drop_index('ix_audit_log_seq', table_name='audit_log')
    op.drop_column('audit_log', 'entry_hash')
    op.drop_column('audit_log', 'seq')
