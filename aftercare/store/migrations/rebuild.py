"""What the migrations share: how each database changes a table."""
from __future__ import annotations

from alembic import op


def recreate() -> str:
    """batch_alter_table's `recreate`: SQLite changes a table by rebuilding it
    (and keeps AUTOINCREMENT that way); PostgreSQL alters it in place, as
    rebuilding a table that others reference would mean dropping their
    foreign keys."""
    return "always" if op.get_context().dialect.name == "sqlite" else "auto"
