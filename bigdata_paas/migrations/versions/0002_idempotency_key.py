"""launch idempotency: instances.idempotency_key, unique per user

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 13:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.add_column(sa.Column('idempotency_key', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('launch_digest', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f('uq_instances_user_id_idempotency_key'), ['user_id', 'idempotency_key']
        )


def downgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_instances_user_id_idempotency_key'), type_='unique')
        batch_op.drop_column('launch_digest')
        batch_op.drop_column('idempotency_key')
