"""`aftercare inbox export` into a temporary copy of data/ (never the real
data/nlu): what is written and where, duplicates and conflicts, the data
checked with `aftercare validate`'s own checks first, and items marked
exported only once their files are written."""
from __future__ import annotations

import shutil
import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import update

from aftercare.authoring import export as exporting
from aftercare.authoring import inbox
from aftercare.authoring.capture import Reading, capture_reading
from aftercare.rasa_data import trainable_intents, training_examples
from aftercare.settings import PROJECT_ROOT
from aftercare.store import chats, db, repository
from aftercare.store.models import InboxItem
from cli.commands.validate import data_problems
from cli.main import main

LONDON = ZoneInfo("Europe/London")
TREATED = datetime(2026, 11, 25, 10, 0, tzinfo=LONDON)
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=LONDON)
DOMAIN = PROJECT_ROOT / "domain.yml"
INTENTS = trainable_intents(DOMAIN)
REAL_EXPORT_DIR = PROJECT_ROOT / "data" / "nlu" / "conversations"


@pytest.fixture
def url(database_url: str) -> str:
    db.migrate(database_url)
    with db.session_scope(database_url) as session:
        for sender in ("chat-a", "chat-b"):
            patient = repository.add_patient(session, name="Ana Kowalska", treated_at=TREATED,
                                             timezone="Europe/London", sender_id=sender)
            patient.improve_consent = True
    return database_url


@pytest.fixture
def data(tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(PROJECT_ROOT / "data", copy,
                    ignore=shutil.ignore_patterns("__pycache__", "conversations"))
    return copy


def labelled(url: str, words: str, intent: str, *, sender: str = "chat-a",
             shortened: str | None = None) -> int:
    reading = Reading.from_parse_data({
        "text": words, "message_id": uuid.uuid4().hex,
        "intent": {"name": "nlu_fallback", "confidence": 0.15},
        "intent_ranking": [{"name": "out_of_scope", "confidence": 0.3}]},
        timestamp=NOW.timestamp())
    with db.session_scope(url) as session:
        patient = repository.find_patient_by_sender(session, sender)
        item = capture_reading(session, patient, sender, reading, reasons=["fallback"], now=NOW)
        inbox.label(session, item.id, intent, intents=INTENTS, now=NOW, via="test",
                    text=shortened)
        return item.id


def export(url: str, data: Path, validate=None) -> exporting.ExportResult:
    return exporting.export_labelled(
        lambda: db.session_scope(url), data_dir=data, target_dir=data / "nlu" / "conversations",
        domain_path=DOMAIN, validate=validate or (lambda folder: data_problems(folder)[0]),
        now=NOW)


def statuses(url: str) -> dict[int, str]:
    with db.session_scope(url) as session:
        page = inbox.list_inbox(session, inbox.InboxFilter(status="all"), limit=500)
        return {row.id: row.status for row in page.rows}


def test_export_writes_one_file_per_intent_that_rasa_reads_and_validate_passes(
        url, data: Path) -> None:
    real_before = sorted(REAL_EXPORT_DIR.rglob("*")) if REAL_EXPORT_DIR.exists() else None
    tinted = labelled(url, "can i put the tinted stuff on my face yet, <name>", "ask_makeup",
                      shortened="can i put the tinted stuff on yet")
    lotion = labelled(url, "the [lotion] one? {is} it ok", "ask_skincare_products")
    known = labelled(url, "Can I wear makeup tomorrow?!", "ask_makeup")   # in the data already
    clash = labelled(url, "can i use my retinol", "ask_makeup")  # an ask_skincare_products example
    result = export(url, data)

    target = data / "nlu" / "conversations"
    assert [w.path for w in result.written] == [target / "ask_makeup.yml",
                                                target / "ask_skincare_products.yml"]
    makeup = (target / "ask_makeup.yml").read_text(encoding="utf-8")
    assert makeup.startswith('version: "3.1"\n# Examples of the intent ask_makeup from patients')
    assert f"# 2026-11-28: inbox item(s) {tinted}, in this order\n" in makeup
    assert "    - can i put the tinted stuff on yet\n" in makeup
    assert "(lotion) one? (is) it ok" in (target / "ask_skincare_products.yml").read_text()
    examples = {(e.text, e.intent) for e in training_examples(data)}
    assert ("can i put the tinted stuff on yet", "ask_makeup") in examples
    assert result.already_there == [(known, "ask_makeup")]
    assert result.conflicts == [(clash, "ask_makeup", ("ask_skincare_products",))]
    assert statuses(url) == {tinted: "exported", lotion: "exported", known: "exported",
                             clash: "labelled"}
    assert data_problems(data)[0] == []        # `aftercare validate` passes on the result
    # a second export writes nothing again
    again = export(url, data)
    assert again.written == [] and again.conflicts == [(clash, "ask_makeup",
                                                        ("ask_skincare_products",))]
    assert (target / "ask_makeup.yml").read_text(encoding="utf-8") == makeup
    assert yaml.safe_load(makeup)["nlu"][0]["intent"] == "ask_makeup"
    real_after = sorted(REAL_EXPORT_DIR.rglob("*")) if REAL_EXPORT_DIR.exists() else None
    assert real_after == real_before


def test_data_that_does_not_validate_stops_the_export_before_anything_is_written(
        url, data: Path) -> None:
    item = labelled(url, "is the tinted stuff ok", "ask_makeup")
    (data / "nlu" / "broken.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: ask_lottery_numbers\n'
        '  examples: |\n    - lucky numbers\n',
        encoding="utf-8")
    with pytest.raises(exporting.ExportError, match="does not pass validation") as refused:
        export(url, data)
    assert "ask_lottery_numbers" in str(refused.value)
    assert not (data / "nlu" / "conversations").exists()
    assert statuses(url) == {item: "labelled"}


def test_one_example_under_two_intents_in_one_export_is_refused(url, data: Path) -> None:
    first = labelled(url, "the cream one", "ask_skincare_products")
    second = labelled(url, "The cream one?", "ask_makeup", sender="chat-b")
    result = export(url, data)
    assert result.written == []
    assert {c[0] for c in result.conflicts} == {first, second}
    assert statuses(url) == {first: "labelled", second: "labelled"}
    assert not (data / "nlu" / "conversations").exists()


def test_a_label_for_an_intent_the_domain_no_longer_has(url, data: Path) -> None:
    item = labelled(url, "is the tinted stuff ok", "ask_makeup")
    with db.session_scope(url) as session:
        session.execute(update(InboxItem).values(label_intent="ask_retired"))
    result = export(url, data)
    assert result.unknown_intents == [(item, "ask_retired")] and result.written == []
    assert statuses(url) == {item: "labelled"}


def test_an_item_erased_while_the_data_is_checked_is_left_out(url, data: Path) -> None:
    stays = labelled(url, "is the tinted stuff ok", "ask_makeup")
    erased = labelled(url, "sea ok for my face", "ask_swimming_sauna", sender="chat-b")

    def validate_while_the_patient_is_erased(folder: Path) -> list[str]:
        problems = data_problems(folder)[0]
        with db.session_scope(url) as session:
            chats.erase_patient(session, repository.find_patient_by_sender(session, "chat-b"),
                                requested_via="telegram")
        return problems

    result = export(url, data, validate=validate_while_the_patient_is_erased)
    assert result.changed == [erased]
    assert [w.item_ids for w in result.written] == [(stays,)]
    assert not (data / "nlu" / "conversations" / "ask_swimming_sauna.yml").exists()
    assert statuses(url) == {stays: "exported"}


def test_the_export_folder_must_be_inside_the_data(url, data: Path, tmp_path: Path) -> None:
    labelled(url, "is the tinted stuff ok", "ask_makeup")
    with pytest.raises(exporting.ExportError, match="must be inside"):
        exporting.export_labelled(lambda: db.session_scope(url), data_dir=data,
                                  target_dir=tmp_path / "elsewhere", domain_path=DOMAIN,
                                  validate=lambda folder: [], now=NOW)


def test_the_command_prints_what_it_wrote(url, data: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture) -> None:
    import cli.commands.inbox as command

    monkeypatch.setattr(command, "DATA_DIR", data)
    monkeypatch.setenv("AFTERCARE_INBOX_EXPORT_DIR", str(data / "nlu" / "conversations"))
    monkeypatch.delenv("AFTERCARE_PROTOCOL", raising=False)
    assert main(["inbox", "export"]) == 0
    assert "nothing labelled to export" in capsys.readouterr().out
    item = labelled(url, "is the tinted stuff ok", "ask_makeup")
    assert main(["inbox", "export"]) == 0
    out = capsys.readouterr().out
    assert f"wrote 1 example(s):\n  {data / 'nlu' / 'conversations' / 'ask_makeup.yml'}: 1 " \
           f"(inbox item(s) {item})\n    - is the tinted stuff ok\n" in out
    assert "aftercare train" in out and "aftercare evaluate" in out
    code = main(["inbox", "label", str(item), "ask_skincare_products"])
    assert code == 2 and "exported" in capsys.readouterr().err
