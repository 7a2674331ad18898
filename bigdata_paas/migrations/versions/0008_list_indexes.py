"""indexes for the instance lists, newest first

GET /instances sorts by (created_at, id) descending, alone or after one filter (status, user,
service). With 100,000 instances a sort of the whole table cost more than the page: each list
now walks an index backwards and stops at the page.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 21:00:00
"""

from alembic import op


revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_instances_created": ["created_at", "id"],
    "ix_instances_status_created": ["status", "created_at", "id"],
    "ix_instances_user_created": ["user_id", "created_at", "id"],
    "ix_instances_service_created": ["service_name", "service_version", "created_at", "id"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "instances", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="instances")
