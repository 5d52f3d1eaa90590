"""Red-flag triage in the bot itself, for messages the assistant does not
answer: Rasa is down, a chat is sending too fast, or a person is handling the
patient (hand-off). A red flag still gets its safety message and an
escalation record."""
from __future__ import annotations

import logging
from typing import Collection, Optional

from aftercare.safety.escalation import Escalated, escalate_red_flag
from aftercare.store import repository
from bot.context import BotContext
from bot.responses import BotText

logger = logging.getLogger(__name__)


async def check_without_assistant(ctx: BotContext, sender_id: str,
                                  text: str) -> Optional[BotText]:
    """The safety message for a red flag in text (escalation recorded), or None."""
    return await check_red_flag(ctx, sender_id, text, situation="found by the bot's net "
                                "while the assistant was unavailable")


async def check_red_flag(ctx: BotContext, sender_id: str, text: str, *,
                         intent: Optional[str] = None, confidence: float = 0.0,
                         situation: str,
                         levels: Collection[str] = ("emergency", "urgent", "routine"),
                         ) -> Optional[BotText]:
    """Triage text as the assistant does (the net, and the classifier's intent
    when there is one); for a level in `levels`, record an escalation (its
    reason ends with `situation`) and return the safety message, else None."""
    now = ctx.now()

    def record(session) -> Optional[Escalated]:
        patient = repository.find_patient_by_sender(session, sender_id)
        day = repository.patient_day(patient, now)
        return escalate_red_flag(
            session, net=ctx.net, protocol=ctx.protocol, now=now, text=text, intent=intent,
            confidence=confidence, patient_id=patient.id if patient else None,
            sender_id=sender_id, day=day, situation=situation, levels=levels)

    escalated = await ctx.db(record)
    if escalated is None:
        return None
    logger.info("escalation %s recorded by the bot: level=%s", escalated.escalation_id,
                escalated.level)
    return ctx.text(escalated.response, **escalated.values)
