"""The content authors' inbox: patient messages worth a look (de-identified),
why each is there, and the author's label; the patient's yes/no to their
messages being used to improve the assistant (not asked yet: no); staff roles
(every existing account is a nurse).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aftercare.store.migrations.rebuild import recreate

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


ROLE_SETS = "roles IN ('author', 'author,nurse', 'nurse')"
STATUSES = "status IN ('new', 'labelled', 'not_useful', 'exported')"
REASONS = ("reason IN ('fallback', 'low_confidence', 'misunderstood', 'nurse_flagged', "
           "'net_disagreed')")


def upgrade() -> None:
    with op.batch_alter_table("patients") as batch:
        batch.add_column(sa.Column("improve_consent", sa.Boolean(), nullable=True))

    with op.batch_alter_table("staff", recreate=recreate()) as batch:
        batch.add_column(sa.Column("roles", sa.String(32), nullable=False,
                                   server_default="nurse"))
        batch.create_check_constraint(op.f("ck_staff_roles"), ROLE_SETS)

    op.create_table(
        "inbox_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("capture_key", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("sender_id", sa.String(255), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("intent", sa.String(64), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("runner_up", sa.String(64), nullable=True),
        sa.Column("runner_up_confidence", sa.Float(), nullable=True),
        sa.Column("net_level", sa.String(16), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("label_intent", sa.String(64), nullable=True),
        sa.Column("label_text", sa.Text(), nullable=True),
        sa.Column("labelled_by", sa.Integer(), nullable=True),
        sa.Column("labelled_via", sa.String(255), nullable=True),
        sa.Column("labelled_at", sa.DateTime(), nullable=True),
        sa.Column("exported_at", sa.DateTime(), nullable=True),
        sa.Column("captured_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_items")),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], ondelete="CASCADE",
                                name=op.f("fk_inbox_items_patient_id_patients")),
        sa.ForeignKeyConstraint(["labelled_by"], ["staff.id"], ondelete="SET NULL",
                                name=op.f("fk_inbox_items_labelled_by_staff")),
        sa.UniqueConstraint("capture_key", name=op.f("uq_inbox_items_capture_key")),
        sa.CheckConstraint(STATUSES, name=op.f("ck_inbox_items_status")),
    )
    op.create_index(op.f("ix_inbox_items_patient_id"), "inbox_items", ["patient_id"])
    op.create_index(op.f("ix_inbox_items_sender_id"), "inbox_items", ["sender_id"])
    op.create_index(op.f("ix_inbox_items_received_at"), "inbox_items", ["received_at"])
    op.create_index("ix_inbox_items_status_received", "inbox_items", ["status", "received_at"])
    op.create_index("ix_inbox_items_intent_received", "inbox_items", ["intent", "received_at"])

    op.create_table(
        "inbox_reasons",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(24), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("item_id", "reason", name=op.f("pk_inbox_reasons")),
        sa.ForeignKeyConstraint(["item_id"], ["inbox_items.id"], ondelete="CASCADE",
                                name=op.f("fk_inbox_reasons_item_id_inbox_items")),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], ondelete="SET NULL",
                                name=op.f("fk_inbox_reasons_staff_id_staff")),
        sa.CheckConstraint(REASONS, name=op.f("ck_inbox_reasons_reason")),
    )
    op.create_index("ix_inbox_reasons_reason_item", "inbox_reasons", ["reason", "item_id"])


def downgrade() -> None:
    op.drop_index("ix_inbox_reasons_reason_item", table_name="inbox_reasons")
    op.drop_table("inbox_reasons")
    for name in ("ix_inbox_items_intent_received", "ix_inbox_items_status_received"):
        op.drop_index(name, table_name="inbox_items")
    for column in ("received_at", "sender_id", "patient_id"):
        op.drop_index(op.f(f"ix_inbox_items_{column}"), table_name="inbox_items")
    op.drop_table("inbox_items")
    with op.batch_alter_table("staff", recreate=recreate()) as batch:
        batch.drop_constraint(op.f("ck_staff_roles"), type_="check")
        batch.drop_column("roles")
    # Dropping a column rebuilds the table on SQLite: keep AUTOINCREMENT (see 0002).
    with op.batch_alter_table("patients", recreate=recreate(),
                              table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("improve_consent")
