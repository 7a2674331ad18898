"""resize: a running instance being resized keeps the resize it is doing

The resize step and the sweep read it: the new options and spec, the nodes that join or leave,
and how far it went (so a worker lost mid-resize is rolled back or finished, never left).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 21:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resize", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_column("resize")
