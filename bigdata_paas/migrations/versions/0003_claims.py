"""claims: named platform-wide jobs asked for once (the queue's wake-up)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 17:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'claims',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_claims')),
    )
    op.bulk_insert(
        sa.table('claims', sa.column('name', sa.String), sa.column('at', sa.DateTime)),
        [{'name': 'drain_queue', 'at': None}],
    )


def downgrade() -> None:
    op.drop_table('claims')
