"""Initial schema: patients, treatments, escalations.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("sender_id", sa.String(255), nullable=True),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),  # naive UTC
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patients")),
        sa.UniqueConstraint("sender_id", name=op.f("uq_patients_sender_id")),
        sa.CheckConstraint(
            "source IN ('clinic', 'self_reported')", name=op.f("ck_patients_source")),
    )

    op.create_table(
        "treatments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("number_in_series", sa.Integer(), nullable=False),
        sa.Column("treated_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_treatments")),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], ondelete="CASCADE",
            name=op.f("fk_treatments_patient_id_patients")),
        sa.CheckConstraint(
            "number_in_series >= 1", name=op.f("ck_treatments_number_in_series")),
    )
    op.create_index(op.f("ix_treatments_patient_id"), "treatments", ["patient_id"])

    op.create_table(
        "escalations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("sender_id", sa.String(255), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalations")),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], ondelete="CASCADE",
            name=op.f("fk_escalations_patient_id_patients")),
        sa.CheckConstraint(
            "level IN ('emergency', 'urgent', 'routine', 'human')",
            name=op.f("ck_escalations_level")),
        sa.CheckConstraint(
            "status IN ('open', 'acknowledged', 'resolved')",
            name=op.f("ck_escalations_status")),
    )
    op.create_index(op.f("ix_escalations_patient_id"), "escalations", ["patient_id"])
    op.create_index(op.f("ix_escalations_sender_id"), "escalations", ["sender_id"])
    op.create_index(op.f("ix_escalations_status"), "escalations", ["status"])


def downgrade() -> None:
    op.drop_table("escalations")
    op.drop_table("treatments")
    op.drop_table("patients")
