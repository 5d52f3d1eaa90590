"""The patient store on real databases, a SQLite file and PostgreSQL (each test
runs on both, conftest.py): migrations, repository, validation."""
from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.script import ScriptDirectory
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text

from aftercare.store import db, pending_updates, repository
from aftercare.store.models import Base, Escalation, Message, Patient, Treatment
from aftercare.store.repository import StoreError

LONDON = ZoneInfo("Europe/London")
TREATED = datetime(2026, 11, 20, 10, 0, tzinfo=LONDON)

pytestmark = pytest.mark.all_databases


@pytest.fixture
def url(database_url: str) -> str:
    db.migrate(database_url)
    return database_url


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "folder" / "store.db"


@pytest.fixture
def sqlite_url(db_file: Path) -> str:
    url = f"sqlite:///{db_file}"
    db.migrate(url)
    return url


def _count(url: str, table: str) -> int:
    with db.make_engine(url).connect() as connection:
        return connection.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


def _add(url: str, name: str = "Ana", **kwargs) -> int:
    with db.session_scope(url) as session:
        return repository.add_patient(session, name, TREATED, "Europe/London", **kwargs).id


# --- migrations and engine -------------------------------------------------

def test_migrate_creates_folder_and_tables(sqlite_url: str, db_file: Path) -> None:
    assert db_file.is_file()
    tables = set(inspect(db.make_engine(sqlite_url)).get_table_names())
    assert {"patients", "treatments", "escalations", "alembic_version"} <= tables


def test_migrate_is_idempotent_and_at_head(url: str) -> None:
    with db.make_engine(url).connect() as connection:
        tables_before = set(inspect(connection).get_table_names())
    db.migrate(url)
    with db.make_engine(url).connect() as connection:
        revision = MigrationContext.configure(connection).get_current_revision()
    assert revision == ScriptDirectory.from_config(db.alembic_config(url)).get_current_head()
    assert revision == "0009"
    assert set(inspect(db.make_engine(url)).get_table_names()) == tables_before


def test_migrate_does_not_depend_on_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "elsewhere" / "x.db"
    db.migrate(f"sqlite:///{target}")
    assert "patients" in inspect(db.make_engine(f"sqlite:///{target}")).get_table_names()


def test_migrations_match_models(url: str) -> None:
    with db.make_engine(url).connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    # sqlite_sequence is SQLite's own bookkeeping for AUTOINCREMENT.
    assert [d for d in diff if not (d[0] == "remove_table" and d[1].name == "sqlite_sequence")] == []


def test_engine_turns_on_foreign_keys_and_busy_timeout(sqlite_url: str) -> None:
    with db.make_engine(sqlite_url).connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == db.BUSY_TIMEOUT_MS


def test_batch_migration_keeps_child_rows(sqlite_url: str, tmp_path: Path) -> None:
    """A later migration that rebuilds `patients` (SQLite batch mode) must not
    cascade-delete treatments: env.py turns foreign keys off while migrating."""
    url = sqlite_url
    head = ScriptDirectory.from_config(db.alembic_config(url)).get_current_head()
    scripts = tmp_path / "migrations"
    shutil.copytree(db.MIGRATIONS_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "9999_rebuild.py").write_text(
        "import sqlalchemy as sa\nfrom alembic import op\n"
        f"revision = '9999'\ndown_revision = '{head}'\nbranch_labels = None\ndepends_on = None\n"
        "def upgrade():\n"
        "    with op.batch_alter_table('patients', recreate='always') as batch:\n"
        "        batch.add_column(sa.Column('extra', sa.String(10), nullable=True))\n"
        "def downgrade():\n    pass\n")
    _add(url)
    config = db.alembic_config(url)
    config.set_main_option("script_location", str(scripts))
    command.upgrade(config, "head")
    assert _count(url, "treatments") == 1
    assert "extra" in {c["name"] for c in inspect(db.make_engine(url)).get_columns("patients")}


# --- patients ----------------------------------------------------------------

def test_add_get_find_list(url: str) -> None:
    with db.session_scope(url) as session:
        ana = repository.add_patient(session, "Ana", TREATED, "Europe/London",
                                     treatment_number=2, sender_id="tg-1")
        bob = repository.add_patient(session, "Bob", TREATED, "America/New_York",
                                     source="self_reported")
        ana_id, bob_id = ana.id, bob.id
    with db.session_scope(url) as session:
        ana = repository.get_patient(session, ana_id)
        assert ana.name == "Ana" and ana.timezone == "Europe/London" and ana.source == "clinic"
        assert repository.current_treatment(ana).number_in_series == 2
        assert repository.find_patient_by_sender(session, "tg-1").id == ana_id
        assert repository.find_patient_by_sender(session, "nobody") is None
        assert repository.get_patient(session, 999) is None
        assert [p.id for p in repository.list_patients(session)] == [ana_id, bob_id]
        assert repository.get_patient(session, bob_id).source == "self_reported"
        assert ana.created_at.tzinfo == timezone.utc


def test_name_is_stripped_and_sql_looking_names_are_stored_verbatim(url: str) -> None:
    name = "Robert'); DROP TABLE patients;-- \"x\" %s ?"
    patient_id = _add(url, f"  {name}  ")
    with db.session_scope(url) as session:
        assert repository.get_patient(session, patient_id).name == name
    assert _count(url, "patients") == 1


def test_aware_datetimes_round_trip_as_utc(url: str) -> None:
    summer = datetime(2026, 7, 1, 10, 0, tzinfo=LONDON)  # BST, UTC+1
    with db.session_scope(url) as session:
        patient_id = repository.add_patient(session, "Ana", summer, "Europe/London").id
    with db.session_scope(url) as session:
        patient = repository.get_patient(session, patient_id)
        treated = repository.current_treatment(patient).treated_at
    assert treated.tzinfo == timezone.utc
    assert treated == summer
    assert (treated.hour, treated.minute) == (9, 0)
    with db.make_engine(url).connect() as connection:   # as stored: naive UTC
        raw = connection.execute(text("SELECT treated_at FROM treatments")).scalar_one()
    assert str(raw).startswith("2026-07-01 09:00:00")


@pytest.mark.parametrize("kwargs, message", [
    ({"name": ""}, "name must not be empty"),
    ({"name": "   "}, "name must not be empty"),
    ({"name": "x" * 201}, "too long"),
    ({"timezone": "Mars/Olympus"}, "unknown time zone"),
    ({"timezone": ""}, "unknown time zone"),
    ({"treated_at": datetime(2026, 11, 20, 10, 0)}, "timezone-aware"),
    ({"treatment_number": 0}, "1 or more"),
    ({"source": "web"}, "source must be one of"),
    ({"sender_id": "  "}, "sender id"),
])
def test_add_patient_validation(url: str, kwargs: dict, message: str) -> None:
    arguments = {"name": "Ana", "treated_at": TREATED, "timezone": "Europe/London", **kwargs}
    with db.session_scope(url) as session:
        with pytest.raises(StoreError, match=message):
            repository.add_patient(session, **arguments)
    assert _count(url, "patients") == 0


def test_name_of_exactly_max_length_is_accepted(url: str) -> None:
    assert _add(url, "x" * 200) == 1


def test_duplicate_sender_is_refused(url: str) -> None:
    _add(url, "Ana", sender_id="tg-1")
    with db.session_scope(url) as session:
        with pytest.raises(StoreError, match="already linked to patient 1"):
            repository.add_patient(session, "Bob", TREATED, "Europe/London", sender_id="tg-1")
    assert _count(url, "patients") == 1


def test_link_sender(url: str) -> None:
    ana_id = _add(url, "Ana", sender_id="tg-1")
    bob_id = _add(url, "Bob")
    with db.session_scope(url) as session:
        bob = repository.get_patient(session, bob_id)
        with pytest.raises(StoreError, match="already linked"):
            repository.link_sender(session, bob, "tg-1")
        repository.link_sender(session, bob, "tg-2")
        ana = repository.get_patient(session, ana_id)
        repository.link_sender(session, ana, "tg-1")  # relinking the same chat is fine
    with db.session_scope(url) as session:
        assert repository.find_patient_by_sender(session, "tg-2").id == bob_id


def test_current_treatment_is_latest_by_time(url: str) -> None:
    patient_id = _add(url)
    with db.session_scope(url) as session:
        patient = repository.get_patient(session, patient_id)
        later = repository.add_treatment(session, patient, TREATED + timedelta(weeks=4))
        repository.add_treatment(session, patient, TREATED - timedelta(weeks=4), number_in_series=1)
        assert later.number_in_series == 2
    with db.session_scope(url) as session:
        current = repository.current_treatment(repository.get_patient(session, patient_id))
        assert current.treated_at == TREATED + timedelta(weeks=4)
        assert current.number_in_series == 2


def test_add_treatment_validation(url: str) -> None:
    patient_id = _add(url)
    with db.session_scope(url) as session:
        patient = repository.get_patient(session, patient_id)
        with pytest.raises(StoreError, match="timezone-aware"):
            repository.add_treatment(session, patient, datetime(2026, 11, 21, 10, 0))
        with pytest.raises(StoreError, match="1 or more"):
            repository.add_treatment(session, patient, TREATED, number_in_series=0)


def test_current_treatment_none_without_treatments() -> None:
    assert repository.current_treatment(Patient(name="x", timezone="UTC")) is None


def test_remove_patient_cascades(url: str) -> None:
    ana_id = _add(url, "Ana", sender_id="tg-ana")
    bob_id = _add(url, "Bob", sender_id="tg-bob")
    with db.session_scope(url) as session:
        repository.add_treatment(session, repository.get_patient(session, ana_id), TREATED)
        for patient_id, sender in ((ana_id, "tg-ana"), (None, "tg-ana"), (bob_id, "tg-bob")):
            repository.record_escalation(session, patient_id=patient_id, sender_id=sender,
                                         message="it hurts", level="urgent", reason="pain", day=1)
    with db.session_scope(url) as session:
        assert repository.remove_patient(session, ana_id) is True
        assert repository.remove_patient(session, 999) is False
    assert _count(url, "patients") == 1
    assert _count(url, "treatments") == 1
    with db.session_scope(url) as session:
        left = repository.list_escalations(session)
        assert [(e.patient_id, e.sender_id) for e in left] == [(bob_id, "tg-bob")]


def test_database_cascade_works_without_the_orm(url: str) -> None:
    patient_id = _add(url)
    with db.make_engine(url).begin() as connection:
        connection.execute(text("DELETE FROM patients WHERE id = :id"), {"id": patient_id})
    assert _count(url, "treatments") == 0


def test_session_scope_rolls_back_on_error(url: str) -> None:
    with pytest.raises(RuntimeError):
        with db.session_scope(url) as session:
            repository.add_patient(session, "Ana", TREATED, "Europe/London")
            raise RuntimeError("boom")
    assert _count(url, "patients") == 0


# --- escalations -------------------------------------------------------------

def test_record_and_list_escalations(url: str) -> None:
    patient_id = _add(url)
    with db.session_scope(url) as session:
        first = repository.record_escalation(
            session, patient_id=patient_id, sender_id=None, message="can't breathe",
            level="emergency", reason="breathing", day=0)
        assert first.status == "open"
        assert first.created_at.tzinfo == timezone.utc and first.resolved_at is None
        second = repository.record_escalation(
            session, patient_id=None, sender_id="web-1", message="call me",
            level="human", reason="asked for a person", day=None)
        second.status = "acknowledged"
    with db.session_scope(url) as session:
        assert [e.level for e in repository.list_escalations(session)] == ["emergency", "human"]
        assert [e.level for e in repository.list_escalations(session, open_only=True)] == [
            "emergency"]
        assert session.execute(select(Escalation.message)).scalars().first() == "can't breathe"


@pytest.mark.parametrize("kwargs, message", [
    ({"level": "panic"}, "level must be one of"),
    ({"patient_id": None, "sender_id": None}, "patient id or a sender id"),
    ({"patient_id": 42}, "no patient with id 42"),
    ({"reason": None}, "must be text"),
    ({"day": "3"}, "day must be"),
])
def test_record_escalation_validation(url: str, kwargs: dict, message: str) -> None:
    _add(url)
    arguments = {"patient_id": 1, "sender_id": "s", "message": "m", "level": "urgent",
                 "reason": "r", "day": 1, **kwargs}
    with db.session_scope(url) as session:
        with pytest.raises(StoreError, match=message):
            repository.record_escalation(session, **arguments)
    assert _count(url, "escalations") == 0


def test_escalation_with_empty_message_and_reason_is_still_recorded(url: str) -> None:
    with db.session_scope(url) as session:
        repository.record_escalation(session, patient_id=None, sender_id="web-1", message="",
                                     level="emergency", reason="", day=None)
    assert _count(url, "escalations") == 1


def test_store_error_is_a_value_error() -> None:
    assert issubclass(StoreError, ValueError)


def test_reprs_leave_out_names_and_messages() -> None:
    assert "Ana" not in repr(Patient(id=1, name="Ana", timezone="UTC"))
    assert "secret" not in repr(Escalation(id=1, message="secret", level="urgent", status="open"))
    assert "Treatment" in repr(Treatment(id=1, number_in_series=1))


def test_database_errors_never_carry_the_values(url: str) -> None:
    """A failing statement's message ends up in logs with its traceback: it must
    not hold what was being written (a patient's words)."""
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError) as failure:
        with db.session_scope(url) as session:
            session.add(Message(sender_id="tg-1", direction="up", kind="text",
                                text="my secret symptom words"))
    assert "my secret symptom words" not in str(failure.value)


def test_duplicate_key_errors_never_carry_the_key(url: str) -> None:
    """PostgreSQL's detail for a unique violation names the key's value (an
    email here, a patient's chat or words elsewhere): it must not get through."""
    from sqlalchemy.exc import IntegrityError

    from aftercare.store.models import Staff

    email = "nurse.quill@clinic.example"
    with db.session_scope(url) as session:
        session.add(Staff(email=email, password_hash="x"))
    with pytest.raises(IntegrityError) as failure:
        with db.session_scope(url) as session:
            session.add(Staff(email=email, password_hash="y"))
    assert email not in str(failure.value)
    assert email not in str(failure.value.orig)


# --- updates in hand (bot/update_journal.py) ---------------------------------

def test_pending_updates_are_kept_once_and_cleared_when_handled(url: str) -> None:
    big = 2**40    # Telegram's update ids need 64 bits
    with db.session_scope(url) as session:
        pending_updates.keep(session, [(big + 2, '{"b":1}'), (big + 1, '{"a":1}')], TREATED)
    with db.session_scope(url) as session:   # fetched again: the first copy stays
        pending_updates.keep(session, [(big + 1, '{"again":1}'), (big + 3, '{"c":1}')],
                             TREATED)
    with db.session_scope(url) as session:
        assert pending_updates.left(session) == [
            (big + 1, '{"a":1}'), (big + 2, '{"b":1}'), (big + 3, '{"c":1}')]
        pending_updates.handled(session, big + 2)
        pending_updates.handled(session, 12345)          # not kept: nothing happens
    with db.session_scope(url) as session:
        assert [update_id for update_id, _ in pending_updates.left(session)] == [big + 1,
                                                                                 big + 3]
