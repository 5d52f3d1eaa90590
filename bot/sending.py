"""Sending to a patient's chat: composed messages, retries on network errors,
and a blocked bot recorded so check-ins to that patient stop."""
from __future__ import annotations

import asyncio
import logging
from typing import Optional, Sequence

from telegram import Bot
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter

from aftercare.store import chats, repository
from bot.context import BotContext, sender_for_chat
from bot.outgoing import Outgoing, compose
from bot.responses import BotText, Button

logger = logging.getLogger(__name__)

NETWORK_ATTEMPTS = 4
BACKOFF_SECONDS = 0.5


class ChatBlocked(RuntimeError):
    """The patient blocked the bot (Telegram answered 403 Forbidden)."""


async def _send_one(bot: Bot, chat_id: int, message: Outgoing) -> int:
    """Send with backoff on network errors and timeouts; RetryAfter is honoured
    by the application's rate limiter before it gets here, and once more here."""
    delay = BACKOFF_SECONDS
    for attempt in range(1, NETWORK_ATTEMPTS + 1):
        try:
            sent = await bot.send_message(chat_id, message.text, reply_markup=message.keyboard)
            return sent.message_id
        except RetryAfter as exc:
            wait = exc.retry_after.total_seconds() if hasattr(exc.retry_after, "total_seconds") \
                else float(exc.retry_after)
            await asyncio.sleep(wait)
        except Forbidden:
            raise ChatBlocked() from None
        except BadRequest:
            raise
        except NetworkError:  # includes TimedOut
            if attempt == NETWORK_ATTEMPTS:
                raise
            await asyncio.sleep(delay)
            delay *= 2
    raise NetworkError("gave up after repeated RetryAfter answers")


async def send(ctx: BotContext, bot: Bot, chat_id: int,
               replies: Sequence[tuple[str, Sequence[Button]]], kind: str = "text",
               patient_id: Optional[int] = None) -> bool:
    """Send replies to a chat and log them; False if the chat blocked the bot."""
    sender_id = sender_for_chat(chat_id)
    messages = compose(replies)
    try:
        for message in messages:
            async with ctx.chat_pace(chat_id).turn():
                await _send_one(bot, chat_id, message)
            await ctx.db(lambda s, m=message: chats.log_message(
                s, sender_id=sender_id, direction="out", text=m.text, kind=kind,
                patient_id=patient_id))
    except ChatBlocked:
        await mark_blocked(ctx, sender_id)
        return False
    return True


async def send_text(ctx: BotContext, bot: Bot, chat_id: int, text: BotText,
                    kind: str = "notice") -> bool:
    return await send(ctx, bot, chat_id, [(text.text, text.buttons)], kind=kind)


async def mark_blocked(ctx: BotContext, sender_id: str) -> None:
    def work(session) -> Optional[int]:
        patient = repository.find_patient_by_sender(session, sender_id)
        if patient is None:
            return None
        chats.mark_unreachable(session, patient.id, ctx.now())
        return patient.id
    patient_id = await ctx.db(work)
    if patient_id is not None:
        logger.warning("patient %s blocked the bot: marked unreachable, check-ins stop",
                       patient_id)
