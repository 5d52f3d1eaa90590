"""Editing the red-flag signs or the clinic protocol while the bot runs: the
new net is built in a thread while the old one keeps answering (the event loop
never stalls), later messages use the new net, and a broken edit keeps the
old net and protocol, with an error naming the file. Real files, a real
database, the real net."""
from __future__ import annotations

import asyncio
import logging
import os
import shutil
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from aftercare.settings import PROJECT_ROOT, get_settings
from aftercare.store import db, repository
from bot.context import BotContext
from bot.safety import check_without_assistant

LONDON = ZoneInfo("Europe/London")
SENDER = "tg-5151"
EMERGENCY = "my lips and tongue are swelling up"
NEW_SIGN = "I have purple zigzags all over my cheeks"   # flagged only by the edited file
ANCHOR = "      - angioedema\n"


class Ticker:
    """Counts how often a coroutine gets to run on the loop every 10 ms."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.01)
            self.ticks += 1

    def __enter__(self) -> "Ticker":
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


def _bump(path: Path, text: str, step: int) -> None:
    """Write the file with a modification time of its own, whatever the clock says."""
    before = path.stat().st_mtime_ns
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + step * 10**9, before + step * 10**9))


@pytest.fixture
def files(tmp_path) -> tuple[Path, Path]:
    signs = tmp_path / "red_flags.yml"
    protocol = tmp_path / "protocol.yml"
    shutil.copy(PROJECT_ROOT / "data" / "safety" / "red_flags.yml", signs)
    shutil.copy(PROJECT_ROOT / "clinic" / "protocol.yml", protocol)
    return signs, protocol


@pytest.fixture
def ctx(database_url, files) -> BotContext:
    signs, protocol = files
    db.migrate(database_url)
    with db.session_scope(database_url) as session:
        repository.add_patient(session, name="Ana", treated_at=datetime(2026, 11, 25, 10,
                                                                        tzinfo=LONDON),
                               timezone="Europe/London", sender_id=SENDER)
    settings = replace(get_settings(), database_url=database_url, protocol_path=protocol,
                       red_flag_patterns_path=signs)
    return BotContext(settings=settings, rasa=None,
                      clock=lambda: datetime(2026, 11, 27, 11, 0, tzinfo=LONDON))


async def _until_built(ctx: BotContext, ticker: Ticker, timeout: float = 120) -> int:
    """Wait (on the loop, as the bot does) for the rebuild; the ticks it took."""
    start = ticker.ticks
    deadline = asyncio.get_running_loop().time() + timeout
    while ctx.nets.building:
        assert asyncio.get_running_loop().time() < deadline, "the net was never rebuilt"
        await asyncio.sleep(0.05)
    return ticker.ticks - start


@pytest.mark.asyncio
async def test_an_edit_is_built_off_the_loop_and_the_old_net_answers_meanwhile(ctx, files):
    signs, _ = files
    old_net = await asyncio.to_thread(lambda: ctx.net)
    assert await check_without_assistant(ctx, SENDER, NEW_SIGN) is None

    text = signs.read_text(encoding="utf-8")
    assert text.count(ANCHOR) == 1
    _bump(signs, text.replace(ANCHOR, ANCHOR + "      - purple zigzags\n"), 1)
    with Ticker() as ticker:
        # Right after the edit: answered at once, by the old net, while the new
        # one is still being built.
        safety = await check_without_assistant(ctx, SENDER, EMERGENCY)
        assert safety is not None and "999" in safety.text
        assert ctx.nets.building
        assert await check_without_assistant(ctx, SENDER, NEW_SIGN) is None
        assert ctx.nets.building
        ticks = await _until_built(ctx, ticker)
    # A build takes about a second or more; on the loop it would have allowed no tick.
    assert ticks >= 10
    assert ctx.net is not old_net
    reply = await check_without_assistant(ctx, SENDER, NEW_SIGN)
    assert reply is not None and "999" in reply.text


@pytest.mark.asyncio
async def test_a_broken_signs_file_keeps_the_old_net(ctx, files, caplog):
    signs, _ = files
    old_net = await asyncio.to_thread(lambda: ctx.net)
    _bump(signs, "signs: [unclosed\n  - : :\n", 1)
    with caplog.at_level(logging.ERROR, logger="bot.context"):
        assert ctx.nets.refresh()
        with Ticker() as ticker:
            await _until_built(ctx, ticker)
        # Asked again: the same broken file is not rebuilt over and over.
        assert not ctx.nets.refresh()
    assert ctx.net is old_net
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and str(signs) in errors[0] and "previous net" in errors[0]
    safety = await check_without_assistant(ctx, SENDER, EMERGENCY)
    assert safety is not None and "999" in safety.text


@pytest.mark.asyncio
async def test_a_broken_protocol_keeps_the_old_protocol_and_net(ctx, files, caplog):
    _, protocol = files
    old_net = await asyncio.to_thread(lambda: ctx.net)
    phone = ctx.protocol.clinic.phone
    _bump(protocol, "clinic: {name: [\n", 1)
    with caplog.at_level(logging.ERROR, logger="bot.context"):
        assert ctx.protocol.clinic.phone == phone
        assert not ctx.nets.refresh()     # the protocol it uses did not change
        safety = await check_without_assistant(ctx, SENDER, EMERGENCY)
    assert ctx.net is old_net
    assert safety is not None and "999" in safety.text and "{" not in safety.text
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and str(protocol) in errors[0]   # once, not on every message


@pytest.mark.asyncio
async def test_a_protocol_edit_rebuilds_the_net(ctx, files):
    _, protocol = files
    old_net = await asyncio.to_thread(lambda: ctx.net)
    text = protocol.read_text(encoding="utf-8")
    _bump(protocol, text + "\n# edited\n", 1)
    assert ctx.nets.refresh()
    with Ticker() as ticker:
        await _until_built(ctx, ticker)
    assert ctx.net is not old_net
