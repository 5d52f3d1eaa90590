"""Telegram's 30 messages a second for one bot, shared by the bot processes
through Redis (bot/budget.py): two real bot Applications sending at once
against the fake Telegram server, which enforces 30 a second overall and one
a second per chat, as Telegram does. Together they stay under it; with Redis
down each falls back to its share, says so, and loses nothing."""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from pathlib import Path

import pytest

from aftercare.settings import Settings, get_settings
from aftercare.store import db
from bot.budget import TELEGRAM_PER_SECOND
from support.fake_telegram import FakeTelegramServer
from support.redis import RedisServer
from support.topology import most_in_one_second
from tests.bot_harness import two_bots

PER_BOT = 75
FIRST_CHAT = 880_001


def _settings(database_url: str, tmp_path: Path, redis_url: str, **changes) -> Settings:
    db.migrate(database_url)
    return replace(get_settings(), database_url=database_url, rasa_url="http://127.0.0.1:9",
                   log_dir=tmp_path / "log", redis_url=redis_url, **changes)


async def _until(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not so within {seconds} s"
        await asyncio.sleep(0.1)


async def _send_many(application, first_chat: int, count: int) -> None:
    await asyncio.gather(*(application.bot.send_message(first_chat + n, f"message {n}")
                           for n in range(count)))


@pytest.mark.asyncio
async def test_two_bot_processes_together_stay_within_telegrams_limit(
        database_url, redis_url, tmp_path):
    settings = _settings(database_url, tmp_path, redis_url)
    with FakeTelegramServer() as telegram:
        async with two_bots(settings, telegram) as (first, second):
            telegram.enforce_rate_limits(global_per_second=TELEGRAM_PER_SECOND,
                                         per_chat_per_second=1)
            started = time.monotonic()
            await asyncio.gather(_send_many(first, FIRST_CHAT, PER_BOT),
                                 _send_many(second, FIRST_CHAT + PER_BOT, PER_BOT))
            took = time.monotonic() - started
            budgets = [app.bot.rate_limiter.budget for app in (first, second)]
        sent = telegram.sent_messages()
    assert len(sent) == 2 * PER_BOT and not telegram.duplicates()
    assert telegram.rate_limit_hits == 0
    assert most_in_one_second([m.time for m in sent]) <= TELEGRAM_PER_SECOND
    assert took >= (2 * PER_BOT - 1) / TELEGRAM_PER_SECOND - 0.1
    assert all(budget.shared_turns >= PER_BOT and budget.local_turns == 0 for budget in budgets)
    assert all(budget.processes_seen == 2 for budget in budgets)


@pytest.mark.asyncio
async def test_with_redis_down_each_process_sends_its_share_and_nothing_is_lost(
        database_url, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="bot")
    with RedisServer.start() as cache, FakeTelegramServer() as telegram:
        settings = _settings(database_url, tmp_path, cache.url)   # how many bots: from Redis
        async with two_bots(settings, telegram) as (first, second):
            telegram.enforce_rate_limits(global_per_second=TELEGRAM_PER_SECOND,
                                         per_chat_per_second=1)
            budgets = [app.bot.rate_limiter.budget for app in (first, second)]
            await asyncio.gather(_send_many(first, FIRST_CHAT + 200, 1),
                                 _send_many(second, FIRST_CHAT + 201, 1))
            assert [budget.processes_seen for budget in budgets] == [2, 2]
            cache.kill()
            await asyncio.gather(_send_many(first, FIRST_CHAT, 40),
                                 _send_many(second, FIRST_CHAT + 40, 40))
            assert all(budget.local_turns >= 40 for budget in budgets)
            assert not first.bot_data["redis"].up and not second.bot_data["redis"].up
            cache.restart()
            await _until(lambda: all(budget.sharing for budget in budgets), seconds=10)
            before = [budget.shared_turns for budget in budgets]
            await _send_many(first, FIRST_CHAT + 100, 5)
            assert budgets[0].shared_turns == before[0] + 5
        sent = telegram.sent_messages()
    assert len(sent) == 87 and not telegram.duplicates()
    assert telegram.rate_limit_hits == 0
    assert most_in_one_second([m.time for m in sent]) <= TELEGRAM_PER_SECOND
    firsts = [m.time for m in sent if FIRST_CHAT <= m.chat_id < FIRST_CHAT + 40]
    assert most_in_one_second(firsts) <= TELEGRAM_PER_SECOND / 2
    log = caplog.text
    assert "Redis at 127.0.0.1" in log and "is unreachable" in log
    assert "sends at most 15.0 messages a second" in log
    assert "shared again through Redis" in log
    assert "redis://" not in log   # the URL (and a password in it) never reaches the log
