"""Clinic staff accounts: who may use the review page and staff commands.

Passwords are hashed with argon2id (argon2-cffi's PasswordHasher defaults);
neither a password nor a hash is ever printed or logged. Emails are kept
lower-cased, so they are unique whatever the case they were typed in.

Like the store modules: each function takes an open Session; the caller commits.
"""
from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Iterable, List, Optional

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from aftercare.store.models import EMAIL_MAX, STAFF_ROLES, Staff, StaffSession
from aftercare.store.repository import StoreError, _check_aware

PASSWORD_MIN = 12
PASSWORD_MAX = 1024  # argon2 hashes any length; this only stops silly input

_hasher = PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A hash to verify against when the email is unknown, so that takes as long."""
    return _hasher.hash("not a password of anyone's")


def normalise_email(email: str) -> str:
    """The stored form of an email (trimmed, lower-case), or StoreError if it is not one."""
    if not isinstance(email, str):
        raise StoreError("email must be text")
    email = email.strip().lower()
    if not email:
        raise StoreError("email must not be empty")
    if len(email) > EMAIL_MAX:
        raise StoreError(f"email is too long ({len(email)} characters, at most {EMAIL_MAX})")
    local, at, domain = email.partition("@")
    if (not at or "@" in domain or not local or "." not in domain
            or domain.startswith(".") or domain.endswith(".")
            or any(ch.isspace() or not ch.isprintable() for ch in email)):
        raise StoreError("that does not look like an email address (name@clinic.example)")
    return email


def check_password(password: str) -> str:
    """The password, or StoreError saying why it will not do (never echoing it)."""
    if not isinstance(password, str):
        raise StoreError("password must be text")
    if len(password) < PASSWORD_MIN:
        raise StoreError(f"password is too short ({len(password)} characters, "
                         f"at least {PASSWORD_MIN})")
    if len(password) > PASSWORD_MAX:
        raise StoreError(f"password is too long (at most {PASSWORD_MAX} characters)")
    return password


def _check_telegram_id(user_id: int) -> int:
    if isinstance(user_id, bool) or not isinstance(user_id, int) or user_id < 1:
        raise StoreError(f"Telegram user id must be a positive whole number, got {user_id!r}")
    return user_id


def find_staff(session: Session, email: str) -> Optional[Staff]:
    """The account for email (any case), or None (also when it is no email at all)."""
    try:
        email = normalise_email(email)
    except StoreError:
        return None
    return session.execute(select(Staff).where(Staff.email == email)).scalar_one_or_none()


def get_staff(session: Session, email: str) -> Staff:
    staff = find_staff(session, email)
    if staff is None:
        raise StoreError(f"no staff account {normalise_email(email)}")
    return staff


def staff_for_telegram(session: Session, telegram_user_id: int) -> Optional[Staff]:
    """The enabled account linked to a Telegram user, or None."""
    staff = session.execute(select(Staff).where(
        Staff.telegram_user_id == telegram_user_id)).scalar_one_or_none()
    return staff if staff is not None and staff.disabled_at is None else None


def parse_roles(roles: Iterable[str]) -> str:
    """Roles as stored: "nurse,author" or ["author", "nurse"] -> "author,nurse".
    StoreError for an unknown role or none at all."""
    if isinstance(roles, str):
        roles = [roles]
    chosen = set()
    for entry in roles:
        if not isinstance(entry, str):
            raise StoreError("roles must be text")
        chosen |= {part.strip().lower() for part in entry.split(",") if part.strip()}
    unknown = chosen - set(STAFF_ROLES)
    if unknown:
        raise StoreError(f"unknown role {', '.join(sorted(unknown))!r}; the roles are "
                         f"{', '.join(STAFF_ROLES)}")
    if not chosen:
        raise StoreError(f"give at least one role ({', '.join(STAFF_ROLES)})")
    return ",".join(sorted(chosen))


def roles_of(staff: Staff) -> frozenset[str]:
    return frozenset(part for part in (staff.roles or "").split(",") if part)


def has_role(staff: Staff, role: str) -> bool:
    return role in roles_of(staff)


def set_roles(session: Session, email: str, roles: Iterable[str]) -> Staff:
    """Replace the account's roles."""
    staff = get_staff(session, email)
    staff.roles = parse_roles(roles)
    session.flush()
    return staff


def add_staff(session: Session, email: str, password: str,
              roles: Iterable[str] = ("nurse",)) -> Staff:
    """A new account (a nurse unless told otherwise); an email that exists
    already (in any case) is refused."""
    email = normalise_email(email)
    check_password(password)
    stored_roles = parse_roles(roles)
    if find_staff(session, email) is not None:
        raise StoreError(f"a staff account for {email} exists already")
    staff = Staff(email=email, password_hash=_hasher.hash(password), roles=stored_roles)
    session.add(staff)
    session.flush()
    staff.sessions_valid_after = staff.created_at
    return staff


def verify_password(session: Session, email: str, password: str) -> Optional[Staff]:
    """The account if email and password match and it is enabled, else None.

    Takes about as long for an unknown email (a dummy hash is checked); the
    hash is renewed when the hasher's parameters have changed.
    """
    if not isinstance(password, str):
        return None
    staff = find_staff(session, email)
    stored = staff.password_hash if staff is not None else _dummy_hash()
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if staff is None or staff.disabled_at is not None:
        return None
    if _hasher.check_needs_rehash(staff.password_hash):
        staff.password_hash = _hasher.hash(password)
        session.flush()
    return staff


def session_is_valid(staff: Staff, issued_at: datetime) -> bool:
    """Whether a sign-in session issued at issued_at still counts."""
    return staff.disabled_at is None and issued_at >= staff.sessions_valid_after


def end_sessions(session: Session, staff: Staff) -> int:
    """Delete the account's review-page sessions (how many). sessions_valid_after
    already voids them; deleting them too leaves nothing behind to misuse."""
    result = session.execute(delete(StaffSession).where(StaffSession.staff_id == staff.id))
    return result.rowcount or 0


def disable_staff(session: Session, email: str, now: datetime) -> bool:
    """No more sign-ins, and every open session ends now. False if already disabled
    (its sessions are ended again all the same)."""
    now = _check_aware(now, "time")
    staff = get_staff(session, email)
    was_enabled = staff.disabled_at is None
    if was_enabled:
        staff.disabled_at = now
    staff.sessions_valid_after = now
    end_sessions(session, staff)
    session.flush()
    return was_enabled


def enable_staff(session: Session, email: str) -> bool:
    """Allow sign-ins again; False if the account was not disabled."""
    staff = get_staff(session, email)
    if staff.disabled_at is None:
        return False
    staff.disabled_at = None
    session.flush()
    return True


def set_password(session: Session, email: str, password: str,
                 now: Optional[datetime] = None) -> Staff:
    """A new password; with now, every session issued before it ends too."""
    check_password(password)
    staff = get_staff(session, email)
    staff.password_hash = _hasher.hash(password)
    if now is not None:
        staff.sessions_valid_after = _check_aware(now, "time")
        end_sessions(session, staff)
    session.flush()
    return staff


def list_staff(session: Session) -> List[Staff]:
    """All accounts by email."""
    return list(session.execute(select(Staff).order_by(Staff.email)).scalars())


def link_telegram(session: Session, email: str, telegram_user_id: Optional[int]) -> Staff:
    """Link the account to a Telegram user (None unlinks); one account per user."""
    staff = get_staff(session, email)
    if telegram_user_id is not None:
        telegram_user_id = _check_telegram_id(telegram_user_id)
        owner = session.execute(select(Staff).where(
            Staff.telegram_user_id == telegram_user_id)).scalar_one_or_none()
        if owner is not None and owner is not staff:
            raise StoreError(f"Telegram user {telegram_user_id} is linked to "
                             f"{owner.email} already")
    staff.telegram_user_id = telegram_user_id
    session.flush()
    return staff
