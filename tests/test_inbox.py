"""The authoring inbox on a real SQLite store and on PostgreSQL (conftest.py):
listing, filters, counts, labels, "not useful", consent, erasure, staff roles,
a nurse's flag on a conversation Rasa's own tracker store wrote, and
`aftercare inbox` in-process."""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text

from aftercare import staff as accounts
from aftercare.authoring import inbox
from aftercare.authoring.capture import Reading, capture_reading
from aftercare.rasa_data import trainable_intents
from aftercare.settings import PROJECT_ROOT
from aftercare.store import chats, db, repository
from aftercare.store.models import InboxItem, Staff
from aftercare.store.repository import StoreError
from cli.main import main

LONDON = ZoneInfo("Europe/London")
TREATED = datetime(2026, 11, 25, 10, 0, tzinfo=LONDON)
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=LONDON)
INTENTS = trainable_intents(PROJECT_ROOT / "domain.yml")
PASSWORD = "correct horse battery"

pytestmark = pytest.mark.all_databases


@pytest.fixture
def url(database_url: str) -> str:
    db.migrate(database_url)
    return database_url


def add_patient(url: str, sender: str, consent=True, name: str = "Ana Kowalska") -> int:
    with db.session_scope(url) as session:
        patient = repository.add_patient(session, name=name, treated_at=TREATED,
                                         timezone="Europe/London", sender_id=sender)
        patient.improve_consent = consent
        session.flush()
        return patient.id


def keep(url: str, sender: str, words: str, reasons: list[str], *, intent: str = "ask_makeup",
         confidence: float = 0.4, runner_up: str = "ask_skincare_products",
         at: datetime = NOW) -> int:
    reading = Reading.from_parse_data({
        "text": words, "message_id": uuid.uuid4().hex,
        "intent": {"name": intent, "confidence": confidence},
        "intent_ranking": [{"name": intent, "confidence": confidence},
                           {"name": runner_up, "confidence": confidence / 2}]},
        timestamp=at.timestamp())
    with db.session_scope(url) as session:
        patient = repository.find_patient_by_sender(session, sender)
        return capture_reading(session, patient, sender, reading, reasons=reasons, now=at).id


def add_staff(url: str, email: str, roles=("nurse",)) -> int:
    with db.session_scope(url) as session:
        return accounts.add_staff(session, email, PASSWORD, roles=roles).id


@pytest.fixture
def filled(url: str) -> dict[str, int]:
    """Five items over three days, two patients."""
    add_patient(url, "chat-a")
    add_patient(url, "chat-b", name="Bea Lund")
    return {
        "oldest": keep(url, "chat-a", "can i put tinted stuff on", ["low_confidence"],
                       at=NOW - timedelta(days=2)),
        "fallback": keep(url, "chat-a", "what about the thing", ["fallback"],
                         intent="out_of_scope", at=NOW - timedelta(days=1)),
        "both": keep(url, "chat-b", "the lotion one?", ["fallback", "misunderstood"],
                     intent="ask_skincare_products", at=NOW - timedelta(hours=5)),
        "net": keep(url, "chat-b", "hot and yellow, makeup ok?", ["net_disagreed"],
                    at=NOW - timedelta(hours=2)),
        "newest": keep(url, "chat-a", "sea ok?", ["misunderstood"], intent="ask_sun_sunscreen",
                       at=NOW - timedelta(hours=1)),
    }


def ids(page: inbox.InboxPage) -> list[int]:
    return [row.id for row in page.rows]


# ---------------------------------------------------------------- listing
def test_newest_first_with_counts_per_reason(url, filled) -> None:
    with db.session_scope(url) as session:
        page = inbox.list_inbox(session)
    assert ids(page) == [filled[k] for k in ("newest", "net", "both", "fallback", "oldest")]
    assert page.total == 5
    assert page.counts == {"fallback": 2, "low_confidence": 1, "misunderstood": 2,
                           "nurse_flagged": 0, "net_disagreed": 1}
    both = page.rows[2]
    assert both.reasons == ("fallback", "misunderstood") and both.day == 3
    assert (both.intent, both.runner_up) == ("ask_skincare_products", "ask_skincare_products")


def test_filters_by_reason_intent_and_date_with_the_counts_of_the_rest(url, filled) -> None:
    with db.session_scope(url) as session:
        by_reason = inbox.list_inbox(session, inbox.InboxFilter(reason="misunderstood"))
        by_intent = inbox.list_inbox(session, inbox.InboxFilter(intent="ask_makeup"))
        recent = inbox.list_inbox(session, inbox.InboxFilter(since=NOW - timedelta(hours=6)))
        window = inbox.list_inbox(session, inbox.InboxFilter(
            since=NOW - timedelta(days=3), until=NOW - timedelta(hours=12)))
    assert ids(by_reason) == [filled["newest"], filled["both"]]
    # the counts follow the other filters, not the reason chosen: the tabs stay meaningful
    assert by_reason.counts["fallback"] == 2 and by_reason.total == 2
    assert ids(by_intent) == [filled["net"], filled["oldest"]]
    assert ids(recent) == [filled["newest"], filled["net"], filled["both"]]
    assert recent.counts["low_confidence"] == 0
    assert ids(window) == [filled["fallback"], filled["oldest"]]


def test_pages(url, filled) -> None:
    with db.session_scope(url) as session:
        first = inbox.list_inbox(session, limit=2)
        second = inbox.list_inbox(session, offset=2, limit=2)
        last = inbox.list_inbox(session, offset=4, limit=2)
    assert ids(first) + ids(second) + ids(last) == [
        filled[k] for k in ("newest", "net", "both", "fallback", "oldest")]
    assert first.total == second.total == last.total == 5


@pytest.mark.parametrize("filters, kwargs, message", [
    (inbox.InboxFilter(reason="rude"), {}, "unknown reason"),
    (inbox.InboxFilter(status="later"), {}, "unknown status"),
    (inbox.InboxFilter(since=datetime(2026, 11, 1)), {}, "time zone"),
    (inbox.InboxFilter(), {"limit": 0}, "limit"),
    (inbox.InboxFilter(), {"offset": -1}, "offset"),
])
def test_bad_filters_are_refused_clearly(url, filters, kwargs, message) -> None:
    with db.session_scope(url) as session, pytest.raises(inbox.InboxError, match=message):
        inbox.list_inbox(session, filters, **kwargs)


# ---------------------------------------------------------------- labels
def test_the_predicted_intents_come_first_then_the_domains(url, filled) -> None:
    with db.session_scope(url) as session:
        row = inbox.get_item(session, filled["oldest"])
    choices = inbox.intent_choices(row, INTENTS)
    assert choices[:2] == ["ask_makeup", "ask_skincare_products"]
    assert sorted(choices) == sorted(INTENTS)
    assert "nlu_fallback" not in choices and "EXTERNAL_checkin" not in choices
    assert "confirm_warning_signs" not in choices


def test_a_label_is_kept_with_who_and_when_and_can_change_until_exported(url, filled) -> None:
    author = add_staff(url, "writer@clinic.example", roles=("author",))
    item_id = filled["oldest"]
    with db.session_scope(url) as session:
        row = inbox.label(session, item_id, "ask_makeup", intents=INTENTS, now=NOW,
                          via="review", staff_id=author, text="  can i put\ntinted stuff on ")
    assert (row.status, row.label_intent, row.label_text) == (
        "labelled", "ask_makeup", "can i put tinted stuff on")
    assert (row.labelled_by, row.labelled_by_email, row.labelled_at) == (
        author, "writer@clinic.example", NOW)
    later = NOW + timedelta(minutes=5)
    with db.session_scope(url) as session:
        row = inbox.label(session, item_id, "ask_skincare_products", intents=INTENTS, now=later,
                          via="cli:someone")
    assert (row.label_intent, row.label_text, row.labelled_by, row.labelled_via) == (
        "ask_skincare_products", None, None, "cli:someone")
    with db.session_scope(url) as session:
        row = inbox.mark_not_useful(session, item_id, now=later, via="review", staff_id=author)
    assert (row.status, row.label_intent) == ("not_useful", None)
    with db.session_scope(url) as session:
        session.get(InboxItem, item_id).status = "exported"
    with db.session_scope(url) as session, pytest.raises(inbox.InboxError, match="exported"):
        inbox.label(session, item_id, "ask_makeup", intents=INTENTS, now=later, via="review")


def test_an_edited_text_is_masked_again(url, filled) -> None:
    with db.session_scope(url) as session:
        row = inbox.label(session, filled["oldest"], "ask_makeup", intents=INTENTS, now=NOW,
                          via="review", text="Ana Kowalska asks: tinted stuff ok?")
    assert "Kowalska" not in row.label_text and row.label_text.endswith("tinted stuff ok?")


@pytest.mark.parametrize("intent, label_text, message", [
    ("ask_lottery_numbers", None, "no intent 'ask_lottery_numbers'"),
    ("EXTERNAL_checkin", None, "no intent"),
    ("ask_makeup", "   ", "empty"),
    ("ask_makeup", "[tinted](product) ok?", r"\[ \] \{ \}"),
    ("ask_makeup", "x" * 501, "too long"),
])
def test_bad_labels_change_nothing(url, filled, intent, label_text, message) -> None:
    with db.session_scope(url) as session, pytest.raises(inbox.InboxError, match=message):
        inbox.label(session, filled["oldest"], intent, intents=INTENTS, now=NOW, via="review",
                    text=label_text)
    with db.session_scope(url) as session:
        row = inbox.get_item(session, filled["oldest"])
    assert (row.status, row.label_intent, row.labelled_at) == ("new", None, None)


def test_only_an_enabled_author_labels_under_their_name(url, filled) -> None:
    nurse = add_staff(url, "nurse@clinic.example")
    with db.session_scope(url) as session, \
            pytest.raises(inbox.InboxError, match="not a content author"):
        inbox.label(session, filled["oldest"], "ask_makeup", intents=INTENTS, now=NOW,
                    via="review", staff_id=nurse)
    with db.session_scope(url) as session, pytest.raises(inbox.InboxError, match="does not exist"):
        inbox.mark_not_useful(session, filled["oldest"], now=NOW, via="review", staff_id=999)


def test_an_item_whose_patient_was_erased_meanwhile(url, filled) -> None:
    with db.session_scope(url) as session:
        patient = repository.find_patient_by_sender(session, "chat-a")
        chats.erase_patient(session, patient, requested_via="telegram")
    with db.session_scope(url) as session:
        assert ids(inbox.list_inbox(session)) == [filled["net"], filled["both"]]
        with pytest.raises(inbox.InboxError, match="no inbox item .*forgotten"):
            inbox.label(session, filled["oldest"], "ask_makeup", intents=INTENTS, now=NOW,
                        via="review")
        # no label left behind, and no reason rows
        assert session.execute(text("SELECT count(*) FROM inbox_reasons r JOIN inbox_items i "
                                    "ON i.id = r.item_id WHERE i.sender_id = 'chat-a'")
                               ).scalar() == 0


def test_a_patient_saying_no_later_takes_their_items_out(url, filled) -> None:
    with db.session_scope(url) as session:
        patient_id = repository.find_patient_by_sender(session, "chat-b").id
        assert inbox.set_improve_consent(session, patient_id, False) == 2
    with db.session_scope(url) as session:
        assert ids(inbox.list_inbox(session)) == [filled["newest"], filled["fallback"],
                                                  filled["oldest"]]
        assert repository.get_patient(session, patient_id).improve_consent is False
        assert inbox.set_improve_consent(session, patient_id, True) == 0
        with pytest.raises(inbox.InboxError, match="no patient"):
            inbox.set_improve_consent(session, 4242, True)


def test_consent_is_not_asked_yet_for_a_new_patient(url) -> None:
    with db.session_scope(url) as session:
        patient = repository.add_patient(session, name="New", treated_at=TREATED,
                                         timezone="Europe/London")
        session.flush()
        assert patient.improve_consent is None


# ---------------------------------------------------------------- staff roles
def test_roles(url) -> None:
    assert accounts.parse_roles(["nurse,author"]) == "author,nurse"
    assert accounts.parse_roles(["author", "nurse", "author"]) == "author,nurse"
    with pytest.raises(StoreError, match="unknown role 'doctor'"):
        accounts.parse_roles(["doctor"])
    with pytest.raises(StoreError, match="at least one role"):
        accounts.parse_roles([" , "])
    add_staff(url, "both@clinic.example", roles=("nurse", "author"))
    with db.session_scope(url) as session:
        staff = accounts.get_staff(session, "both@clinic.example")
        assert accounts.roles_of(staff) == {"nurse", "author"}
        accounts.set_roles(session, "both@clinic.example", ["author"])
        assert not accounts.has_role(staff, "nurse")


def test_existing_staff_become_nurses_when_the_database_is_upgraded(tmp_path: Path) -> None:
    from alembic import command

    old = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(db.alembic_config(old), "0007")
    engine = db.make_engine(old)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO staff (email, password_hash, created_at, sessions_valid_after) "
            "VALUES ('old@clinic.example', 'x', '2026-01-01', '2026-01-01')"))
    db.migrate(old)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT roles FROM staff")).scalar() == "nurse"


# ---------------------------------------------------------------- a nurse's flag
def save_conversation(url: str, sender: str, turns: list[tuple[str, str, float, str]]) -> None:
    """Write a conversation with Rasa's own SQL tracker store into the database
    (a whole URL as its host, as endpoints.yml gives it)."""
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.events import BotUttered, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    store = SQLTrackerStore(host=url)
    events = []
    for moment, (said, intent, confidence, answer) in enumerate(turns):
        stamp = (NOW + timedelta(minutes=moment)).timestamp()
        events.append(UserUttered(said, {"name": intent, "confidence": confidence},
                                  parse_data={"intent_ranking": [
                                      {"name": intent, "confidence": confidence}]},
                                  timestamp=stamp, message_id=uuid.uuid4().hex))
        events.append(BotUttered(answer, timestamp=stamp + 1))
    asyncio.run(store.save(DialogueStateTracker.from_events(sender, events)))


def user_event_ids(url: str, sender: str) -> list[int]:
    with db.session_scope(url) as session:
        return list(session.execute(text(
            "SELECT id FROM events WHERE sender_id = :s AND type_name = 'user' ORDER BY id"),
            {"s": sender}).scalars())


def test_a_nurse_marks_a_message_the_assistant_misread(url) -> None:
    add_patient(url, "chat-n")
    nurse = add_staff(url, "nurse@clinic.example")
    save_conversation(url, "chat-n", [
        ("Ana Kowalska here, can I use my vitamin c", "ask_makeup", 0.93, "Makeup from day 2."),
        ("thanks", "thank", 0.99, "You're welcome!")])
    first, _ = user_event_ids(url, "chat-n")
    with db.session_scope(url) as session:
        flagged = inbox.flag_misread(session, staff_id=nurse, now=NOW, event_id=first)
    assert flagged.created
    with db.session_scope(url) as session:
        row = inbox.get_item(session, flagged.item_id)
        again = inbox.flag_misread(session, staff_id=nurse, now=NOW, event_id=first)
    assert row.reasons == ("nurse_flagged",)
    assert row.text == "<name> here, can I use my vitamin c"
    assert (row.intent, row.confidence, row.answer) == ("ask_makeup", 0.93, "Makeup from day 2.")
    assert again == inbox.Flagged(item_id=flagged.item_id, created=False)


def test_a_nurse_marks_a_message_from_the_bots_log(url) -> None:
    add_patient(url, "tg-42")
    nurse = add_staff(url, "nurse@clinic.example")
    save_conversation(url, "tg-42", [("is the sea ok", "ask_sun_sunscreen", 0.8, "SPF 30.")])
    with db.session_scope(url) as session:
        logged = chats.log_message(session, sender_id="tg-42", direction="in",
                                   text="is the sea ok", status="answered")
        logged.created_at = NOW
        session.flush()
        flagged = inbox.flag_misread(session, staff_id=nurse, now=NOW, message_id=logged.id)
        assert inbox.get_item(session, flagged.item_id).answer == "SPF 30."


def test_a_flag_is_refused_without_consent_or_for_a_non_nurse(url) -> None:
    add_patient(url, "chat-x", consent=None)
    nurse = add_staff(url, "nurse@clinic.example")
    author = add_staff(url, "writer@clinic.example", roles=("author",))
    save_conversation(url, "chat-x", [("can I swim", "ask_swimming_sauna", 0.7, "Not yet.")])
    [event] = user_event_ids(url, "chat-x")
    with db.session_scope(url) as session:
        with pytest.raises(inbox.InboxError, match="has not agreed"):
            inbox.flag_misread(session, staff_id=nurse, now=NOW, event_id=event)
        with pytest.raises(inbox.InboxError, match="only an enabled nurse"):
            inbox.flag_misread(session, staff_id=author, now=NOW, event_id=event)
        with pytest.raises(inbox.InboxError, match="no patient message 99999"):
            inbox.flag_misread(session, staff_id=nurse, now=NOW, event_id=99999)
        held = chats.log_message(session, sender_id="chat-x", direction="in", text="hello",
                                 status="held")
        with pytest.raises(inbox.InboxError, match="never read that message"):
            inbox.flag_misread(session, staff_id=nurse, now=NOW, message_id=held.id)
        assert session.execute(select(InboxItem)).first() is None


# ---------------------------------------------------------------- the command
@pytest.fixture
def cli(url, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    monkeypatch.delenv("AFTERCARE_PROTOCOL", raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err
    return run


def test_cli_lists_and_labels(cli, url, filled) -> None:
    code, out, _ = cli("inbox", "list", "--reason", "misunderstood")
    assert code == 0
    assert "2 item(s). By reason: fallback 2, low_confidence 1, misunderstood 2" in out
    assert out.index(f"#{filled['newest']} ") < out.index(f"#{filled['both']} ")
    assert "sea ok?" in out and "Ana" not in out
    code, out, _ = cli("inbox", "show", str(filled["oldest"]))
    assert "label with: ask_makeup, ask_skincare_products, greet" in out
    code, out, _ = cli("inbox", "label", str(filled["oldest"]), "ask_makeup", "--text",
                       "tinted stuff ok?")
    assert code == 0 and 'Labelled inbox item' in out and '"tinted stuff ok?"' in out
    code, out, _ = cli("inbox", "list", "--status", "labelled")
    assert "label:     ask_makeup as \"tinted stuff ok?\" (cli:" in out
    code, out, _ = cli("inbox", "not-useful", str(filled["net"]))
    assert code == 0 and "not useful" in out


def test_cli_bad_input_gets_a_clear_message_and_changes_nothing(cli, url, filled) -> None:
    code, _, err = cli("inbox", "label", str(filled["oldest"]), "ask_lottery")
    assert code == 2 and "no intent 'ask_lottery'" in err and "nothing changed" in err
    code, _, err = cli("inbox", "label", "424242", "ask_makeup")
    assert code == 2 and "no inbox item 424242" in err
    code, _, err = cli("inbox", "list", "--since", "28/11/2026")
    assert code == 2 and "YYYY-MM-DD" in err
    code, _, err = cli("inbox", "label", str(filled["oldest"]), "ask_makeup", "--as",
                       "nobody@clinic.example")
    assert code == 2 and "no staff account" in err
    with db.session_scope(url) as session:
        assert inbox.get_item(session, filled["oldest"]).status == "new"


def test_cli_since_is_a_day_in_the_clinics_time_zone(cli, url, filled) -> None:
    day = (NOW - timedelta(days=1)).astimezone(LONDON).date().isoformat()
    code, out, _ = cli("inbox", "list", "--since", day, "--until", day)
    assert code == 0 and "1 item(s)" in out and f"#{filled['fallback']} " in out


def test_cli_staff_roles(cli, url, monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    code, out, _ = cli("staff", "add", "ed@clinic.example", "--role", "nurse,author",
                       "--password-stdin")
    assert code == 0 and "(author and nurse)" in out
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    code, out, _ = cli("staff", "add", "nina@clinic.example", "--password-stdin")
    assert code == 0 and "(nurse)" in out
    code, _, err = cli("staff", "add", "x@clinic.example", "--role", "surgeon",
                       "--password-stdin")
    assert code == 2 and "unknown role 'surgeon'" in err
    code, out, _ = cli("staff", "roles", "nina@clinic.example", "--role", "author",
                       "--role", "nurse")
    assert code == 0 and "author and nurse" in out
    code, out, _ = cli("staff", "list")
    assert "ROLES" in out and out.count("author,nurse") == 2
    with db.session_scope(url) as session:
        assert session.execute(select(Staff).where(Staff.email == "x@clinic.example")
                               ).first() is None
