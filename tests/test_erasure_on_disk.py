"""Erasing a patient leaves none of their details in the SQLite file's bytes."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import text

from aftercare.store import chats, db, repository
from aftercare.store.models import Message

NAME = "Zephyrine Quillfeather"
PHONE = "+447700900417"
WORDS = "my cheek is weeping a yellowish crust since teatime"


def file_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_an_erased_patient_is_overwritten_in_the_file(tmp_path):
    path = tmp_path / "aftercare.db"
    url = f"sqlite:///{path}"
    db.migrate(url)
    with db.session_scope(url) as session:
        patient = repository.add_patient(
            session, name=NAME, sender_id="telegram:7001", phone=PHONE,
            treated_at=datetime.now(timezone.utc) - timedelta(days=2), timezone="Europe/London")
        session.add(Message(patient_id=patient.id, sender_id="telegram:7001", direction="in",
                            kind="text", text=WORDS))
    with db.session_scope(url) as session:
        session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    assert NAME.encode() in file_bytes(path)   # the check can see what it looks for
    with db.session_scope(url) as session:
        patient = repository.find_patient_by_sender(session, "telegram:7001")
        chats.erase_patient(session, patient, requested_via="test")
    with db.session_scope(url) as session:
        session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    content = file_bytes(path)
    for detail in (NAME, PHONE, WORDS):
        assert detail.encode() not in content, detail
