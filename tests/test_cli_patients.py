"""`aftercare patients ...` in-process against a temporary SQLite database."""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from aftercare.enrolment import EnrolmentError, hash_code, redeem_code
from aftercare.settings import PROJECT_ROOT
from aftercare.store import db, repository
from aftercare.store.models import EnrolmentCode, Erasure
from cli.main import main

LONDON = ZoneInfo("Europe/London")
BOT = "AftercareTestBot"
LINK = re.compile(rf"https://t\.me/{BOT}\?start=([A-Za-z0-9_-]+)")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def bot_username(monkeypatch: pytest.MonkeyPatch) -> None:
    """A known bot username, so no test asks Telegram (empty values beat a .env file)."""
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", BOT)
    monkeypatch.setenv("TELEGRAM_TOKEN", "")


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'var' / 'cli.db'}"
    monkeypatch.setenv("AFTERCARE_DATABASE_URL", url)
    monkeypatch.delenv("AFTERCARE_PROTOCOL", raising=False)
    return url


def run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def days_ago(days: int, tz: ZoneInfo = LONDON, clock: str = "10:00") -> str:
    return f"{(datetime.now(tz) - timedelta(days=days)):%Y-%m-%d} {clock}"


def stored_names(url: str) -> list[str]:
    with db.session_scope(url) as session:
        return [p.name for p in repository.list_patients(session)]


def test_add_then_list(db_url: str, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, "patients", "add", "--name", "Ana", "--treated", days_ago(3),
                       "--tz", "Europe/London", "--number", "2", "--sender", "tg-42")
    assert code == 0
    assert out.startswith("Added patient 1: Ana")
    assert "treatment 2" in out and "day 3 of recovery" in out and len(out.splitlines()) == 1

    code, out, _ = run(capsys, "patients", "list")
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["ID", "NAME", "TREATED", "(LOCAL)", "DAY", "TREATMENT", "LINKED",
                              "STATUS"]
    treated = datetime.strptime(days_ago(3), "%Y-%m-%d %H:%M").replace(tzinfo=LONDON)
    assert row.split() == ["1", "Ana", f"{treated:%Y-%m-%d}", "10:00", f"{treated:%Z}",
                           "3", "2", "yes", "enrolled"]


def test_list_empty(db_url: str, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, "patients", "list")
    assert code == 0 and "No patients yet" in out


def test_add_migrates_a_new_database(db_url: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture) -> None:
    assert not (tmp_path / "var").exists()
    assert run(capsys, "patients", "add", "--name", "Ana", "--treated", days_ago(1))[0] == 0
    assert (tmp_path / "var" / "cli.db").is_file()
    assert stored_names(db_url) == ["Ana"]


def test_default_time_zone_comes_from_the_protocol(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    protocol = (PROJECT_ROOT / "clinic" / "protocol.yml").read_text(encoding="utf-8")
    assert "timezone: Europe/London" in protocol
    custom = tmp_path / "protocol.yml"
    custom.write_text(protocol.replace("timezone: Europe/London",
                                       "timezone: America/New_York"), encoding="utf-8")
    monkeypatch.setenv("AFTERCARE_PROTOCOL", str(custom))
    new_york = ZoneInfo("America/New_York")
    code, out, _ = run(capsys, "patients", "add", "--name", "Ana",
                       "--treated", days_ago(2, new_york))
    assert code == 0 and "(America/New_York)" in out
    code, out, _ = run(capsys, "patients", "show", "1")
    assert "time zone:   America/New_York" in out


def test_show(db_url: str, capsys: pytest.CaptureFixture) -> None:
    run(capsys, "patients", "add", "--name", "Ana", "--treated", days_ago(5), "--sender", "tg-1")
    code, out, _ = run(capsys, "patients", "show", "1")
    assert code == 0
    assert out.splitlines()[0] == "Patient 1"
    assert "name:        Ana" in out
    assert "linked chat: yes (sender tg-1)" in out
    assert "#1" in out and "(day 5, current)" in out
    assert "escalations: 0" in out


def test_sql_looking_and_control_character_names(db_url: str,
                                                 capsys: pytest.CaptureFixture) -> None:
    name = "Bob'); DROP TABLE patients;--"
    assert run(capsys, "patients", "add", "--name", name, "--treated", days_ago(1))[0] == 0
    assert run(capsys, "patients", "add", "--name", "Eve\x1b[2J", "--treated", days_ago(1))[0] == 0
    code, out, _ = run(capsys, "patients", "list")
    assert code == 0 and name in out
    assert "\x1b" not in out and "Eve?[2J" in out
    assert stored_names(db_url) == [name, "Eve\x1b[2J"]


@pytest.mark.parametrize("args, message", [
    (["--treated", "2999-01-01 10:00"], "in the future"),
    (["--treated", "2001-01-01 10:00"], "more than 400 days ago"),
    (["--treated", "yesterday"], "YYYY-MM-DD HH:MM"),
    (["--treated", "2026-02-30 10:00"], "not a valid date"),
    (["--treated", "2026-03-29 01:30", "--tz", "Europe/London"], "does not exist"),
    (["--tz", "Mars/Olympus"], "unknown time zone"),
    (["--number", "0"], "1 or more"),
    (["--name", "  "], "name must not be empty"),
])
def test_add_refuses_bad_input(db_url: str, capsys: pytest.CaptureFixture,
                               args: list[str], message: str) -> None:
    options = {"--name": "Ana", "--treated": days_ago(1), **dict(zip(args[::2], args[1::2]))}
    code, out, err = run(capsys, "patients", "add",
                         *[part for pair in options.items() for part in pair])
    assert code == 2
    assert err.startswith("aftercare: error:") and message in err
    assert out == ""
    assert run(capsys, "patients", "list")[1].startswith("No patients yet")


def test_duplicate_sender(db_url: str, capsys: pytest.CaptureFixture) -> None:
    run(capsys, "patients", "add", "--name", "Ana", "--treated", days_ago(1), "--sender", "s1")
    code, _, err = run(capsys, "patients", "add", "--name", "Bob", "--treated", days_ago(1),
                       "--sender", "s1")
    assert code == 2 and "already linked to patient 1" in err
    assert stored_names(db_url) == ["Ana"]


@pytest.mark.parametrize("action", [["show", "7"], ["remove", "7", "--yes"], ["link", "7"],
                                    ["treatment", "7", "--treated", days_ago(1)]])
def test_unknown_id(db_url: str, capsys: pytest.CaptureFixture, action: list[str]) -> None:
    code, _, err = run(capsys, "patients", *action)
    assert code == 2 and "no patient with id 7" in err


def treatments(url: str, patient_id: int = 1) -> list[tuple[int, str]]:
    with db.session_scope(url) as session:
        patient = repository.get_patient(session, patient_id)
        return sorted((t.number_in_series, f"{t.treated_at.astimezone(LONDON):%Y-%m-%d %H:%M}")
                      for t in patient.treatments)


def test_the_next_treatment_of_the_series(db_url: str, capsys: pytest.CaptureFixture) -> None:
    run(capsys, "patients", "add", "--name", "Ana", "--treated", days_ago(30))
    code, out, _ = run(capsys, "patients", "treatment", "1", "--treated", days_ago(1))
    assert code == 0 and "treatment 2 on" in out and "day 1 of recovery" in out
    assert treatments(db_url) == [(1, days_ago(30)), (2, days_ago(1))]


def test_correcting_the_latest_treatments_date(db_url: str,
                                                capsys: pytest.CaptureFixture) -> None:
    run(capsys, "patients", "add", "--name", "Ana", "--treated", days_ago(3))
    code, out, _ = run(capsys, "patients", "treatment", "1", "--treated", days_ago(2, clock="14:30"),
                       "--correct")
    assert code == 0 and "treatment 1 corrected to" in out
    assert treatments(db_url) == [(1, days_ago(2, clock="14:30"))]


@pytest.mark.parametrize("argv, message", [
    (["--treated", "yesterday"], "--treated"),
    (["--treated", days_ago(-2)], "is in the future"),
    (["--treated", days_ago(5)], "is not after patient 1's latest treatment"),
    (["--treated", days_ago(3)], "add --correct"),
])
def test_treatment_refuses_bad_dates(db_url: str, capsys: pytest.CaptureFixture,
                                     argv: list[str], message: str) -> None:
    run(capsys, "patients", "add", "--name", "Ana", "--treated", days_ago(3))
    code, _, err = run(capsys, "patients", "treatment", "1", *argv)
    assert code == 2 and message in err
    assert treatments(db_url) == [(1, days_ago(3))]


def test_remove_with_yes(db_url: str, capsys: pytest.CaptureFixture) -> None:
    run(capsys, "patients", "add", "--name", "Ana", "--treated", days_ago(1))
    run(capsys, "patients", "add", "--name", "Bob", "--treated", days_ago(1))
    code, out, _ = run(capsys, "patients", "remove", "1", "--yes")
    assert code == 0 and "Removed patient 1 (Ana)" in out
    assert stored_names(db_url) == ["Bob"]


def test_remove_without_yes_off_a_terminal_is_refused(
        db_url: str, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    run(capsys, "patients", "add", "--name", "Ana", "--treated", days_ago(1))
    monkeypatch.setattr(sys, "stdin", io.StringIO("yes\n"))  # not a TTY
    code, _, err = run(capsys, "patients", "remove", "1")
    assert code == 2 and "--yes" in err
    assert stored_names(db_url) == ["Ana"]


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("answer, code, remaining", [
    ("y\n", 0, []), ("YES\n", 0, []), ("n\n", 1, ["Ana"]), ("\n", 1, ["Ana"]), ("", 1, ["Ana"]),
])
def test_remove_asks_on_a_terminal(db_url: str, capsys: pytest.CaptureFixture,
                                   monkeypatch: pytest.MonkeyPatch, answer: str, code: int,
                                   remaining: list[str]) -> None:
    run(capsys, "patients", "add", "--name", "Ana", "--treated", days_ago(1))
    monkeypatch.setattr(sys, "stdin", FakeTerminal(answer))
    result, out, _ = run(capsys, "patients", "remove", "1")
    assert result == code
    assert "Remove patient 1 (Ana)" in out
    assert stored_names(db_url) == remaining


@pytest.mark.parametrize("argv", [
    ["patients"], ["patients", "add"], ["patients", "list"], ["patients", "show"],
    ["patients", "remove"], ["patients", "link"], ["patients", "treatment"],
    ["patients", "edit"],
])
def test_every_subcommand_has_help(capsys: pytest.CaptureFixture, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv + ["--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: aftercare {' '.join(argv)}")


def test_missing_action_is_a_usage_error(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["patients"])
    assert exit_info.value.code == 2


def test_console_script_help() -> None:
    script = PROJECT_ROOT / ".venv" / "bin" / "aftercare"
    result = subprocess.run([str(script), "patients", "--help"], capture_output=True, text=True,
                            timeout=300, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stderr
    assert "usage: aftercare patients" in result.stdout
    for action in ("add", "list", "show", "remove", "link"):
        assert action in result.stdout


# --- enrolment links ----------------------------------------------------------

def redeem(url: str, code: str, chat: str = "chat-1") -> int:
    with db.session_scope(url) as session:
        return redeem_code(session, code, chat, datetime.now(timezone.utc)).id


def refusal(url: str, code: str, chat: str = "chat-1") -> str:
    with pytest.raises(EnrolmentError) as error:
        redeem(url, code, chat)
    return error.value.reason


def add_ana(capsys: pytest.CaptureFixture, *extra: str) -> tuple[int, str, str]:
    return run(capsys, "patients", "add", "--name", "Ana", "--treated", days_ago(2), *extra)


def expiry_dates() -> set[str]:
    """The London date seven days from now (both, should the test straddle midnight)."""
    return {f"{(datetime.now(LONDON) + timedelta(days=7, seconds=s)):%Y-%m-%d}"
            for s in (-60, 0, 60)}


def test_add_prints_a_working_link(db_url: str, capsys: pytest.CaptureFixture) -> None:
    code, out, err = add_ana(capsys)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("Added patient 1: Ana")
    assert lines[1].startswith("Enrolment link (single use, expires ")
    assert any(date in lines[1] for date in expiry_dates())
    assert re.search(r"\d\d:\d\d (GMT|BST)\):$", lines[1])
    match = LINK.fullmatch(lines[2].strip())
    assert match
    secret = match.group(1)
    assert "aftercare patients link 1" in out
    with db.session_scope(db_url) as session:
        stored = session.execute(select(EnrolmentCode)).scalar_one().code_hash
    assert stored == hash_code(secret) and stored not in out

    assert run(capsys, "patients", "list")[1].splitlines()[1].split()[-2:] == ["link", "sent"]
    assert redeem(db_url, secret) == 1
    assert refusal(db_url, secret, "chat-2") == "used"
    _, out, _ = run(capsys, "patients", "show", "1")
    assert "linked chat: yes (sender chat-1)" in out
    assert f"enrolment:   enrolled {datetime.now(LONDON):%Y-%m-%d}" in out
    assert run(capsys, "patients", "list")[1].splitlines()[1].split()[-1] == "enrolled"


def test_add_without_a_bot_username_prints_the_code(
        db_url: str, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "")
    code, out, _ = add_ana(capsys)
    assert code == 0 and "https://" not in out
    secret = re.search(r"/start ([A-Za-z0-9_-]+)", out).group(1)
    assert "Enrolment code (single use, expires " in out and f": {secret}" in out
    assert "TELEGRAM_BOT_USERNAME" in out and "TELEGRAM_TOKEN" in out
    assert redeem(db_url, secret) == 1


def test_qr_needs_the_bot_username(db_url: str, capsys: pytest.CaptureFixture,
                                   monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "")
    for option in (["--qr"], ["--qr-png", str(tmp_path / "qr.png")]):
        code, out, err = add_ana(capsys, *option)
        assert code == 2 and out == "" and "TELEGRAM_BOT_USERNAME" in err
    assert run(capsys, "patients", "list")[1].startswith("No patients yet")


def test_sender_makes_no_link(db_url: str, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = add_ana(capsys, "--sender", "chat-9")
    assert code == 0 and "https://" not in out and "chat linked" in out
    assert "enrolment:   enrolled" in run(capsys, "patients", "show", "1")[1]
    code, _, err = add_ana(capsys, "--sender", "chat-8", "--qr")
    assert code == 2 and "--sender" in err
    assert stored_names(db_url) == ["Ana"]


def test_qr_on_the_terminal(db_url: str, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = add_ana(capsys, "--qr")
    assert code == 0
    plain, _, qr = out.partition("earlier links then stop working).\n")
    assert LINK.search(plain)
    qr_lines = qr.splitlines()
    assert len(qr_lines) > 10 and all(len(line) == len(qr_lines[0]) for line in qr_lines)
    assert "█" in qr


def test_qr_png(db_url: str, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    target = tmp_path / "ana.png"
    code, out, _ = add_ana(capsys, "--qr-png", str(target))
    assert code == 0 and f"QR code saved to {target}" in out
    data = target.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > len(PNG_SIGNATURE)
    width = int.from_bytes(data[16:20], "big")  # IHDR: big enough for a phone to read
    assert width >= 300

    code, out, err = add_ana(capsys, "--qr-png", str(target))
    assert code == 2 and out == "" and "already exists" in err and "--force" in err
    assert target.read_bytes() == data and stored_names(db_url) == ["Ana"]

    code, out, _ = run(capsys, "patients", "link", "1", "--qr-png", str(target), "--force")
    assert code == 0 and target.read_bytes() != data
    assert target.read_bytes().startswith(PNG_SIGNATURE)


@pytest.mark.parametrize("where, reason", [
    ("no/such/folder/ana.png", "No such file or directory"),
    ("a-file/ana.png", "Not a directory"),
])
def test_qr_png_that_cannot_be_written(db_url: str, capsys: pytest.CaptureFixture,
                                       tmp_path: Path, where: str, reason: str) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    target = tmp_path / where
    code, out, err = add_ana(capsys, "--qr-png", str(target))
    assert code == 2
    assert err.startswith("aftercare: error: --qr-png: cannot write") and str(target) in err
    assert reason in err
    assert "Patient 1 was added" in err and "patients link 1 --qr-png" in err
    assert len(err.splitlines()) == 1
    assert not target.exists()
    assert stored_names(db_url) == ["Ana"]
    assert redeem(db_url, LINK.search(out).group(1)) == 1  # the printed link works


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="needs file permissions that apply (not root)")
def test_qr_png_in_an_unwritable_folder(db_url: str, capsys: pytest.CaptureFixture,
                                        tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        code, _, err = add_ana(capsys, "--qr-png", str(folder / "ana.png"))
    finally:
        folder.chmod(0o700)
    assert code == 2 and "Permission denied" in err and "Patient 1 was added" in err
    assert stored_names(db_url) == ["Ana"]


def test_link_revokes_the_previous_code(db_url: str, capsys: pytest.CaptureFixture) -> None:
    first = LINK.search(add_ana(capsys)[1]).group(1)
    code, out, _ = run(capsys, "patients", "link", "1")
    assert code == 0
    assert out.startswith("New enrolment link for patient 1 (Ana); earlier links no longer work.")
    second = LINK.search(out).group(1)
    assert second != first
    assert refusal(db_url, first) == "revoked"
    assert redeem(db_url, second) == 1

    code, out, _ = run(capsys, "patients", "link", "1", "--qr")
    assert code == 0 and "enrolled already" in out and "█" in out
    assert redeem(db_url, LINK.search(out).group(1), "new-phone") == 1
    assert "linked chat: yes (sender new-phone)" in run(capsys, "patients", "show", "1")[1]


def test_show_and_list_statuses(db_url: str, capsys: pytest.CaptureFixture) -> None:
    for name in ("Ana", "Bob", "Cy", "Di", "Ed"):
        run(capsys, "patients", "add", "--name", name, "--treated", days_ago(2))
    _, out, _ = run(capsys, "patients", "show", "1")
    assert "enrolment:   link sent, expires " in out
    assert "check-ins:   active" in out and "unreachable: no" in out
    assert "photos:      consent not asked yet" in out

    paused = datetime(2026, 1, 10, 9, 30, tzinfo=timezone.utc)
    with db.session_scope(db_url) as session:
        ana, bob, cy, di, _ = repository.list_patients(session)
        for patient in (ana, bob, cy):
            patient.enrolled_at = paused
        ana.checkins_paused_at = paused
        ana.photo_consent = True
        bob.unreachable_at = paused
        bob.checkins_paused_at = paused
        bob.photo_consent = False
        for row in di.enrolment_codes:     # expired a minute ago, whatever the date today
            row.expires_at = datetime.now(timezone.utc) - timedelta(minutes=1)

    _, out, _ = run(capsys, "patients", "show", "1")
    assert "enrolment:   enrolled 2026-01-10" in out
    assert "check-ins:   paused since 2026-01-10 09:30 GMT" in out
    assert "photos:      consent given" in out
    _, out, _ = run(capsys, "patients", "show", "2")
    assert "unreachable: since 2026-01-10 09:30 GMT (blocked the bot)" in out
    assert "photos:      consent refused" in out
    assert "enrolment:   link expired" in run(capsys, "patients", "show", "4")[1]

    _, out, _ = run(capsys, "patients", "list")
    statuses = [line.split("  ")[-1].strip() for line in out.splitlines()[1:]]
    assert statuses == ["paused", "unreachable", "enrolled", "link expired", "link sent"]


def test_an_erased_patient(db_url: str, capsys: pytest.CaptureFixture) -> None:
    add_ana(capsys)
    with db.session_scope(db_url) as session:
        repository.remove_patient(session, 1)
        session.add(Erasure(former_patient_id=1, requested_via="telegram",
                            erased_at=datetime(2026, 3, 4, 23, 30, tzinfo=timezone.utc)))
    for action in (["show", "1"], ["link", "1"]):
        code, out, err = run(capsys, "patients", *action)
        assert code == 2 and out == ""
        assert err == ("aftercare: error: Patient 1's data was deleted at their request on "
                       "2026-03-04 (via telegram)\n")
    assert "no patient with id 2" in run(capsys, "patients", "show", "2")[2]


# --- the phone number, and what became of each check-in (issue 10) ------------

def rows_holding(url: str, needle: str) -> list[str]:
    """Every table with a row that holds needle anywhere, read straight from SQLite."""
    engine = db.make_engine(url)
    with engine.connect() as connection:
        tables = connection.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table'").scalars().all()
        return [table for table in tables
                if any(needle in str(row) for row in
                       connection.exec_driver_sql(f'SELECT * FROM "{table}"'))]


def test_add_with_a_phone_keeps_it_ready_to_call(db_url: str,
                                                 capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, "patients", "add", "--name", "Ana", "--treated", days_ago(1),
                       "--phone", "+44 (0)20 7946-0321")
    assert code == 0 and "phone +442079460321" in out.splitlines()[0]
    code, out, _ = run(capsys, "patients", "add", "--name", "Bo", "--treated", days_ago(1),
                       "--phone", "(020) 7946 0322")
    assert code == 0 and "phone 02079460322" in out
    assert "phone:       +442079460321" in run(capsys, "patients", "show", "1")[1]
    run(capsys, "patients", "add", "--name", "Cy", "--treated", days_ago(1))
    assert "phone:       none on record" in run(capsys, "patients", "show", "3")[1]


@pytest.mark.parametrize("phone, why", [
    ("", "must not be empty"),
    ("0800 FLOWERS", "only digits, spaces, +, - and brackets"),
    ("+44 20 7946 0321 ext. 5", "only digits"),
    ("44+20 7946 0321", "a + only at the start"),
    ("123 456", "7 to 15 digits, got 6"),
    ("+44 20 7946 0321 0000 1", "7 to 15 digits, got 17"),
])
def test_a_bad_phone_is_a_clear_error_and_nothing_is_stored(
        db_url: str, capsys: pytest.CaptureFixture, phone: str, why: str) -> None:
    code, out, err = run(capsys, "patients", "add", "--name", "Ana", "--treated", days_ago(1),
                         "--phone", phone)
    assert code == 2 and out == "" and err.startswith("aftercare: error: --phone: ")
    assert why in err
    db.migrate(db_url)   # refused before the database was even opened
    assert stored_names(db_url) == []


def test_edit_changes_or_removes_the_phone(db_url: str, capsys: pytest.CaptureFixture) -> None:
    add_ana(capsys)
    code, out, _ = run(capsys, "patients", "edit", "1", "--phone", "+353 1 234 5678")
    assert code == 0 and out == "Patient 1 (Ana): phone +35312345678.\n"
    code, _, err = run(capsys, "patients", "edit", "1", "--phone", "call reception")
    assert code == 2 and "--phone: phone number may contain only digits" in err
    assert "phone:       +35312345678" in run(capsys, "patients", "show", "1")[1]
    code, out, _ = run(capsys, "patients", "edit", "1", "--no-phone")
    assert code == 0 and out == "Patient 1 (Ana): phone number removed.\n"
    assert "phone:       none on record" in run(capsys, "patients", "show", "1")[1]
    assert "no patient with id 9" in run(capsys, "patients", "edit", "9", "--phone",
                                         "0207 946 0321")[2]
    with pytest.raises(SystemExit) as usage:
        main(["patients", "edit", "1"])
    assert usage.value.code == 2
    assert ("say what to change: --phone NUMBER, --no-phone or --improve-consent yes|no"
            in capsys.readouterr().err)


def test_the_phone_goes_with_the_patient(db_url: str, capsys: pytest.CaptureFixture) -> None:
    """`patients remove` and /forget (chats.erase_patient) leave no row holding it."""
    from aftercare.store import chats

    for name in ("Ana", "Bo"):
        run(capsys, "patients", "add", "--name", name, "--treated", days_ago(1),
            "--sender", f"tg-{len(name)}", "--phone", f"+44 20 7946 03{len(name)}0")
    assert rows_holding(db_url, "4420794603") == ["patients"]
    assert run(capsys, "patients", "remove", "1", "--yes")[0] == 0
    assert rows_holding(db_url, "442079460330") == []
    with db.session_scope(db_url) as session:
        chats.erase_patient(session, repository.get_patient(session, 2),
                            requested_via="telegram")
    assert rows_holding(db_url, "442079460320") == []


def test_show_says_what_became_of_each_checkin_and_the_answers_in_words(
        db_url: str, capsys: pytest.CaptureFixture) -> None:
    from tests.checkin_scene import OUTCOMES, TYPED_ANSWER, add_checkin_scene

    db.migrate(db_url)
    scene = add_checkin_scene(db_url)
    code, out, _ = run(capsys, "patients", "show", str(scene.patient_id))
    assert code == 0
    lines = out.splitlines()
    plan = lines[lines.index("  check-in plan (current treatment):") + 1:]
    for checkin_id, (_, _, words) in OUTCOMES.items():
        line = next(line for line in plan if line.strip().startswith(
            checkin_id.replace("_", " ") + " "))
        assert words in line, (checkin_id, line)
    assert "      answer: redness: “My skin is red” (tapped)" in plan
    assert f"      answer: redness [routine]: {TYPED_ANSWER}" in plan
    assert any(line.strip().startswith("next session reminder") and line.endswith("planned")
               for line in plan)
    assert "/report_redness" not in out



# --- the patient's yes/no to their messages improving the assistant (issue 11) ---

def improve_consent(url: str, patient_id: int = 1):
    with db.session_scope(url) as session:
        return repository.get_patient(session, patient_id).improve_consent


def add_inbox_items(url: str, patient_id: int, count: int) -> None:
    """Items as capture keeps them (masked text), straight into the store."""
    from aftercare.store.models import InboxItem

    with db.session_scope(url) as session:
        patient = repository.get_patient(session, patient_id)
        for index in range(count):
            session.add(InboxItem(capture_key=f"cli-{patient_id}-{index}", patient_id=patient_id,
                                  sender_id=patient.sender_id or f"s{patient_id}",
                                  received_at=datetime.now(timezone.utc), text="blorp <name>",
                                  intent="nlu_fallback", confidence=0.2))


def inbox_patients(url: str) -> list[int]:
    from aftercare.store.models import InboxItem

    with db.session_scope(url) as session:
        return sorted(session.execute(select(InboxItem.patient_id)).scalars())


def test_add_records_the_yes_or_no_to_improving_the_assistant(
        db_url: str, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, "patients", "add", "--name", "Ana", "--treated", days_ago(1),
                       "--sender", "rest-ana", "--improve-consent", "yes")
    assert code == 0 and out.rstrip().endswith("messages may improve the assistant: yes.")
    code, out, _ = run(capsys, "patients", "add", "--name", "Bo", "--treated", days_ago(1),
                       "--improve-consent", "NO")
    assert code == 0 and "messages may improve the assistant: no." in out
    assert LINK.search(out)                   # the enrolment link is still printed
    run(capsys, "patients", "add", "--name", "Cy", "--treated", days_ago(1))
    assert [improve_consent(db_url, i) for i in (1, 2, 3)] == [True, False, None]
    shown = [run(capsys, "patients", "show", str(i))[1] for i in (1, 2, 3)]
    assert "improvement: yes (messages, de-identified, to teach the assistant)" in shown[0]
    assert "improvement: no (messages" in shown[1]
    assert "improvement: no, not asked yet (messages" in shown[2]


@pytest.mark.parametrize("value", ["maybe", "", "1", "true"])
def test_a_yes_or_no_that_is_neither_is_refused_and_nothing_is_stored(
        db_url: str, capsys: pytest.CaptureFixture, value: str) -> None:
    with pytest.raises(SystemExit) as usage:
        main(["patients", "add", "--name", "Ana", "--treated", days_ago(1),
              "--improve-consent", value])
    assert usage.value.code == 2
    assert f"--improve-consent: say yes or no, not {value!r}" in capsys.readouterr().err
    db.migrate(db_url)
    assert stored_names(db_url) == []
    add_ana(capsys, "--improve-consent", "yes")
    with pytest.raises(SystemExit):
        main(["patients", "edit", "1", "--improve-consent", value])
    assert improve_consent(db_url) is True


def test_edit_changes_the_choice_and_a_no_takes_the_inbox_items(
        db_url: str, capsys: pytest.CaptureFixture) -> None:
    for name in ("Ana", "Bo"):
        run(capsys, "patients", "add", "--name", name, "--treated", days_ago(1),
            "--sender", f"rest-{name}", "--improve-consent", "yes")
    add_inbox_items(db_url, 1, 2)
    add_inbox_items(db_url, 2, 1)
    code, out, _ = run(capsys, "patients", "edit", "1", "--improve-consent", "no")
    assert code == 0
    assert out == ("Patient 1 (Ana): messages may improve the assistant: no; 2 of their "
                   "messages taken out of the authors' inbox.\n")
    assert improve_consent(db_url, 1) is False and inbox_patients(db_url) == [2]
    code, out, _ = run(capsys, "patients", "edit", "1", "--improve-consent", "yes",
                       "--phone", "020 7946 0321")
    assert code == 0 and out.splitlines() == [
        "Patient 1 (Ana): phone 02079460321.",
        "Patient 1 (Ana): messages may improve the assistant: yes."]
    assert improve_consent(db_url, 1) is True
    assert "phone:       02079460321" in run(capsys, "patients", "show", "1")[1]
    assert improve_consent(db_url, 2) is True and inbox_patients(db_url) == [2]
    code, _, err = run(capsys, "patients", "edit", "9", "--improve-consent", "no")
    assert code == 2 and "no patient with id 9" in err
