"""The per-chat pace: a second between the end of one send and the start of
the next, so requests that take different times never reach Telegram closer
together than Telegram allows."""
from __future__ import annotations

import asyncio

import pytest

from bot.context import ChatPace


async def _send(pace: ChatPace, took: float, log: list[tuple[float, float]]) -> None:
    loop = asyncio.get_running_loop()
    async with pace.turn():
        start = loop.time()
        await asyncio.sleep(took)
        log.append((start, loop.time()))


@pytest.mark.asyncio
async def test_first_send_goes_at_once() -> None:
    loop = asyncio.get_running_loop()
    before = loop.time()
    log: list[tuple[float, float]] = []
    await _send(ChatPace(), 0.0, log)
    assert log[0][0] - before < 0.05


@pytest.mark.asyncio
async def test_next_send_waits_a_full_interval_after_a_slow_one_ended() -> None:
    """A slow request followed by a fast one: counted from the starts they would
    be 0.9 s apart at the server; counted from the end they are not."""
    pace, log = ChatPace(interval=0.3), []
    await asyncio.gather(_send(pace, 0.2, log), _send(pace, 0.0, log), _send(pace, 0.0, log))
    assert len(log) == 3
    for (_, previous_end), (start, _) in zip(log, log[1:]):
        assert start - previous_end >= 0.3 - 0.005  # the loop clock's resolution


@pytest.mark.asyncio
async def test_a_failed_send_still_counts_for_the_pace() -> None:
    pace = ChatPace(interval=0.2)
    loop = asyncio.get_running_loop()
    with pytest.raises(RuntimeError):
        async with pace.turn():
            raise RuntimeError("refused")
    ended = loop.time()
    async with pace.turn():
        assert loop.time() - ended >= 0.2 - 0.005
