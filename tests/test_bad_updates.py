"""An update python-telegram-bot cannot parse: the bot skips it (fetched once,
then confirmed), answers the updates after it, and no log record holds the
patient's name or words, at any level. The real bot over real HTTP to the
fake Telegram server; Rasa is not running, so text gets the degraded answer."""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest
from telegram import Bot

from aftercare.settings import get_settings
from aftercare.store import db
from bot.logs import protect_telegram_logs
from support.fake_telegram import FakeTelegramServer
from tests.bot_harness import TOKEN, ManualClock, new_chat_id, running_bot

NAME = "Zerelda Quintanilla-Vost"
WORDS = "my left zygoma weeps yellow since Tuesday"
GOOD_WORDS = "Ottoline Fairweather-Brisk asks about her freckled temple"


def _malformed(chat_id: int) -> dict:
    """A message whose chat has no type: the library cannot build an Update of it."""
    person = {"id": chat_id, "is_bot": False, "first_name": NAME}
    return {"message": {"message_id": 1, "date": 1_700_000_000, "from": person,
                        "chat": {"id": chat_id, "first_name": NAME}, "text": WORDS}}


def _assert_no_patient_data(caplog: pytest.LogCaptureFixture) -> None:
    texts = [caplog.text] + [r.getMessage() for r in caplog.records]
    for secret in (NAME, "Zerelda", "zygoma", WORDS, "Ottoline", "freckled"):
        assert not any(secret in text for text in texts), secret


@pytest.fixture
def settings(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'aftercare.db'}"
    db.migrate(url)
    return replace(get_settings(), database_url=url, rasa_url="http://127.0.0.1:9",
                   log_dir=tmp_path / "log")


@pytest.mark.asyncio
async def test_a_malformed_update_is_skipped_and_the_others_are_answered(settings, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="telegram")
    with FakeTelegramServer(token=TOKEN) as telegram:
        async with running_bot(settings, telegram, ManualClock()):
            first, bad_chat, second, third = (new_chat_id() for _ in range(4))
            telegram.push_command(first, "/help")
            bad = telegram.push_update(_malformed(bad_chat))
            telegram.push_command(second, "/help")
            telegram.push_message(third, GOOD_WORDS)
            for chat in (first, second, third):
                (reply,) = await telegram.await_messages(chat, 1, timeout=20)
                assert reply.text
            # A bad update last in its batch is confirmed by the next request too.
            last_bad = telegram.push_update(_malformed(bad_chat))
            await telegram.await_call("getUpdates", count=len(telegram.calls_to("getUpdates"))
                                      + 2)
            telegram.push_command(first, "/help")
            await telegram.await_messages(first, 2, timeout=20)
    assert telegram.times_fetched(bad) == 1
    assert telegram.times_fetched(last_bad) == 1
    assert not telegram.sent_messages(bad_chat)
    skipped = [r.getMessage() for r in caplog.records if r.name == "bot.polling"]
    assert len(skipped) == 2 and f"update {bad} skipped" in skipped[0]
    assert "kind message" in skipped[0] and "TypeError" in skipped[0]
    _assert_no_patient_data(caplog)


@pytest.mark.asyncio
async def test_the_librarys_own_parse_error_record_keeps_only_ids_and_kinds(caplog):
    """Without SkippingBot, python-telegram-bot logs the raw batch at CRITICAL;
    the filter leaves the update id and its kind."""
    protect_telegram_logs()
    caplog.set_level(logging.DEBUG, logger="telegram")
    with FakeTelegramServer(token=TOKEN) as telegram:
        bad = telegram.push_update(_malformed(new_chat_id()))
        async with Bot(TOKEN, base_url=telegram.base_url) as bot:
            with pytest.raises(TypeError):
                await bot.get_updates(timeout=0)
    critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(critical) == 1
    assert critical[0].getMessage() == (f"Telegram data withheld from the log: update ids "
                                        f"{bad}, kinds message, error TypeError")
    assert critical[0].exc_info is None
    _assert_no_patient_data(caplog)
