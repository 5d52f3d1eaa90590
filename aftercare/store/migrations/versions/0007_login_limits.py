"""Sign-in limits as one counter row per key (login_limits), taken with a
conditional UPDATE before the password is checked, instead of one row per
failure (login_failures), which parallel attempts could get around.

Failures recorded under the old scheme (at most 15 minutes' worth) are not
carried over.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_limits",
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("window_started_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key_hash", name=op.f("pk_login_limits")),
    )
    op.create_index(op.f("ix_login_limits_window_started_at"), "login_limits",
                    ["window_started_at"])
    op.drop_index(op.f("ix_login_failures_failed_at"), table_name="login_failures")
    op.drop_index(op.f("ix_login_failures_key_hash"), table_name="login_failures")
    op.drop_table("login_failures")


def downgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("failed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    op.create_index(op.f("ix_login_failures_key_hash"), "login_failures", ["key_hash"])
    op.create_index(op.f("ix_login_failures_failed_at"), "login_failures", ["failed_at"])
    op.drop_index(op.f("ix_login_limits_window_started_at"), table_name="login_limits")
    op.drop_table("login_limits")
