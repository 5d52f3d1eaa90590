"""SQLAlchemy models for the patient store.

Datetimes are stored as naive UTC and always come back as aware UTC
(UTCDateTime), so nothing else needs to care how the database keeps them.
"""
from __future__ import annotations

from datetime import datetime, timezone
from itertools import combinations
from typing import Optional

from sqlalchemy import (
    BigInteger, Boolean, CheckConstraint, Column, DateTime, Float, ForeignKey, Index, Integer,
    LargeBinary, MetaData, String, Text, UniqueConstraint,
)
from sqlalchemy.orm import declarative_base, relationship
from sqlalchemy.types import TypeDecorator

SOURCES = ("clinic", "self_reported")
LEVELS = ("emergency", "urgent", "routine", "human")
STATUSES = ("open", "acknowledged", "resolved")
EVENT_KINDS = ("acknowledged", "replied", "resolved", "note", "reminded", "reopened")
ACTOR_MAX = 255
EMAIL_MAX = 254
DIRECTIONS = ("in", "out")
MESSAGE_KINDS = ("text", "photo", "checkin", "clinic", "notice")
MESSAGE_STATUSES = ("answered", "unanswered", "held", "handed_off")
PHOTO_STATUSES = ("awaiting_consent", "kept")
DELIVERY_STATUSES = ("due", "claimed", "sending", "sent", "skipped", "failed", "uncertain")
STAFF_POST_KINDS = ("alert", "reminder", "photo", "reply_prompt", "patient", "closure")
REPLY_STATUSES = ("pending", "sent", "failed")
STAFF_ROLES = ("author", "nurse")   # author: the authoring inbox; nurse: patients and alerts
# Why a message is in the authoring inbox (aftercare/authoring/capture.py).
INBOX_REASONS = ("fallback", "low_confidence", "misunderstood", "nurse_flagged", "net_disagreed")
INBOX_STATUSES = ("new", "labelled", "not_useful", "exported")
# What the inbox can list: "open" is new or labelled (not exported, not set aside).
INBOX_STATUS_FILTERS = ("open", *INBOX_STATUSES, "all")
INTENT_MAX = 64
# Staff.roles holds a sorted, comma-separated, non-empty set of STAFF_ROLES.
STAFF_ROLE_SETS = tuple(sorted(",".join(combo) for n in range(1, len(STAFF_ROLES) + 1)
                               for combo in combinations(STAFF_ROLES, n)))
NAME_MAX = 200
PHONE_MAX = 16

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
    # AUTOINCREMENT: an erased patient's id is never given to someone else, so
    # the erasure record keeps pointing at nobody.
    __table_args__ = (CheckConstraint(_in("source", SOURCES), name="source"),
                      {"sqlite_autoincrement": True})

    id = Column(Integer, primary_key=True)
    name = Column(String(NAME_MAX), nullable=False)
    timezone = Column(String(64), nullable=False)
    sender_id = Column(String(255), unique=True, nullable=True)
    source = Column(String(20), nullable=False, default="clinic")
    created_at = Column(UTCDateTime, nullable=False, default=utc_now)
    # Telegram: when the chat was linked, check-ins paused (/stop), the bot blocked.
    enrolled_at = Column(UTCDateTime, nullable=True)
    checkins_paused_at = Column(UTCDateTime, nullable=True)
    unreachable_at = Column(UTCDateTime, nullable=True)
    photo_consent = Column(Boolean, nullable=True)  # None: not asked yet
    # For staff to call: "+" and up to 15 digits, or digits as given (PHONE_MAX).
    phone = Column(String(PHONE_MAX), nullable=True)
    # May their messages be used to improve the assistant (the authoring inbox)?
    # None: not asked yet, which counts as no.
    improve_consent = Column(Boolean, nullable=True)

    treatments = relationship(
        "Treatment", back_populates="patient", order_by="Treatment.treated_at",
        cascade="all, delete-orphan", passive_deletes=True,
    )
    escalations = relationship(
        "Escalation", back_populates="patient",
        cascade="all, delete-orphan", passive_deletes=True,
    )
    enrolment_codes = relationship(
        "EnrolmentCode", back_populates="patient",
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
    acknowledged_at = Column(UTCDateTime, nullable=True)
    acknowledged_by = Column(String(ACTOR_MAX), nullable=True)
    # The staff group: first alert posted, latest alert or reminder, the patient
    # told a person has taken over, the closure posted (and the patient handed back).
    alerted_at = Column(UTCDateTime, nullable=True)
    last_alert_at = Column(UTCDateTime, nullable=True)
    handoff_notified_at = Column(UTCDateTime, nullable=True)
    closure_posted_at = Column(UTCDateTime, nullable=True)

    patient = relationship("Patient", back_populates="escalations")
    events = relationship(
        "EscalationEvent", back_populates="escalation",
        order_by="[EscalationEvent.created_at, EscalationEvent.id]",
        cascade="all, delete-orphan", passive_deletes=True,
    )

    def __repr__(self) -> str:  # no message: it is the patient's own words
        return f"<Escalation id={self.id} level={self.level} status={self.status}>"


class EscalationEvent(Base):
    """One step in an escalation's timeline: who acknowledged, replied, resolved, noted.

    actor is a staff email, "telegram:<user id>", "cli:<os user>" or "system".
    """
    __tablename__ = "escalation_events"
    __table_args__ = (CheckConstraint(_in("kind", EVENT_KINDS), name="kind"),)

    id = Column(Integer, primary_key=True)
    escalation_id = Column(
        Integer, ForeignKey("escalations.id", ondelete="CASCADE"), nullable=False, index=True)
    kind = Column(String(16), nullable=False)
    actor = Column(String(ACTOR_MAX), nullable=False)
    note = Column(Text, nullable=True)  # a reply's text or a note: may be health data
    created_at = Column(UTCDateTime, nullable=False, default=utc_now)

    escalation = relationship("Escalation", back_populates="events")

    def __repr__(self) -> str:  # no note and no actor
        return f"<EscalationEvent id={self.id} escalation_id={self.escalation_id} {self.kind}>"


class Staff(Base):
    """A clinic staff account for the review page and staff commands.

    email is stored lower-cased; password_hash is an argon2id hash. Sessions
    issued before sessions_valid_after are void (disabling moves it on).
    """
    __tablename__ = "staff"
    __table_args__ = (
        CheckConstraint("email = lower(email)", name="email_lower"),
        CheckConstraint(_in("roles", STAFF_ROLE_SETS), name="roles"),
    )

    id = Column(Integer, primary_key=True)
    email = Column(String(EMAIL_MAX), nullable=False, unique=True)
    password_hash = Column(String(255), nullable=False)
    telegram_user_id = Column(BigInteger, nullable=True, unique=True)
    disabled_at = Column(UTCDateTime, nullable=True)
    created_at = Column(UTCDateTime, nullable=False, default=utc_now)
    sessions_valid_after = Column(UTCDateTime, nullable=False, default=utc_now)
    # What the account is for: STAFF_ROLES, sorted and comma-separated (aftercare/staff.py).
    roles = Column(String(32), nullable=False, default="nurse", server_default="nurse")

    def __repr__(self) -> str:  # no email, never the hash
        return f"<Staff id={self.id}{' disabled' if self.disabled_at else ''}>"


class LoginLimit(Base):
    """One sign-in limit of the review page (an account from one address, one
    address, one account, one known device): the sign-in attempts it has used
    since its window began. Only the sha256 of its key is kept. An attempt
    takes a slot with a conditional UPDATE of this row before the password is
    checked, so the limit holds however many arrive at once, in any number of
    review processes (review/auth.py)."""
    __tablename__ = "login_limits"

    key_hash = Column(String(64), primary_key=True)
    window_started_at = Column(UTCDateTime, nullable=False, index=True)
    attempts = Column(Integer, nullable=False)

    def __repr__(self) -> str:
        return f"<LoginLimit attempts={self.attempts}>"


class StaffSession(Base):
    """A signed-in review-page session. Only the token's sha256 is kept; the
    CSRF token is bound to the session."""
    __tablename__ = "staff_sessions"

    id = Column(Integer, primary_key=True)
    staff_id = Column(Integer, ForeignKey("staff.id", ondelete="CASCADE"), nullable=False,
                      index=True)
    token_hash = Column(String(64), nullable=False, unique=True)
    csrf_token = Column(String(64), nullable=False)
    created_at = Column(UTCDateTime, nullable=False, default=utc_now)
    expires_at = Column(UTCDateTime, nullable=False)

    def __repr__(self) -> str:  # never a token
        return f"<StaffSession id={self.id} staff_id={self.staff_id}>"


class StaffPost(Base):
    """A message the bot posted in the staff group about an escalation, so a
    staff member's Telegram reply to it can be tied to the escalation."""
    __tablename__ = "staff_posts"
    __table_args__ = (
        UniqueConstraint("chat_id", "message_id", name="uq_staff_posts_chat_message"),
        CheckConstraint(_in("kind", STAFF_POST_KINDS), name="kind"),
    )

    id = Column(Integer, primary_key=True)
    escalation_id = Column(
        Integer, ForeignKey("escalations.id", ondelete="CASCADE"), nullable=False, index=True)
    chat_id = Column(BigInteger, nullable=False)
    message_id = Column(BigInteger, nullable=False)
    kind = Column(String(16), nullable=False)
    created_at = Column(UTCDateTime, nullable=False, default=utc_now)

    def __repr__(self) -> str:
        return f"<StaffPost escalation={self.escalation_id} {self.kind}>"


class StaffReply(Base):
    """A reply from the clinic to the patient of an escalation, waiting for the
    bot to send it (from the staff group or the review page)."""
    __tablename__ = "staff_replies"
    __table_args__ = (CheckConstraint(_in("status", REPLY_STATUSES), name="status"),)

    id = Column(Integer, primary_key=True)
    escalation_id = Column(
        Integer, ForeignKey("escalations.id", ondelete="CASCADE"), nullable=False)
    actor = Column(String(ACTOR_MAX), nullable=False)
    text = Column(Text, nullable=False)
    status = Column(String(16), nullable=False, default="pending", index=True)
    detail = Column(String(255), nullable=True)  # why it failed; no health data
    created_at = Column(UTCDateTime, nullable=False, default=utc_now)
    sent_at = Column(UTCDateTime, nullable=True)

    def __repr__(self) -> str:  # no text
        return f"<StaffReply id={self.id} escalation={self.escalation_id} {self.status}>"


class EnrolmentCode(Base):
    """A single-use code in the deep link a clinic hands a patient.

    Only a hash is kept: the code itself is a bearer secret.
    """
    __tablename__ = "enrolment_codes"

    id = Column(Integer, primary_key=True)
    patient_id = Column(
        Integer, ForeignKey("patients.id", ondelete="CASCADE"), nullable=False, index=True)
    code_hash = Column(String(64), nullable=False, unique=True)
    created_at = Column(UTCDateTime, nullable=False, default=utc_now)
    expires_at = Column(UTCDateTime, nullable=False)
    used_at = Column(UTCDateTime, nullable=True)
    revoked_at = Column(UTCDateTime, nullable=True)

    patient = relationship("Patient", back_populates="enrolment_codes")

    def __repr__(self) -> str:
        return f"<EnrolmentCode id={self.id} patient_id={self.patient_id}>"


class Message(Base):
    """The product's own log of what was said in a chat (patient health data)."""
    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint(_in("direction", DIRECTIONS), name="direction"),
        CheckConstraint(_in("kind", MESSAGE_KINDS), name="kind"),
    )

    id = Column(Integer, primary_key=True)
    patient_id = Column(
        Integer, ForeignKey("patients.id", ondelete="CASCADE"), nullable=True, index=True)
    sender_id = Column(String(255), nullable=False, index=True)
    direction = Column(String(3), nullable=False)
    kind = Column(String(16), nullable=False, default="text")
    text = Column(Text, nullable=False, default="")
    # Incoming: answered, unanswered (the assistant was down) or held (flood).
    status = Column(String(16), nullable=True, index=True)
    created_at = Column(UTCDateTime, nullable=False, default=utc_now)

    def __repr__(self) -> str:
        return f"<Message id={self.id} {self.direction} {self.kind}>"


class PendingUpdate(Base):
    """An update fetched from Telegram and not yet handled, kept from before
    Telegram is told it arrived until it is handled, then deleted; a bot
    process that (re)starts polling handles those a dead one left
    (bot/update_journal.py). Its JSON holds the patient's words (patient
    health data)."""
    __tablename__ = "pending_updates"

    update_id = Column(BigInteger, primary_key=True, autoincrement=False)
    content = Column(Text, nullable=False)
    received_at = Column(UTCDateTime, nullable=False, default=utc_now)

    def __repr__(self) -> str:
        return f"<PendingUpdate {self.update_id}>"


class Photo(Base):
    __tablename__ = "photos"
    __table_args__ = (CheckConstraint(_in("status", PHOTO_STATUSES), name="status"),)

    id = Column(Integer, primary_key=True)
    patient_id = Column(
        Integer, ForeignKey("patients.id", ondelete="CASCADE"), nullable=False, index=True)
    telegram_file_id = Column(String(255), nullable=False)
    caption = Column(Text, nullable=True)
    content = Column(LargeBinary, nullable=True)
    size = Column(Integer, nullable=True)
    status = Column(String(20), nullable=False)
    received_at = Column(UTCDateTime, nullable=False, default=utc_now)

    def __repr__(self) -> str:
        return f"<Photo id={self.id} patient_id={self.patient_id} status={self.status}>"


class CheckinDelivery(Base):
    """One row per (treatment, check-in): the delivery log that makes sending idempotent."""
    __tablename__ = "checkin_deliveries"
    __table_args__ = (
        UniqueConstraint("treatment_id", "checkin_id",
                         name="uq_checkin_deliveries_treatment_checkin"),
        CheckConstraint(_in("status", DELIVERY_STATUSES), name="status"),
    )

    id = Column(Integer, primary_key=True)
    patient_id = Column(
        Integer, ForeignKey("patients.id", ondelete="CASCADE"), nullable=False, index=True)
    treatment_id = Column(
        Integer, ForeignKey("treatments.id", ondelete="CASCADE"), nullable=False)
    checkin_id = Column(String(64), nullable=False)
    due_at = Column(UTCDateTime, nullable=False)
    status = Column(String(16), nullable=False, index=True)
    detail = Column(String(255), nullable=True)  # why skipped or failed; no health data
    updated_at = Column(UTCDateTime, nullable=False, default=utc_now, onupdate=utc_now)

    def __repr__(self) -> str:
        return f"<CheckinDelivery {self.treatment_id}/{self.checkin_id} {self.status}>"


class SymptomReport(Base):
    """What a patient said about how they are, by recovery day (answers to check-ins too)."""
    __tablename__ = "symptom_reports"

    id = Column(Integer, primary_key=True)
    patient_id = Column(
        Integer, ForeignKey("patients.id", ondelete="CASCADE"), nullable=False, index=True)
    treatment_id = Column(
        Integer, ForeignKey("treatments.id", ondelete="CASCADE"), nullable=True)
    day = Column(Integer, nullable=True)
    checkin_id = Column(String(64), nullable=True)
    symptom = Column(String(64), nullable=False)  # an intent such as report_redness, or "fine"
    level = Column(String(16), nullable=True)     # triage level, None when nothing to flag
    text = Column(Text, nullable=False, default="")
    created_at = Column(UTCDateTime, nullable=False, default=utc_now)

    def __repr__(self) -> str:
        return f"<SymptomReport id={self.id} day={self.day} {self.symptom}>"


class Erasure(Base):
    """The clinic's record that a patient's data was deleted at their request.

    Holds no personal data: only the former id, when, and how it was asked.
    """
    __tablename__ = "erasures"

    id = Column(Integer, primary_key=True)
    former_patient_id = Column(Integer, nullable=False, index=True)
    requested_via = Column(String(32), nullable=False)
    erased_at = Column(UTCDateTime, nullable=False, default=utc_now)

    def __repr__(self) -> str:
        return f"<Erasure patient={self.former_patient_id}>"


class InboxItem(Base):
    """A patient message worth a look for the content authors, de-identified.

    Only messages of patients who agreed (Patient.improve_consent) are kept;
    `text` and `answer` are the masked forms, never the patient's own words.
    `intent`/`runner_up` are the classifier's best two readings (when it fell
    back, the assistant asked instead of acting on `intent`). `capture_key` is
    a hash of the chat and Rasa's message id, so a message is kept once.
    """
    __tablename__ = "inbox_items"
    __table_args__ = (
        CheckConstraint(_in("status", INBOX_STATUSES), name="status"),
        Index("ix_inbox_items_status_received", "status", "received_at"),
        Index("ix_inbox_items_intent_received", "intent", "received_at"),
    )

    id = Column(Integer, primary_key=True)
    capture_key = Column(String(64), nullable=False, unique=True)
    patient_id = Column(
        Integer, ForeignKey("patients.id", ondelete="CASCADE"), nullable=False, index=True)
    sender_id = Column(String(255), nullable=False, index=True)
    received_at = Column(UTCDateTime, nullable=False, index=True)
    day = Column(Integer, nullable=True)
    text = Column(Text, nullable=False)
    intent = Column(String(INTENT_MAX), nullable=True)
    confidence = Column(Float, nullable=True)
    runner_up = Column(String(INTENT_MAX), nullable=True)
    runner_up_confidence = Column(Float, nullable=True)
    net_level = Column(String(16), nullable=True)       # the red-flag net's level, None: none
    answer = Column(Text, nullable=True)                # None until the next turn shows it
    status = Column(String(16), nullable=False, default="new")
    label_intent = Column(String(INTENT_MAX), nullable=True)
    label_text = Column(Text, nullable=True)            # the author's shortened text
    labelled_by = Column(Integer, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True)
    labelled_via = Column(String(ACTOR_MAX), nullable=True)   # "review", "cli:<os user>"
    labelled_at = Column(UTCDateTime, nullable=True)
    exported_at = Column(UTCDateTime, nullable=True)
    captured_at = Column(UTCDateTime, nullable=False, default=utc_now)

    reasons = relationship(
        "InboxReason", back_populates="item", order_by="InboxReason.reason",
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin",
    )

    def __repr__(self) -> str:  # no text: even masked, it is a patient's message
        return f"<InboxItem id={self.id} {self.status}>"


class InboxReason(Base):
    """One reason an inbox item is there; staff_id: the nurse who flagged it."""
    __tablename__ = "inbox_reasons"
    __table_args__ = (
        CheckConstraint(_in("reason", INBOX_REASONS), name="reason"),
        Index("ix_inbox_reasons_reason_item", "reason", "item_id"),
    )

    item_id = Column(Integer, ForeignKey("inbox_items.id", ondelete="CASCADE"),
                     primary_key=True)
    reason = Column(String(24), primary_key=True)
    staff_id = Column(Integer, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True)
    added_at = Column(UTCDateTime, nullable=False, default=utc_now)

    item = relationship("InboxItem", back_populates="reasons")

    def __repr__(self) -> str:
        return f"<InboxReason item={self.item_id} {self.reason}>"
