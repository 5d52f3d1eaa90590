"""The staff side in Telegram, end to end: the real bot over real HTTP to the
fake Telegram server, the real Rasa and action servers, a real SQLite
database. Red flags reach the staff group; staff acknowledge, reply and
resolve; the patient is handed to a person and back; reminders follow a clock
the test moves."""
from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from sqlalchemy import select

from aftercare.services import MODEL_DIR
from aftercare.staff import add_staff, disable_staff, link_telegram
from aftercare.store import alerts, db, escalations, repository
from aftercare.store.models import Escalation, Message, Photo, StaffReply
from bot.context import sender_for_chat
from bot.outgoing import MAX_MESSAGE_CHARS
from support.fake_telegram import FakeTelegramServer
from tests.bot_harness import (
    delivery_status, enrol, fire_now, free_port, job_ids, new_chat_id, running_assistant,
    running_bot, wait_until,
)

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not (MODEL_DIR / "aftercare.tar.gz").exists(),
                                 reason="no trained model: run `make model` first")]

STAFF_CHAT = -1009876543210
NURSE = 5550001            # a member of the staff group
LINKED = 5550002           # on the staff list (linked account), not in the group
STRANGER = 5550003         # neither
LONDON = ZoneInfo("Europe/London")
LONDON_TUESDAY_NOON = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)  # clinic open
URGENT_DAY3 = "there is yellow pus oozing from a spot on my cheek"
EMERGENCY = "my lips are really swollen and my throat feels tight"


@pytest.fixture(scope="module")
def assistant(tmp_path_factory):
    work = tmp_path_factory.mktemp("staff")
    with running_assistant(work) as settings:
        yield settings


@pytest.fixture
def telegram():
    with FakeTelegramServer(token="123456:TEST-token") as server:
        server.add_member(STAFF_CHAT, NURSE)
        yield server


@pytest_asyncio.fixture
async def bot(assistant, telegram, clock):
    async with running_bot(assistant, telegram, clock,
                           telegram_staff_chat_id=STAFF_CHAT) as application:
        yield application


def _relay(application):
    return application.bot_data["staff_relay"]


def _escalation(settings, escalation_id: int) -> Escalation:
    with db.session_scope(settings.database_url) as session:
        escalation = escalations.get_escalation(session, escalation_id)
        _ = escalation.events  # loaded before the session closes
        return escalation


def _latest_escalation(settings, chat_id: int) -> Escalation:
    with db.session_scope(settings.database_url) as session:
        return session.execute(select(Escalation).where(
            Escalation.sender_id == sender_for_chat(chat_id)).order_by(Escalation.id.desc())
        ).scalars().first()


async def _recorded(settings, message_id: int) -> None:
    """The bot has noted which escalation its staff-group post is about (a staff
    reply faster than that would not be routed yet)."""
    def noted() -> bool:
        with db.session_scope(settings.database_url) as session:
            return alerts.escalation_for_post(session, STAFF_CHAT, message_id) is not None
    await wait_until(noted)


def _treated(day: int) -> datetime:
    """10:00 London time `day` days ago: the patient is on that day of recovery
    whatever the hour the test runs at."""
    return datetime.combine(_london_today() - timedelta(days=day), time(10), tzinfo=LONDON)


def _london_today() -> date:
    return datetime.now(LONDON).date()


async def _handoff_notice(telegram, chat_id: int) -> None:
    """The patient has been told a person has it (which may come after the
    assistant's own reply to the message that raised the escalation)."""
    await wait_until(lambda: any("looking after you" in (m.text or "")
                                 for m in telegram.sent_messages(chat_id)), timeout=20)


def _staff_posts(telegram, after: int = 0):
    return telegram.sent_messages(STAFF_CHAT)[after:]


def _callback_answers(telegram) -> list:
    return [c.params.get("text") for c in telegram.calls_to("answerCallbackQuery")]


async def _answered_callbacks(telegram, count: int) -> list:
    await telegram.await_call("answerCallbackQuery", count=count)
    return _callback_answers(telegram)


async def _alert_for(telegram, escalation_id: int, timeout: float = 20):
    await wait_until(lambda: any(f"escalation #{escalation_id}" in (m.text or "")
                                 for m in _staff_posts(telegram)), timeout=timeout)
    return next(m for m in _staff_posts(telegram) if f"escalation #{escalation_id}" in m.text)


# --- the whole path ----------------------------------------------------------

@pytest.mark.asyncio
async def test_red_flag_reaches_staff_who_take_over_reply_and_hand_back(
        assistant, telegram, bot, caplog):
    caplog.set_level(logging.DEBUG, logger="bot")
    patient_id, chat_id = await enrol(telegram, assistant, _treated(3), name="Rosa Quill")
    before = len(telegram.sent_messages(chat_id))

    # 1. A red flag: the patient gets the safety message at once.
    telegram.push_message(chat_id, URGENT_DAY3)
    (safety,) = (await telegram.await_messages(chat_id, before + 1, timeout=30))[before:]
    assert "+44 20 7946 0321" in safety.text or "clinic" in safety.text.lower()
    escalation = _latest_escalation(assistant, chat_id)
    assert escalation.level == "urgent" and escalation.status == "open"

    # 2. The staff group gets the alert: level, name, day, words, reason, buttons.
    alert = await _alert_for(telegram, escalation.id)
    assert "URGENT" in alert.text and "Rosa Quill" in alert.text and "day 3" in alert.text
    assert URGENT_DAY3 in alert.text and escalation.reason in alert.text
    assert [b["callback_data"] for b in alert.reply_markup["inline_keyboard"][0]] == [
        f"esc:ack:{escalation.id}", f"esc:res:{escalation.id}", f"esc:rep:{escalation.id}"]

    # 3. A nurse in the group presses Acknowledge: the patient is told a person has it.
    telegram.push_callback(STAFF_CHAT, f"esc:ack:{escalation.id}", alert.message_id,
                           user_id=NURSE, first_name="Ada")
    notice = (await telegram.await_messages(chat_id, before + 2, timeout=20))[-1]
    assert "looking after you" in notice.text
    acknowledged = _escalation(assistant, escalation.id)
    assert acknowledged.status == "acknowledged"
    assert acknowledged.acknowledged_by == f"telegram:{NURSE} Ada"
    await wait_until(lambda: "Acknowledged by" in telegram.message(
        STAFF_CHAT, alert.message_id)["text"])

    # 4. Reply button, then a reply to the bot's prompt: it reaches the patient.
    posted = len(_staff_posts(telegram))
    telegram.push_callback(STAFF_CHAT, f"esc:rep:{escalation.id}", alert.message_id,
                           user_id=NURSE, first_name="Ada")
    prompt = (await telegram.await_messages(STAFF_CHAT, posted + 1))[-1]
    assert "Reply to this message" in prompt.text and prompt.reply_markup["force_reply"]
    await _recorded(assistant, prompt.message_id)
    answer = "Please send us a photo and keep the area clean; I'll call you at 3pm."
    telegram.push_message(STAFF_CHAT, answer, user_id=NURSE, first_name="Ada",
                          chat_type="supergroup", reply_to=prompt.message_id)
    from_clinic = (await telegram.await_messages(chat_id, before + 3, timeout=20))[-1]
    assert from_clinic.text.startswith("Message from the Riverside Skin Clinic team")
    assert answer in from_clinic.text
    await wait_until(lambda: any("reached" in (m.text or "") for m in _staff_posts(telegram)))

    # 5. While a person has it, the assistant is quiet; the message goes to the group.
    posted = len(_staff_posts(telegram))
    telegram.push_message(chat_id, "thank you, I will do that this afternoon")
    forwarded = (await telegram.await_messages(STAFF_CHAT, posted + 1, timeout=20))[-1]
    assert "thank you, I will do that this afternoon" in forwarded.text
    assert len(telegram.sent_messages(chat_id)) == before + 3
    await _recorded(assistant, forwarded.message_id)
    # ...and a staff reply to the forwarded message reaches the patient too.
    telegram.push_message(STAFF_CHAT, "Great, speak soon.", user_id=NURSE,
                          chat_type="supergroup", reply_to=forwarded.message_id)
    assert "Great, speak soon." in (await telegram.await_messages(
        chat_id, before + 4, timeout=20))[-1].text

    # 6. Resolve: the patient is handed back and the assistant answers again.
    telegram.push_callback(STAFF_CHAT, f"esc:res:{escalation.id}", alert.message_id,
                           user_id=NURSE, first_name="Ada")
    handed_back = (await telegram.await_messages(chat_id, before + 5, timeout=20))[-1]
    assert "I'm back" in handed_back.text
    assert _escalation(assistant, escalation.id).status == "resolved"
    await wait_until(lambda: telegram.message(STAFF_CHAT, alert.message_id)
                     .get("reply_markup") is None)
    telegram.push_message(chat_id, "when can I put make-up on again?")
    answer_again = (await telegram.await_messages(chat_id, before + 6, timeout=30))[-1]
    assert "make" in answer_again.text.lower()

    # Everything is in the product's own log, in order, clinic replies marked.
    with db.session_scope(assistant.database_url) as session:
        log = session.execute(select(Message).where(
            Message.sender_id == sender_for_chat(chat_id)).order_by(Message.id)).scalars().all()
        kinds = [(m.direction, m.kind, m.status) for m in log]
    assert ("out", "clinic", None) in kinds
    assert ("in", "text", "handed_off") in kinds
    timeline = [e.kind for e in _escalation(assistant, escalation.id).events]
    assert timeline == ["acknowledged", "replied", "replied", "resolved"]

    # Health data stays in the database: no process logged the patient's name
    # or words, nor the staff's reply.
    secrets = ["Rosa Quill", "yellow pus", "I will do that this afternoon", "keep the area clean"]
    bot_log = "\n".join(record.getMessage() for record in caplog.records)
    logs = {path.name: path.read_text(errors="replace")
            for path in (assistant.log_dir).glob("*.log")}
    assert {"action-server.log", "rasa-server.log"} <= set(logs)
    for name, text in {"bot": bot_log, **logs}.items():
        assert not [s for s in secrets if s in text], name


@pytest.mark.asyncio
async def test_a_red_flag_during_hand_off_still_gets_its_safety_message(
        assistant, telegram, bot):
    _, chat_id = await enrol(telegram, assistant, _treated(3))
    count = len(telegram.sent_messages(chat_id))
    telegram.push_message(chat_id, "can I speak to a nurse please")
    await telegram.await_messages(chat_id, count + 1, timeout=30)  # the assistant's answer
    first = _latest_escalation(assistant, chat_id)
    alert = await _alert_for(telegram, first.id)
    telegram.push_callback(STAFF_CHAT, f"esc:ack:{first.id}", alert.message_id, user_id=NURSE)
    await _handoff_notice(telegram, chat_id)
    count = len(telegram.sent_messages(chat_id))

    telegram.push_message(chat_id, EMERGENCY)
    (safety,) = (await telegram.await_messages(chat_id, count + 1, timeout=20))[count:]
    assert "999" in safety.text
    second = _latest_escalation(assistant, chat_id)
    assert second.id != first.id and second.level == "emergency"
    assert second.reason.endswith("(while a person was handling the patient)")
    # Anything milder during hand-off is only passed on: the person is there.
    count = len(telegram.sent_messages(chat_id))
    telegram.push_message(chat_id, "my skin is still a bit red")
    await wait_until(lambda: any("still a bit red" in (m.text or "")
                                 for m in _staff_posts(telegram)), timeout=20)
    assert len(telegram.sent_messages(chat_id)) == count
    assert _latest_escalation(assistant, chat_id).id == second.id
    emergency_alert = await _alert_for(telegram, second.id)
    assert "EMERGENCY" in emergency_alert.text


# --- reminders -----------------------------------------------------------------

def _record(settings, level: str, message: str = "a worry", day: int = 3) -> int:
    with db.session_scope(settings.database_url) as session:
        patient = repository.add_patient(session, name="Reminder Patient",
                                         treated_at=_treated(day), timezone="Europe/London")
        return repository.record_escalation(
            session, patient_id=patient.id, sender_id=f"tg-{new_chat_id()}",
            message=message, level=level, reason="test reason", day=day).id


def _reminders(telegram, escalation_id: int) -> list:
    return [m for m in _staff_posts(telegram)
            if m.text.startswith("⏰") and f"escalation #{escalation_id}" in m.text]


@pytest.mark.asyncio
async def test_unacknowledged_alerts_are_posted_again_until_acknowledged(
        assistant, telegram, bot, clock):
    clock.set(LONDON_TUESDAY_NOON)
    relay = _relay(bot)
    urgent, emergency = _record(assistant, "urgent"), _record(assistant, "emergency")
    await relay.run_once()
    await _alert_for(telegram, urgent)
    await _alert_for(telegram, emergency)

    clock.advance(minutes=4, seconds=59)
    await relay.run_once()
    assert not _reminders(telegram, emergency) and not _reminders(telegram, urgent)
    clock.advance(seconds=1)                                    # 5 min: emergency only
    await relay.run_once()
    assert len(_reminders(telegram, emergency)) == 1 and not _reminders(telegram, urgent)
    assert "REMINDER 1" in _reminders(telegram, emergency)[0].text
    clock.advance(minutes=10)                 # 15 min: one more each pass, never a burst
    await relay.run_once()
    assert len(_reminders(telegram, emergency)) == 2
    assert len(_reminders(telegram, urgent)) == 1

    with db.session_scope(assistant.database_url) as session:
        escalations.acknowledge(session, emergency, "nurse@clinic.example", clock())
        escalations.acknowledge(session, urgent, "nurse@clinic.example", clock())
    clock.advance(hours=2)
    await relay.run_once()
    assert len(_reminders(telegram, emergency)) == 2
    assert len(_reminders(telegram, urgent)) == 1
    timeline = [e.kind for e in _escalation(assistant, emergency).events]
    assert timeline.count("reminded") == 2


@pytest.mark.asyncio
async def test_routine_reminders_wait_for_opening_hours(assistant, telegram, bot, clock):
    clock.set(datetime(2026, 12, 1, 19, 0, tzinfo=timezone.utc))  # Tuesday 19:00, closed 18:00
    relay = _relay(bot)
    routine = _record(assistant, "routine", day=9)
    await relay.run_once()
    await _alert_for(telegram, routine)
    clock.set(datetime(2026, 12, 2, 8, 59, tzinfo=timezone.utc))   # 14 h later, still closed
    await relay.run_once()
    assert not _reminders(telegram, routine)
    clock.set(datetime(2026, 12, 2, 9, 0, tzinfo=timezone.utc))    # opens 09:00
    await relay.run_once()
    assert len(_reminders(telegram, routine)) == 1


# --- who may act -----------------------------------------------------------------

@pytest.mark.asyncio
async def test_only_staff_can_press_alert_buttons_or_use_staff_commands(
        assistant, telegram, bot):
    escalation_id = _record(assistant, "urgent")
    await _relay(bot).run_once()
    alert = await _alert_for(telegram, escalation_id)

    # A stranger pressing a button (in a forwarded copy, say) gets nothing at all.
    telegram.push_callback(STAFF_CHAT, f"esc:ack:{escalation_id}", alert.message_id,
                           user_id=STRANGER)
    assert (await _answered_callbacks(telegram, 1))[-1] is None
    assert _escalation(assistant, escalation_id).status == "open"

    # Staff with forged or stale data get a clear answer and nothing changes.
    telegram.push_callback(STAFF_CHAT, "esc:ack:987654", alert.message_id, user_id=NURSE)
    assert "no escalation 987654" in (await _answered_callbacks(telegram, 2))[-1]
    telegram.push_callback(STAFF_CHAT, "esc:drop:1; DROP TABLE", alert.message_id,
                           user_id=NURSE)
    assert "not valid" in (await _answered_callbacks(telegram, 3))[-1]
    assert _escalation(assistant, escalation_id).status == "open"

    # A patient typing a staff command gets the ordinary answer, nothing leaked.
    patient_chat = new_chat_id()
    telegram.push_command(patient_chat, f"/resolve {escalation_id} done")
    (reply,) = await telegram.await_messages(patient_chat, 1)
    assert "don't know that command" in reply.text
    telegram.push_command(patient_chat, "/open")
    replies = await telegram.await_messages(patient_chat, 2)
    assert all("#" not in m.text for m in replies)
    assert _escalation(assistant, escalation_id).status == "open"

    # A stranger's command in the group is ignored.
    posted = len(_staff_posts(telegram))
    telegram.push_command(STAFF_CHAT, "/open", user_id=STRANGER, chat_type="supergroup")
    telegram.push_command(STAFF_CHAT, "/open", user_id=NURSE, chat_type="supergroup")
    listing = (await telegram.await_messages(STAFF_CHAT, posted + 1))[-1]
    assert f"#{escalation_id} URGENT" in listing.text
    assert len(_staff_posts(telegram)) == posted + 1


@pytest.mark.asyncio
async def test_a_member_who_leaves_the_group_loses_access_at_once(assistant, telegram, bot):
    escalation_id = _record(assistant, "urgent")
    await _relay(bot).run_once()
    alert = await _alert_for(telegram, escalation_id)
    leaver = new_chat_id()
    telegram.add_member(STAFF_CHAT, leaver)
    posted = len(_staff_posts(telegram))
    telegram.push_command(STAFF_CHAT, "/open", user_id=leaver, chat_type="supergroup")
    await telegram.await_messages(STAFF_CHAT, posted + 1)  # a member: answered, remembered

    telegram.remove_member(STAFF_CHAT, leaver)  # Telegram tells the group
    directory = bot.bot_data["staff_directory"]
    await wait_until(lambda: leaver not in directory._members)
    telegram.push_callback(STAFF_CHAT, f"esc:ack:{escalation_id}", alert.message_id,
                           user_id=leaver)
    assert (await _answered_callbacks(telegram, 1))[-1] is None
    assert _escalation(assistant, escalation_id).status == "open"


@pytest.mark.asyncio
async def test_staff_list_accounts_act_in_private_and_disabled_ones_cannot(
        assistant, telegram, bot, clock):
    escalation_id = _record(assistant, "routine", day=9)
    email = f"linked{new_chat_id()}@clinic.example"
    with db.session_scope(assistant.database_url) as session:
        add_staff(session, email, "a long enough password")
        link_telegram(session, email, LINKED)
    telegram.push_command(LINKED, f"/ack {escalation_id}", user_id=LINKED)
    (done,) = await telegram.await_messages(LINKED, 1)
    assert "acknowledged" in done.text
    assert _escalation(assistant, escalation_id).acknowledged_by == email

    with db.session_scope(assistant.database_url) as session:
        disable_staff(session, email, clock())
    telegram.add_member(STAFF_CHAT, LINKED)  # still in the group: disabled wins
    telegram.push_command(LINKED, f"/resolve {escalation_id} all fine", user_id=LINKED)
    refused = (await telegram.await_messages(LINKED, 2))[-1]
    assert "don't know that command" in refused.text
    assert _escalation(assistant, escalation_id).status == "acknowledged"


# --- bad input -----------------------------------------------------------------

@pytest.mark.asyncio
async def test_a_reply_longer_than_telegram_allows_arrives_whole_in_parts(
        assistant, telegram, bot, clock):
    _, chat_id = await enrol(telegram, assistant, _treated(3))
    telegram.push_message(chat_id, "I'd like to talk to someone at the clinic")
    await wait_until(lambda: _latest_escalation(assistant, chat_id) is not None, timeout=20)
    escalation_id = _latest_escalation(assistant, chat_id).id
    count = len(telegram.sent_messages(chat_id))
    sentences = [f"Sentence number {i} of a long answer from the nurse." for i in range(200)]
    long_reply = " ".join(sentences)   # about 10,000 characters
    with db.session_scope(assistant.database_url) as session:
        escalations.queue_reply(session, escalation_id, "nurse@clinic.example", long_reply,
                                clock())
    _relay(bot).wake()
    await wait_until(lambda: _reply_status(assistant, escalation_id) == "sent", timeout=30)
    parts = [m.text for m in telegram.sent_messages(chat_id)[count:]]
    clinic_parts = [p for p in parts if "Sentence number" in p]
    assert len(clinic_parts) == 3 and all(len(p) <= MAX_MESSAGE_CHARS for p in clinic_parts)
    joined = " ".join(clinic_parts)
    assert all(sentence in joined for sentence in sentences)
    try:
        await wait_until(lambda: any("in 3 messages" in (m.text or "")
                                     for m in _staff_posts(telegram)))
    except AssertionError:
        raise AssertionError([m.text for m in _staff_posts(telegram)][-5:]) from None


def _reply_status(settings, escalation_id: int):
    with db.session_scope(settings.database_url) as session:
        reply = session.execute(select(StaffReply).where(
            StaffReply.escalation_id == escalation_id)).scalars().first()
        return reply.status if reply else None


@pytest.mark.asyncio
async def test_a_reply_to_a_resolved_escalation_is_refused_clearly(assistant, telegram, bot,
                                                                   clock):
    escalation_id = _record(assistant, "routine", day=9)
    await _relay(bot).run_once()
    alert = await _alert_for(telegram, escalation_id)
    with db.session_scope(assistant.database_url) as session:
        escalations.resolve(session, escalation_id, "nurse@clinic.example", "seen", clock())
    posted = len(_staff_posts(telegram))
    telegram.push_message(STAFF_CHAT, "one more thing", user_id=NURSE, chat_type="supergroup",
                          reply_to=alert.message_id)
    refusal = await wait_until(lambda: [m for m in _staff_posts(telegram, posted)
                                        if "resolved already" in (m.text or "")])
    assert refusal
    assert _reply_status(assistant, escalation_id) is None


@pytest.mark.asyncio
async def test_a_20_mb_photo_is_kept_and_shown_to_staff_with_the_alert(
        assistant, telegram, bot):
    patient_id, chat_id = await enrol(telegram, assistant, _treated(3))
    with db.session_scope(assistant.database_url) as session:
        repository.get_patient(session, patient_id).photo_consent = True
    content = b"\xff\xd8\xff\xe0" + bytes(20 * 1024 * 1024 - 4)   # exactly 20 MiB
    count = len(telegram.sent_messages(chat_id))
    telegram.push_photo(chat_id, content, caption=URGENT_DAY3)
    await telegram.await_messages(chat_id, count + 2, timeout=30)   # kept + safety message
    with db.session_scope(assistant.database_url) as session:
        (photo,) = session.execute(select(Photo).where(Photo.patient_id == patient_id)
                                   ).scalars().all()
        assert photo.size == len(content) and photo.content == content
    escalation = _latest_escalation(assistant, chat_id)
    await _alert_for(telegram, escalation.id)
    await wait_until(lambda: [m for m in telegram.sent_messages(STAFF_CHAT)
                              if m.method == "sendPhoto" and f"#{escalation.id}" in m.text])

    too_big = bytes(20 * 1024 * 1024 + 1)
    count = len(telegram.sent_messages(chat_id))
    telegram.push_photo(chat_id, too_big)
    (refused,) = (await telegram.await_messages(chat_id, count + 1))[count:]
    assert "too large" in refused.text.lower() or "too big" in refused.text.lower()


@pytest.mark.asyncio
async def test_with_the_assistant_down_the_net_still_alerts_the_staff_group(
        assistant, telegram, clock):
    dead = f"http://127.0.0.1:{free_port()}"
    async with running_bot(assistant, telegram, clock, telegram_staff_chat_id=STAFF_CHAT,
                           rasa_url=dead):
        chat_id = new_chat_id()
        telegram.push_message(chat_id, EMERGENCY)
        (answer,) = await telegram.await_messages(chat_id, 1, timeout=20)
        assert "Please call 999 now" in answer.text and "technical problem" in answer.text
        escalation = _latest_escalation(assistant, chat_id)
        alert = await _alert_for(telegram, escalation.id)
        assert "EMERGENCY" in alert.text and EMERGENCY in alert.text


@pytest.mark.asyncio
async def test_an_escalation_written_while_the_bot_was_down_is_alerted_at_start(
        assistant, telegram, clock):
    escalation_id = _record(assistant, "urgent")
    async with running_bot(assistant, telegram, clock, telegram_staff_chat_id=STAFF_CHAT):
        alert = await _alert_for(telegram, escalation_id)
        assert "URGENT" in alert.text
    # Stopping let the pass finish: the alert is marked posted, so never posted twice.
    assert _escalation(assistant, escalation_id).alerted_at is not None


@pytest.mark.asyncio
async def test_forgetting_a_patient_removes_their_alerts_from_the_staff_group(
        assistant, telegram, bot):
    _, chat_id = await enrol(telegram, assistant, _treated(3))
    count = len(telegram.sent_messages(chat_id))
    telegram.push_message(chat_id, URGENT_DAY3)
    await telegram.await_messages(chat_id, count + 1, timeout=30)  # the safety message
    escalation_id = _latest_escalation(assistant, chat_id).id
    alert = await _alert_for(telegram, escalation_id)
    await wait_until(lambda: _escalation(assistant, escalation_id).alerted_at is not None)
    count = len(telegram.sent_messages(chat_id))
    telegram.push_command(chat_id, "/forget")
    await telegram.await_messages(chat_id, count + 1)
    telegram.push_callback(chat_id, "bot:forget_yes")
    await telegram.await_messages(chat_id, count + 2)
    await wait_until(lambda: (STAFF_CHAT, alert.message_id) in telegram.deleted)
    assert telegram.message(STAFF_CHAT, alert.message_id) is None
    assert _latest_escalation(assistant, chat_id) is None


@pytest.mark.asyncio
async def test_added_to_a_group_the_bot_says_its_id_for_the_configuration(telegram, bot):
    group = -1001112223334
    bot_user = {k: telegram.bot_user[k] for k in ("id", "is_bot", "first_name", "username")}
    telegram.push_update({"my_chat_member": {
        "chat": {"id": group, "type": "supergroup", "title": "Nurses"},
        "from": {"id": NURSE, "is_bot": False, "first_name": "Ada"},
        "date": int(datetime.now(timezone.utc).timestamp()),
        "old_chat_member": {"status": "left", "user": bot_user},
        "new_chat_member": {"status": "member", "user": bot_user}}})
    (said,) = await telegram.await_messages(group, 1)
    assert f"TELEGRAM_STAFF_CHAT_ID={group}" in said.text


@pytest.mark.asyncio
async def test_no_checkins_while_a_person_handles_the_patient(assistant, telegram, bot, clock):
    patient_id, chat_id = await enrol(telegram, assistant, _treated(2))  # day 3 is tomorrow
    telegram.push_message(chat_id, "please can a nurse call me")
    await wait_until(lambda: _latest_escalation(assistant, chat_id) is not None, timeout=20)
    escalation_id = _latest_escalation(assistant, chat_id).id
    with db.session_scope(assistant.database_url) as session:
        escalations.acknowledge(session, escalation_id, "nurse@clinic.example", clock())
        treatment = repository.current_treatment(repository.get_patient(session, patient_id))
        treatment_id = treatment.id
    _relay(bot).wake()
    await _handoff_notice(telegram, chat_id)
    count = len(telegram.sent_messages(chat_id))
    job = f"checkin:{treatment_id}:day3_morning"
    clock.set(datetime.combine(_london_today() + timedelta(days=1), time(9, 30), tzinfo=LONDON))
    await wait_until(lambda: job in job_ids(assistant, patient_id))
    fire_now(bot, job)
    await wait_until(lambda: delivery_status(assistant, patient_id, "day3_morning")
                     not in (None, "due"), timeout=20)
    assert delivery_status(assistant, patient_id, "day3_morning") == "skipped"
    assert len(telegram.sent_messages(chat_id)) == count


# --- replies that cannot reach the patient (issue 10, item 13) -------------------

def _escalation_of(settings, sender_id: str, phone: str | None = None,
                   blocked: bool = False) -> int:
    with db.session_scope(settings.database_url) as session:
        patient = repository.add_patient(session, name="Call Me Patient",
                                         treated_at=_treated(3), timezone="Europe/London",
                                         sender_id=sender_id, phone=phone)
        if blocked:
            patient.unreachable_at = datetime.now(timezone.utc)
        return repository.record_escalation(
            session, patient_id=patient.id, sender_id=sender_id, message="a worry",
            level="urgent", reason="test reason", day=3).id


@pytest.mark.asyncio
async def test_replies_to_a_patient_outside_telegram_are_refused_with_the_number_to_call(
        assistant, telegram, bot):
    escalation_id = _escalation_of(assistant, "rest-7781", phone="+44 20 7946 0999")
    await _relay(bot).run_once()
    alert = await _alert_for(telegram, escalation_id)
    await _recorded(assistant, alert.message_id)
    posted = len(_staff_posts(telegram))

    telegram.push_command(STAFF_CHAT, f"/reply {escalation_id} please come in today",
                          user_id=NURSE, chat_type="supergroup")
    telegram.push_message(STAFF_CHAT, "please come in today", user_id=NURSE,
                          chat_type="supergroup", reply_to=alert.message_id)
    answers = [m.text for m in await telegram.await_messages(STAFF_CHAT, posted + 2)][posted:]
    assert len(answers) == 2
    for answer in answers:
        assert answer.startswith("Not done: ") and "not on Telegram" in answer
        assert "Nothing was queued. Call them on +442079460999." in answer

    telegram.push_callback(STAFF_CHAT, f"esc:rep:{escalation_id}", alert.message_id,
                           user_id=NURSE)
    call = await telegram.await_call("answerCallbackQuery")
    assert call.params.get("show_alert") is True
    assert call.params["text"] == (f"No reply possible for #{escalation_id}: the patient is "
                                   "not on Telegram. Call them on +442079460999.")
    assert not any("Reply to this message" in (m.text or "")
                   for m in _staff_posts(telegram, posted))   # no prompt for a reply
    assert _reply_status(assistant, escalation_id) is None
    assert _escalation(assistant, escalation_id).status == "open"


@pytest.mark.asyncio
async def test_a_reply_to_a_patient_who_blocked_the_bot_is_sent_with_a_warning(
        assistant, telegram, bot):
    chat_id = new_chat_id()
    escalation_id = _escalation_of(assistant, sender_for_chat(chat_id), blocked=True)
    await _relay(bot).run_once()
    alert = await _alert_for(telegram, escalation_id)
    await _recorded(assistant, alert.message_id)
    posted = len(_staff_posts(telegram))
    telegram.push_command(STAFF_CHAT, f"/reply {escalation_id} please ring us",
                          user_id=NURSE, chat_type="supergroup")
    answer = (await telegram.await_messages(STAFF_CHAT, posted + 1))[posted].text
    assert answer.startswith(f"Sending your reply to the patient of escalation #{escalation_id}")
    assert "But the patient blocked the bot" in answer and "may not arrive" in answer
    assert "no phone number is on record" in answer
    await wait_until(lambda: _reply_status(assistant, escalation_id) is not None)
