"""`aftercare db copy --to postgresql://...`: a clinic's SQLite database, with a
row in every table, Rasa's conversations and the scheduled check-ins, copied
into a new database of the real PostgreSQL server (conftest.py)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import func, inspect, select, text

from aftercare import enrolment, staff as accounts
from aftercare.store import (
    chats, copy, db, deliveries, escalations, pending_updates, repository, tracker_events,
)
from aftercare.store.models import (
    Base, Escalation, InboxItem, InboxReason, LoginLimit, Patient, Photo, StaffPost, StaffSession,
)
from bot.checkin_service import JOB_TABLE
from cli.main import main
from support.postgres import PostgresServer
from tests.review_harness import JPEG_BYTES

SENDER = "tg-515151"
TREATED = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)
NOW = TREATED + timedelta(days=2)
WORDS = "my cheek is hot and there's yellow pus"


def _rasa_events(url: str) -> None:
    """Rasa's own events table (as its SQL tracker store makes it) with a short chat."""
    from rasa.core.tracker_store import SQLTrackerStore

    engine = db.make_engine(url)
    SQLTrackerStore.SQLEvent.__table__.create(engine)
    table = SQLTrackerStore.SQLEvent.__table__
    stamp = NOW.timestamp()
    with engine.begin() as connection:
        for n, (kind, said) in enumerate([("user", WORDS), ("bot", "Please call the clinic."),
                                          ("action", None)]):
            event = {"event": kind, "timestamp": stamp + n, **({"text": said} if said else {})}
            connection.execute(table.insert().values(
                sender_id=SENDER, type_name=kind, timestamp=stamp + n, intent_name=None,
                action_name=None, data=json.dumps(event)))


def _scheduled_checkin(url: str) -> None:
    """One job in APScheduler's job store, written by APScheduler itself."""
    engine = db.make_engine(url, future=False)
    scheduler = BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(
        engine=engine, tablename=JOB_TABLE)}, timezone=timezone.utc)
    scheduler.add_job("builtins:print", "date", run_date=datetime.now(timezone.utc)
                      + timedelta(days=30), id="checkin:1:day7", args=["check-in"])
    scheduler.start(paused=True)
    scheduler.shutdown(wait=False)
    engine.dispose()


@pytest.fixture
def clinic(tmp_path: Path) -> str:
    """A SQLite database with rows in every table of the store, one patient
    erased (so SQLite's id counter is above the highest id left)."""
    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    db.migrate(url)
    with db.session_scope(url) as session:
        ana = repository.add_patient(session, "Ana Quill", TREATED, "Europe/London",
                                     sender_id=SENDER, phone="+44 20 7946 0000")
        ana.enrolled_at, ana.photo_consent, ana.improve_consent = TREATED, True, True
        gone = repository.add_patient(session, "Gone Away", TREATED, "Europe/London")
        session.flush()
        chats.erase_patient(session, gone, requested_via="telegram")
        treatment = repository.current_treatment(ana)
        enrolment.issue_code(session, ana, NOW, 7)
        chats.log_message(session, sender_id=SENDER, direction="in", text=WORDS,
                          status="answered", patient_id=ana.id)
        chats.add_photo(session, ana, file_id="file-1", caption="cheek", content=JPEG_BYTES,
                        status="kept")
        deliveries.record(session, patient_id=ana.id, treatment_id=treatment.id,
                          checkin_id="day1_morning", due_at=TREATED + timedelta(days=1),
                          status="sent")
        repository.record_symptom_report(session, patient_id=ana.id, treatment_id=treatment.id,
                                         day=1, checkin_id="day1_morning", symptom="fine",
                                         level=None, text="all good")
        escalation = repository.record_escalation(
            session, patient_id=ana.id, sender_id=SENDER, message=WORDS, level="urgent",
            reason="possible infection", day=2)
        nurse = accounts.add_staff(session, "nurse@clinic.example", "correct horse battery")
        session.flush()
        escalations.acknowledge(session, escalation.id, "nurse@clinic.example", NOW)
        escalations.queue_reply(session, escalation.id, "nurse@clinic.example", "Call us now",
                                NOW)
        session.add(StaffSession(staff_id=nurse.id, token_hash="a" * 64, csrf_token="b" * 64,
                                 expires_at=NOW + timedelta(hours=8)))
        session.add(LoginLimit(key_hash="c" * 64, window_started_at=NOW, attempts=2))
        pending_updates.keep(session, [(900_001, '{"update_id":900001}')], NOW)
        item = InboxItem(capture_key="d" * 64, patient_id=ana.id, sender_id=SENDER,
                         received_at=NOW, day=2, text="my cheek is <place>", status="new")
        session.add(item)
        session.flush()
        session.add(InboxReason(item_id=item.id, reason="low_confidence"))
        session.add(StaffPost(escalation_id=escalation.id, chat_id=-100123, message_id=77,
                              kind="alert"))
    _rasa_events(url)
    _scheduled_checkin(url)
    return url


@pytest.fixture
def target(postgres: PostgresServer) -> Iterator[str]:
    url = postgres.create_database()
    yield url
    postgres.drop_database(url)


def _counts(url: str) -> dict:
    engine = db.make_engine(url)
    with engine.connect() as connection:
        names = set(inspect(connection).get_table_names())
        counts = {t.name: connection.execute(select(func.count()).select_from(t)).scalar_one()
                  for t in copy.tables_in(connection)}
    engine.dispose()
    return {"tables": names, **counts}


def test_every_table_is_copied_with_its_ids_and_counts_checked(clinic, target, capsys):
    before = _counts(clinic)
    assert all(before[t.name] > 0 for t in Base.metadata.sorted_tables), before
    assert before["events"] == 3 and before[JOB_TABLE] == 1

    assert main(["db", "copy", "--from", clinic, "--to", target]) == 0
    out = capsys.readouterr().out
    assert "every count matches" in out and "***" in out
    assert target.split(":")[2].split("@")[0] not in out        # the password is never shown
    after = _counts(target)
    assert {k: v for k, v in after.items() if k != "tables"} == \
        {k: v for k, v in before.items() if k != "tables"}
    for table, rows in before.items():
        if table != "tables":
            assert f"{table} " in out and f" {rows:,}" in out

    with db.session_scope(target) as session:
        ana = session.execute(select(Patient).where(Patient.sender_id == SENDER)).scalar_one()
        assert ana.id == 1 and ana.name == "Ana Quill" and ana.improve_consent is True
        assert repository.current_treatment(ana).treated_at == TREATED
        photo = session.execute(select(Photo)).scalar_one()
        assert photo.content == JPEG_BYTES
        escalation = session.execute(select(Escalation)).scalar_one()
        assert escalation.acknowledged_at == NOW and escalation.message == WORDS
        said, older = tracker_events.conversation(session, [SENDER], 50)
        assert [(m.direction, m.text) for m in said] == [
            ("in", WORDS), ("out", "Please call the clinic.")] and older == 0
        # New rows get ids past the copied ones; the erased patient's id is not reused.
        newcomer = repository.add_patient(session, "New Patient", NOW, "Europe/London")
        assert newcomer.id == 3
        session.execute(text("INSERT INTO events (sender_id, type_name, data) "
                             "VALUES ('tg-1', 'user', '{}')"))
        assert session.execute(text("SELECT max(id) FROM events")).scalar_one() == 4
    store = SQLAlchemyJobStore(engine=db.make_engine(target, future=False), tablename=JOB_TABLE)
    (job,) = store.get_all_jobs()
    assert job.id == "checkin:1:day7" and job.args == ("check-in",)


def test_a_target_with_rows_is_refused_and_left_as_it_was(clinic, target, capsys):
    assert main(["db", "copy", "--from", clinic, "--to", target]) == 0
    copied = _counts(target)
    assert main(["db", "copy", "--from", clinic, "--to", target]) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and len(err.strip().splitlines()) == 1
    assert _counts(target) == copied


def test_a_row_postgresql_will_not_take_leaves_the_target_empty(clinic, target, capsys):
    """SQLite keeps a too-long value in a VARCHAR column; PostgreSQL refuses it.
    The copy stops, names the table, never the value, and writes nothing."""
    long_sender = "tg-" + "9" * 300
    with db.make_engine(clinic).begin() as connection:
        connection.execute(text("UPDATE messages SET sender_id = :s"), {"s": long_sender})
    assert main(["db", "copy", "--from", clinic, "--to", target]) == 2
    err = capsys.readouterr().err
    assert "copying messages failed, nothing was written" in err
    assert long_sender not in err and WORDS not in err
    after = _counts(target)
    assert all(after[t.name] == 0 for t in Base.metadata.sorted_tables)


@pytest.mark.parametrize("to, message", [
    ("sqlite:///elsewhere.db", "--to must be a PostgreSQL database"),
    ("mysql://u:pw@127.0.0.1/x", "--to must be a SQLite or PostgreSQL URL"),
    ("postgresql://u:pw@127.0.0.1:9/x", "--to: cannot use postgresql://u:***@127.0.0.1:9/x"),
])
def test_a_wrong_target_is_one_line_naming_it(clinic, to, message, capsys):
    assert main(["db", "copy", "--from", clinic, "--to", to]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and ":pw@" not in err


def test_db_check_and_migrate_say_the_revision(target, capsys, monkeypatch):
    monkeypatch.setenv("AFTERCARE_DATABASE_URL", target)
    assert main(["db", "check"]) == 0
    assert "schema: empty" in capsys.readouterr().out
    assert main(["db", "migrate"]) == 0
    assert main(["db", "check"]) == 0
    out = capsys.readouterr().out
    assert "PostgreSQL 1" in out and "schema: 0009, the newest" in out


def test_the_copy_knows_rasas_and_apschedulers_tables_as_they_make_them():
    from rasa.core.tracker_store import SQLTrackerStore

    def shape(table):
        return [(c.name, type(c.type).__name__, c.primary_key, c.nullable) for c in table.c]

    assert shape(copy.RASA_EVENTS) == shape(SQLTrackerStore.SQLEvent.__table__)
    assert copy.JOB_TABLE == JOB_TABLE
