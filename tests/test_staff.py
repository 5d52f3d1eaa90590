"""Staff accounts (aftercare.staff) and `aftercare staff ...`, on a temporary SQLite
file and a PostgreSQL database (conftest.py)."""
from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from aftercare import staff
from aftercare.store import db
from aftercare.store.models import Staff, StaffSession
from aftercare.store.repository import StoreError
from cli.main import main

pytestmark = pytest.mark.all_databases
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
PASSWORD = "correct horse battery"


def run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def url(database_url: str) -> str:
    db.migrate(database_url)
    return database_url


def _add(url: str, email: str = "Nurse@Clinic.example", password: str = PASSWORD) -> int:
    with db.session_scope(url) as session:
        return staff.add_staff(session, email, password).id


def _verify(url: str, email: str, password: str) -> Staff | None:
    with db.session_scope(url) as session:
        return staff.verify_password(session, email, password)


# --- module -----------------------------------------------------------------

def test_hash_is_argon2id_and_not_the_password(url: str) -> None:
    _add(url)
    with db.session_scope(url) as session:
        account = staff.list_staff(session)[0]
        assert account.email == "nurse@clinic.example"
        assert account.password_hash.startswith("$argon2id$")
        assert PASSWORD not in account.password_hash
        assert account.sessions_valid_after == account.created_at
        assert "nurse" not in repr(account) and "argon" not in repr(account)


def test_verify_password(url: str) -> None:
    staff_id = _add(url)
    assert _verify(url, "NURSE@clinic.example ", PASSWORD).id == staff_id
    assert _verify(url, "nurse@clinic.example", PASSWORD + "x") is None
    assert _verify(url, "nurse@clinic.example", "") is None
    assert _verify(url, "nobody@clinic.example", PASSWORD) is None
    assert _verify(url, "not an email", PASSWORD) is None


def test_unknown_email_still_checks_a_hash(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    checked = []
    real_verify = PasswordHasher.verify
    monkeypatch.setattr(PasswordHasher, "verify",
                        lambda self, h, p: checked.append(h) or real_verify(self, h, p))
    assert _verify(url, "nobody@clinic.example", PASSWORD) is None
    assert len(checked) == 1 and checked[0].startswith("$argon2id$")


def test_disabled_account_cannot_verify_and_sessions_move_on(url: str) -> None:
    _add(url)
    with db.session_scope(url) as session:
        before = staff.get_staff(session, "nurse@clinic.example").sessions_valid_after
        # The account is stamped with the real clock, so the times here follow
        # its stamp rather than a fixed date (the test must pass on any day).
        now = before
        assert staff.disable_staff(session, "nurse@clinic.example", now + timedelta(days=1))
        assert not staff.disable_staff(session, "nurse@clinic.example", now + timedelta(days=2))
    with db.session_scope(url) as session:
        account = staff.get_staff(session, "nurse@clinic.example")
        assert account.disabled_at == now + timedelta(days=1)
        assert account.sessions_valid_after == now + timedelta(days=2) > before
        assert not staff.session_is_valid(account, now + timedelta(days=3))
    assert _verify(url, "nurse@clinic.example", PASSWORD) is None
    with db.session_scope(url) as session:
        assert staff.enable_staff(session, "nurse@clinic.example")
        assert not staff.enable_staff(session, "nurse@clinic.example")
        account = staff.get_staff(session, "nurse@clinic.example")
        assert not staff.session_is_valid(account, now + timedelta(days=1))
        assert staff.session_is_valid(account, now + timedelta(days=3))
    assert _verify(url, "nurse@clinic.example", PASSWORD) is not None


def test_disable_and_new_password_delete_review_sessions(url: str) -> None:
    staff_id = _add(url)
    other_id = _add(url, "other@clinic.example")

    def open_session(owner: int, n: int) -> None:
        with db.session_scope(url) as session:
            session.add(StaffSession(staff_id=owner, token_hash=f"{n:064x}", csrf_token="c",
                                     created_at=NOW, expires_at=NOW + timedelta(hours=8)))

    def owners() -> list[int]:
        with db.session_scope(url) as session:
            return sorted(session.execute(select(StaffSession.staff_id)).scalars())

    open_session(staff_id, 1)
    open_session(staff_id, 2)
    open_session(other_id, 3)
    with db.session_scope(url) as session:
        staff.disable_staff(session, "nurse@clinic.example", NOW)
    assert owners() == [other_id]
    with db.session_scope(url) as session:
        staff.set_password(session, "other@clinic.example", "another long password")
    assert owners() == [other_id]          # without now, sessions are left alone
    with db.session_scope(url) as session:
        staff.set_password(session, "other@clinic.example", "another long password", NOW)
    assert owners() == []


def test_rehash_when_parameters_change(url: str) -> None:
    with db.session_scope(url) as session:
        account = staff.add_staff(session, "a@clinic.example", PASSWORD)
        account.password_hash = PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD)
        old = account.password_hash
    assert _verify(url, "a@clinic.example", PASSWORD) is not None
    with db.session_scope(url) as session:
        new = staff.get_staff(session, "a@clinic.example").password_hash
    assert new != old and new.startswith("$argon2id$")
    assert _verify(url, "a@clinic.example", PASSWORD) is not None


def test_refused_input(url: str) -> None:
    _add(url)
    with db.session_scope(url) as session:
        with pytest.raises(StoreError, match="exists already"):
            staff.add_staff(session, "NURSE@CLINIC.EXAMPLE", PASSWORD)
        with pytest.raises(StoreError, match="too short"):
            staff.add_staff(session, "b@clinic.example", "short")
        for email in ("no-at.example", "a@b@c.example", "a@localhost", "@clinic.example",
                      "a b@clinic.example", "a@clinic.", "x" * 250 + "@c.example"):
            with pytest.raises(StoreError):
                staff.add_staff(session, email, PASSWORD)
        with pytest.raises(StoreError, match="no staff account other@clinic.example"):
            staff.disable_staff(session, "Other@clinic.example", NOW)


def test_set_password_and_telegram_link(url: str) -> None:
    _add(url)
    _add(url, "b@clinic.example")
    with db.session_scope(url) as session:
        staff.set_password(session, "nurse@clinic.example", "another long password", NOW)
        staff.link_telegram(session, "nurse@clinic.example", 1234)
        with pytest.raises(StoreError, match="linked to nurse@clinic.example already"):
            staff.link_telegram(session, "b@clinic.example", 1234)
        with pytest.raises(StoreError, match="positive"):
            staff.link_telegram(session, "b@clinic.example", 0)
        assert staff.staff_for_telegram(session, 1234).email == "nurse@clinic.example"
        assert staff.staff_for_telegram(session, 999) is None
    assert _verify(url, "nurse@clinic.example", PASSWORD) is None
    assert _verify(url, "nurse@clinic.example", "another long password") is not None


# --- command line -----------------------------------------------------------

def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def test_cli_add_with_password_stdin_and_list(url: str, capsys: pytest.CaptureFixture,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _stdin(monkeypatch, PASSWORD + "\n")
    code, out, err = run(capsys, "staff", "add", "Nurse@Clinic.example",
                         "--password-stdin", "--telegram-user-id", "555")
    assert code == 0, err
    assert out == ("Added staff account 1: nurse@clinic.example (nurse), linked to Telegram "
                   "user 555.\n")
    assert PASSWORD not in out + err
    assert _verify(url, "nurse@clinic.example", PASSWORD) is not None

    code, out, _ = run(capsys, "staff", "list")
    header, row = out.splitlines()
    assert header.split() == ["ID", "EMAIL", "ROLES", "TELEGRAM", "STATUS", "ADDED"]
    assert row.split()[:5] == ["1", "nurse@clinic.example", "nurse", "555", "active"]
    assert "argon2" not in out


def test_cli_add_asks_twice(url: str, capsys: pytest.CaptureFixture,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([PASSWORD, PASSWORD + "typo"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    code, out, err = run(capsys, "staff", "add", "a@clinic.example")
    assert code == 2 and "differ" in err and PASSWORD not in err
    answers = iter([PASSWORD, PASSWORD])
    assert run(capsys, "staff", "add", "a@clinic.example")[0] == 0
    assert _verify(url, "a@clinic.example", PASSWORD) is not None


def test_cli_refuses_duplicate_short_and_unknown(url: str, capsys: pytest.CaptureFixture,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _add(url)
    _stdin(monkeypatch, PASSWORD + "\n")
    code, out, err = run(capsys, "staff", "add", "NURSE@clinic.EXAMPLE", "--password-stdin")
    assert code == 2 and out == ""
    assert err == "aftercare: error: a staff account for nurse@clinic.example exists already\n"

    _stdin(monkeypatch, "tiny-pw\n")
    code, _, err = run(capsys, "staff", "add", "b@clinic.example", "--password-stdin")
    assert code == 2 and "too short" in err and "tiny-pw" not in err
    _stdin(monkeypatch, "")
    code, _, err = run(capsys, "staff", "add", "b@clinic.example", "--password-stdin")
    assert code == 2 and "nothing on standard input" in err
    code, _, err = run(capsys, "staff", "add", "not-an-email", "--password-stdin")
    assert code == 2 and "email" in err
    with db.session_scope(url) as session:
        assert [s.email for s in staff.list_staff(session)] == ["nurse@clinic.example"]

    for action in ("disable", "enable", "password"):
        code, _, err = run(capsys, "staff", action, "ghost@clinic.example")
        assert code == 2 and err == "aftercare: error: no staff account ghost@clinic.example\n"


def test_cli_disable_enable_password(url: str, capsys: pytest.CaptureFixture,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _add(url)
    code, out, _ = run(capsys, "staff", "disable", "nurse@clinic.example")
    assert code == 0 and "sessions have ended" in out
    assert _verify(url, "nurse@clinic.example", PASSWORD) is None
    assert "disabled" in run(capsys, "staff", "list")[1]
    assert run(capsys, "staff", "enable", "Nurse@clinic.example")[0] == 0
    assert _verify(url, "nurse@clinic.example", PASSWORD) is not None

    _stdin(monkeypatch, "a brand new password\r\n")
    code, out, err = run(capsys, "staff", "password", "nurse@clinic.example", "--password-stdin")
    assert code == 0 and "a brand new" not in out + err
    assert _verify(url, "nurse@clinic.example", "a brand new password") is not None
    assert _verify(url, "nurse@clinic.example", PASSWORD) is None


def test_no_password_option_on_the_command_line() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["staff", "add", "a@clinic.example", "--password", "x"])
    assert exit_info.value.code == 2
