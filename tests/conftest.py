"""Shared fixtures: a temporary database, the shipped protocol and a fixed clock."""
from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from aftercare.protocol import load_protocol  # noqa: E402
from aftercare.settings import PROJECT_ROOT  # noqa: E402

LONDON = ZoneInfo("Europe/London")
PROTOCOL_PATH = PROJECT_ROOT / "clinic" / "protocol.yml"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: end to end, with Rasa, the bot or Chromium in processes of their own; "
        "make pytest-future leaves these out (libfaketime is for the unit tests)")


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)


@pytest.fixture
def protocol():
    return load_protocol(PROTOCOL_PATH)


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'aftercare.db'}"
    monkeypatch.setenv("AFTERCARE_DATABASE_URL", url)
    return url
