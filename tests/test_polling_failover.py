"""Long polling by one bot process at a time (bot/poller.py): every bot
process that takes updates asks for the polling lock; one polls, the others
stand by, and when the poller stops or dies one of them takes over, so
patients' messages are still answered. The fake Telegram server answers a
second poller 409 Conflict, as Telegram does, and counts it. On SQLite (a
file lock) and PostgreSQL (an advisory lock)."""
from __future__ import annotations

import logging
import signal
import socket
import time
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path

import pytest

from aftercare.settings import Settings, get_settings
from sqlalchemy import text

from aftercare.store import db, pending_updates
from support.bot_process import BotProcess, enrol_patients
from support.fake_telegram import FakeTelegramServer
from support.processes import free_port
from tests.bot_harness import (ManualClock, add_patient, bot_settings, build_application,
                               new_chat_id, running, treated_hours_ago, wait_until)

pytestmark = pytest.mark.all_databases

# Our own words: a patient describing signs of infection.
RED_FLAG = "the spots on my chin have gone hot and swollen and there is yellow pus coming out"


def _settings(database_url: str, tmp_path: Path) -> Settings:
    db.migrate(database_url)
    return replace(get_settings(), database_url=database_url, rasa_url="http://127.0.0.1:9",
                   log_dir=tmp_path / "log")


def _tap_link(telegram: FakeTelegramServer, settings: Settings) -> int:
    """A new patient taps their enrolment link; their chat id."""
    _, code = add_patient(settings, treated_hours_ago(5))
    chat_id = new_chat_id()
    telegram.push_command(chat_id, f"/start {code}")
    return chat_id


def _log(bot: BotProcess) -> str:
    path = bot.log_path.parent / "bot.log"
    return path.read_text(errors="replace") if path.exists() else ""


def _poller_and_standby(bots: list[BotProcess]) -> tuple[BotProcess, BotProcess]:
    """Once both have started: the one polling, the one standing by."""
    deadline = time.monotonic() + 120
    while not all("polls Telegram for updates" in _log(bot) for bot in bots):
        assert time.monotonic() < deadline, [bot.output() for bot in bots]
        for bot in bots:
            bot.check_alive()
        time.sleep(0.1)
    pollers = [bot for bot in bots if "this process polls Telegram" in _log(bot)]
    standbys = [bot for bot in bots if "another bot process polls Telegram" in _log(bot)]
    assert len(pollers) == len(standbys) == 1, [_log(bot) for bot in bots]
    return pollers[0], standbys[0]


def _pending(url: str) -> list[int]:
    with db.session_scope(url) as session:
        return [update_id for update_id, _ in pending_updates.left(session)]


def _rows(url: str, query: str, **params) -> list:
    with db.session_scope(url) as session:
        return list(session.execute(text(query), params))


@pytest.mark.asyncio
async def test_one_process_polls_and_a_standby_takes_over_when_it_stops(
        database_url, tmp_path, telegram, caplog):
    caplog.set_level(logging.INFO, logger="bot.poller")
    settings = bot_settings(_settings(database_url, tmp_path), telegram)
    first, second = (build_application(settings, clock=ManualClock()) for _ in range(2))
    async with AsyncExitStack() as first_running, AsyncExitStack() as second_running:
        await first_running.enter_async_context(running(first, poll_timeout=1))
        await second_running.enter_async_context(running(second, poll_timeout=1))
        assert first.bot_data["poller"].polling and not second.bot_data["poller"].polling
        assert "stands by, and takes over" in caplog.text

        chat = _tap_link(telegram, settings)
        await telegram.await_messages(chat, 1, timeout=20)
        await first_running.aclose()
        await wait_until(lambda: second.bot_data["poller"].polling, timeout=10)
        assert "this one takes over" in caplog.text

        chat = _tap_link(telegram, settings)
        await telegram.await_messages(chat, 1, timeout=20)
        await wait_until(lambda: not _pending(database_url))   # handled: cleared
    assert telegram.polling_conflicts == 0


@pytest.mark.e2e
def test_when_the_polling_process_is_killed_the_standby_answers(database_url, tmp_path):
    """Two `python -m bot` processes that both take updates; the one polling
    is SIGKILLed, and a patient who writes meanwhile is answered by the other."""
    settings = _settings(database_url, tmp_path)
    with FakeTelegramServer() as telegram:
        bots = [BotProcess(database_url, settings.protocol_path, tmp_path / name, telegram,
                           name, rasa_url=settings.rasa_url,
                           env={"TELEGRAM_RECEIVE_UPDATES": "yes"}).start()
                for name in ("a", "b")]
        try:
            poller, standby = _poller_and_standby(bots)
            chat = _tap_link(telegram, settings)
            telegram.wait_for_messages(chat, 1, timeout=30)

            poller.stop(signal.SIGKILL)
            killed = time.monotonic()
            chat = _tap_link(telegram, settings)
            telegram.wait_for_messages(chat, 1, timeout=30)
            answered_after = time.monotonic() - killed
            assert "this one takes over" in _log(standby)
            standby.check_alive()
        finally:
            for bot in bots:
                bot.stop()
    assert answered_after < 15
    assert telegram.polling_conflicts == 0


@pytest.mark.e2e
def test_a_red_flag_in_hand_when_the_poller_is_killed_is_handled_by_the_next(
        database_url, tmp_path):
    """The poller has fetched a patient's red flag (so Telegram will not send
    it again) and waits on Rasa when it is SIGKILLed: the process that takes
    over handles it from the journal, escalates it and answers."""
    settings = _settings(database_url, tmp_path)
    (chat,) = enrol_patients(database_url, [new_chat_id()], treated_hours_ago(30))
    with socket.socket() as hung_rasa, FakeTelegramServer() as telegram:
        hung_rasa.bind(("127.0.0.1", free_port()))
        hung_rasa.listen(16)        # takes connections, never answers
        rasa_url = "http://127.0.0.1:%d" % hung_rasa.getsockname()[1]
        bots = [BotProcess(database_url, settings.protocol_path, tmp_path / name, telegram,
                           name, rasa_url=rasa_url,
                           env={"TELEGRAM_RECEIVE_UPDATES": "yes"}).start()
                for name in ("a", "b")]
        try:
            poller, standby = _poller_and_standby(bots)
            telegram.push_message(chat, RED_FLAG)
            deadline = time.monotonic() + 30
            while not _rows(database_url, "SELECT id FROM messages WHERE sender_id = :s",
                            s=f"tg-{chat}"):
                assert time.monotonic() < deadline, poller.output()
                time.sleep(0.05)
            assert len(_pending(database_url)) == 1     # in hand, Telegram told it arrived
            poller.stop(signal.SIGKILL)
            hung_rasa.close()                            # the next asks Rasa in vain at once

            replies = telegram.wait_for_messages(chat, 1, timeout=30)
            assert "1 update(s) fetched by a bot process that stopped" in _log(standby)
            escalations = _rows(database_url, "SELECT level FROM escalations WHERE "
                                "sender_id = :s", s=f"tg-{chat}")
            deadline = time.monotonic() + 10
            while _pending(database_url):
                assert time.monotonic() < deadline
                time.sleep(0.05)
        finally:
            for bot in bots:
                bot.stop()
    assert [level for (level,) in escalations] == ["urgent"]
    assert len(replies) == 1 and not telegram.duplicates()
    assert telegram.polling_conflicts == 0
