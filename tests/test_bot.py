"""The Telegram bot end to end: the real python-telegram-bot over real HTTP to
the fake Telegram server, the real Rasa server and action server, a real
SQLite database. Check-ins fire through APScheduler; the bot's clock is one
the test moves."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import pytest_asyncio
from sqlalchemy import func, select, text

from aftercare.services import MODEL_DIR
from aftercare.store import db, repository
from aftercare.store.models import (
    CheckinDelivery, Erasure, Escalation, Message, Patient, Photo, SymptomReport,
)
from bot.checkin_service import job_id
from bot.context import sender_for_chat
from tests.bot_harness import (
    add_patient, checkins, delivery_status, enrol, find_delivery, fire_now, free_port, job_ids,
    new_chat_id, planned_checkin, running_assistant, running_bot, treated_hours_ago, wait_until,
)
from tests.conftest import LONDON

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not (MODEL_DIR / "aftercare.tar.gz").exists(),
                                 reason="no trained model: run `make model` first")]


@pytest.fixture(scope="module")
def assistant(tmp_path_factory):
    """The real Rasa server and action server on a database of this module's own."""
    work = tmp_path_factory.mktemp("bot")
    with running_assistant(work) as settings:
        yield settings


@pytest_asyncio.fixture
async def bot(assistant, telegram, clock):
    async with running_bot(assistant, telegram, clock) as application:
        yield application


def _count(settings, model, *conditions) -> int:
    with db.session_scope(settings.database_url) as session:
        return session.execute(select(func.count()).select_from(model).where(*conditions)
                               ).scalar_one()


def _patient(settings, patient_id: int) -> Patient:
    with db.session_scope(settings.database_url) as session:
        return repository.get_patient(session, patient_id)


# --- enrolment ---------------------------------------------------------------

@pytest.mark.asyncio
async def test_deep_link_enrols_the_patient_and_schedules_checkins(assistant, telegram, bot):
    patient_id, chat_id = await enrol(telegram, assistant, treated_hours_ago(2))
    consent, welcome = telegram.sent_messages(chat_id)[:2]
    assert "/forget" in consent.text and "/stop" in consent.text
    assert welcome.text  # the assistant's first message of the recovery
    patient = _patient(assistant, patient_id)
    assert patient.sender_id == sender_for_chat(chat_id) and patient.enrolled_at is not None
    treatment = _current_treatment_id(assistant, patient_id)
    assert job_id(treatment, "day1_morning") in job_ids(assistant, patient_id)


def _current_treatment_id(settings, patient_id: int) -> int:
    with db.session_scope(settings.database_url) as session:
        return repository.current_treatment(repository.get_patient(session, patient_id)).id


@pytest.mark.asyncio
async def test_used_unknown_and_malformed_codes_change_nothing(assistant, telegram, bot):
    patient_id, code = add_patient(assistant, treated_hours_ago(2))
    first, second = new_chat_id(), new_chat_id()
    telegram.push_command(first, f"/start {code}")
    await telegram.await_messages(first, 2, timeout=20)
    telegram.push_command(second, f"/start {code}")
    (used,) = await telegram.await_messages(second, 1)
    telegram.push_command(second, "/start " + "A" * 22)
    telegram.push_command(second, "/start ../../etc/passwd")
    replies = await telegram.await_messages(second, 3)
    assert "used" in used.text.lower()
    assert replies[1].text == replies[2].text != used.text
    assert _patient(assistant, patient_id).sender_id == sender_for_chat(first)


@pytest.mark.asyncio
async def test_without_a_code_ask_the_clinic_but_general_questions_work(assistant, telegram, bot):
    chat_id = new_chat_id()
    telegram.push_command(chat_id, "/start")
    (no_code,) = await telegram.await_messages(chat_id, 1)
    assert "link" in no_code.text.lower()
    telegram.push_message(chat_id, "how long until I see results?")
    replies = await telegram.await_messages(chat_id, 2)
    assert replies[1].text and replies[1].text != no_code.text


# --- conversation --------------------------------------------------------------

@pytest.mark.asyncio
async def test_question_goes_through_rasa_and_both_sides_are_logged(assistant, telegram, bot):
    patient_id, chat_id = await enrol(telegram, assistant, treated_hours_ago(3))
    telegram.push_message(chat_id, "when can I wear makeup again?")
    reply = (await telegram.await_messages(chat_id, 3))[2]
    assert reply.text.startswith("Not yet")
    sender = sender_for_chat(chat_id)
    assert _count(assistant, Message, Message.sender_id == sender, Message.direction == "in",
                  Message.status == "answered") == 1
    await wait_until(lambda: _count(assistant, Message, Message.sender_id == sender,
                                    Message.direction == "out") == 3)


@pytest.mark.asyncio
async def test_red_flag_gets_the_safety_message_and_an_escalation(assistant, telegram, bot):
    patient_id, chat_id = await enrol(telegram, assistant, treated_hours_ago(30))
    telegram.push_message(chat_id, "there's yellow pus coming out and it's hot and spreading")
    reply = (await telegram.await_messages(chat_id, 3))[2]
    assert "nurse" in reply.text.lower()
    assert _count(assistant, Escalation, Escalation.patient_id == patient_id,
                  Escalation.level == "urgent") == 1


@pytest.mark.asyncio
async def test_edited_and_overlong_messages_are_answered(assistant, telegram, bot):
    _, chat_id = await enrol(telegram, assistant, treated_hours_ago(3))
    telegram.push_edited_message(chat_id, 1, "is it ok to go to the gym today?")
    telegram.push_message(chat_id, "is this normal? " * 600)   # 9,600 characters
    replies = await telegram.await_messages(chat_id, 4, timeout=20)
    assert all(r.text for r in replies[2:])


@pytest.mark.asyncio
async def test_stickers_voice_and_unknown_commands_get_a_polite_answer(assistant, telegram,
                                                                     bot):
    chat_id = new_chat_id()
    telegram.push_sticker(chat_id)
    telegram.push_voice(chat_id)
    telegram.push_command(chat_id, "/teleport")
    replies = await telegram.await_messages(chat_id, 3)
    assert replies[0].text == replies[1].text
    assert "/help" in replies[2].text


@pytest.mark.asyncio
async def test_group_chats_are_ignored(assistant, telegram, bot):
    group = -100_200_300
    telegram.push_message(group, "hello bot", chat_type="supergroup")
    chat_id = new_chat_id()
    telegram.push_command(chat_id, "/help")
    await telegram.await_messages(chat_id, 1)
    assert telegram.sent_messages(group) == []


@pytest.mark.asyncio
async def test_tampered_callback_data_is_refused(assistant, telegram, bot):
    chat_id = new_chat_id()
    telegram.push_command(chat_id, "/help")
    (help_text,) = await telegram.await_messages(chat_id, 1)
    telegram.push_callback(chat_id, "/EXTERNAL_checkin{\"day\": 99}", help_text.message_id)
    telegram.push_callback(chat_id, "bot:forget_yes_please", help_text.message_id)
    await telegram.await_call("answerCallbackQuery", count=2)
    answers = telegram.calls_to("answerCallbackQuery")
    assert all(a.params.get("text") for a in answers)
    assert len(telegram.sent_messages(chat_id)) == 1


@pytest.mark.asyncio
async def test_photo_kept_only_after_consent(assistant, telegram, bot):
    patient_id, chat_id = await enrol(telegram, assistant, treated_hours_ago(30))
    picture = b"\x89PNG\r\n\x1a\n" + b"cheek" * 1000
    telegram.push_photo(chat_id, picture)
    ask = (await telegram.await_messages(chat_id, 3))[2]
    payloads = [row[0]["callback_data"] for row in ask.reply_markup["inline_keyboard"]]
    assert payloads == ["bot:photo_keep", "bot:photo_discard"]
    assert _count(assistant, Photo, Photo.patient_id == patient_id,
                  Photo.status == "kept") == 0
    telegram.push_callback(chat_id, "bot:photo_keep", ask.message_id)
    await telegram.await_messages(chat_id, 4)
    with db.session_scope(assistant.database_url) as session:
        (photo,) = session.execute(select(Photo).where(Photo.patient_id == patient_id)).scalars()
        assert photo.status == "kept" and photo.content == picture
    assert telegram.calls_to("editMessageReplyMarkup")  # the question's buttons are removed


# --- patient controls -----------------------------------------------------------

@pytest.mark.asyncio
async def test_stop_pauses_checkins_and_resume_restarts_them(assistant, telegram, bot, clock):
    patient_id, chat_id = await enrol(telegram, assistant, treated_hours_ago(2))
    telegram.push_command(chat_id, "/stop")
    stopped = (await telegram.await_messages(chat_id, 3))[2]
    assert "/resume" in stopped.text
    assert _patient(assistant, patient_id).checkins_paused_at is not None
    treatment = _current_treatment_id(assistant, patient_id)
    due = planned_checkin(assistant, patient_id, "day1_morning")
    clock.set(due.due_at)
    fire_now(bot, job_id(treatment, "day1_morning"))
    await wait_until(lambda: delivery_status(assistant, patient_id, "day1_morning") == "skipped")
    assert len(telegram.sent_messages(chat_id)) == 3
    telegram.push_command(chat_id, "/resume")
    await telegram.await_messages(chat_id, 4)
    assert _patient(assistant, patient_id).checkins_paused_at is None



@pytest.mark.asyncio
async def test_forget_erases_everything_after_confirmation(assistant, telegram, bot):
    patient_id, chat_id = await enrol(telegram, assistant, treated_hours_ago(3))
    telegram.push_message(chat_id, "is redness normal?")
    await telegram.await_messages(chat_id, 3)
    telegram.push_command(chat_id, "/forget")
    confirm = (await telegram.await_messages(chat_id, 4))[3]
    assert _patient(assistant, patient_id) is not None   # nothing happens before the yes
    telegram.push_callback(chat_id, "bot:forget_yes", confirm.message_id)
    await telegram.await_messages(chat_id, 5)
    sender = sender_for_chat(chat_id)
    assert _patient(assistant, patient_id) is None
    assert _count(assistant, Message, Message.sender_id == sender) == 0
    assert _count(assistant, Erasure, Erasure.former_patient_id == patient_id) == 1
    assert job_ids(assistant, patient_id) == set()
    assert not any(j for j in job_ids(assistant) if j.startswith("checkin:")
                   and _orphan(assistant, j))
    with db.make_engine(assistant.database_url).connect() as connection:
        events = connection.execute(text("SELECT count(*) FROM events WHERE sender_id = :s"),
                                    {"s": sender}).scalar_one()
    assert events == 0


def _orphan(settings, job: str) -> bool:
    with db.make_engine(settings.database_url).connect() as connection:
        return connection.execute(text("SELECT count(*) FROM treatments WHERE id = :t"),
                                  {"t": int(job.split(":")[1])}).scalar_one() == 0


# --- check-ins -------------------------------------------------------------------

@pytest.mark.asyncio
async def test_checkin_fires_and_the_answer_is_understood_in_context(assistant, telegram, bot,
                                                                   clock):
    patient_id, chat_id = await enrol(telegram, assistant, treated_hours_ago(20))
    treatment = _current_treatment_id(assistant, patient_id)
    due = planned_checkin(assistant, patient_id, "day2_morning")
    clock.set(due.due_at + timedelta(minutes=1))
    fire_now(bot, job_id(treatment, "day2_morning"))
    checkin = (await telegram.await_messages(chat_id, 3, timeout=20))[2]
    assert checkin.reply_markup and checkin.reply_markup["inline_keyboard"]
    await wait_until(lambda: delivery_status(assistant, patient_id, "day2_morning") == "sent")
    telegram.push_message(chat_id, "still a bit red but fine")
    await telegram.await_messages(chat_id, 4)
    await wait_until(lambda: _count(assistant, SymptomReport,
                                    SymptomReport.patient_id == patient_id,
                                    SymptomReport.checkin_id == "day2_morning") == 1)


@pytest.mark.asyncio
async def test_a_job_that_runs_twice_sends_once(assistant, telegram, bot, clock):
    patient_id, chat_id = await enrol(telegram, assistant, treated_hours_ago(20))
    treatment = _current_treatment_id(assistant, patient_id)
    clock.set(planned_checkin(assistant, patient_id, "day2_morning").due_at)
    service = checkins(bot)
    await service.on_due(treatment, "day2_morning")
    await service.on_due(treatment, "day2_morning")
    await telegram.await_messages(chat_id, 3, timeout=20)
    await wait_until(lambda: delivery_status(assistant, patient_id, "day2_morning") == "sent")
    await service.on_due(treatment, "day2_morning")
    await service.reconcile()
    assert len(telegram.sent_messages(chat_id)) == 3
    assert _count(assistant, CheckinDelivery, CheckinDelivery.patient_id == patient_id,
                  CheckinDelivery.checkin_id == "day2_morning") == 1


@pytest.mark.asyncio
async def test_restart_between_scheduling_and_firing_keeps_the_checkin(assistant, telegram,
                                                                       clock):
    async with running_bot(assistant, telegram, clock):
        patient_id, chat_id = await enrol(telegram, assistant, treated_hours_ago(20))
    treatment = _current_treatment_id(assistant, patient_id)
    assert job_id(treatment, "day2_morning") in job_ids(assistant, patient_id)
    async with running_bot(assistant, telegram, clock) as again:
        assert job_id(treatment, "day2_morning") in job_ids(assistant, patient_id)
        clock.set(planned_checkin(assistant, patient_id, "day2_morning").due_at)
        fire_now(again, job_id(treatment, "day2_morning"))
        await telegram.await_messages(chat_id, 3, timeout=20)
        await wait_until(lambda: delivery_status(assistant, patient_id, "day2_morning")
                         == "sent")
    assert len(telegram.sent_messages(chat_id)) == 3


@pytest.mark.asyncio
async def test_missed_while_down_is_sent_once_within_grace_never_piled_up(assistant, telegram,
                                                                          clock):
    async with running_bot(assistant, telegram, clock):
        fresh_id, fresh_chat = await enrol(telegram, assistant, treated_hours_ago(20))
        late_id, late_chat = await enrol(telegram, assistant, treated_hours_ago(20))
    _move_treatment(assistant, late_id, days=-1)
    # The bot was down at the due time and comes back two hours later (grace: 6 h).
    clock.set(planned_checkin(assistant, fresh_id, "day2_morning").due_at + timedelta(hours=2))
    async with running_bot(assistant, telegram, clock):
        await telegram.await_messages(fresh_chat, 3, timeout=20)
        await telegram.await_messages(late_chat, 3, timeout=20)
        await wait_until(lambda: delivery_status(assistant, fresh_id, "day2_morning") == "sent")
        await wait_until(lambda: delivery_status(assistant, late_id, "day3_morning") == "sent")
    # The patient a day further on gets the one check-in still relevant, not a pile.
    assert delivery_status(assistant, late_id, "day2_morning") == "skipped"
    assert len(telegram.sent_messages(late_chat)) == 3
    assert len(telegram.sent_messages(fresh_chat)) == 3


def _move_treatment(settings, patient_id: int, days: int) -> None:
    with db.session_scope(settings.database_url) as session:
        treatment = repository.current_treatment(repository.get_patient(session, patient_id))
        treatment.treated_at = treatment.treated_at + timedelta(days=days)


@pytest.mark.asyncio
async def test_checkin_in_quiet_hours_waits_for_their_end(assistant, telegram, clock):
    async with running_bot(assistant, telegram, clock):
        patient_id, chat_id = await enrol(telegram, assistant, treated_hours_ago(20))
    due = planned_checkin(assistant, patient_id, "day7")      # grace 24 h
    local = due.due_at.astimezone(LONDON)
    clock.set(local.replace(hour=22, minute=0))         # back up at 22:00: quiet
    async with running_bot(assistant, telegram, clock) as application:
        await wait_until(lambda: find_delivery(assistant, patient_id, "day7"))
        await checkins(application).reconcile()
        assert len(telegram.sent_messages(chat_id)) == 2
        clock.set((local + timedelta(days=1)).replace(hour=8, minute=1))
        checkins(application).wake()
        await telegram.await_messages(chat_id, 3, timeout=20)


@pytest.mark.asyncio
async def test_a_corrected_date_or_a_new_treatment_moves_the_checkins(assistant, telegram, bot):
    patient_id, _ = await enrol(telegram, assistant, treated_hours_ago(2))
    first = _current_treatment_id(assistant, patient_id)
    service = checkins(bot)
    before = service.scheduler.get_job(job_id(first, "day7")).next_run_time
    _move_treatment(assistant, patient_id, days=-1)     # the clinic corrects the date
    await service.reconcile()
    moved = service.scheduler.get_job(job_id(first, "day7")).next_run_time
    assert moved == planned_checkin(assistant, patient_id, "day7").due_at
    assert before - moved == timedelta(days=1)

    with db.session_scope(assistant.database_url) as session:  # the next session
        repository.add_treatment(session, repository.get_patient(session, patient_id),
                                 datetime.now(timezone.utc))
    second = _current_treatment_id(assistant, patient_id)
    await service.reconcile()
    jobs = job_ids(assistant, patient_id)
    assert job_id(second, "day7") in jobs
    assert not [job for job in jobs if job.startswith(f"checkin:{first}:")]


@pytest.mark.asyncio
async def test_blocked_bot_marks_the_patient_unreachable_and_stops_checkins(assistant,
                                                                          telegram, bot, clock):
    patient_id, chat_id = await enrol(telegram, assistant, treated_hours_ago(20))
    treatment = _current_treatment_id(assistant, patient_id)
    telegram.block_chat(chat_id)
    clock.set(planned_checkin(assistant, patient_id, "day2_morning").due_at)
    fire_now(bot, job_id(treatment, "day2_morning"))
    await wait_until(lambda: delivery_status(assistant, patient_id, "day2_morning") == "failed")
    await wait_until(lambda: job_ids(assistant, patient_id) == set())
    assert _patient(assistant, patient_id).unreachable_at is not None


@pytest.mark.asyncio
async def test_retry_after_is_honoured(assistant, telegram, bot):
    chat_id = new_chat_id()
    telegram.fail_next("sendMessage", "retry_after", retry_after=1, chat_id=chat_id)
    telegram.push_command(chat_id, "/help")
    (reply,) = await telegram.await_messages(chat_id, 1, timeout=10)
    refused = [c for c in telegram.calls_to("sendMessage") if c.params.get("chat_id") == chat_id]
    assert len(refused) == 2 and refused[1].time - refused[0].time >= 0.9


# --- when the assistant is down ---------------------------------------------------

@pytest.mark.asyncio
async def test_assistant_down_patient_gets_the_clinic_number_and_the_message_is_kept(
        assistant, telegram, clock):
    async with running_bot(assistant, telegram, clock) as application:
        patient_id, chat_id = await enrol(telegram, assistant, treated_hours_ago(30))
    async with running_bot(assistant, telegram, clock, rasa_url="http://127.0.0.1:9"):
        telegram.push_message(chat_id, "can I use retinol tonight?")
        trouble = (await telegram.await_messages(chat_id, 3))[2]
        telegram.push_message(chat_id, "my lips and tongue are swelling and it's hard to breathe")
        safety = (await telegram.await_messages(chat_id, 4))[3]
    assert "+44 20 7946 0321" in trouble.text
    assert "999" in safety.text
    sender = sender_for_chat(chat_id)
    assert _count(assistant, Message, Message.sender_id == sender,
                  Message.status == "unanswered") == 2
    assert _count(assistant, Escalation, Escalation.patient_id == patient_id,
                  Escalation.level == "emergency") == 1


@pytest.mark.asyncio
async def test_a_flood_is_kept_and_answered_with_one_notice(assistant, telegram, bot):
    _, chat_id = await enrol(telegram, assistant, treated_hours_ago(3))
    for index in range(14):
        telegram.push_message(chat_id, f"question number {index} about my skin")
    await wait_until(lambda: _count(assistant, Message, Message.sender_id
                                    == sender_for_chat(chat_id), Message.direction == "in") == 14)
    await wait_until(lambda: _count(assistant, Message, Message.sender_id
                                    == sender_for_chat(chat_id), Message.status == "held") >= 5)
    texts = [m.text for m in telegram.sent_messages(chat_id)]
    assert sum("lot of messages" in t.lower() or "kept" in t.lower() for t in texts) >= 1


@pytest.mark.asyncio
async def test_locked_database_gets_a_clear_answer_and_no_crash(assistant, telegram, bot):
    chat_id = new_chat_id()
    engine = db.make_engine(assistant.database_url)
    with engine.connect() as locker:
        locker.exec_driver_sql("BEGIN EXCLUSIVE")
        telegram.push_message(chat_id, "hello?")
        (reply,) = await telegram.await_messages(chat_id, 1, timeout=20)
        locker.exec_driver_sql("ROLLBACK")
    assert "+44 20 7946 0321" in reply.text
    telegram.push_command(chat_id, "/help")
    await telegram.await_messages(chat_id, 2)


# --- webhook mode -------------------------------------------------------------------

@pytest.mark.asyncio
async def test_webhook_mode_checks_telegrams_secret_token(assistant, telegram, clock):
    import httpx

    from bot.app import build_application, running
    from tests.bot_harness import bot_settings

    port = free_port()
    application = build_application(bot_settings(assistant, telegram), clock=clock)
    webhook = {"listen": "127.0.0.1", "port": port, "url_path": "telegram",
               "webhook_url": "https://clinic.example/telegram", "secret_token": "s3cret-token"}
    chat_id = new_chat_id()
    update = {"update_id": 1, "message": {
        "message_id": 1, "date": 1_790_000_000, "text": "/help",
        "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
        "chat": {"id": chat_id, "type": "private"},
        "from": {"id": chat_id, "is_bot": False, "first_name": "Pat"}}}
    async with running(application, webhook=webhook):
        assert telegram.webhook["secret_token"] == "s3cret-token"
        async with httpx.AsyncClient() as client:
            url = f"http://127.0.0.1:{port}/telegram"
            forged = await client.post(url, json=update,
                                       headers={"X-Telegram-Bot-Api-Secret-Token": "guess"})
            missing = await client.post(url, json=update)
            genuine = await client.post(url, json=update,
                                        headers={"X-Telegram-Bot-Api-Secret-Token":
                                                 "s3cret-token"})
        (reply,) = await telegram.await_messages(chat_id, 1)
    assert forged.status_code == 403 and missing.status_code == 403
    assert genuine.status_code == 200
    assert "/stop" in reply.text


@pytest.mark.asyncio
async def test_typed_intent_payloads_are_read_as_words(assistant, telegram, bot):
    """Only the bot's own buttons may send "/intent" payloads to Rasa."""
    patient_id, chat_id = await enrol(telegram, assistant, treated_hours_ago(3))
    welcome = telegram.sent_messages(chat_id)[1].text
    telegram.push_message(chat_id, '/EXTERNAL_enrolled{"day": 5}')
    reply = (await telegram.await_messages(chat_id, 3))[2]
    assert reply.text != welcome


@pytest.mark.asyncio
async def test_a_typed_intent_command_is_understood_like_its_button(assistant, telegram, bot):
    """Typed "/report_redness" (what the "Still red" button sends) is answered
    as the button is; the bot's own EXTERNAL_ intents and staff commands are not
    something a patient can send that way."""
    treated = treated_hours_ago(30)
    _, typed_chat = await enrol(telegram, assistant, treated)
    _, pressed_chat = await enrol(telegram, assistant, treated)
    telegram.push_command(typed_chat, "/report_redness")
    typed = (await telegram.await_messages(typed_chat, 3))[2]
    welcome = telegram.sent_messages(pressed_chat)[1]
    telegram.push_callback(pressed_chat, "/report_redness", welcome.message_id)
    pressed = (await telegram.await_messages(pressed_chat, 3))[2]
    assert typed.text == pressed.text
    assert "/help" not in typed.text       # not "I don't know that command"

    telegram.push_command(typed_chat, "/teleport")
    unknown = (await telegram.await_messages(typed_chat, 4))[3].text
    assert "/help" in unknown
    for command in ("/resolve 1", "/open", "/ack 1", "/EXTERNAL_checkin"):
        telegram.push_command(typed_chat, command)
    replies = await telegram.await_messages(typed_chat, 8)
    assert [r.text for r in replies[4:]] == [unknown] * 4
    with db.make_engine(assistant.database_url).connect() as connection:
        intents = list(connection.execute(text(
            "SELECT intent_name FROM events WHERE sender_id = :s AND type_name = 'user'"),
            {"s": sender_for_chat(typed_chat)}).scalars())
    assert "report_redness" in intents and "EXTERNAL_checkin" not in intents


@pytest.mark.asyncio
async def test_messages_to_one_chat_keep_telegrams_pace(assistant, telegram, bot):
    telegram.enforce_rate_limits(global_per_second=30, per_chat_per_second=1)
    _, chat_id = await enrol(telegram, assistant, treated_hours_ago(3))
    consent, welcome = telegram.sent_messages(chat_id)[:2]
    assert welcome.time - consent.time >= 0.9
    assert telegram.rate_limit_hits == 0
