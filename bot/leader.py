"""Which bot process does a job that only one may do at a time, per database:
scheduling and sending the check-ins (bot/checkin_service.py), and long
polling Telegram for updates (bot/poller.py; Telegram answers 409 Conflict to
a second poller). Each job has a lock of its own.

- PostgreSQL: a session advisory lock (pg_try_advisory_lock) on a connection
  of its own. It is released when that connection ends, so when the leader
  dies PostgreSQL frees it at once, and a standby that asks takes it.
- SQLite: an exclusive flock on `<database file>-<job>.lock`. One bot
  process per SQLite file is the supported setup; a second one finds the
  lock taken, stands by, and says so. The kernel frees the
  lock when the leader's process ends, however it ends.
- Any other database (or SQLite in memory): no lock; this process leads.

A standby asks again every few seconds; the leader checks that its lock is
still held (a PostgreSQL restart ends the session and so the lock) and stands
down if it is not.
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from pathlib import Path
from typing import Optional

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.url import make_url
from sqlalchemy.pool import NullPool

logger = logging.getLogger(__name__)

SCHEDULER = "scheduler"      # the check-ins' scheduler
POLLING = "polling"          # long polling Telegram
_ADVISORY_NAMES = {SCHEDULER: "aftercare:checkin-scheduler", POLLING: "aftercare:telegram-polling"}
ASK_AGAIN_SECONDS = 2.0      # between a standby's requests for a lock (and the leader's checks)


def _advisory_key(name: str) -> int:
    """A signed 64-bit key for pg_try_advisory_lock, the same in every process."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big",
                          signed=True)


class LeaderLock:
    """No coordination: this process always leads."""

    description = "no lock (one bot process)"

    def try_acquire(self) -> bool:
        return True

    def held(self) -> bool:
        return True

    def release(self) -> None:
        pass


class FileLock(LeaderLock):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"file lock {path}"
        self._fd: Optional[int] = None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class AdvisoryLock(LeaderLock):
    def __init__(self, url: str, job: str = SCHEDULER) -> None:
        self.key = _advisory_key(_ADVISORY_NAMES[job])
        self.job = job
        self.description = f"PostgreSQL advisory lock {_ADVISORY_NAMES[job]}"
        # Its own connection, outside any pool: the lock lives as long as it does.
        self._engine: Engine = create_engine(
            url, poolclass=NullPool, isolation_level="AUTOCOMMIT",
            connect_args={"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 10,
                          "keepalives_interval": 5, "keepalives_count": 3,
                          "options": "-c statement_timeout=5000"})
        self._connection: Optional[Connection] = None
        self._holding = False

    def try_acquire(self) -> bool:
        if self._holding:
            return self.held()
        try:
            if self._connection is None:
                self._connection = self._engine.connect()
            got = self._connection.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                           {"key": self.key}).scalar_one()
        except Exception as exc:   # the database is unreachable: try again later
            logger.warning("could not ask for the %s lock: %s", self.job, type(exc).__name__)
            self._drop()
            return False
        self._holding = bool(got)
        return self._holding

    def held(self) -> bool:
        if not self._holding or self._connection is None:
            return False
        try:
            self._connection.execute(text("SELECT 1")).scalar_one()
        except Exception:          # the session (and with it the lock) is gone
            self._drop()
            return False
        return True

    def _drop(self) -> None:
        self._holding = False
        if self._connection is not None:
            try:
                self._connection.invalidate()
                self._connection.close()
            except Exception:
                pass
            self._connection = None

    def release(self) -> None:
        if self._holding and self._connection is not None:
            try:
                self._connection.execute(text("SELECT pg_advisory_unlock(:key)"),
                                         {"key": self.key})
            except Exception:      # ending the connection releases it anyway
                pass
        self._drop()
        self._engine.dispose()


def lock_for(database_url: str, job: str = SCHEDULER) -> LeaderLock:
    """The lock for one job (SCHEDULER, POLLING) that fits the database."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        return AdvisoryLock(database_url, job)
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            return LeaderLock()
        return FileLock(Path(f"{url.database}-{job}.lock"))
    logger.warning("no %s lock for %s databases: run one bot process", job,
                   url.get_backend_name())
    return LeaderLock()
