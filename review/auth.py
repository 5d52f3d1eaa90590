"""Sign-in sessions, CSRF tokens and the sign-in rate limit of the review page.

The session cookie carries a random token; the database keeps only its
sha256, so a copy of the database (a backup, a laptop) signs nobody in. A
session counts only while it has not expired, its account is enabled and it
was issued after the account's sessions_valid_after: `aftercare staff
disable` and a password change end every open session at once.

Each session has its own CSRF token, put in every form as a hidden field and
compared in constant time. The sign-in form, which comes before any session,
uses a double-submit cookie instead.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional, Tuple
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from aftercare.staff import session_is_valid
from aftercare.store.models import LoginFailure, Staff, StaffSession

SESSION_COOKIE = "review_session"
LOGIN_CSRF_COOKIE = "review_login_csrf"
TOKEN_BYTES = 32           # secrets.token_urlsafe(32): 43 characters, 256 random bits
TOKEN_MAX_CHARS = 128      # anything longer in a cookie or form is not one of ours
# Lax, not Strict: a link to an escalation from the staff group's Telegram alert
# then opens signed in. Cross-site POSTs still carry no cookie, and every POST
# also needs the session's CSRF token.
SAME_SITE = "Lax"


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """What the database keeps of a session token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def same_token(given: Optional[str], expected: Optional[str]) -> bool:
    """Constant-time comparison; a missing token never matches."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def safe_next(target: Optional[str], default: str = "/") -> str:
    """target if it is a path on this site, else default: a sign-in link must
    never send staff on to another site (an open redirect)."""
    if not target or len(target) > 2000 or not target.startswith("/"):
        return default
    if target.startswith("//") or "\\" in target or any(ord(c) < 0x20 or c == "\x7f"
                                                        for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or parts.path.startswith(("/login", "/logout")):
        return default
    return target


@dataclass(frozen=True)
class SignedIn:
    """Who made a request: the pages and the timeline need no more than this."""
    session_id: int
    staff_id: int
    email: str
    csrf_token: str
    expires_at: datetime


def _signed_in(row: StaffSession, staff: Staff) -> SignedIn:
    return SignedIn(session_id=row.id, staff_id=staff.id, email=staff.email,
                    csrf_token=row.csrf_token, expires_at=row.expires_at)


def start_session(session: Session, staff: Staff, now: datetime, hours: float,
                  replacing: Optional[str] = None) -> Tuple[str, SignedIn]:
    """A new session for staff (the cookie token, and who it signs in).

    Signing in always makes a new token (a token planted before sign-in is
    useless after it); the session it replaces and any expired ones go.
    """
    if replacing:
        end_session(session, replacing)
    session.execute(delete(StaffSession).where(StaffSession.expires_at <= now))
    token = new_token()
    row = StaffSession(staff_id=staff.id, token_hash=token_hash(token), csrf_token=new_token(),
                       created_at=now, expires_at=now + timedelta(hours=hours))
    session.add(row)
    session.flush()
    return token, _signed_in(row, staff)


def current_session(session: Session, token: Optional[str], now: datetime) -> Optional[SignedIn]:
    """Who the cookie token signs in, or None (a session found to be void is deleted)."""
    if not token or len(token) > TOKEN_MAX_CHARS:
        return None
    row = session.execute(select(StaffSession).where(
        StaffSession.token_hash == token_hash(token))).scalar_one_or_none()
    if row is None:
        return None
    staff = session.get(Staff, row.staff_id)
    if staff is None or row.expires_at <= now or not session_is_valid(staff, row.created_at):
        session.delete(row)
        session.flush()
        return None
    return _signed_in(row, staff)


def end_session(session: Session, token: str) -> None:
    if token and len(token) <= TOKEN_MAX_CHARS:
        session.execute(delete(StaffSession).where(StaffSession.token_hash == token_hash(token)))


class LoginLimiter:
    """Failed sign-ins in a sliding window, per email and per client address.

    Per email it stops password guessing on one account; per address it stops
    one client trying many emails. The address limit is higher because staff
    behind one proxy or clinic router share an address, and a few typos
    between them must not lock the whole clinic out. The failures are kept in
    the database (only hashes of the email and address), so a restart of the
    review process does not reset a guessing run.
    """

    def __init__(self, per_email: int = 5, per_address: int = 20,
                 window: timedelta = timedelta(minutes=15)) -> None:
        self.per_email = per_email
        self.per_address = per_address
        self.window = window

    @staticmethod
    def _email_key(email: str) -> str:
        return _key_hash("email", email.strip().lower()[:320])

    @staticmethod
    def _address_key(address: str) -> str:
        return _key_hash("address", address)

    def retry_after(self, session: Session, email: str, address: str,
                    now: datetime) -> Optional[int]:
        """Seconds until this email and address may try again, or None if they may now."""
        waits = []
        for key, limit in ((self._email_key(email), self.per_email),
                           (self._address_key(address), self.per_address)):
            times = session.execute(
                select(LoginFailure.failed_at)
                .where(LoginFailure.key_hash == key, LoginFailure.failed_at > now - self.window)
                .order_by(LoginFailure.failed_at.desc()).limit(limit)).scalars().all()
            if len(times) >= limit:
                waits.append((times[-1] + self.window - now).total_seconds())
        return max(1, int(max(waits)) + 1) if waits else None

    def failed(self, session: Session, email: str, address: str, now: datetime) -> None:
        session.execute(delete(LoginFailure).where(LoginFailure.failed_at <= now - self.window))
        session.add_all([LoginFailure(key_hash=self._email_key(email), failed_at=now),
                         LoginFailure(key_hash=self._address_key(address), failed_at=now)])

    def succeeded(self, session: Session, email: str) -> None:
        """The account's own count starts again; the address's does not, so one
        valid account cannot be used to reset a guessing run on others."""
        session.execute(delete(LoginFailure).where(
            LoginFailure.key_hash == self._email_key(email)))


def _key_hash(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()
