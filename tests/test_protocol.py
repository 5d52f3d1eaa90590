"""The clinic's protocol file: the shipped defaults load, and wrong values stop
start-up with an error naming the file, the field and the problem."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aftercare.protocol import AFTERCARE_TOPICS, SYMPTOMS, ProtocolError, load_protocol
from cli.main import main
from tests.conftest import PROTOCOL_PATH


def write_variant(tmp_path: Path, change) -> Path:
    data = yaml.safe_load(PROTOCOL_PATH.read_text())
    change(data)
    path = tmp_path / "protocol.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_protocol_has_the_documented_defaults(protocol):
    assert protocol.aftercare["makeup"] == 24
    assert protocol.aftercare["washing"] == 8
    assert protocol.aftercare["exercise"] == 48
    assert protocol.aftercare["sauna_steam"] == 72
    assert protocol.aftercare["swimming"] == 120
    assert protocol.aftercare["retinoids"] == 7 * 24
    assert protocol.aftercare["injectables_laser"] == 14 * 24
    assert protocol.symptoms["redness"].expected_until == 3
    assert protocol.symptoms["swelling"].expected_until == 2
    assert set(protocol.symptoms) == set(SYMPTOMS)
    assert set(protocol.aftercare) == set(AFTERCARE_TOPICS)


@pytest.mark.parametrize("change, field, words", [
    (lambda d: d["aftercare"].__setitem__("makeup", -3), "aftercare", "makeup"),
    (lambda d: d["aftercare"].__setitem__("tanning_beds", 24), "aftercare", "unknown topic"),
    (lambda d: d["aftercare"].pop("alcohol"), "aftercare", "missing topic"),
    (lambda d: d["clinic"].pop("phone"), "clinic.phone", "field required"),
    (lambda d: d["clinic"].__setitem__("timezone", "Mars/Olympus"), "clinic.timezone", "unknown time zone"),
    (lambda d: d["symptoms"]["redness"].__setitem__("expected_until", -1), "symptoms.redness.expected_until", "greater than or equal to 0"),
    (lambda d: d["checkins"][0].__setitem__("time", "25:00"), "checkins.0.time", "HH:MM"),
    (lambda d: d["quiet_hours"].__setitem__("start", "9pm"), "quiet_hours.start", "HH:MM"),
    (lambda d: d.__setitem__("surprise", 1), "surprise", "unknown field"),
    (lambda d: d["clinic"]["opening_hours"].__setitem__("funday", "09:00-10:00"), "clinic.opening_hours", "unknown day"),
])
def test_a_wrong_value_names_file_field_and_problem(tmp_path, change, field, words):
    path = write_variant(tmp_path, change)
    with pytest.raises(ProtocolError) as error:
        load_protocol(path)
    message = str(error.value)
    assert str(path) in message
    assert f": {field}" in message
    assert words in message


def test_missing_and_broken_files_are_clear_errors(tmp_path):
    with pytest.raises(ProtocolError, match="file not found"):
        load_protocol(tmp_path / "nope.yml")
    broken = tmp_path / "broken.yml"
    broken.write_text("clinic: [unclosed")
    with pytest.raises(ProtocolError, match="not valid YAML"):
        load_protocol(broken)


def test_protocol_check_command(tmp_path, capsys):
    assert main(["protocol", "check", str(PROTOCOL_PATH)]) == 0
    assert "OK" in capsys.readouterr().out
    bad = write_variant(tmp_path, lambda d: d["aftercare"].__setitem__("makeup", -1))
    assert main(["protocol", "check", str(bad)]) == 2
    assert "aftercare" in capsys.readouterr().err


def _with_extra_checkin(data: dict) -> None:
    data["checkins"].append({"id": "day5_extra", "day": 5, "time": "10:00", "grace_hours": 6})


def test_protocol_check_names_a_checkin_without_text_and_the_generic_fallback(tmp_path, capsys):
    path = write_variant(tmp_path, _with_extra_checkin)
    assert main(["protocol", "check", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "8 check-ins, 1 with the generic text" in out
    (warning,) = err.strip().splitlines()
    assert "warning" in warning and "'day5_extra'" in warning
    assert "utter_checkin_day5_extra" in warning and "utter_checkin_generic" in warning


def test_protocol_check_names_no_checkin_when_every_one_has_text(capsys):
    assert main(["protocol", "check", str(PROTOCOL_PATH)]) == 0
    out, err = capsys.readouterr()
    assert "generic" not in out and err == ""


def test_protocol_check_refuses_a_checkin_without_text_when_no_generic_text(tmp_path, capsys):
    path = write_variant(tmp_path, _with_extra_checkin)
    domain = yaml.safe_load((PROTOCOL_PATH.parent.parent / "domain.yml").read_text())
    del domain["responses"]["utter_checkin_generic"]
    domain_path = tmp_path / "domain.yml"
    domain_path.write_text(yaml.safe_dump(domain))
    assert main(["protocol", "check", str(path), "--domain", str(domain_path)]) == 2
    err = capsys.readouterr().err
    assert "utter_checkin_generic" in err and "day5_extra" in err and str(domain_path) in err
    assert main(["protocol", "check", str(path), "--domain", str(tmp_path / "nope.yml")]) == 2
    assert "file not found" in capsys.readouterr().err
