"""The patient's yes/no to their messages improving the assistant (issue 11),
over Telegram: the real bot over HTTP to the fake Telegram server, the real
Rasa server and action server (whose safety check fills the authors' inbox),
a real SQLite database."""
from __future__ import annotations

import logging

import pytest
import pytest_asyncio
import requests
from sqlalchemy import select

from aftercare.authoring.inbox import InboxFilter, list_inbox
from aftercare.services import MODEL_DIR
from aftercare.store import db, repository
from aftercare.store.models import InboxItem, Patient
from bot.context import sender_for_chat
from tests.bot_harness import (
    ManualClock, enrol, job_ids, new_chat_id, running_assistant, running_bot, treated_hours_ago,
)

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not (MODEL_DIR / "aftercare.tar.gz").exists(),
                                 reason="no trained model: run `make model` first")]

IMPROVE_BUTTONS = ["bot:improve_yes", "bot:improve_no"]
# A message this model falls back on, with a name and a phone number to mask.
UNCLEAR = "I'm worried - Marguerite Okonjo, 07700 900123"


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("improve")


@pytest.fixture(scope="module")
def assistant(work):
    with running_assistant(work) as settings:
        yield settings


@pytest_asyncio.fixture
async def bot(assistant, telegram):
    async with running_bot(assistant, telegram, ManualClock()) as application:
        yield application


def _patient(settings, patient_id: int) -> Patient:
    with db.session_scope(settings.database_url) as session:
        return repository.get_patient(session, patient_id)


def _consent(settings, patient_id: int):
    return _patient(settings, patient_id).improve_consent


def _set(settings, patient_id: int, **values) -> None:
    with db.session_scope(settings.database_url) as session:
        patient = repository.get_patient(session, patient_id)
        for name, value in values.items():
            setattr(patient, name, value)


def _inbox_patients(settings) -> list[int]:
    with db.session_scope(settings.database_url) as session:
        return sorted(session.execute(select(InboxItem.patient_id)).scalars())


def _inbox_texts(settings) -> list[str]:
    with db.session_scope(settings.database_url) as session:
        return [row.text for row in list_inbox(session, InboxFilter(status="all")).rows]


def _payloads(message) -> list[str]:
    return [row[0]["callback_data"] for row in message.reply_markup["inline_keyboard"]]


async def _press(telegram, chat_id: int, data: str, message) -> str:
    """Press a button under message; the text of the bot's answer."""
    sent = len(telegram.sent_messages(chat_id))
    telegram.push_callback(chat_id, data, message.message_id)
    return (await telegram.await_messages(chat_id, sent + 1))[sent].text


async def _privacy(telegram, chat_id: int):
    sent = len(telegram.sent_messages(chat_id))
    telegram.push_command(chat_id, "/privacy")
    return (await telegram.await_messages(chat_id, sent + 1))[sent]


# --- at enrolment ----------------------------------------------------------------

@pytest.mark.asyncio
async def test_enrolment_asks_and_not_answering_is_no(assistant, telegram, bot):
    patient_id, chat_id = await enrol(telegram, assistant, treated_hours_ago(3))
    consent = telegram.sent_messages(chat_id)[0]
    assert "names, numbers and dates removed" in consent.text
    assert "/privacy" in consent.text and "/forget" in consent.text
    assert _payloads(consent) == IMPROVE_BUTTONS
    assert _consent(assistant, patient_id) is None     # asked, not answered: no


@pytest.mark.asyncio
async def test_yes_is_stored_and_confirmed(assistant, telegram, bot):
    patient_id, chat_id = await enrol(telegram, assistant, treated_hours_ago(3))
    consent = telegram.sent_messages(chat_id)[0]
    confirmed = await _press(telegram, chat_id, "bot:improve_yes", consent)
    assert "/privacy" in confirmed and "names, numbers and dates removed" in confirmed
    assert _consent(assistant, patient_id) is True
    edits = telegram.calls_to("editMessageReplyMarkup")   # one press per question
    assert any(c.params.get("message_id") == consent.message_id for c in edits)


@pytest.mark.asyncio
async def test_no_is_stored_confirmed_and_changes_nothing_else(assistant, telegram, bot):
    patient_id, chat_id = await enrol(telegram, assistant, treated_hours_ago(3))
    jobs = job_ids(assistant, patient_id)
    consent = telegram.sent_messages(chat_id)[0]
    confirmed = await _press(telegram, chat_id, "bot:improve_no", consent)
    assert "won't be used" in confirmed and "care and check-ins stay the same" in confirmed
    patient = _patient(assistant, patient_id)
    assert patient.improve_consent is False
    assert patient.checkins_paused_at is None and job_ids(assistant, patient_id) == jobs
    telegram.push_message(chat_id, "when can I wear makeup again?")
    answer = (await telegram.await_messages(chat_id, 4))[3]
    assert answer.text.startswith("Not yet")       # still answered as before


# --- /privacy ----------------------------------------------------------------------

@pytest.mark.asyncio
async def test_privacy_shows_the_choices_and_changes_the_improvement_one(assistant, telegram,
                                                                        bot):
    patient_id, chat_id = await enrol(telegram, assistant, treated_hours_ago(3))
    shown = await _privacy(telegram, chat_id)
    assert "teach the assistant to understand patients better: no." in shown.text
    assert "Photos: none kept. If you send one, I'll ask" in shown.text
    assert "/forget deletes everything" in shown.text
    assert _payloads(shown) == IMPROVE_BUTTONS

    await _press(telegram, chat_id, "bot:improve_yes", shown)
    assert _consent(assistant, patient_id) is True
    _set(assistant, patient_id, photo_consent=True)
    shown = await _privacy(telegram, chat_id)
    assert "teach the assistant to understand patients better: yes." in shown.text
    assert "Photos: kept for the care team" in shown.text

    await _press(telegram, chat_id, "bot:improve_no", shown)
    assert _consent(assistant, patient_id) is False
    _set(assistant, patient_id, photo_consent=False)
    shown = await _privacy(telegram, chat_id)
    assert "understand patients better: no." in shown.text
    assert "Photos: not kept" in shown.text


@pytest.mark.asyncio
async def test_privacy_and_its_buttons_in_a_chat_without_a_patient(assistant, telegram, bot):
    chat_id = new_chat_id()
    telegram.push_command(chat_id, "/help")
    (help_text,) = await telegram.await_messages(chat_id, 1)
    assert "/privacy" in help_text.text
    shown = await _privacy(telegram, chat_id)
    assert "isn't connected to a patient record" in shown.text and shown.reply_markup is None
    answer = await _press(telegram, chat_id, "bot:improve_yes", help_text)
    assert answer == shown.text
    with db.session_scope(assistant.database_url) as session:
        assert repository.find_patient_by_sender(session, sender_for_chat(chat_id)) is None


@pytest.mark.asyncio
async def test_privacy_is_in_the_command_menu(assistant, telegram, bot):
    menu = telegram.calls_to("setMyCommands")[-1].params["commands"]
    assert "privacy" in [command["command"] for command in menu]


# --- the authors' inbox ----------------------------------------------------------

@pytest.mark.asyncio
async def test_only_a_consenting_patients_fallback_reaches_the_inbox_and_no_takes_it_out(
        assistant, telegram, bot, work, caplog):
    caplog.set_level(logging.DEBUG)
    parsed = requests.post(f"{assistant.rasa_url}/model/parse", json={"text": UNCLEAR},
                           timeout=30).json()
    assert parsed["intent"]["name"] == "nlu_fallback", "pick a message this model falls back on"
    yes_id, yes_chat = await enrol(telegram, assistant, treated_hours_ago(3))
    no_id, no_chat = await enrol(telegram, assistant, treated_hours_ago(3))
    silent_id, silent_chat = await enrol(telegram, assistant, treated_hours_ago(3))
    await _press(telegram, yes_chat, "bot:improve_yes", telegram.sent_messages(yes_chat)[0])
    await _press(telegram, no_chat, "bot:improve_no", telegram.sent_messages(no_chat)[0])
    before = set(_inbox_patients(assistant))

    for chat_id, replies in ((yes_chat, 4), (no_chat, 4), (silent_chat, 3)):
        telegram.push_message(chat_id, UNCLEAR)
        await telegram.await_messages(chat_id, replies, timeout=20)   # answered all the same
    kept = [p for p in _inbox_patients(assistant) if p not in before]
    assert kept == [yes_id]
    assert any(t.startswith("I'm worried - <name>") and t.endswith("<phone>")
               for t in _inbox_texts(assistant))
    assert not any("Okonjo" in t for t in _inbox_texts(assistant))

    shown = await _privacy(telegram, yes_chat)
    declined = await _press(telegram, yes_chat, "bot:improve_no", shown)
    assert "any set aside for it have been deleted" in declined
    assert yes_id not in _inbox_patients(assistant)
    assert _consent(assistant, yes_id) is False
    logs = caplog.text + "".join(p.read_text(errors="replace")
                                 for p in (work / "log").glob("*"))
    assert "Okonjo" not in logs and "worried" not in logs


# --- tampering --------------------------------------------------------------------

@pytest.mark.asyncio
async def test_tampered_improvement_buttons_are_refused(assistant, telegram, bot):
    patient_id, chat_id = await enrol(telegram, assistant, treated_hours_ago(3))
    consent = telegram.sent_messages(chat_id)[0]
    for data in ("bot:improve_yes_please", "bot:improve", "bot:improve_YES", "bot:improve_no "):
        telegram.push_callback(chat_id, data, consent.message_id)
    await telegram.await_call("answerCallbackQuery", count=4)
    answers = telegram.calls_to("answerCallbackQuery")
    assert len(answers) == 4 and all("isn't active" in a.params.get("text", "") for a in answers)
    assert len(telegram.sent_messages(chat_id)) == 2
    assert _consent(assistant, patient_id) is None
    assert telegram.message(chat_id, consent.message_id).get("reply_markup")  # still there
