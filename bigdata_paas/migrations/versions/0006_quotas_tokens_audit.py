"""quotas, token life and the audit trail: users gain a quota, a disabled flag and a token
expiry; instances record what they count against their owner's quota; admin actions are
audited; the default quota lives in settings

Instances already there get their counts from their rendered spec; one still pending has
no spec yet and counts as an instance without nodes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 20:40:00
"""

from alembic import op
import sqlalchemy as sa


revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

HELD = ("held_nodes", "held_cpu", "held_mem", "held_disks")


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            # a literal default: SQLite adds the column in place (an expression would make
            # batch mode copy the table, and users cannot be dropped while instances refer to it)
            sa.Column("disabled", sa.Boolean(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("token_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("quota", sa.JSON(), nullable=True))
    with op.batch_alter_table("instances", schema=None) as batch_op:
        for column in HELD:
            batch_op.add_column(sa.Column(column, sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_actor"), ["actor"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_action"), ["action"], unique=False)
    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_settings")),
    )
    _count_existing_instances()


def _count_existing_instances() -> None:
    instances = sa.table(
        "instances",
        sa.column("id", sa.String()),
        sa.column("spec", sa.JSON()),
        *(sa.column(c, sa.Integer()) for c in HELD),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(instances.c.id, instances.c.spec).where(instances.c.spec.is_not(None))
    ).all()
    for instance_id, spec in rows:
        nodes = (spec or {}).get("nodes") or {}
        if not isinstance(nodes, dict):
            continue
        bind.execute(
            instances.update()
            .where(instances.c.id == instance_id)
            .values(
                held_nodes=len(nodes),
                held_cpu=sum(int(n.get("cpu") or 0) for n in nodes.values()),
                held_mem=sum(int(n.get("mem") or 0) for n in nodes.values()),
                held_disks=sum(len(n.get("disks") or {}) for n in nodes.values()),
            )
        )


def downgrade() -> None:
    op.drop_table("settings")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_action"))
        batch_op.drop_index(batch_op.f("ix_audit_events_actor"))
        batch_op.drop_index(batch_op.f("ix_audit_events_at"))
    op.drop_table("audit_events")
    # ALTER TABLE ... DROP COLUMN in place (SQLite 3.35+ has it): a batch copy would drop and
    # re-create instances and users, and dropping a table other rows refer to deletes them
    # (events, nodes) or is refused (users).
    for column in reversed(HELD):
        op.drop_column("instances", column)
    for column in ("quota", "token_expires_at", "disabled"):
        op.drop_column("users", column)
