"""Updates of one chat are handled in order; different chats do not wait for each other."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
from telegram import Chat, Message, Update

from bot.update_order import ChatOrderedUpdateProcessor


def update(update_id: int, chat_id: int) -> Update:
    chat = Chat(id=chat_id, type=Chat.PRIVATE)
    message = Message(message_id=update_id, date=datetime(2026, 1, 1, tzinfo=timezone.utc),
                      chat=chat, text=f"message {update_id}")
    return Update(update_id=update_id, message=message)


async def handle(done: list, name: str, seconds: float) -> None:
    await asyncio.sleep(seconds)
    done.append(name)


@pytest.mark.asyncio
async def test_one_chat_is_handled_in_the_order_received():
    processor = ChatOrderedUpdateProcessor(8)
    done: list[str] = []
    # The first takes longest: without ordering it would finish last.
    tasks = [asyncio.create_task(processor.process_update(update(i, 42), handle(done, f"u{i}", s)))
             for i, s in enumerate([0.05, 0.02, 0.0])]
    await asyncio.gather(*tasks)
    assert done == ["u0", "u1", "u2"]
    assert processor._locks == {}   # nothing kept for a chat with nothing waiting


@pytest.mark.asyncio
async def test_other_chats_do_not_wait():
    processor = ChatOrderedUpdateProcessor(8)
    done: list[str] = []
    slow_started = asyncio.Event()
    release = asyncio.Event()

    async def slow() -> None:
        slow_started.set()
        await release.wait()
        done.append("slow chat")

    slow_task = asyncio.create_task(processor.process_update(update(1, 1), slow()))
    await slow_started.wait()
    await asyncio.wait_for(processor.process_update(update(2, 2), handle(done, "other chat", 0)),
                           timeout=5)
    assert done == ["other chat"]
    release.set()
    await slow_task
    assert done == ["other chat", "slow chat"]


@pytest.mark.asyncio
async def test_a_flooding_chat_takes_one_slot():
    processor = ChatOrderedUpdateProcessor(2)
    release = asyncio.Event()
    done: list[str] = []

    async def wait_for_release(name: str) -> None:
        await release.wait()
        done.append(name)

    flood = [asyncio.create_task(processor.process_update(update(i, 7), wait_for_release(f"f{i}")))
             for i in range(10)]
    await asyncio.sleep(0)
    await asyncio.wait_for(processor.process_update(update(99, 8), handle(done, "other", 0)),
                           timeout=5)
    assert done == ["other"]
    release.set()
    await asyncio.gather(*flood)
    assert done == ["other"] + [f"f{i}" for i in range(10)]


@pytest.mark.asyncio
async def test_each_update_is_reported_handled_unless_it_was_cancelled():
    handled: list[int] = []

    async def on_handled(done: object) -> None:
        handled.append(done.update_id)

    async def fails() -> None:
        raise ValueError("a handler bug")

    processor = ChatOrderedUpdateProcessor(8, on_handled=on_handled)
    await processor.process_update(update(1, 42), handle([], "u1", 0))
    with pytest.raises(ValueError):
        await processor.process_update(update(2, 42), fails())   # would fail again
    stopping = asyncio.create_task(processor.process_update(update(3, 42),
                                                            handle([], "u3", 5)))
    await asyncio.sleep(0.05)
    stopping.cancel()                 # the process stops: the next one handles it
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert handled == [1, 2]
