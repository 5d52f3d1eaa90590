"""Telegram's one message a second in a chat, shared by the bot processes
through Redis (bot/budget.py SendBudget.chat_turn): a check-in sent by one
process and a reply sent by another to the same patient at the same moment
reach the chat a second apart, not together (a 429 from Telegram)."""
from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from aftercare.settings import get_settings
from aftercare.store import db
from bot.sending import send
from support.fake_telegram import FakeTelegramServer
from tests.bot_harness import two_bots

CHAT = 881_001
EACH = 3


@pytest.mark.asyncio
async def test_two_bot_processes_sending_to_one_chat_take_turns_a_second_apart(
        database_url, redis_url, tmp_path):
    db.migrate(database_url)
    settings = replace(get_settings(), database_url=database_url,
                       rasa_url="http://127.0.0.1:9", log_dir=tmp_path / "log",
                       redis_url=redis_url)
    with FakeTelegramServer() as telegram:
        async with two_bots(settings, telegram) as applications:
            telegram.enforce_rate_limits(global_per_second=30, per_chat_per_second=1)

            async def talk(application, name: str) -> None:
                ctx = application.bot_data["ctx"]
                for n in range(EACH):   # one after another, as one process sends to a chat
                    assert await send(ctx, application.bot, CHAT, [(f"{name} {n}", ())])

            await asyncio.gather(talk(applications[0], "first"),
                                 talk(applications[1], "second"))
        sent = telegram.sent_messages(CHAT)
    assert sorted(m.text for m in sent) == sorted(
        f"{name} {n}" for name in ("first", "second") for n in range(EACH))
    assert telegram.rate_limit_hits == 0
    times = sorted(m.time for m in sent)
    assert min(later - earlier for earlier, later in zip(times, times[1:])) >= 0.99
