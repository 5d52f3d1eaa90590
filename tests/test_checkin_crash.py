"""Check-ins a crash or an outage left in flight, end to end: the real bot over
real HTTP to the fake Telegram server, the real Rasa and action servers, a
real SQLite database, the bot's clock one the test moves.

A crash is the state it leaves in the delivery log: rows still `claimed`
(the assistant was asked for the check-in, Telegram was not) or `sending`
(the request to Telegram may have been made), found by the next start."""
from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from aftercare.services import MODEL_DIR
from aftercare.store import db, deliveries, repository
from tests.bot_harness import (
    checkins, delivery_status, enrol, find_delivery, planned_checkin, running_assistant,
    running_bot, treated_hours_ago, wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.all_databases,
              pytest.mark.skipif(not (MODEL_DIR / "aftercare.tar.gz").exists(),
                                 reason="no trained model: run `make model` first")]

CHECKIN = "day2_morning"   # 09:00 on day 2, grace 6 h


@pytest.fixture(scope="module")
def assistant(tmp_path_factory, module_database_url):
    """The real Rasa server and action server on a database of this module's own
    (SQLite, then PostgreSQL)."""
    work = tmp_path_factory.mktemp("crash")
    with running_assistant(work, module_database_url) as settings:
        yield settings


def _status(settings, patient_id: int, checkin_id: str = CHECKIN):
    return delivery_status(settings, patient_id, checkin_id)


def _detail(settings, patient_id: int, checkin_id: str = CHECKIN):
    delivery = find_delivery(settings, patient_id, checkin_id)
    return delivery.detail if delivery else None


def _left_in_flight(settings, patient_id: int, status: str) -> None:
    """The row a crash leaves: the check-in recorded and claimed (or sending)."""
    with db.session_scope(settings.database_url) as session:
        patient = repository.get_patient(session, patient_id)
        treatment = repository.current_treatment(patient)
        item = planned_checkin(settings, patient_id, CHECKIN)
        assert deliveries.record(session, patient_id=patient_id, treatment_id=treatment.id,
                                 checkin_id=CHECKIN, due_at=item.due_at, status=status)


def _move_treatment(settings, patient_id: int, days: int) -> None:
    with db.session_scope(settings.database_url) as session:
        treatment = repository.current_treatment(repository.get_patient(session, patient_id))
        treatment.treated_at = treatment.treated_at + timedelta(days=days)


async def _nothing_more(application, telegram, expected: dict[int, int]) -> None:
    """Give the dispatcher every chance to send again; no chat gets more."""
    service = checkins(application)
    await service.reconcile()
    service.wake()
    await asyncio.sleep(1.5)
    assert {chat: len(telegram.sent_messages(chat)) for chat in expected} == expected


@pytest.mark.asyncio
async def test_crash_between_claim_and_send_delivers_once_sending_is_not_resent(
        assistant, telegram, clock):
    async with running_bot(assistant, telegram, clock):
        claimed_id, claimed_chat = await enrol(telegram, assistant, treated_hours_ago(20))
        sending_id, sending_chat = await enrol(telegram, assistant, treated_hours_ago(20))
        stale_id, stale_chat = await enrol(telegram, assistant, treated_hours_ago(20))
    # Each chat has the consent note and the first message (2).
    _move_treatment(assistant, stale_id, days=-1)   # its day-2 check-in was a day ago
    # The bot died with three check-ins in flight: two claimed (one of them now
    # past its grace window), one being sent.
    _left_in_flight(assistant, claimed_id, "claimed")
    _left_in_flight(assistant, stale_id, "claimed")
    _left_in_flight(assistant, sending_id, "sending")
    clock.set(planned_checkin(assistant, claimed_id, CHECKIN).due_at + timedelta(minutes=5))

    async with running_bot(assistant, telegram, clock) as application:
        assert _status(assistant, sending_id) == "uncertain"
        checkin = (await telegram.await_messages(claimed_chat, 3, timeout=20))[2]
        assert checkin.reply_markup and checkin.reply_markup["inline_keyboard"]
        await wait_until(lambda: _status(assistant, claimed_id) == "sent")
        await wait_until(lambda: _status(assistant, stale_id) == "skipped")
        # The stale patient's check-in of today (day 3) is an ordinary one.
        await wait_until(lambda: _status(assistant, stale_id, "day3_morning") == "sent")
        await _nothing_more(application, telegram,
                            {claimed_chat: 3, sending_chat: 2, stale_chat: 3})

    assert find_delivery(assistant, stale_id, CHECKIN).detail == "stale: past its grace window"
    assert find_delivery(assistant, sending_id, CHECKIN).detail == "interrupted while sending"
    # A restart after that sends nothing again.
    async with running_bot(assistant, telegram, clock) as application:
        await _nothing_more(application, telegram,
                            {claimed_chat: 3, sending_chat: 2, stale_chat: 3})
    assert _status(assistant, claimed_id) == "sent"
    assert _status(assistant, sending_id) == "uncertain"


@pytest.mark.asyncio
async def test_assistant_down_at_the_checkin_returns_it_to_due_and_it_is_sent_once_later(
        assistant, telegram, clock):
    async with running_bot(assistant, telegram, clock):
        patient_id, chat_id = await enrol(telegram, assistant, treated_hours_ago(20))
    with db.session_scope(assistant.database_url) as session:
        treatment = repository.current_treatment(repository.get_patient(session, patient_id))
        treatment_id = treatment.id
    clock.set(planned_checkin(assistant, patient_id, CHECKIN).due_at + timedelta(minutes=1))

    async with running_bot(assistant, telegram, clock, rasa_url="http://127.0.0.1:9") as down:
        await checkins(down).on_due(treatment_id, CHECKIN)
        await wait_until(lambda: _detail(assistant, patient_id) == "assistant unavailable")
        assert _status(assistant, patient_id) == "due"
    assert len(telegram.sent_messages(chat_id)) == 2

    clock.advance(minutes=2)
    async with running_bot(assistant, telegram, clock) as application:
        await telegram.await_messages(chat_id, 3, timeout=20)
        await wait_until(lambda: _status(assistant, patient_id) == "sent")
        await _nothing_more(application, telegram, {chat_id: 3})
