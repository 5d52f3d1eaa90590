"""Enrolment codes on a real SQLite file: issue, redeem, revoke, race, bot username."""
from __future__ import annotations

import json
import math
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Iterator, Optional
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text

from aftercare import enrolment
from aftercare.enrolment import EnrolmentError, bot_username, deep_link, issue_code, redeem_code
from aftercare.settings import get_settings
from aftercare.store import db, repository
from aftercare.store.models import EnrolmentCode, Patient
from aftercare.store.repository import StoreError

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
URLSAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


@pytest.fixture
def url(database_url: str) -> str:
    db.migrate(database_url)
    return database_url


def _patient(url: str, name: str = "Ana", sender_id: Optional[str] = None) -> int:
    with db.session_scope(url) as session:
        return repository.add_patient(session, name, NOW - timedelta(days=1), "Europe/London",
                                      sender_id=sender_id).id


def _issue(url: str, patient_id: int, now: datetime = NOW, days: int = 7) -> str:
    with db.session_scope(url) as session:
        return issue_code(session, repository.get_patient(session, patient_id), now, days)


def _redeem(url: str, code, sender_id: str = "chat-1", now: datetime = NOW) -> int:
    with db.session_scope(url) as session:
        return redeem_code(session, code, sender_id, now).id


def _refused(url: str, code, sender_id: str = "chat-1", now: datetime = NOW) -> str:
    with pytest.raises(EnrolmentError) as error:
        _redeem(url, code, sender_id, now)
    return error.value.reason


def _snapshot(url: str) -> list:
    """Everything redeeming can change: codes and patients' enrolment columns."""
    with db.make_engine(url).connect() as connection:
        codes = connection.execute(text(
            "SELECT id, patient_id, code_hash, expires_at, used_at, revoked_at "
            "FROM enrolment_codes ORDER BY id")).all()
        patients = connection.execute(text(
            "SELECT id, sender_id, enrolled_at, unreachable_at FROM patients ORDER BY id")).all()
    return [tuple(row) for row in codes + patients]


def _patient_row(url: str, patient_id: int) -> Patient:
    with db.session_scope(url) as session:
        return repository.get_patient(session, patient_id)


# --- issuing ----------------------------------------------------------------

def test_code_alphabet_length_and_entropy(url: str) -> None:
    patient_id = _patient(url)
    codes = {_issue(url, patient_id) for _ in range(50)}
    assert len(codes) == 50
    for code in codes:
        assert set(code) <= URLSAFE
        assert 22 <= len(code) <= 64
        assert len(code) * math.log2(64) >= 128
        assert enrolment.is_well_formed(code)
    assert enrolment.CODE_BYTES * 8 >= 128


def test_only_the_hash_is_stored(url: str, tmp_path: Path) -> None:
    patient_id = _patient(url)
    code = _issue(url, patient_id)
    with db.session_scope(url) as session:
        row = session.execute(select(EnrolmentCode)).scalar_one()
        assert row.code_hash == enrolment.hash_code(code) and len(row.code_hash) == 64
        assert row.expires_at == NOW + timedelta(days=7)
        assert code not in repr(row)
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("aftercare.db*"))
    assert enrolment.hash_code(code).encode() in stored  # the search does see the database
    assert code.encode() not in stored


def test_issue_needs_an_aware_time_and_whole_days(url: str) -> None:
    patient_id = _patient(url)
    with db.session_scope(url) as session:
        patient = repository.get_patient(session, patient_id)
        with pytest.raises(ValueError):
            issue_code(session, patient, NOW.replace(tzinfo=None), 7)
        for days in (0, -1, 1.5, True):
            with pytest.raises(ValueError):
                issue_code(session, patient, NOW, days)


# --- redeeming --------------------------------------------------------------

def test_redeem_links_the_chat_once(url: str) -> None:
    patient_id = _patient(url)
    with db.session_scope(url) as session:
        repository.get_patient(session, patient_id).unreachable_at = NOW - timedelta(days=1)
    code = _issue(url, patient_id)
    later = NOW + timedelta(hours=1)
    assert _redeem(url, code, "chat-1", later) == patient_id
    patient = _patient_row(url, patient_id)
    assert patient.sender_id == "chat-1"
    assert patient.enrolled_at == later and patient.unreachable_at is None
    with db.session_scope(url) as session:
        assert session.execute(select(EnrolmentCode)).scalar_one().used_at == later

    before = _snapshot(url)
    assert _refused(url, code, "chat-1", later) == "used"
    assert _refused(url, code, "chat-2", later) == "used"
    assert _snapshot(url) == before


def test_expiry_boundary(url: str) -> None:
    patient_id = _patient(url)
    code = _issue(url, patient_id, days=7)
    expires = NOW + timedelta(days=7)
    before = _snapshot(url)
    assert _refused(url, code, now=expires) == "expired"
    assert _refused(url, code, now=expires + timedelta(days=1)) == "expired"
    assert _snapshot(url) == before
    assert _redeem(url, code, now=expires - timedelta(microseconds=1)) == patient_id


def test_a_newer_link_revokes_the_older(url: str) -> None:
    patient_id = _patient(url)
    first = _issue(url, patient_id)
    second = _issue(url, patient_id, NOW + timedelta(minutes=5))
    with db.session_scope(url) as session:
        rows = session.execute(select(EnrolmentCode).order_by(EnrolmentCode.id)).scalars().all()
        assert rows[0].revoked_at == NOW + timedelta(minutes=5) and rows[1].revoked_at is None
    before = _snapshot(url)
    assert _refused(url, first) == "revoked"
    assert _snapshot(url) == before
    assert _redeem(url, second, now=NOW + timedelta(minutes=6)) == patient_id


def test_a_new_link_does_not_touch_used_codes_or_other_patients(url: str) -> None:
    ana, bob = _patient(url, "Ana"), _patient(url, "Bob")
    used = _issue(url, ana)
    bobs = _issue(url, bob)
    _redeem(url, used, "chat-ana")
    _issue(url, ana, NOW + timedelta(days=1))
    with db.session_scope(url) as session:
        rows = {r.code_hash: r for r in session.execute(select(EnrolmentCode)).scalars()}
        assert rows[enrolment.hash_code(used)].revoked_at is None
        assert rows[enrolment.hash_code(bobs)].revoked_at is None
    assert _redeem(url, bobs, "chat-bob") == bob


class Untouchable:
    """A session that fails the test if anything asks it for anything."""

    def __getattr__(self, name: str):
        raise AssertionError(f"session.{name} used for a malformed code")


@pytest.mark.parametrize("code", [
    None, "", " ", 123, b"A" * 22, "A" * 21, "A" * 65, "A" * 1000, "abc!" + "A" * 20,
    "A" * 21 + " ", " " + "A" * 22, "A" * 11 + "/" + "A" * 10, "A" * 21 + "\u00e9",
    "A" * 21 + "\n", "A" * 22 + "\x00", "/start " + "A" * 22,
])
def test_malformed_codes_touch_nothing(url: str, code) -> None:
    patient_id = _patient(url)
    _issue(url, patient_id)
    before = _snapshot(url)
    with pytest.raises(EnrolmentError) as error:
        redeem_code(Untouchable(), code, "chat-1", NOW)
    assert error.value.reason == "malformed"
    assert _refused(url, code) == "malformed"
    assert _snapshot(url) == before


def test_unknown_code(url: str) -> None:
    _issue(url, _patient(url))
    before = _snapshot(url)
    assert _refused(url, "A" * 22) == "unknown"
    assert _snapshot(url) == before


def test_chat_taken_by_another_patient(url: str) -> None:
    _patient(url, "Ana", sender_id="chat-1")
    bob = _patient(url, "Bob")
    code = _issue(url, bob)
    before = _snapshot(url)
    assert _refused(url, code, "chat-1") == "chat_taken"
    assert _snapshot(url) == before
    assert _redeem(url, code, "chat-2") == bob  # the code still works from Bob's own chat


def test_relinking_moves_the_patient_to_a_new_chat(url: str) -> None:
    patient_id = _patient(url)
    _redeem(url, _issue(url, patient_id), "old-phone")
    _redeem(url, _issue(url, patient_id, NOW + timedelta(days=1)), "new-phone",
            NOW + timedelta(days=1))
    patient = _patient_row(url, patient_id)
    assert patient.sender_id == "new-phone" and patient.enrolled_at == NOW + timedelta(days=1)
    with db.session_scope(url) as session:
        assert repository.find_patient_by_sender(session, "old-phone") is None


def test_same_chat_same_patient_again(url: str) -> None:
    patient_id = _patient(url)
    _redeem(url, _issue(url, patient_id), "chat-1")
    assert _redeem(url, _issue(url, patient_id), "chat-1") == patient_id


def test_redeem_refuses_an_empty_sender_before_using_the_code(url: str) -> None:
    code = _issue(url, _patient(url))
    before = _snapshot(url)
    with pytest.raises(StoreError):
        _redeem(url, code, "  ")
    assert _snapshot(url) == before


def test_a_deleted_patients_code_is_unknown(url: str) -> None:
    patient_id = _patient(url)
    code = _issue(url, patient_id)
    with db.session_scope(url) as session:
        repository.remove_patient(session, patient_id)
    assert _refused(url, code) == "unknown"


def test_two_threads_redeeming_one_code(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both pass the checks before either claims: the conditional UPDATE picks one."""
    patient_id = _patient(url)
    code = _issue(url, patient_id)
    barrier = threading.Barrier(2, timeout=10)
    waited = threading.local()
    real_find = repository.find_patient_by_sender

    def find_then_wait(session, sender_id):  # the first call is the last read before the claim
        found = real_find(session, sender_id)
        if not getattr(waited, "done", False):
            waited.done = True
            barrier.wait()
        return found

    monkeypatch.setattr(repository, "find_patient_by_sender", find_then_wait)
    results: dict[str, object] = {}

    def attempt(chat: str) -> None:
        try:
            with db.session_factory(url)() as session:  # a session (and engine) of its own
                patient = redeem_code(session, code, chat, NOW)
                session.commit()
                results[chat] = patient.id
        except EnrolmentError as exc:
            results[chat] = exc.reason

    threads = [threading.Thread(target=attempt, args=(chat,)) for chat in ("chat-a", "chat-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(map(str, results.values())) == sorted([str(patient_id), "used"])
    winner = next(chat for chat, result in results.items() if result == patient_id)
    assert _patient_row(url, patient_id).sender_id == winner


# --- links and status -------------------------------------------------------

def test_deep_link() -> None:
    code = "A" * 22
    assert deep_link("SkinPenBot", code) == f"https://t.me/SkinPenBot?start={code}"
    assert deep_link("@SkinPenBot", code) == f"https://t.me/SkinPenBot?start={code}"
    with pytest.raises(ValueError):
        deep_link("bad name/x", code)
    with pytest.raises(ValueError):
        deep_link("SkinPenBot", "not a code")


def test_enrolment_status(url: str) -> None:
    patient_id = _patient(url)
    with db.session_scope(url) as session:
        patient = repository.get_patient(session, patient_id)
        assert enrolment.enrolment_status(patient, NOW) == "not enrolled"
        issue_code(session, patient, NOW, 7)
        assert enrolment.enrolment_status(patient, NOW) == \
            "link sent, expires 2026-11-27 12:00 GMT"
        assert enrolment.enrolment_state(patient, NOW + timedelta(days=7)) == "link expired"
    _redeem(url, _issue(url, patient_id), "chat-1", NOW + timedelta(hours=13))
    with db.session_scope(url) as session:
        patient = repository.get_patient(session, patient_id)
        assert enrolment.enrolment_status(patient, NOW + timedelta(days=30)) == \
            "enrolled 2026-11-21"
        assert enrolment.enrolment_status(patient, NOW, ZoneInfo("America/Los_Angeles")) == \
            "enrolled 2026-11-20"


# --- the bot's username -----------------------------------------------------

class _GetMe(BaseHTTPRequestHandler):
    replies: dict = {}

    def do_GET(self) -> None:
        status, body = self.replies.get(self.path, (404, b"{}"))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def telegram(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    server = HTTPServer(("127.0.0.1", 0), _GetMe)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("TELEGRAM_BASE_URL", f"http://127.0.0.1:{server.server_port}/bot")
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "")
    _GetMe.replies = {}
    yield _GetMe.replies
    server.shutdown()
    server.server_close()


def test_bot_username_from_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "@SkinPenBot")
    monkeypatch.setenv("TELEGRAM_TOKEN", "")
    assert bot_username(get_settings()) == "SkinPenBot"
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "no spaces allowed")
    assert bot_username(get_settings()) is None


def test_bot_username_from_getme(telegram: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_TOKEN", "123:secret")
    telegram["/bot123:secret/getMe"] = (200, json.dumps(
        {"ok": True, "result": {"id": 1, "is_bot": True, "username": "SkinPenBot"}}).encode())
    assert bot_username(get_settings()) == "SkinPenBot"


@pytest.mark.parametrize("reply", [
    (401, b'{"ok": false, "description": "Unauthorized"}'),
    (200, b'{"ok": true, "result": {}}'),
    (200, b"not json"),
    (200, b'["ok"]'),
])
def test_bot_username_unknown_when_getme_fails(
        telegram: dict, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture, reply: tuple) -> None:
    monkeypatch.setenv("TELEGRAM_TOKEN", "123:secret")
    telegram["/bot123:secret/getMe"] = reply
    assert bot_username(get_settings()) is None
    captured = capsys.readouterr()
    assert "secret" not in caplog.text + captured.out + captured.err


def test_bot_username_unknown_without_a_server(monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "")
    monkeypatch.setenv("TELEGRAM_TOKEN", "123:secret")
    monkeypatch.setenv("TELEGRAM_BASE_URL", "http://127.0.0.1:9/bot")  # discard port: refused
    assert bot_username(get_settings()) is None
    assert "secret" not in caplog.text


def test_bot_username_unknown_without_setting_or_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "")
    monkeypatch.setenv("TELEGRAM_TOKEN", "")
    assert bot_username(get_settings()) is None
