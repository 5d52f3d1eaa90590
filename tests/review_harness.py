"""Shared pieces of the review page tests: the real app served on a free port in
a background thread, a clock the test moves, and a patient with a conversation,
reports, a photo and an escalation, written with the store's own functions."""
from __future__ import annotations

import asyncio
import io
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Iterator, Optional
from zoneinfo import ZoneInfo

from aiohttp import web

from aftercare import staff as accounts
from aftercare.settings import Settings, get_settings
from aftercare.store import db, repository
from aftercare.store.chats import add_photo, keep_photo, log_message
from review.app import build_app
from tests.bot_harness import free_port

PASSWORD = "correct horse battery staple"
STAFF_EMAIL = "nurse.quill@clinic.example"
PATIENT_NAME = "Zelda Quarrington"
# Patient text that must show as text, and never reach a log.
SCRIPT_TEXT = "<script>alert(1)</script> my cheek has a zebra-striped rash"
TRIGGER_TEXT = "the swelling round my eye is spreading fast, papaya-coloured pus"
REASON = "possible infection: spreading swelling with pus"
ASSISTANT_TEXT = "Thank you for telling me; I have let the clinic know."
CLINIC_TEXT = "This is the clinic: please call us on the number below."


def _image(kind: str, colour: tuple[int, int, int]) -> bytes:
    """A small real image (Pillow comes with Rasa), so browsers can draw it."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (160, 120), colour)
    ImageDraw.Draw(image).ellipse((50, 30, 110, 90), fill=(200, 90, 80))
    out = io.BytesIO()
    image.save(out, format=kind)
    return out.getvalue()


PNG_BYTES = _image("PNG", (238, 214, 196))
JPEG_BYTES = _image("JPEG", (226, 200, 180))
LONDON = ZoneInfo("Europe/London")


class OffsetClock:
    """Real time plus an offset the test moves: staff accounts are stamped with
    real time, so a session made by this clock is never older than its account."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


def review_settings(database_url: str, **changes) -> Settings:
    return replace(get_settings(), database_url=database_url, **changes)


@contextmanager
def serving(settings: Settings, clock: OffsetClock) -> Iterator[str]:
    """The real application on 127.0.0.1:<free port> (its base URL), as __main__
    serves it but in a thread of this process, so the test can own the clock."""
    app = build_app(settings, clock=clock)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    port = free_port()
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, name="review-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=15)
        loop.close()


def add_staff(url: str, email: str = STAFF_EMAIL, password: str = PASSWORD) -> int:
    with db.session_scope(url) as session:
        return accounts.add_staff(session, email, password).id


@dataclass(frozen=True)
class Scene:
    patient_id: int
    escalation_id: int
    photo_id: int
    jpeg_photo_id: int
    waiting_photo_id: int
    sender_id: str


def add_scene(url: str, *, name: str = PATIENT_NAME, sender_id: str = "tg-424242",
              level: str = "urgent") -> Scene:
    """A patient enrolled on Telegram, on day 2 of recovery (treated at noon two
    days ago, London time, so the day does not depend on when the test runs), who
    wrote the script text and then a red flag (an open escalation), with two
    check-in answers and photos."""
    now = datetime.now(timezone.utc)
    treated_at = datetime.now(LONDON).replace(hour=12, minute=0, second=0,
                                              microsecond=0) - timedelta(days=2)
    with db.session_scope(url) as session:
        patient = repository.add_patient(session, name=name, treated_at=treated_at,
                                         timezone="Europe/London", sender_id=sender_id)
        patient.enrolled_at = treated_at
        patient.photo_consent = True
        treatment = repository.current_treatment(patient)
        log_message(session, sender_id=sender_id, direction="out", kind="checkin",
                    text="Day 1 check-in: how is your skin today?", patient_id=patient.id)
        log_message(session, sender_id=sender_id, direction="in", text=SCRIPT_TEXT,
                    status="answered", patient_id=patient.id)
        log_message(session, sender_id=sender_id, direction="out", text=ASSISTANT_TEXT,
                    patient_id=patient.id)
        log_message(session, sender_id=sender_id, direction="in", text=TRIGGER_TEXT,
                    status="answered", patient_id=patient.id)
        log_message(session, sender_id=sender_id, direction="out", kind="clinic",
                    text=CLINIC_TEXT, patient_id=patient.id)
        repository.record_symptom_report(
            session, patient_id=patient.id, treatment_id=treatment.id, day=1,
            checkin_id="day1", symptom="report_redness", level=None, text="a bit red",
            created_at=now - timedelta(days=1))
        repository.record_symptom_report(
            session, patient_id=patient.id, treatment_id=treatment.id, day=2,
            checkin_id="day2", symptom="report_swelling", level=level, text=TRIGGER_TEXT,
            created_at=now - timedelta(hours=1))
        photo = add_photo(session, patient, file_id="file-1", caption="left cheek",
                          content=None, status="awaiting_consent")
        keep_photo(session, photo, PNG_BYTES)
        jpeg = add_photo(session, patient, file_id="file-2", caption=None, content=JPEG_BYTES,
                         status="kept")
        waiting = add_photo(session, patient, file_id="file-3", caption=None,
                            content=JPEG_BYTES, status="awaiting_consent")
        escalation = repository.record_escalation(
            session, patient_id=patient.id, sender_id=sender_id, message=TRIGGER_TEXT,
            level=level, reason=REASON, day=2)
        return Scene(patient_id=patient.id, escalation_id=escalation.id, photo_id=photo.id,
                     jpeg_photo_id=jpeg.id, waiting_photo_id=waiting.id, sender_id=sender_id)


CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> Optional[str]:
    """The CSRF token in a page's forms."""
    match = CSRF_FIELD.search(html)
    return match.group(1) if match else None
