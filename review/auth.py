"""Sign-in sessions, CSRF tokens, known devices and the sign-in limits of the
review page.

The session cookie carries a random token; the database keeps only its
sha256, so a copy of the database (a backup, a laptop) signs nobody in. A
session counts only while it has not expired, its account is enabled and it
was issued after the account's sessions_valid_after: `aftercare staff
disable` and a password change end every open session at once.

Each session has its own CSRF token, put in every form as a hidden field and
compared in constant time. The sign-in form, which comes before any session,
uses a double-submit cookie instead.

Sign-in limits. The policy: nobody can stop a nurse who knows her password
from signing in on her usual device, and nobody gets more than a handful of
guesses at a password from one place.

- Client address: the connection's peer, or, only when the peer is one of
  AFTERCARE_REVIEW_TRUSTED_PROXIES, the rightmost address in X-Forwarded-For
  that is not itself a trusted proxy (review/app.py client_address). A header
  from anyone else is ignored, so it cannot be used to pose as someone else.
- Known device: after a successful sign-in the browser gets a long-lived
  device cookie (HttpOnly, only sent to /login, 180 days) with a mark for that
  account, a MAC keyed by the account's password hash (a new password voids
  it). Up to four accounts per browser, for a shared clinic computer.
- An attempt from a known device counts only against that device: 5 per 15
  minutes. Failures anyone else causes, for the same account or from the same
  address, never pause it.
- Any other attempt counts against three limits, and is refused (429) when
  one is used up: its account from its address, 5 per 15 minutes; its
  account from anywhere, 20 per 15 minutes (guessing from many addresses);
  its address for any account, 20 per hour (one client trying many accounts:
  the longer pause falls only on that address).
- A slot is taken before the password is checked (LoginLimiter.take) and only
  a successful sign-in gives it back; it also clears the limit of its own
  place (that account from that address, or that device).
- Unknown email, wrong password and disabled account count and answer alike.
  Only sha256 hashes of the keys are stored; nothing of an email or address.
"""
from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import List, Optional, Tuple, Union
from urllib.parse import urlsplit

from sqlalchemy import case, delete, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aftercare.staff import roles_of, session_is_valid
from aftercare.store.models import LoginLimit, Staff, StaffSession, UTCDateTime

SESSION_COOKIE = "review_session"
LOGIN_CSRF_COOKIE = "review_login_csrf"
TOKEN_BYTES = 32           # secrets.token_urlsafe(32): 43 characters, 256 random bits
TOKEN_MAX_CHARS = 128      # anything longer in a cookie or form is not one of ours
# Lax, not Strict: a link to an escalation from the staff group's Telegram alert
# then opens signed in. Cross-site POSTs still carry no cookie, and every POST
# also needs the session's CSRF token.
SAME_SITE = "Lax"
DEVICE_COOKIE = "review_device"
DEVICE_LIFETIME = timedelta(days=180)
DEVICES_PER_BROWSER = 4
DEVICE_COOKIE_MAX_CHARS = 1024
DEVICE_MARK = re.compile(r"(?P<staff>[0-9]{1,18})\.(?P<issued>[0-9]{1,12})\."
                         r"(?P<nonce>[A-Za-z0-9_-]{16,32})\.(?P<mac>[0-9a-f]{64})")


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
    roles: frozenset = frozenset()   # aftercare.staff.roles_of: what the pages let them use

    @property
    def is_nurse(self) -> bool:
        return "nurse" in self.roles

    @property
    def is_author(self) -> bool:
        return "author" in self.roles


def _signed_in(row: StaffSession, staff: Staff) -> SignedIn:
    return SignedIn(session_id=row.id, staff_id=staff.id, email=staff.email,
                    csrf_token=row.csrf_token, expires_at=row.expires_at,
                    roles=roles_of(staff))


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


# --- known devices ----------------------------------------------------------------

@dataclass(frozen=True)
class DeviceMark:
    """One account's mark in the device cookie: staff id, when it was issued
    (Unix seconds), a random nonce and a MAC keyed by the account's password
    hash, so only this server could have made it and a new password voids it."""
    staff_id: int
    issued: int
    nonce: str
    mac: str

    def text(self) -> str:
        return f"{self.staff_id}.{self.issued}.{self.nonce}.{self.mac}"


def _device_mac(staff: Staff, issued: int, nonce: str) -> str:
    key = hashlib.sha256(b"review-device\0" + staff.password_hash.encode("utf-8")).digest()
    return hmac.new(key, f"{staff.id}.{issued}.{nonce}".encode("ascii"),
                    hashlib.sha256).hexdigest()


def _device_marks(cookie: Optional[str]) -> List[DeviceMark]:
    """The well-formed marks in a device cookie (anything else is ignored)."""
    if not cookie or len(cookie) > DEVICE_COOKIE_MAX_CHARS:
        return []
    marks = []
    for part in cookie.split("~")[:DEVICES_PER_BROWSER]:
        match = DEVICE_MARK.fullmatch(part)
        if match:
            marks.append(DeviceMark(int(match["staff"]), int(match["issued"]), match["nonce"],
                                    match["mac"]))
    return marks


def known_device(staff: Optional[Staff], cookie: Optional[str], now: datetime) -> Optional[str]:
    """The id of this browser for staff ("<staff id>.<nonce>"), if its device
    cookie holds a valid, unexpired mark for that account; else None."""
    if staff is None or staff.disabled_at is not None:
        return None
    moment = int(now.timestamp())
    for mark in _device_marks(cookie):
        if (mark.staff_id == staff.id
                and moment - DEVICE_LIFETIME.total_seconds() < mark.issued <= moment + 300
                and hmac.compare_digest(mark.mac, _device_mac(staff, mark.issued, mark.nonce))):
            return f"{staff.id}.{mark.nonce}"
    return None


def remember_device(staff: Staff, cookie: Optional[str], now: datetime) -> str:
    """The device cookie after staff signed in on this browser: a new mark for
    staff, after the marks of up to three other accounts (a shared computer)."""
    others = [m for m in _device_marks(cookie) if m.staff_id != staff.id]
    issued = int(now.timestamp())
    nonce = secrets.token_urlsafe(12)
    mine = DeviceMark(staff.id, issued, nonce, _device_mac(staff, issued, nonce))
    return "~".join(m.text() for m in others[-(DEVICES_PER_BROWSER - 1):] + [mine])


# --- the sign-in limits -------------------------------------------------------------

@dataclass(frozen=True)
class Limit:
    kind: str
    attempts: int
    window: timedelta


@dataclass(frozen=True)
class Attempt:
    """A sign-in attempt holding one slot in each of its limits (keys); settle
    it with LoginLimiter.succeeded() or failed(). own_key is the limit of the
    place it came from (account and address, or the known device)."""
    keys: Tuple[str, ...]
    own_key: str
    taken_at: datetime


@dataclass(frozen=True)
class Paused:
    """Refused before the password was looked at: wait this many seconds."""
    retry_after: int


class LoginLimiter:
    """The sign-in limits (the policy is in the module docstring).

    take() reserves a slot in every limit that applies, in one transaction,
    before the password is checked: a conditional UPDATE of the limit's row
    (attempts < limit, or the window is over) either takes one or matches
    nothing. SQLite then holds its write lock and PostgreSQL the row's lock
    until the commit, so of any number of attempts arriving at once, in any
    number of review processes, only as many as the limit get through to the
    password check. Rows are taken in key order, so two attempts cannot
    deadlock. A slot is given back only by a successful sign-in; a failure,
    and a process that dies before settling, keep it used.
    """

    def __init__(self, per_account_address: int = 5, per_device: int = 5,
                 per_account: int = 20, per_address: int = 20,
                 window: timedelta = timedelta(minutes=15),
                 address_window: timedelta = timedelta(hours=1)) -> None:
        self.account_address = Limit("account-address", per_account_address, window)
        self.device = Limit("device", per_device, window)
        self.account = Limit("account", per_account, window)
        self.address = Limit("address", per_address, address_window)

    def _limits(self, email: str, address: str,
                device: Optional[str]) -> Tuple[str, List[Tuple[str, Limit]]]:
        account = email.strip().lower()[:320]
        if device is not None:
            own = (_key_hash("device", device), self.device)
            return own[0], [own]
        own = (_key_hash("account-address", f"{account}\0{address}"), self.account_address)
        return own[0], [own, (_key_hash("account", account), self.account),
                        (_key_hash("address", address), self.address)]

    def take(self, session: Session, email: str, address: str, device: Optional[str],
             now: datetime) -> Union[Attempt, Paused]:
        """A slot in each limit for this attempt, or Paused if any is used up
        (then none is taken). device: known_device() for this browser, or None."""
        own_key, limits = self._limits(email, address, device)
        frees = []
        for key, limit in sorted(limits, key=lambda item: item[0]):
            free_at = _take_slot(session, key, limit, now)
            if free_at is not None:
                frees.append(free_at)
        if frees:
            session.rollback()  # give back the slots taken in the other limits
            return Paused(max(1, math.ceil((max(frees) - now).total_seconds())))
        return Attempt(keys=tuple(key for key, _ in limits), own_key=own_key, taken_at=now)

    def succeeded(self, session: Session, attempt: Attempt) -> None:
        """The right password: its place starts afresh, and the other limits get
        their slot back (a sign-in is not a failure). The address's and the
        account's earlier failures stay counted, so one account that works
        cannot reset a guessing run on others."""
        table = LoginLimit.__table__
        session.execute(delete(table).where(table.c.key_hash == attempt.own_key))
        others = [key for key in attempt.keys if key != attempt.own_key]
        if others:
            session.execute(
                update(table)
                .where(table.c.key_hash.in_(others), table.c.attempts > 0,
                       table.c.window_started_at <= literal(attempt.taken_at, UTCDateTime()))
                .values(attempts=table.c.attempts - 1))

    def failed(self, session: Session, attempt: Attempt, now: datetime) -> None:
        """The slot stays used; limits whose window is long over are dropped."""
        table = LoginLimit.__table__
        longest = max(self.account_address.window, self.device.window, self.account.window,
                      self.address.window)
        session.execute(delete(table).where(
            table.c.window_started_at <= literal(now - longest, UTCDateTime())))


def _take_slot(session: Session, key: str, limit: Limit, now: datetime) -> Optional[datetime]:
    """Take one attempt from key's limit: None if taken, else when one frees up."""
    table = LoginLimit.__table__
    started = table.c.window_started_at
    over = started <= literal(now - limit.window, UTCDateTime())
    for _ in range(3):
        taken = session.execute(
            update(table)
            .where(table.c.key_hash == key, or_(over, table.c.attempts < limit.attempts))
            .values(attempts=case((over, 1), else_=table.c.attempts + 1),
                    window_started_at=case((over, literal(now, UTCDateTime())), else_=started)))
        if taken.rowcount:
            return None
        began = session.execute(select(started).where(table.c.key_hash == key)).scalar()
        if began is not None:
            return began + limit.window
        try:
            with session.begin_nested():
                session.execute(insert(table).values(key_hash=key, window_started_at=now,
                                                     attempts=1))
            return None
        except IntegrityError:
            continue  # another process made the row in between: take from it
    raise RuntimeError("a sign-in limit row kept changing under this attempt")


def _key_hash(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()
