"""stream cursors: events and log_lines never reuse an id on SQLite (AUTOINCREMENT)

Event streams resume after the last id a client saw. Without AUTOINCREMENT, SQLite hands out
max(id) + 1, so deleting the newest row (a launch undone when the broker is down) would give
its id to the next row, which a resuming client would then skip. PostgreSQL sequences never
reuse a value: nothing changes there.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 17:00:00
"""

from alembic import op


revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLES = ("events", "log_lines")


def _recreate(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade() -> None:
    _recreate(True)


def downgrade() -> None:
    _recreate(False)
