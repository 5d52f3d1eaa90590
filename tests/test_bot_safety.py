"""bot/safety.py: the bot's own red-flag net (the assistant is down) sends the
same safety message as the assistant, open or closed clinic alike."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from aftercare.settings import get_settings
from aftercare.store import db, repository
from bot.context import BotContext
from bot.safety import check_without_assistant

LONDON = ZoneInfo("Europe/London")
SENDER = "tg-4242"
PUS = "there's pus coming out of a spot on my chin"


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(london(2026, 11, 27, 11, 0))  # a Friday, open 09:00-18:00


@pytest.fixture
def ctx(database_url, clock) -> BotContext:
    db.migrate(database_url)
    with db.session_scope(database_url) as session:
        repository.add_patient(session, name="Ana", treated_at=london(2026, 11, 25, 10, 0),
                               timezone="Europe/London", sender_id=SENDER)
    return BotContext(settings=replace(get_settings(), database_url=database_url), rasa=None,
                      clock=clock)


@pytest.mark.asyncio
async def test_urgent_while_open_says_today(ctx):
    reply = await check_without_assistant(ctx, SENDER, PUS)
    assert "nurse will contact you today" in reply.text
    assert "{" not in reply.text


@pytest.mark.asyncio
@pytest.mark.parametrize("now,opens_when", [
    (london(2026, 11, 27, 23, 0), "tomorrow at 10:00"),
    (london(2026, 11, 28, 17, 30), "Monday at 09:00"),
])
async def test_urgent_while_closed_says_when_it_opens(ctx, clock, now, opens_when):
    clock.now = now
    reply = await check_without_assistant(ctx, SENDER, PUS)
    assert f"when it opens {opens_when}" in reply.text
    assert "closed" in reply.text and "today" not in reply.text
    assert "+44 20 7946 0321" in reply.text and "999" in reply.text and "{" not in reply.text


@pytest.mark.asyncio
async def test_emergency_at_night_is_call_now(ctx, clock):
    clock.now = london(2026, 11, 29, 2, 0)
    reply = await check_without_assistant(ctx, SENDER, "my lips are swelling up")
    assert reply.text.startswith("⚠️ Please call 999 now")


@pytest.mark.asyncio
async def test_no_red_flag_no_message(ctx):
    assert await check_without_assistant(ctx, SENDER, "when can I wear makeup?") is None
