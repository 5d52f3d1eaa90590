"""Escalation handling (aftercare.store.escalations) and `aftercare escalations ...`,
in-process against a temporary SQLite database."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from aftercare.store import db, repository
from aftercare.store import escalations as esc
from aftercare.store.models import Escalation, EscalationEvent, StaffReply
from aftercare.store.repository import StoreError
from cli.main import main

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def url(database_url: str) -> str:
    db.migrate(database_url)
    return database_url


def _patient(url: str, name: str = "Ana") -> int:
    with db.session_scope(url) as session:
        return repository.add_patient(session, name, NOW - timedelta(days=3),
                                      "Europe/London", sender_id=f"tg-{name}").id


def _escalation(url: str, level: str, minutes_ago: int, *, patient_id: int | None = None,
                message: str = "my skin is red", reason: str = "redness",
                day: int | None = 3) -> int:
    with db.session_scope(url) as session:
        escalation = repository.record_escalation(
            session, patient_id=patient_id, sender_id=None if patient_id else "tg-anon",
            message=message, level=level, reason=reason, day=day)
        escalation.created_at = datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)
        return escalation.id


# --- store ------------------------------------------------------------------

def test_open_escalations_by_level_then_age(url: str) -> None:
    routine_old = _escalation(url, "routine", 300)
    human = _escalation(url, "human", 10)
    urgent_new = _escalation(url, "urgent", 5)
    urgent_old = _escalation(url, "urgent", 50)
    emergency = _escalation(url, "emergency", 1)
    resolved = _escalation(url, "emergency", 100)
    with db.session_scope(url) as session:
        esc.resolve(session, resolved, "cli:test", "called", NOW)
        acked = esc.acknowledge(session, human, "cli:test", NOW)
    assert acked
    with db.session_scope(url) as session:
        ids = [e.id for e in esc.open_escalations(session)]
        everything = [e.id for e in esc.all_escalations(session)]
    assert ids == [emergency, urgent_old, urgent_new, human, routine_old]
    assert everything == ids + [resolved]


def test_acknowledge_resolve_and_timeline(url: str) -> None:
    eid = _escalation(url, "urgent", 20, patient_id=_patient(url))
    with db.session_scope(url) as session:
        assert esc.acknowledge(session, eid, "nurse@clinic.example", NOW)
        assert not esc.acknowledge(session, eid, "telegram:42", NOW + timedelta(minutes=1))
        esc.record_reply(session, eid, "telegram:42", "Please call us.",
                         NOW + timedelta(minutes=2))
        esc.add_note(session, eid, "nurse@clinic.example", "spoke on the phone",
                     NOW + timedelta(minutes=3))
        esc.resolve(session, eid, "cli:bob", "  all fine  ", NOW + timedelta(minutes=4))
    with db.session_scope(url) as session:
        escalation = session.get(Escalation, eid)
        assert escalation.status == "resolved"
        assert escalation.acknowledged_at == NOW
        assert escalation.acknowledged_by == "nurse@clinic.example"
        assert escalation.resolved_at == NOW + timedelta(minutes=4)
        assert escalation.note == "all fine"
        events = [(e.kind, e.actor, e.note) for e in esc.timeline(session, eid)]
    assert events == [
        ("acknowledged", "nurse@clinic.example", None),
        ("replied", "telegram:42", "Please call us."),
        ("note", "nurse@clinic.example", "spoke on the phone"),
        ("resolved", "cli:bob", "all fine"),
    ]


def test_reply_to_an_open_escalation_acknowledges_it(url: str) -> None:
    eid = _escalation(url, "human", 3)
    with db.session_scope(url) as session:
        esc.record_reply(session, eid, "telegram:7", "Hello, this is the clinic", NOW)
        assert session.get(Escalation, eid).status == "acknowledged"
        assert [e.kind for e in esc.timeline(session, eid)] == ["acknowledged", "replied"]


def test_resolving_twice_is_refused_and_reopen_allows_it_again(url: str) -> None:
    eid = _escalation(url, "routine", 3)
    with db.session_scope(url) as session:
        esc.resolve(session, eid, "cli:bob", "done", NOW)
    with pytest.raises(StoreError, match=f"escalation {eid} is resolved already"):
        with db.session_scope(url) as session:
            esc.resolve(session, eid, "cli:bob", "again", NOW)
    with pytest.raises(StoreError, match="resolved already"):
        with db.session_scope(url) as session:
            esc.record_reply(session, eid, "telegram:1", "hi", NOW)
    with db.session_scope(url) as session:
        esc.reopen(session, eid, "cli:bob", NOW)
        esc.resolve(session, eid, "cli:bob", "really done", NOW)
        assert [e.kind for e in esc.timeline(session, eid)] == [
            "resolved", "reopened", "resolved"]


def test_unknown_id_and_bad_input(url: str) -> None:
    with db.session_scope(url) as session:
        for call in (lambda: esc.acknowledge(session, 99, "cli:x", NOW),
                     lambda: esc.resolve(session, 99, "cli:x", "n", NOW),
                     lambda: esc.add_note(session, 99, "cli:x", "n", NOW),
                     lambda: esc.record_reply(session, 99, "cli:x", "t", NOW),
                     lambda: esc.timeline(session, 99)):
            with pytest.raises(StoreError, match="^no escalation 99$"):
                call()
    eid = _escalation(url, "routine", 3)
    with db.session_scope(url) as session:
        with pytest.raises(StoreError, match="actor"):
            esc.acknowledge(session, eid, " ", NOW)
        with pytest.raises(StoreError, match="timezone-aware"):
            esc.acknowledge(session, eid, "cli:x", datetime(2026, 1, 1))
        with pytest.raises(StoreError, match="note must not be empty"):
            esc.add_note(session, eid, "cli:x", "  ", NOW)


def test_events_go_with_the_patient(url: str) -> None:
    pid = _patient(url)
    eid = _escalation(url, "urgent", 3, patient_id=pid)
    with db.session_scope(url) as session:
        esc.acknowledge(session, eid, "cli:x", NOW)
    with db.session_scope(url) as session:
        assert repository.remove_patient(session, pid)
    with db.session_scope(url) as session:
        assert session.execute(select(func.count(EscalationEvent.id))).scalar_one() == 0


def test_reprs_hold_no_message_or_actor(url: str) -> None:
    eid = _escalation(url, "urgent", 3, message="secret words")
    with db.session_scope(url) as session:
        esc.add_note(session, eid, "nurse@clinic.example", "private note", NOW)
        escalation = session.get(Escalation, eid)
        text = repr(escalation) + repr(escalation.events)
    assert "secret" not in text and "nurse" not in text and "private" not in text


# --- command line -----------------------------------------------------------

def test_cli_list_open_and_all(url: str, capsys: pytest.CaptureFixture) -> None:
    pid = _patient(url, "Ana")
    routine = _escalation(url, "routine", 130, patient_id=pid, reason="still red on day 9",
                          message="the words of the patient")
    emergency = _escalation(url, "emergency", 2, reason="swelling of the lips", day=None)
    done = _escalation(url, "urgent", 5000)
    with db.session_scope(url) as session:
        esc.resolve(session, done, "cli:bob", "ok", NOW)

    code, out, _ = run(capsys, "escalations", "list", "--open")
    assert code == 0
    header, first, second = out.splitlines()
    assert header.split() == ["ID", "LEVEL", "STATUS", "AGE", "PATIENT", "DAY", "REASON"]
    assert first.split()[:4] == [str(emergency), "emergency", "open", "2m"]
    assert "chat tg-anon (not linked)" in first and "swelling of the lips" in first
    assert second.split()[:7] == [str(routine), "routine", "open", "2h", "10m", str(pid), "Ana"]
    assert "still red on day 9" in second
    assert "words of the patient" not in out

    code, out, _ = run(capsys, "escalations", "list")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 4 and lines[3].split()[:4] == [str(done), "urgent", "resolved", "3d"]


def test_cli_list_empty(url: str, capsys: pytest.CaptureFixture) -> None:
    assert run(capsys, "escalations", "list", "--open")[1] == "No open escalations.\n"
    assert run(capsys, "escalations", "list")[1] == "No escalations yet.\n"


def test_cli_acknowledge_resolve_show(url: str, capsys: pytest.CaptureFixture,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("getpass.getuser", lambda: "bob")
    eid = _escalation(url, "urgent", 30, patient_id=_patient(url))

    code, out, _ = run(capsys, "escalations", "acknowledge", str(eid))
    assert (code, out) == (0, f"Acknowledged escalation {eid}.\n")
    code, out, _ = run(capsys, "escalations", "acknowledge", str(eid))
    assert code == 0 and "acknowledged already, by cli:bob" in out

    code, out, _ = run(capsys, "escalations", "resolve", str(eid), "--note", "Called, fine.")
    assert (code, out) == (0, f"Resolved escalation {eid}.\n")

    code, out, err = run(capsys, "escalations", "resolve", str(eid), "--note", "again")
    assert code == 2 and f"escalation {eid} is resolved already" in err and out == ""

    code, out, _ = run(capsys, "escalations", "show", str(eid))
    assert code == 0
    assert out.startswith(f"Escalation {eid}: urgent, resolved\n")
    assert "  patient:      1 Ana" in out and "by cli:bob" in out
    assert "    | my skin is red" in out and "    | Called, fine." in out
    timeline = out.split("  timeline:\n")[1].splitlines()
    assert [line.split()[3] for line in timeline if not line.strip().startswith("|")] == [
        "acknowledged", "resolved"]


def test_cli_unknown_id_exits_2(url: str, capsys: pytest.CaptureFixture) -> None:
    for action in (["show", "42"], ["acknowledge", "42"], ["resolve", "42", "--note", "x"]):
        code, out, err = run(capsys, "escalations", *action)
        assert code == 2 and out == ""
        assert err == "aftercare: error: no escalation 42\n"


def test_cli_resolve_needs_a_note(url: str, capsys: pytest.CaptureFixture) -> None:
    eid = _escalation(url, "routine", 3)
    with pytest.raises(SystemExit) as exit_info:
        main(["escalations", "resolve", str(eid)])
    assert exit_info.value.code == 2
    assert "--note" in capsys.readouterr().err
    code, _, err = run(capsys, "escalations", "resolve", str(eid), "--note", "   ")
    assert code == 2 and "--note must not be empty" in err
    with db.session_scope(url) as session:
        assert session.get(Escalation, eid).status == "open"


def test_cli_show_prints_patient_text_safely(url: str, capsys: pytest.CaptureFixture) -> None:
    message = "\x1b[2J\x1b]0;pwned\x07<script>alert(1)</script>\nline two\rover\x00"
    eid = _escalation(url, "emergency", 1, message=message, reason="pus\x1b[31m")
    code, out, _ = run(capsys, "escalations", "show", str(eid))
    assert code == 0
    assert not any(ch in out for ch in "\x1b\x07\x00\r")
    assert "    | ?[2J?]0;pwned?<script>alert(1)</script>" in out
    assert "    | line two" in out and "    | over?" in out
    assert "  reason:       pus?[31m" in out
    code, out, _ = run(capsys, "escalations", "list")
    assert "\x1b" not in out and "pus?[31m" in out


# --- replies that cannot reach the patient (issue 10, item 13) ------------------

def _patient_on(url: str, sender_id: str | None, phone: str | None = None,
                blocked: bool = False) -> int:
    with db.session_scope(url) as session:
        patient = repository.add_patient(session, "Ana", NOW - timedelta(days=3),
                                         "Europe/London", sender_id=sender_id, phone=phone)
        if blocked:
            patient.unreachable_at = NOW
        return patient.id


def _replies(url: str) -> list[tuple[int, str]]:
    with db.session_scope(url) as session:
        return [(r.escalation_id, r.status) for r in session.execute(
            select(StaffReply).order_by(StaffReply.id)).scalars()]


def _raise(url: str, patient_id: int | None, sender_id: str | None) -> int:
    with db.session_scope(url) as session:
        return repository.record_escalation(
            session, patient_id=patient_id, sender_id=sender_id, message="my face is swollen",
            level="urgent", reason="swelling", day=3).id


def test_a_reply_outside_telegram_is_refused_with_the_number_and_nothing_kept(url: str) -> None:
    terminal = _raise(url, _patient_on(url, "demo-chat", phone="+44 20 7946 0321"), "demo-chat")
    unlinked = _raise(url, _patient_on(url, None), None)
    with db.session_scope(url) as session:
        with pytest.raises(esc.ReplyRefused) as refused:
            esc.queue_reply(session, terminal, "cli:x", "please call", NOW)
        assert "not on Telegram" in str(refused.value)
        assert "Nothing was queued. Call them on +442079460321" in str(refused.value)
        with pytest.raises(esc.ReplyRefused) as refused:
            esc.queue_reply(session, unlinked, "cli:x", "please call", NOW)
        assert "no Telegram chat is linked" in str(refused.value)
        assert "no phone number is on record (add one: aftercare patients edit" in str(
            refused.value)
    with db.session_scope(url) as session:
        for eid in (terminal, unlinked):
            assert session.get(Escalation, eid).status == "open"
            assert esc.timeline(session, eid) == []
    assert _replies(url) == []


def test_a_reply_to_a_telegram_chat_is_queued_and_one_who_blocked_the_bot_warned(
        url: str) -> None:
    fine = _raise(url, _patient_on(url, "tg-1001"), "tg-1001")
    blocked = _raise(url, _patient_on(url, "tg-1002", phone="07700 900123", blocked=True),
                     "tg-1002")
    with db.session_scope(url) as session:
        assert esc.reply_route(session, fine).warning is None
        esc.queue_reply(session, fine, "cli:x", "hello", NOW)
        warning = esc.reply_route(session, blocked).warning
        assert "blocked the bot (since 27 Nov 2026)" in warning
        assert "may not arrive. Call them on 07700900123" in warning
        esc.queue_reply(session, blocked, "cli:x", "hello", NOW)
    assert _replies(url) == [(fine, "pending"), (blocked, "pending")]


def test_cli_reply_queues_refuses_and_warns(url: str, capsys: pytest.CaptureFixture) -> None:
    telegram = _raise(url, _patient_on(url, "tg-2001"), "tg-2001")
    rest = _raise(url, _patient_on(url, "rest-2002", phone="+44 20 7946 0555"), "rest-2002")
    blocked = _raise(url, _patient_on(url, "tg-2003", blocked=True), "tg-2003")

    code, out, _ = run(capsys, "escalations", "reply", str(telegram), "--text", " On our way ")
    assert code == 0 and out.startswith(f"Reply queued for escalation {telegram}")
    _, out, _ = run(capsys, "escalations", "show", str(telegram))
    assert "  replies:      by Telegram" in out and "queued  cli:" in out
    assert "      | On our way" in out

    code, out, err = run(capsys, "escalations", "reply", str(rest), "--text", "hello")
    assert code == 2 and out == ""
    assert "cannot get replies from the bot" in err and "Call them on +442079460555" in err
    _, out, _ = run(capsys, "escalations", "show", str(rest))
    assert "  phone:        +442079460555" in out
    assert "  replies:      not possible: " in out

    code, out, _ = run(capsys, "escalations", "reply", str(blocked), "--text", "hello")
    assert code == 0 and "Warning: the patient blocked the bot" in out

    assert run(capsys, "escalations", "reply", str(telegram), "--text", "  ")[2].endswith(
        "--text must not be empty\n")
    assert "at most 16,000" in run(capsys, "escalations", "reply", str(telegram),
                                   "--text", "x" * 16_001)[2]
    assert [eid for eid, _ in _replies(url)] == [telegram, blocked]
