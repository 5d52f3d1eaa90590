"""Shared fixtures: a temporary database, the shipped protocol and a fixed clock.

database_url is a new, empty SQLite file; in modules marked `all_databases`
it is parametrised: each test runs once on SQLite and once on a new, empty
database of the real PostgreSQL server the session starts on loopback
(tests/support/postgres.py).
"""
from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Iterator
from zoneinfo import ZoneInfo

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from aftercare.protocol import load_protocol  # noqa: E402
from aftercare.settings import PROJECT_ROOT  # noqa: E402
from support.postgres import PostgresServer, PostgresUnavailable  # noqa: E402

LONDON = ZoneInfo("Europe/London")
PROTOCOL_PATH = PROJECT_ROOT / "clinic" / "protocol.yml"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: end to end, with Rasa, the bot or Chromium in processes of their own; "
        "make pytest-future leaves these out (libfaketime is for the unit tests)")
    config.addinivalue_line(
        "markers", "all_databases: database_url runs each test on SQLite and on PostgreSQL")


DATABASES = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if ("database_url" in metafunc.fixturenames
            and metafunc.definition.get_closest_marker("all_databases")):
        metafunc.parametrize("database_url", DATABASES, indirect=True)


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)


@pytest.fixture
def protocol():
    return load_protocol(PROTOCOL_PATH)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole run; a failure to start fails the tests."""
    try:
        server = PostgresServer.start()
    except PostgresUnavailable as exc:
        pytest.fail(f"PostgreSQL did not start, so the PostgreSQL tests cannot run: {exc}",
                    pytrace=False)
    with server:
        yield server


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if getattr(request, "param", "sqlite") == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.create_database()
    else:
        server, url = None, f"sqlite:///{tmp_path / 'aftercare.db'}"
    monkeypatch.setenv("AFTERCARE_DATABASE_URL", url)
    yield url
    if server is not None:
        server.drop_database(url)
