"""Staff side: escalation timeline (escalation_events), acknowledgement columns on
escalations, and staff accounts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("escalations") as batch:
        batch.add_column(sa.Column("acknowledged_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("acknowledged_by", sa.String(255), nullable=True))

    op.create_table(
        "escalation_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("escalation_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation_events")),
        sa.ForeignKeyConstraint(["escalation_id"], ["escalations.id"], ondelete="CASCADE",
                                name=op.f("fk_escalation_events_escalation_id_escalations")),
        sa.CheckConstraint(
            "kind IN ('acknowledged', 'replied', 'resolved', 'note', 'reminded', 'reopened')",
            name=op.f("ck_escalation_events_kind")),
    )
    op.create_index(op.f("ix_escalation_events_escalation_id"), "escalation_events",
                    ["escalation_id"])

    op.create_table(
        "staff",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("telegram_user_id", sa.BigInteger(), nullable=True),
        sa.Column("disabled_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sessions_valid_after", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff")),
        sa.UniqueConstraint("email", name=op.f("uq_staff_email")),
        sa.UniqueConstraint("telegram_user_id", name=op.f("uq_staff_telegram_user_id")),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_staff_email_lower")),
    )


def downgrade() -> None:
    op.drop_table("staff")
    op.drop_index(op.f("ix_escalation_events_escalation_id"), table_name="escalation_events")
    op.drop_table("escalation_events")
    with op.batch_alter_table("escalations") as batch:
        batch.drop_column("acknowledged_by")
        batch.drop_column("acknowledged_at")
