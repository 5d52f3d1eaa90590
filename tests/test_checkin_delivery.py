"""Check-ins say what really happened, end to end: the real bot over real HTTP
to the fake Telegram server, the real Rasa and action servers, a real SQLite
database, the bot's clock one the test moves.

The clinic's protocol here has one check-in more than the shipped one,
`day5_extra`, which domain.yml has no text of its own for: it goes out as the
generic check-in. A delivery row reads `sent` only once Telegram accepted the
message; a patient who had blocked the bot and writes again is reachable."""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
import yaml
from aiohttp import web

from aftercare.services import MODEL_DIR
from aftercare.store import db, repository
from bot.checkin_service import job_id
from bot.responses import render
from bot.sending import NETWORK_ATTEMPTS
from tests.bot_harness import (
    checkins, delivery_status, enrol, find_delivery, fire_now, free_port, job_ids,
    planned_checkin, running_assistant, running_bot, treated_hours_ago, wait_until,
)
from tests.conftest import PROTOCOL_PATH

pytestmark = [pytest.mark.e2e, pytest.mark.all_databases,
              pytest.mark.skipif(not (MODEL_DIR / "aftercare.tar.gz").exists(),
                                 reason="no trained model: run `make model` first")]

EXTRA = "day5_extra"
CLINIC_PHONE = "+44 20 7946 0321"


@pytest.fixture(scope="module")
def assistant(tmp_path_factory, module_database_url):
    """Rasa and the action server, with the bot, on a protocol that has `day5_extra`,
    on a database of this module's own (SQLite, then PostgreSQL)."""
    work = tmp_path_factory.mktemp("checkin-delivery")
    protocol = yaml.safe_load(PROTOCOL_PATH.read_text())
    protocol["checkins"].append({"id": EXTRA, "day": 5, "time": "10:00", "grace_hours": 6})
    path = work / "protocol.yml"
    path.write_text(yaml.safe_dump(protocol))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AFTERCARE_PROTOCOL", str(path))   # the action server reads it too
        with running_assistant(work, module_database_url) as settings:
            assert settings.protocol_path == path
            yield settings


def _treatment_id(settings, patient_id: int) -> int:
    with db.session_scope(settings.database_url) as session:
        return repository.current_treatment(repository.get_patient(session, patient_id)).id


def _unreachable(settings, patient_id: int) -> bool:
    with db.session_scope(settings.database_url) as session:
        return repository.get_patient(session, patient_id).unreachable_at is not None


def _generic_checkin() -> str:
    return render("utter_checkin_generic", {"clinic_name": "Riverside Skin Clinic",
                                            "clinic_phone": CLINIC_PHONE}).text


async def _fire(application, settings, clock, patient_id: int, checkin_id: str,
                late: timedelta = timedelta(minutes=1)) -> None:
    clock.set(planned_checkin(settings, patient_id, checkin_id).due_at + late)
    fire_now(application, job_id(_treatment_id(settings, patient_id), checkin_id))


async def _block(application, settings, telegram, clock, patient_id: int, chat_id: int) -> None:
    """The patient blocks the bot; the day-2 check-in finds out."""
    telegram.block_chat(chat_id)
    await _fire(application, settings, clock, patient_id, "day2_morning")
    await wait_until(lambda: delivery_status(settings, patient_id, "day2_morning") == "failed")
    await wait_until(lambda: job_ids(settings, patient_id) == set())
    assert _unreachable(settings, patient_id)
    telegram.unblock_chat(chat_id)


# --- a check-in with no text of its own (issue 10, item 4) ----------------------

@pytest.mark.asyncio
async def test_a_checkin_without_its_own_text_reaches_the_patient_as_the_generic_one(
        assistant, telegram, clock):
    async with running_bot(assistant, telegram, clock) as application:
        patient_id, chat_id = await enrol(telegram, assistant, treated_hours_ago(20))
        await _fire(application, assistant, clock, patient_id, EXTRA)
        await wait_until(
            lambda: delivery_status(assistant, patient_id, EXTRA) in ("sent", "failed"))
        # By the time the row reads `sent`, the fake Telegram server has the message.
        assert delivery_status(assistant, patient_id, EXTRA) == "sent"
        checkin = telegram.sent_messages(chat_id)[2]
    assert checkin.text == _generic_checkin()
    assert CLINIC_PHONE in checkin.text and "skin" in checkin.text
    payloads = [row[0]["callback_data"] for row in checkin.reply_markup["inline_keyboard"]]
    assert payloads == ["/report_feeling_fine", "/ask_is_normal", "/ask_human"]


@pytest.mark.asyncio
async def test_a_checkin_telegram_refuses_is_failed_not_sent(assistant, telegram, clock):
    async with running_bot(assistant, telegram, clock) as application:
        patient_id, chat_id = await enrol(telegram, assistant, treated_hours_ago(20))
        telegram.fail_next("sendMessage", "server_error", times=NETWORK_ATTEMPTS,
                           chat_id=chat_id)
        await _fire(application, assistant, clock, patient_id, EXTRA)
        await wait_until(lambda: delivery_status(assistant, patient_id, EXTRA) == "failed",
                         timeout=30)
    assert len(telegram.sent_messages(chat_id)) == 2       # the consent note and the welcome
    refused = [c for c in telegram.calls_to("sendMessage") if c.params.get("chat_id") == chat_id]
    assert len(refused) == 2 + NETWORK_ATTEMPTS
    assert find_delivery(assistant, patient_id, EXTRA).detail == "Telegram: NetworkError"


@asynccontextmanager
async def _silent_rasa():
    """A Rasa server that answers every trigger with no message at all."""
    async def trigger(request: web.Request) -> web.Response:
        return web.json_response({"messages": []})

    app = web.Application()
    app.router.add_post("/conversations/{sender}/trigger_intent", trigger)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.asyncio
async def test_a_checkin_the_assistant_gives_no_text_for_is_failed_not_sent(
        assistant, telegram, clock):
    async with running_bot(assistant, telegram, clock):
        patient_id, chat_id = await enrol(telegram, assistant, treated_hours_ago(20))
    async with _silent_rasa() as rasa_url:
        async with running_bot(assistant, telegram, clock, rasa_url=rasa_url) as application:
            await _fire(application, assistant, clock, patient_id, EXTRA)
            await wait_until(lambda: delivery_status(assistant, patient_id, EXTRA) == "failed")
    assert len(telegram.sent_messages(chat_id)) == 2
    assert find_delivery(assistant, patient_id, EXTRA).detail == \
        f"the assistant gave no text for check-in {EXTRA}"


# --- reachable again (issue 10, item 5) ------------------------------------------

@pytest.mark.asyncio
async def test_a_patient_who_unblocks_and_writes_is_reachable_and_gets_future_checkins(
        assistant, telegram, clock):
    async with running_bot(assistant, telegram, clock) as application:
        patient_id, chat_id = await enrol(telegram, assistant, treated_hours_ago(20))
        await _block(application, assistant, telegram, clock, patient_id, chat_id)
        # Day 3, an hour after its check-in (still within its grace): they write.
        clock.set(planned_checkin(assistant, patient_id, "day3_morning").due_at
                  + timedelta(hours=1))
        telegram.push_message(chat_id, "hi, is it normal that my skin feels tight?")
        await telegram.await_messages(chat_id, 3, timeout=20)
        assert not _unreachable(assistant, patient_id)
        treatment = _treatment_id(assistant, patient_id)
        jobs = job_ids(assistant, patient_id)
        assert {job_id(treatment, EXTRA), job_id(treatment, "day7")} <= jobs
        # The check-in missed while they had blocked the bot is not sent late.
        assert delivery_status(assistant, patient_id, "day3_morning") == "skipped"
        assert job_id(treatment, "day3_morning") not in jobs
        assert find_delivery(assistant, patient_id, "day3_morning").detail == \
            "missed while the patient had blocked the bot"
        # The next one reaches them.
        await _fire(application, assistant, clock, patient_id, EXTRA)
        checkin = (await telegram.await_messages(chat_id, 4, timeout=20))[3]
        await wait_until(lambda: delivery_status(assistant, patient_id, EXTRA) == "sent")
        await asyncio.sleep(0.5)
        assert len(telegram.sent_messages(chat_id)) == 4
    assert checkin.text == _generic_checkin()


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["button", "photo", "command"])
async def test_any_message_from_a_patient_who_had_blocked_the_bot_makes_them_reachable(
        assistant, telegram, clock, kind):
    async with running_bot(assistant, telegram, clock) as application:
        patient_id, chat_id = await enrol(telegram, assistant, treated_hours_ago(20))
        welcome = telegram.sent_messages(chat_id)[1]
        await _block(application, assistant, telegram, clock, patient_id, chat_id)
        if kind == "button":
            telegram.push_callback(chat_id, "/report_feeling_fine", welcome.message_id)
        elif kind == "photo":
            telegram.push_photo(chat_id, b"\x89PNG\r\n\x1a\n" + b"cheek" * 100)
        else:
            telegram.push_command(chat_id, "/help")
        await telegram.await_messages(chat_id, 3, timeout=20)
        await wait_until(lambda: not _unreachable(assistant, patient_id))
        treatment = _treatment_id(assistant, patient_id)
        await wait_until(lambda: job_id(treatment, "day7") in job_ids(assistant, patient_id))
        await checkins(application).reconcile()    # a full pass keeps them
        assert job_id(treatment, "day7") in job_ids(assistant, patient_id)
