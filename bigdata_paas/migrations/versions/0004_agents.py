"""host agents: hosts say why they are in their state and when their agent last reported;
nodes record how their agent runs them

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 18:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('hosts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('state_reason', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('state_since', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('agent_seen_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('agent', sa.JSON(), nullable=True))
    with op.batch_alter_table('nodes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('runtime', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('nodes', schema=None) as batch_op:
        batch_op.drop_column('runtime')
    with op.batch_alter_table('hosts', schema=None) as batch_op:
        batch_op.drop_column('agent')
        batch_op.drop_column('agent_seen_at')
        batch_op.drop_column('state_since')
        batch_op.drop_column('state_reason')
