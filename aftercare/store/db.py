"""Open, migrate and use the patient database.

AFTERCARE_DATABASE_URL is a SQLite file (the default) or a PostgreSQL
database. A URL that is wrong, or a database that cannot be reached, is a
DatabaseURLError: one line naming the setting, never the password. Pooled
PostgreSQL connections are checked before use (pool_pre_ping), so a server
restart costs no request more than a reconnect. migrate() holds a lock while
it upgrades, so processes starting together migrate one after the other: a
PostgreSQL advisory lock, or for a SQLite file an flock on a lock file next
to it (`<file>-migrate.lock`, left in place).
"""
from __future__ import annotations

import fcntl
import logging
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from aftercare.settings import SettingsError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_MS = 5000
SETTING = "AFTERCARE_DATABASE_URL"
BACKENDS = ("sqlite", "postgresql")
URL_EXAMPLES = "sqlite:///var/aftercare.db or postgresql://USER:PASSWORD@HOST:5432/DATABASE"
# An unreachable PostgreSQL host fails after this long, not after TCP's minutes.
CONNECT_TIMEOUT_S = 10
# pg_advisory_lock key held while migrating ("aftercare" in ASCII, trimmed to 63 bits).
MIGRATION_LOCK_KEY = 0x6166746572636172


class DatabaseURLError(SettingsError):
    """AFTERCARE_DATABASE_URL is not usable: the message is one line, names the
    setting and leaves the password out."""


def shown_url(url: str) -> str:
    """The URL as it may be shown or logged: the password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):   # ValueError: a port that is not a number
        return url.split("://", 1)[0] + "://..." if "://" in url else "(not a URL)"


def parse_url(url: str, setting: str = SETTING) -> URL:
    """The parsed URL of a database this product runs on, or DatabaseURLError
    naming `setting` (where the URL came from)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise DatabaseURLError(f"{setting} is not a database URL: {shown_url(url)} "
                               f"(use {URL_EXAMPLES})") from None
    backend = parsed.get_backend_name()
    if backend == "postgres":
        raise DatabaseURLError(f"{setting} starts with postgres://, which SQLAlchemy does not "
                               f"accept: write postgresql:// instead")
    if backend not in BACKENDS:
        raise DatabaseURLError(f"{setting} must be a SQLite or PostgreSQL URL, got "
                               f"{shown_url(url)} (use {URL_EXAMPLES})")
    return parsed


def one_line(error: BaseException) -> str:
    """A driver's message (psycopg2's spans several lines) as one line."""
    reason = getattr(error, "orig", None) or error
    return " ".join(part.strip() for part in str(reason).splitlines() if part.strip())


def unusable(url: str, error: BaseException, setting: str = SETTING) -> DatabaseURLError:
    return DatabaseURLError(f"{setting}: cannot use {shown_url(url)}: {one_line(error)}")


def _sqlite_file(url: str) -> Path | None:
    """The database file of a sqlite URL, or None (other backends, in-memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def _on_sqlite_connect(dbapi_connection, connection_record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    # Write-ahead logging: readers do not block the writer, and a commit costs one
    # sync instead of several. It is a property of the file, so Rasa's tracker
    # store, which shares the file, gets it too.
    cursor.execute("PRAGMA journal_mode=WAL")
    # An erased patient's name, phone and words are overwritten with zeros, not
    # left in the file's free pages until a VACUUM (Debian's SQLite does this by
    # default; other builds do not).
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def make_engine(url: str, future: bool = True, setting: str = SETTING) -> Engine:
    """An engine for url; for SQLite: parent folder created, foreign keys on, busy timeout.

    future=False gives the 1.x-style engine APScheduler 3's job store still needs.
    """
    parsed = parse_url(url, setting)
    path = _sqlite_file(url)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise unusable(url, exc, setting) from None
    options: dict = {}
    if parsed.get_backend_name() == "postgresql":
        # A server restart leaves dead connections in the pool: test each one
        # before handing it out rather than fail the request that gets it.
        options["pool_pre_ping"] = True
        if "connect_timeout" not in parsed.query:
            options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    # hide_parameters: a failed statement's error message (and so any log line
    # with its traceback) never carries the values, which may be a patient's words.
    try:
        engine = create_engine(url, future=future, hide_parameters=True, **options)
    except (NoSuchModuleError, ImportError) as exc:
        raise DatabaseURLError(f"{setting}: no database driver for {shown_url(url)} "
                               f"({one_line(exc)}); use {URL_EXAMPLES}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _on_sqlite_connect)
    else:
        event.listen(engine, "handle_error", _without_row_values)
    return engine


def _without_row_values(context) -> None:
    """PostgreSQL's error DETAIL repeats the row or key that failed ("Failing
    row contains (..., my words, ...)", "Key (email)=(...)"): keep the first
    line only, so that like the values sent (hide_parameters) they never
    reach a log."""
    error = context.original_exception
    message = str(error)
    first = message.split("\n", 1)[0]
    if first == message.strip():
        return
    error.args = (first,)
    wrapped = context.sqlalchemy_exception   # its message was made from the driver's
    if wrapped is not None and wrapped.args and isinstance(wrapped.args[0], str):
        wrapped.args = (wrapped.args[0].replace(message, first),) + wrapped.args[1:]


def session_factory(url: str) -> sessionmaker:
    """Sessions on a new engine for url; objects stay readable after commit."""
    return sessionmaker(bind=make_engine(url), future=True, expire_on_commit=False)


@lru_cache(maxsize=16)
def _cached_factory(url: str) -> sessionmaker:
    return session_factory(url)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits when the block ends and rolls back on an exception."""
    session = _cached_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str) -> Config:
    """Alembic configuration for url, independent of the working directory."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation: a literal % (e.g. in a password) must be doubled.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def connect(engine: Engine, url: str, setting: str = SETTING) -> Connection:
    """A connection, or DatabaseURLError if the database cannot be reached
    (refused, unknown host, wrong password, no such database, unreadable file)."""
    try:
        return engine.connect()
    except DBAPIError as exc:
        raise unusable(url, exc, setting) from None


@contextmanager
def _sqlite_file_lock(url: str) -> Iterator[None]:
    path = _sqlite_file(url)
    if path is None:   # in-memory: nobody else can see it
        yield
        return
    with open(path.with_name(path.name + "-migrate.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # waits for the process migrating now
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def _migration_lock(connection: Connection, url: str) -> Iterator[None]:
    """Held while migrating, so one process waits for the other."""
    if connection.dialect.name != "postgresql":
        with _sqlite_file_lock(url):
            yield
        return
    connection.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")
    connection.commit()   # the lock belongs to the session, not the transaction
    try:
        yield
    finally:
        if not connection.closed and not connection.invalidated:
            connection.rollback()
            connection.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")
            connection.commit()


def migrate(url: str, setting: str = SETTING) -> None:
    """Bring the database at url up to the newest schema (Alembic upgrade head).

    A process that finds another one migrating waits for it, then finds
    nothing left to do. DatabaseURLError if the database cannot be reached.
    """
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per plugin otherwise
    engine = make_engine(url, setting=setting)
    try:
        with connect(engine, url, setting) as connection, _migration_lock(connection, url):
            config = alembic_config(url)
            config.attributes["connection"] = connection   # env.py migrates on it
            command.upgrade(config, "head")
    finally:
        engine.dispose()
