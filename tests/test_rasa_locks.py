"""Rasa's conversation locks in Redis (aftercare/rasa_locks.py), against a real
redis-server: a server killed while handling a message leaves its ticket
behind, and the server taking the conversation over waits for it only as long
as a ticket lives, which must be well under the 30 s the bot waits for an
answer."""
from __future__ import annotations

import asyncio
import time

import pytest

from aftercare.rasa_locks import LOCK_SECONDS, AftercareLockStore

BOT_WAITS_SECONDS = 30.0     # bot/rasa.py RasaClient's timeout


def test_a_ticket_lives_well_under_the_bots_wait():
    assert LOCK_SECONDS <= BOT_WAITS_SECONDS - 8


@pytest.mark.asyncio
async def test_a_dead_servers_ticket_holds_the_conversation_only_as_long_as_a_ticket_lives(
        redis_url):
    dead = AftercareLockStore(url=redis_url)
    taking_over = AftercareLockStore(url=redis_url)
    conversation = "tg-lock-left-behind"
    # The dead server took the conversation's ticket (with the default
    # lifetime, as Rasa takes it) and never gave it back.
    holder = dead.lock(conversation)
    await holder.__aenter__()
    started = time.monotonic()
    async with taking_over.lock(conversation, wait_time_in_seconds=0.2) as lock:
        waited = time.monotonic() - started
        assert lock.conversation_id == conversation
    assert taking_over.shared                       # the lock was in Redis all along
    assert LOCK_SECONDS - 1 <= waited <= LOCK_SECONDS + 3


@pytest.mark.asyncio
async def test_while_the_holder_is_alive_the_next_message_waits_for_it(redis_url):
    first, second = AftercareLockStore(url=redis_url), AftercareLockStore(url=redis_url)
    conversation, order = "tg-lock-in-turn", []

    async def handle(store: AftercareLockStore, name: str, seconds: float) -> None:
        async with store.lock(conversation, wait_time_in_seconds=0.05):
            order.append(f"{name} starts")
            await asyncio.sleep(seconds)
            order.append(f"{name} ends")

    one = asyncio.create_task(handle(first, "one", 0.5))
    await asyncio.sleep(0.1)
    await asyncio.gather(one, handle(second, "two", 0))
    assert order == ["one starts", "one ends", "two starts", "two ends"]
