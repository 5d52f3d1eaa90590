"""Staff side, part two: staff-group alerts and re-alerts, hand-off to a person,
replies from the clinic waiting to be sent, review-page sessions; and a
`claimed` state for check-in deliveries (claimed, not yet handed to Telegram).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aftercare.store.migrations.rebuild import recreate

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


OLD_DELIVERY = "status IN ('due', 'sending', 'sent', 'skipped', 'failed', 'uncertain')"
NEW_DELIVERY = ("status IN ('due', 'claimed', 'sending', 'sent', 'skipped', 'failed', "
                "'uncertain')")


def _replace_check(table: str, name: str, sql: str) -> None:
    with op.batch_alter_table(table, recreate=recreate()) as batch:
        batch.drop_constraint(op.f(f"ck_{table}_{name}"), type_="check")
        batch.create_check_constraint(op.f(f"ck_{table}_{name}"), sql)


def upgrade() -> None:
    with op.batch_alter_table("escalations") as batch:
        batch.add_column(sa.Column("alerted_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("last_alert_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("handoff_notified_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("closure_posted_at", sa.DateTime(), nullable=True))

    op.create_table(
        "staff_posts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("escalation_id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_posts")),
        sa.ForeignKeyConstraint(["escalation_id"], ["escalations.id"], ondelete="CASCADE",
                                name=op.f("fk_staff_posts_escalation_id_escalations")),
        sa.UniqueConstraint("chat_id", "message_id", name="uq_staff_posts_chat_message"),
        sa.CheckConstraint(
            "kind IN ('alert', 'reminder', 'photo', 'reply_prompt', 'patient', 'closure')",
            name=op.f("ck_staff_posts_kind")),
    )
    op.create_index(op.f("ix_staff_posts_escalation_id"), "staff_posts", ["escalation_id"])

    op.create_table(
        "staff_replies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("escalation_id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_replies")),
        sa.ForeignKeyConstraint(["escalation_id"], ["escalations.id"], ondelete="CASCADE",
                                name=op.f("fk_staff_replies_escalation_id_escalations")),
        sa.CheckConstraint("status IN ('pending', 'sent', 'failed')",
                           name=op.f("ck_staff_replies_status")),
    )
    op.create_index(op.f("ix_staff_replies_status"), "staff_replies", ["status"])

    op.create_table(
        "staff_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_sessions")),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], ondelete="CASCADE",
                                name=op.f("fk_staff_sessions_staff_id_staff")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_staff_sessions_token_hash")),
    )
    op.create_index(op.f("ix_staff_sessions_staff_id"), "staff_sessions", ["staff_id"])

    _replace_check("checkin_deliveries", "status", NEW_DELIVERY)


def downgrade() -> None:
    _replace_check("checkin_deliveries", "status", OLD_DELIVERY)
    op.drop_index(op.f("ix_staff_sessions_staff_id"), table_name="staff_sessions")
    op.drop_table("staff_sessions")
    op.drop_index(op.f("ix_staff_replies_status"), table_name="staff_replies")
    op.drop_table("staff_replies")
    op.drop_index(op.f("ix_staff_posts_escalation_id"), table_name="staff_posts")
    op.drop_table("staff_posts")
    with op.batch_alter_table("escalations") as batch:
        batch.drop_column("closure_posted_at")
        batch.drop_column("handoff_notified_at")
        batch.drop_column("last_alert_at")
        batch.drop_column("alerted_at")
