"""Telegram front end: enrolment codes, message log, photos, check-in delivery log,
symptom reports, erasure records; patient enrolment and reachability columns.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aftercare.store.migrations.rebuild import recreate

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _patient_fk(table: str, nullable: bool = False) -> list:
    return [
        sa.Column("patient_id", sa.Integer(), nullable=nullable),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], ondelete="CASCADE",
                                name=op.f(f"fk_{table}_patient_id_patients")),
    ]


def _treatment_fk(table: str, nullable: bool) -> list:
    return [
        sa.Column("treatment_id", sa.Integer(), nullable=nullable),
        sa.ForeignKeyConstraint(["treatment_id"], ["treatments.id"], ondelete="CASCADE",
                                name=op.f(f"fk_{table}_treatment_id_treatments")),
    ]


def upgrade() -> None:
    # Rebuilt with AUTOINCREMENT so an erased patient's id is never reused.
    with op.batch_alter_table("patients", recreate=recreate(),
                              table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("enrolled_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("checkins_paused_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("unreachable_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("photo_consent", sa.Boolean(), nullable=True))

    op.create_table(
        "enrolment_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        *_patient_fk("enrolment_codes"),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrolment_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_enrolment_codes_code_hash")),
    )
    op.create_index(op.f("ix_enrolment_codes_patient_id"), "enrolment_codes", ["patient_id"])

    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        *_patient_fk("messages", nullable=True),
        sa.Column("sender_id", sa.String(255), nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.CheckConstraint("direction IN ('in', 'out')", name=op.f("ck_messages_direction")),
        sa.CheckConstraint("kind IN ('text', 'photo', 'checkin', 'clinic', 'notice')",
                           name=op.f("ck_messages_kind")),
    )
    for column in ("patient_id", "sender_id", "status"):
        op.create_index(op.f(f"ix_messages_{column}"), "messages", [column])

    op.create_table(
        "photos",
        sa.Column("id", sa.Integer(), nullable=False),
        *_patient_fk("photos"),
        sa.Column("telegram_file_id", sa.String(255), nullable=False),
        sa.Column("caption", sa.Text(), nullable=True),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_photos")),
        sa.CheckConstraint("status IN ('awaiting_consent', 'kept')",
                           name=op.f("ck_photos_status")),
    )
    op.create_index(op.f("ix_photos_patient_id"), "photos", ["patient_id"])

    op.create_table(
        "checkin_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        *_patient_fk("checkin_deliveries"),
        *_treatment_fk("checkin_deliveries", nullable=False),
        sa.Column("checkin_id", sa.String(64), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(255), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkin_deliveries")),
        sa.UniqueConstraint("treatment_id", "checkin_id",
                            name=op.f("uq_checkin_deliveries_treatment_checkin")),
        sa.CheckConstraint(
            "status IN ('due', 'sending', 'sent', 'skipped', 'failed', 'uncertain')",
            name=op.f("ck_checkin_deliveries_status")),
    )
    op.create_index(op.f("ix_checkin_deliveries_patient_id"), "checkin_deliveries",
                    ["patient_id"])
    op.create_index(op.f("ix_checkin_deliveries_status"), "checkin_deliveries", ["status"])

    op.create_table(
        "symptom_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        *_patient_fk("symptom_reports"),
        *_treatment_fk("symptom_reports", nullable=True),
        sa.Column("day", sa.Integer(), nullable=True),
        sa.Column("checkin_id", sa.String(64), nullable=True),
        sa.Column("symptom", sa.String(64), nullable=False),
        sa.Column("level", sa.String(16), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_symptom_reports")),
    )
    op.create_index(op.f("ix_symptom_reports_patient_id"), "symptom_reports", ["patient_id"])

    op.create_table(
        "erasures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("former_patient_id", sa.Integer(), nullable=False),
        sa.Column("requested_via", sa.String(32), nullable=False),
        sa.Column("erased_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasures")),
    )
    op.create_index(op.f("ix_erasures_former_patient_id"), "erasures", ["former_patient_id"])


def downgrade() -> None:
    for table in ("erasures", "symptom_reports", "checkin_deliveries", "photos", "messages",
                  "enrolment_codes"):
        op.drop_table(table)
    with op.batch_alter_table("patients") as batch:
        for column in ("photo_consent", "unreachable_at", "checkins_paused_at", "enrolled_at"):
            batch.drop_column(column)
