"""`aftercare patients ...` in-process against a temporary SQLite database."""
from __future__ import annotations

import io
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from aftercare.cli import main
from aftercare.settings import PROJECT_ROOT
from aftercare.store import db, repository

LONDON = ZoneInfo("Europe/London")


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
    assert header.split() == ["ID", "NAME", "TREATED", "(LOCAL)", "DAY", "TREATMENT", "LINKED"]
    treated = datetime.strptime(days_ago(3), "%Y-%m-%d %H:%M").replace(tzinfo=LONDON)
    assert row.split() == ["1", "Ana", f"{treated:%Y-%m-%d}", "10:00", f"{treated:%Z}",
                           "3", "2", "yes"]


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


@pytest.mark.parametrize("action", [["show", "7"], ["remove", "7", "--yes"]])
def test_unknown_id(db_url: str, capsys: pytest.CaptureFixture, action: list[str]) -> None:
    code, _, err = run(capsys, "patients", *action)
    assert code == 2 and "no patient with id 7" in err


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
    ["patients", "remove"],
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
    for action in ("add", "list", "show", "remove"):
        assert action in result.stdout
