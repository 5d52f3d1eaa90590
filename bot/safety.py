"""Red-flag triage in the bot itself, for messages the assistant does not
answer: Rasa is down, a chat is sending too fast, or a person is handling the
patient (hand-off). A red flag still gets its safety message and an
escalation record."""
from __future__ import annotations

import logging
from typing import Collection, Optional
from zoneinfo import ZoneInfo

from aftercare.recovery import recovery_day
from aftercare.safety import triage
from aftercare.safety.messages import safety_message
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

    def patient_and_day(session) -> tuple[Optional[int], Optional[int]]:
        patient = repository.find_patient_by_sender(session, sender_id)
        treatment = repository.current_treatment(patient) if patient else None
        if treatment is None:
            return (patient.id if patient else None), None
        return patient.id, recovery_day(treatment.treated_at, ZoneInfo(patient.timezone), now)

    patient_id, day = await ctx.db(patient_and_day)
    result = triage(text, intent, confidence, day, ctx.net, ctx.protocol)
    if result.level is None or result.level not in levels:
        return None

    def record(session) -> int:
        return repository.record_escalation(
            session, patient_id=patient_id, sender_id=sender_id, message=text,
            level=result.level, reason="; ".join(result.reasons) + f" ({situation})",
            day=day).id

    escalation_id = await ctx.db(record)
    logger.info("escalation %s recorded by the bot: level=%s", escalation_id, result.level)
    reason = ", ".join(dict.fromkeys(result.reasons)) or "what you describe"
    response, timing = safety_message(result.level, ctx.protocol, now)  # open or closed now
    return ctx.text(response, reason=reason, **timing)
