"""A phone number on the patient, for staff to call when a reply cannot reach them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aftercare.store.migrations.rebuild import recreate

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("patients") as batch:
        batch.add_column(sa.Column("phone", sa.String(16), nullable=True))


def downgrade() -> None:
    # Dropping a column rebuilds the table on SQLite: keep AUTOINCREMENT (see 0002).
    with op.batch_alter_table("patients", recreate=recreate(),
                              table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("phone")
