"""SQLAlchemy models for the patient store.

Datetimes are stored as naive UTC and always come back as aware UTC
(UTCDateTime), so nothing else needs to care how the database keeps them.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import (
    CheckConstraint, Column, DateTime, ForeignKey, Integer, MetaData, String, Text,
)
from sqlalchemy.orm import declarative_base, relationship
from sqlalchemy.types import TypeDecorator

SOURCES = ("clinic", "self_reported")
LEVELS = ("emergency", "urgent", "routine", "human")
STATUSES = ("open", "acknowledged", "resolved")
NAME_MAX = 200

# Fixed constraint names, so SQLite batch migrations can find them later.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Base = declarative_base(metadata=MetaData(naming_convention=NAMING_CONVENTION))


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out; naive UTC in the database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: Optional[datetime], dialect) -> Optional[datetime]:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime given; use a timezone-aware datetime")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: Optional[datetime], dialect) -> Optional[datetime]:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc)


def _in(column: str, values: tuple) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Patient(Base):
    __tablename__ = "patients"
    __table_args__ = (CheckConstraint(_in("source", SOURCES), name="source"),)

    id = Column(Integer, primary_key=True)
    name = Column(String(NAME_MAX), nullable=False)
    timezone = Column(String(64), nullable=False)
    sender_id = Column(String(255), unique=True, nullable=True)
    source = Column(String(20), nullable=False, default="clinic")
    created_at = Column(UTCDateTime, nullable=False, default=utc_now)

    treatments = relationship(
        "Treatment", back_populates="patient", order_by="Treatment.treated_at",
        cascade="all, delete-orphan", passive_deletes=True,
    )
    escalations = relationship(
        "Escalation", back_populates="patient",
        cascade="all, delete-orphan", passive_deletes=True,
    )

    def __repr__(self) -> str:  # no name: reprs end up in logs
        return f"<Patient id={self.id}>"


class Treatment(Base):
    __tablename__ = "treatments"
    __table_args__ = (CheckConstraint("number_in_series >= 1", name="number_in_series"),)

    id = Column(Integer, primary_key=True)
    patient_id = Column(
        Integer, ForeignKey("patients.id", ondelete="CASCADE"), nullable=False, index=True)
    number_in_series = Column(Integer, nullable=False, default=1)
    treated_at = Column(UTCDateTime, nullable=False)
    created_at = Column(UTCDateTime, nullable=False, default=utc_now)

    patient = relationship("Patient", back_populates="treatments")

    def __repr__(self) -> str:
        return f"<Treatment id={self.id} patient_id={self.patient_id} n={self.number_in_series}>"


class Escalation(Base):
    __tablename__ = "escalations"
    __table_args__ = (
        CheckConstraint(_in("level", LEVELS), name="level"),
        CheckConstraint(_in("status", STATUSES), name="status"),
    )

    id = Column(Integer, primary_key=True)
    patient_id = Column(
        Integer, ForeignKey("patients.id", ondelete="CASCADE"), nullable=True, index=True)
    sender_id = Column(String(255), nullable=True, index=True)
    message = Column(Text, nullable=False)
    level = Column(String(16), nullable=False)
    reason = Column(Text, nullable=False)
    day = Column(Integer, nullable=True)
    status = Column(String(16), nullable=False, default="open", index=True)
    created_at = Column(UTCDateTime, nullable=False, default=utc_now)
    updated_at = Column(UTCDateTime, nullable=False, default=utc_now, onupdate=utc_now)
    resolved_at = Column(UTCDateTime, nullable=True)
    note = Column(Text, nullable=True)

    patient = relationship("Patient", back_populates="escalations")

    def __repr__(self) -> str:  # no message: it is the patient's own words
        return f"<Escalation id={self.id} level={self.level} status={self.status}>"
