"""Long polling by one bot process at a time (bot/poller.py): every bot
process that takes updates asks for the polling lock; one polls, the others
stand by, and when the poller stops or dies one of them takes over, so
patients' messages are still answered. The fake Telegram server answers a
second poller 409 Conflict, as Telegram does, and counts it. On SQLite (a
file lock) and PostgreSQL (an advisory lock)."""
from __future__ import annotations

import logging
import signal
import time
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path

import pytest

from aftercare.settings import Settings, get_settings
from aftercare.store import db
from support.bot_process import BotProcess
from support.fake_telegram import FakeTelegramServer
from tests.bot_harness import (ManualClock, add_patient, bot_settings, build_application,
                               new_chat_id, running, treated_hours_ago, wait_until)

pytestmark = pytest.mark.all_databases


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
            def log(bot: BotProcess) -> str:
                path = bot.log_path.parent / "bot.log"
                return path.read_text(errors="replace") if path.exists() else ""

            deadline = time.monotonic() + 120
            while not all("polls Telegram for updates" in log(bot) for bot in bots):
                assert time.monotonic() < deadline, [bot.output() for bot in bots]
                for bot in bots:
                    bot.check_alive()
                time.sleep(0.1)
            (poller,) = [bot for bot in bots if "this process polls Telegram" in log(bot)]
            (standby,) = [bot for bot in bots if "this one stands by" in log(bot)]
            chat = _tap_link(telegram, settings)
            telegram.wait_for_messages(chat, 1, timeout=30)

            poller.stop(signal.SIGKILL)
            killed = time.monotonic()
            chat = _tap_link(telegram, settings)
            telegram.wait_for_messages(chat, 1, timeout=30)
            answered_after = time.monotonic() - killed
            assert "this one takes over" in log(standby)
            standby.check_alive()
        finally:
            for bot in bots:
                bot.stop()
    assert answered_after < 15
    assert telegram.polling_conflicts == 0
