"""The database on SQLite and on the real PostgreSQL server (conftest.py): migrations
from an old schema with rows in it, several processes migrating at once, a
PostgreSQL restart between two store operations, and wrong URLs from the
`aftercare` command, the bot and the review page."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from aftercare.settings import PROJECT_ROOT
from aftercare.store import chats, db, deliveries, escalations, repository
from aftercare.store.models import Base
from cli.main import main
from support.postgres import PostgresServer
from tests.bot_harness import free_port
from tests.review_harness import add_staff

TREATED = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)
HEAD = ScriptDirectory.from_config(db.alembic_config("sqlite://")).get_current_head()
SECRET = "s3cret-Pa55word"


def _revision(url: str) -> str:
    with db.make_engine(url).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _schema_diff(url: str) -> list:
    with db.make_engine(url).connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    # sqlite_sequence is SQLite's own bookkeeping for AUTOINCREMENT.
    return [d for d in diff if not (d[0] == "remove_table" and d[1].name == "sqlite_sequence")]


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> Iterator[str]:
    """A new, empty PostgreSQL database, for what only PostgreSQL has (a server)."""
    url = postgres.create_database()
    yield url
    postgres.drop_database(url)


# --- migrations (database_url: once on SQLite, once on PostgreSQL) ----------------------

@pytest.mark.all_databases
def test_an_empty_database_migrates_to_the_models_and_a_second_run_changes_nothing(
        database_url: str) -> None:
    db.migrate(database_url)
    assert _revision(database_url) == HEAD
    assert _schema_diff(database_url) == []
    db.migrate(database_url)
    assert _revision(database_url) == HEAD
    assert _schema_diff(database_url) == []


@pytest.mark.all_databases
def test_a_database_at_the_first_revision_with_rows_upgrades_and_keeps_them(
        database_url: str) -> None:
    """Every later migration alters `patients`, `escalations` or `staff` while
    `treatments` and `escalations` refer to `patients` (on PostgreSQL the old
    batch rebuild could not drop patients' primary key)."""
    command.upgrade(db.alembic_config(database_url), "0001")
    stamp = "'2026-11-20 10:00:00'"
    with db.make_engine(database_url).begin() as connection:
        for name in ("Ana", "Bob"):
            connection.execute(text(
                f"INSERT INTO patients (name, timezone, source, created_at) "
                f"VALUES (:name, 'Europe/London', 'clinic', {stamp})"), {"name": name})
        ana, bob = connection.execute(text("SELECT id FROM patients ORDER BY id")).scalars()
        connection.execute(text(
            f"INSERT INTO treatments (patient_id, number_in_series, treated_at, created_at) "
            f"VALUES ({ana}, 1, {stamp}, {stamp})"))
        connection.execute(text(
            f"INSERT INTO escalations (patient_id, message, level, reason, status, created_at, "
            f"updated_at) VALUES ({ana}, 'm', 'urgent', 'r', 'open', {stamp}, {stamp})"))
    db.migrate(database_url)
    assert _revision(database_url) == HEAD
    assert _schema_diff(database_url) == []
    with db.session_scope(database_url) as session:
        patient = repository.get_patient(session, ana)
        assert patient.name == "Ana" and len(patient.treatments) == 1
        assert [e.patient_id for e in repository.list_escalations(session)] == [ana]
        # The widened check of 0004 and the new columns work on the old rows.
        deliveries.record(session, patient_id=ana, treatment_id=patient.treatments[0].id,
                          checkin_id="day1_morning", due_at=TREATED, status="claimed")
        assert patient.improve_consent is None
        assert repository.remove_patient(session, bob)
        session.flush()
        newcomer = repository.add_patient(session, "Cy", TREATED, "Europe/London")
    assert newcomer.id == bob + 1   # an erased patient's id is not given again


MIGRATING_PROCESS = """
import sys, time
from pathlib import Path
from aftercare.store import db
ready, go = Path(sys.argv[2]), Path(sys.argv[3])
ready.touch()
while not go.exists():
    time.sleep(0.005)
db.migrate(sys.argv[1])
"""


@pytest.mark.all_databases
def test_processes_migrating_at_once_wait_for_each_other(database_url: str,
                                                         tmp_path: Path) -> None:
    """Three real processes start migrating the same empty database at the same
    moment: each one waits for the lock, so all succeed and the schema is whole.
    Without the lock the others fail on tables the first one is creating."""
    go = tmp_path / "go"
    readies = [tmp_path / f"ready{n}" for n in range(3)]
    processes = [subprocess.Popen([sys.executable, "-c", MIGRATING_PROCESS, database_url,
                                   str(ready), str(go)], cwd=PROJECT_ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                 for ready in readies]
    deadline = time.monotonic() + 120
    while not all(r.exists() for r in readies) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    outputs = [p.communicate(timeout=180)[0].decode(errors="replace") for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], outputs
    assert _revision(database_url) == HEAD
    assert _schema_diff(database_url) == []


# --- PostgreSQL restarted mid-run -------------------------------------------------------

def test_the_store_carries_on_after_postgresql_restarts(postgres_url: str,
                                                        postgres: PostgresServer) -> None:
    """Pooled connections die with the server; the next operation gets a new one."""
    database_url = postgres_url
    db.migrate(database_url)
    with db.session_scope(database_url) as session:   # leaves a pooled connection open
        patient_id = repository.add_patient(session, "Ana", TREATED, "Europe/London").id
    staff_id = add_staff(database_url)
    postgres.restart()
    with db.session_scope(database_url) as session:
        assert repository.get_patient(session, patient_id).name == "Ana"
        escalation = repository.record_escalation(
            session, patient_id=patient_id, sender_id=None, message="m", level="urgent",
            reason="r", day=1)
        escalations.acknowledge(session, escalation.id, actor=f"staff:{staff_id}",
                                now=TREATED + timedelta(hours=1))
    with db.session_scope(database_url) as session:
        assert repository.list_escalations(session)[0].status == "acknowledged"
        chats.log_message(session, sender_id="tg-1", direction="in", text="still fine",
                          status="answered", patient_id=patient_id)


# --- wrong URLs ------------------------------------------------------------------------

def _wrong_urls(server_url: str) -> dict:
    """What a clinic might get wrong, each with the password SECRET in it."""
    host_port = server_url.split("@", 1)[1].split("/", 1)[0]
    return {
        "scheme": f"mysql://aftercare:{SECRET}@127.0.0.1/aftercare",
        "postgres-scheme": f"postgres://aftercare:{SECRET}@127.0.0.1/aftercare",
        "not-a-url": f"aftercare:{SECRET}@localhost",
        "port": f"postgresql://aftercare:{SECRET}@127.0.0.1:five/aftercare",
        "refused": f"postgresql://aftercare:{SECRET}@127.0.0.1:9/aftercare",
        "unknown-host": f"postgresql://aftercare:{SECRET}@no-such-host.invalid/aftercare",
        "password": f"postgresql://postgres:{SECRET}@{host_port}/postgres",
    }


@pytest.fixture
def wrong_urls(postgres: PostgresServer) -> dict:
    return _wrong_urls(postgres.url())


@pytest.mark.parametrize("kind", ["scheme", "postgres-scheme", "not-a-url", "port", "refused",
                                  "unknown-host", "password"])
@pytest.mark.parametrize("argv", [["patients", "list"], ["db", "check"], ["db", "migrate"],
                                  ["run"]])
def test_a_wrong_url_is_one_line_naming_the_setting_from_the_command(
        wrong_urls: dict, kind: str, argv: list, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("AFTERCARE_DATABASE_URL", wrong_urls[kind])
    monkeypatch.delenv("TELEGRAM_TOKEN", raising=False)
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aftercare: error: AFTERCARE_DATABASE_URL")
    assert SECRET not in captured.err + captured.out


def _start(module: str, url: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "AFTERCARE_DATABASE_URL": url,
                   "AFTERCARE_LOG_DIR": str(tmp_path / "log"), **env}
    return subprocess.run([sys.executable, "-m", module], cwd=PROJECT_ROOT, env=environment,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("kind", ["refused", "password"])
def test_a_wrong_url_stops_the_bot_and_the_review_page_with_one_line(
        wrong_urls: dict, kind: str, tmp_path: Path) -> None:
    bot = _start("bot", wrong_urls[kind], tmp_path, TELEGRAM_TOKEN="123456:TEST-token",
                 TELEGRAM_BASE_URL="http://127.0.0.1:9/bot")
    review = _start("review", wrong_urls[kind], tmp_path, AFTERCARE_REVIEW_PORT=str(free_port()))
    for name, done in (("bot", bot), ("review", review)):
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, (name, done.stderr[-2000:])
        assert len(lines) == 1 and lines[0].startswith(f"{name}: AFTERCARE_DATABASE_URL: "
                                                       "cannot use postgresql://"), lines
        assert SECRET not in done.stderr + done.stdout
    logs = "".join(p.read_text() for p in (tmp_path / "log").glob("*.log"))
    assert SECRET not in logs

