"""Shared fixtures: a temporary database, the shipped protocol and a fixed clock.

database_url is a new, empty SQLite file; in modules marked `all_databases`
it is parametrised: each test runs once on SQLite and once on a new, empty
database of the real PostgreSQL server the session starts on loopback
(tests/support/postgres.py). module_database_url is the same for servers a
module starts once (one database per module and kind).
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
from support.fake_telegram import FakeTelegramServer  # noqa: E402
from support.postgres import PostgresServer, PostgresUnavailable  # noqa: E402
from support.redis import RedisServer, RedisUnavailable  # noqa: E402

BOT_TOKEN = "123456:TEST-token"   # tests/bot_harness.py TOKEN

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
    if not metafunc.definition.get_closest_marker("all_databases"):
        return
    if "database_url" in metafunc.fixturenames:
        metafunc.parametrize("database_url", DATABASES, indirect=True)
    elif "module_database_url" in metafunc.fixturenames:
        metafunc.parametrize("module_database_url", DATABASES, indirect=True, scope="module")


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


@pytest.fixture(scope="module")
def module_database_url(request: pytest.FixtureRequest,
                        tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if getattr(request, "param", "sqlite") == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.create_database()
        yield url
        server.drop_database(url)
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('database') / 'aftercare.db'}"


@pytest.fixture
def telegram() -> Iterator[FakeTelegramServer]:
    """The fake Telegram Bot API server on loopback, for one test."""
    with FakeTelegramServer(token=BOT_TOKEN) as server:
        yield server


@pytest.fixture
def clock():
    """A clock the test moves by hand (tests/bot_harness.py)."""
    from tests.bot_harness import ManualClock

    return ManualClock()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One Redis server for the whole run (tests/support/redis.py); a failure
    to start fails the tests that need it, never skips them."""
    try:
        server = RedisServer.start()
    except RedisUnavailable as exc:
        pytest.fail(f"Redis did not start, so the Redis tests cannot run: {exc}", pytrace=False)
    with server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied for this test."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server.url
