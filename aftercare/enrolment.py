"""Enrolment codes: the single-use secret in the t.me link a clinic hands a patient.

Only the sha256 hash of a code is stored; the code itself is shown once, by
the command that issued it. Redeeming links the Telegram chat to the patient.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import urllib.request
from datetime import datetime, timedelta
from typing import Optional
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import ObjectDeletedError

from aftercare.settings import Settings
from aftercare.store import repository
from aftercare.store.models import EnrolmentCode, Patient
from aftercare.store.repository import StoreError

logger = logging.getLogger(__name__)

CODE_BYTES = 16  # 128 bits from secrets; token_urlsafe makes 22 characters of A-Z a-z 0-9 _ -
CODE_MIN_LENGTH = 22
CODE_MAX_LENGTH = 64  # Telegram's limit for a deep-link start parameter
_CODE = re.compile(rf"^[A-Za-z0-9_-]{{{CODE_MIN_LENGTH},{CODE_MAX_LENGTH}}}$")
_USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
GETME_TIMEOUT_SECONDS = 10

REASONS = ("malformed", "unknown", "used", "expired", "revoked", "chat_taken")


class EnrolmentError(ValueError):
    """A code that cannot be redeemed; reason is one of REASONS."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"enrolment code refused: {reason}")
        self.reason = reason


def _check_now(now: datetime) -> datetime:
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    return now


def hash_code(code: str) -> str:
    return hashlib.sha256(code.encode("ascii")).hexdigest()


def is_well_formed(code: object) -> bool:
    return isinstance(code, str) and _CODE.fullmatch(code) is not None


def issue_code(session: Session, patient: Patient, now: datetime, expiry_days: int) -> str:
    """A new code for the patient, valid for expiry_days; their earlier unused codes stop working.

    Returns the raw code: it is not stored, so this is the only time it exists.
    """
    now = _check_now(now)
    if isinstance(expiry_days, bool) or not isinstance(expiry_days, int) or expiry_days < 1:
        raise ValueError(f"expiry_days must be a whole number of 1 or more, got {expiry_days!r}")
    if patient.id is None:
        session.flush()
    session.execute(
        update(EnrolmentCode)
        .where(EnrolmentCode.patient_id == patient.id, EnrolmentCode.used_at.is_(None),
               EnrolmentCode.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session="fetch"))
    code = secrets.token_urlsafe(CODE_BYTES)
    patient.enrolment_codes.append(EnrolmentCode(
        code_hash=hash_code(code), created_at=now, expires_at=now + timedelta(days=expiry_days)))
    session.flush()
    return code


def _refusal(row: EnrolmentCode, now: datetime) -> Optional[str]:
    if row.used_at is not None:
        return "used"
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at <= now:
        return "expired"
    return None


def redeem_code(session: Session, code: str, sender_id: str, now: datetime) -> Patient:
    """Link the chat sender_id to the patient the code was issued for, once.

    Any refusal leaves the database as it was (a chat_taken code stays usable
    from the right chat). The claim is one conditional UPDATE, so of two
    concurrent redemptions of a code exactly one wins.
    """
    if not is_well_formed(code):
        raise EnrolmentError("malformed")
    now = _check_now(now)
    if not isinstance(sender_id, str) or not sender_id.strip():
        raise StoreError("sender id must be non-empty text")
    sender_id = sender_id.strip()
    code_hash = hash_code(code)
    row = session.execute(
        select(EnrolmentCode).where(EnrolmentCode.code_hash == code_hash)).scalar_one_or_none()
    if row is None:
        raise EnrolmentError("unknown")
    reason = _refusal(row, now)
    if reason is not None:
        raise EnrolmentError(reason)
    owner = repository.find_patient_by_sender(session, sender_id)
    if owner is not None and owner.id != row.patient_id:
        raise EnrolmentError("chat_taken")

    claimed = session.execute(
        update(EnrolmentCode)
        .where(EnrolmentCode.id == row.id, EnrolmentCode.used_at.is_(None),
               EnrolmentCode.revoked_at.is_(None), EnrolmentCode.expires_at > now)
        .values(used_at=now)
        .execution_options(synchronize_session=False))
    session.expire(row)  # re-read: another session may have claimed or deleted it meanwhile
    if claimed.rowcount != 1:
        try:
            reason = _refusal(row, now) or "used"
        except ObjectDeletedError:
            reason = "unknown"
        raise EnrolmentError(reason)

    patient = row.patient
    repository.link_sender(session, patient, sender_id)
    patient.enrolled_at = now
    patient.unreachable_at = None
    session.flush()
    return patient


def deep_link(bot_username: str, code: str) -> str:
    username = bot_username.strip().lstrip("@")
    if not _USERNAME.fullmatch(username):
        raise ValueError(f"not a Telegram bot username: {bot_username!r}")
    if not is_well_formed(code):
        raise ValueError("not a well-formed enrolment code")
    return f"https://t.me/{username}?start={code}"


def latest_code(patient: Patient) -> Optional[EnrolmentCode]:
    if not patient.enrolment_codes:
        return None
    return max(patient.enrolment_codes, key=lambda c: (c.created_at, c.id or 0))


def enrolment_state(patient: Patient, now: datetime) -> str:
    """One of "enrolled", "link sent", "link expired", "not enrolled"."""
    if patient.enrolled_at is not None:
        return "enrolled"
    code = latest_code(patient)
    if code is None:
        return "not enrolled"
    if _refusal(code, now) is None:
        return "link sent"
    return "link expired"


def enrolment_status(patient: Patient, now: datetime, tz: Optional[ZoneInfo] = None) -> str:
    """The enrolment state with its date, for people (tz: default the patient's)."""
    tz = tz or ZoneInfo(patient.timezone)
    state = enrolment_state(patient, now)
    if state == "enrolled":
        return f"enrolled {patient.enrolled_at.astimezone(tz):%Y-%m-%d}"
    if state == "link sent":
        expires = latest_code(patient).expires_at.astimezone(tz)
        return f"link sent, expires {expires:%Y-%m-%d %H:%M %Z}"
    return state


def bot_username(settings: Settings) -> Optional[str]:
    """TELEGRAM_BOT_USERNAME, else the username Telegram's getMe reports; None if unknown.

    Failures are logged by exception type only: the getMe URL contains the token.
    """
    if settings.telegram_bot_username:
        username = settings.telegram_bot_username.strip().lstrip("@")
        if _USERNAME.fullmatch(username):
            return username
        logger.warning("TELEGRAM_BOT_USERNAME is not a valid Telegram username; ignored")
        return None
    if not settings.telegram_token:
        return None
    url = f"{settings.telegram_base_url}{settings.telegram_token}/getMe"
    try:
        with urllib.request.urlopen(url, timeout=GETME_TIMEOUT_SECONDS) as response:
            answer = json.loads(response.read().decode("utf-8"))
        username = answer["result"]["username"] if answer.get("ok") else None
    except Exception as exc:  # noqa: BLE001 - any failure means "unknown"; the URL holds the token
        logger.warning("could not ask Telegram for the bot's username (%s)", type(exc).__name__)
        return None
    if isinstance(username, str) and _USERNAME.fullmatch(username):
        return username
    return None
