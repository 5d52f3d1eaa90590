"""Hand-off: while a person at the clinic is handling a patient (an
acknowledged escalation), the assistant stays quiet for that patient. Their
messages go to the staff group instead; an emergency or urgent sign in them
(read by the classifier and the net, as the assistant reads it) still gets its
safety message at once, and a new escalation of its own."""
from __future__ import annotations

import logging
from typing import Optional

from telegram.ext import ContextTypes

from aftercare.store import chats, escalations
from bot.context import BotContext, sender_for_chat
from bot.rasa import RasaUnavailable
from bot.safety import check_red_flag
from bot.sending import send
from bot.staff_relay import StaffRelay

logger = logging.getLogger(__name__)


def handoff_escalation(session, sender_id: str) -> Optional[int]:
    """The escalation a person is handling for this chat, or None."""
    escalation = escalations.in_handoff(session, sender_id)
    return escalation.id if escalation is not None else None


async def pass_to_person(context: ContextTypes.DEFAULT_TYPE, chat_id: int, message_id: int,
                         text: str, escalation_id: int) -> None:
    ctx: BotContext = context.application.bot_data["ctx"]
    relay: StaffRelay = context.application.bot_data["staff_relay"]
    sender_id = sender_for_chat(chat_id)
    await ctx.db(lambda s: chats.set_message_status(s, message_id, "handed_off"))
    try:
        intent, confidence = await ctx.rasa.parse(text)
    except RasaUnavailable:
        intent, confidence = None, 0.0  # the net alone still reads the words
    # Emergency and urgent only: a person is already there for anything less.
    safety = await check_red_flag(ctx, sender_id, text, intent=intent, confidence=confidence,
                                  situation="while a person was handling the patient",
                                  levels=("emergency", "urgent"))
    if safety is not None:
        await send(ctx, context.bot, chat_id, [(safety.text, safety.buttons)], kind="notice")
    await relay.forward_patient_message(escalation_id, text)
    relay.wake()
    logger.info("message %s passed to the person handling escalation %s", message_id,
                escalation_id)
