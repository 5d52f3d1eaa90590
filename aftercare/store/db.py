"""Open, migrate and use the patient database."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_MS = 5000


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
    cursor.close()


def make_engine(url: str, future: bool = True) -> Engine:
    """An engine for url; for SQLite: parent folder created, foreign keys on, busy timeout.

    future=False gives the 1.x-style engine APScheduler 3's job store still needs.
    """
    path = _sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    # hide_parameters: a failed statement's error message (and so any log line
    # with its traceback) never carries the values, which may be a patient's words.
    engine = create_engine(url, future=future, hide_parameters=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _on_sqlite_connect)
    return engine


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


def migrate(url: str) -> None:
    """Bring the database at url up to the newest schema (Alembic upgrade head)."""
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per plugin otherwise
    command.upgrade(alembic_config(url), "head")
