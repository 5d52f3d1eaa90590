"""Red flag -> escalation record -> safety message: the one flow, used by the
assistant's safety check (actions/) and by the bot when it answers without the
assistant (bot/safety.py: Rasa down, a person handling the patient)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Collection, Optional

from sqlalchemy.orm import Session

from aftercare.protocol import Protocol
from aftercare.safety.messages import LEVELS, safety_message
from aftercare.safety.net import RedFlagNet
from aftercare.safety.triage import triage
from aftercare.store import repository


@dataclass(frozen=True)
class Escalated:
    """A red flag that was recorded for the clinic, and what the patient is told."""
    escalation_id: int
    level: str
    response: str                 # utter_red_flag_<level>[_closed]
    values: dict = field(default_factory=dict)   # opens_when


def escalate_red_flag(session: Session, *, net: RedFlagNet, protocol: Protocol, now: datetime,
                      text: str, intent: Optional[str], confidence: float,
                      patient_id: Optional[int], sender_id: str, day: Optional[int],
                      situation: Optional[str] = None,
                      levels: Collection[str] = LEVELS) -> Optional[Escalated]:
    """Triage `text` (the net and the classifier's intent) on the patient's day;
    for a level in `levels`, record an escalation whose reason (for staff) names
    the signs, and `situation` when given, and return the safety message."""
    result = triage(text, intent, confidence, day, net, protocol)
    if result.level is None or result.level not in levels:
        return None
    reason = "; ".join(result.reasons) + (f" ({situation})" if situation else "")
    escalation = repository.record_escalation(
        session, patient_id=patient_id, sender_id=sender_id, message=text,
        level=result.level, reason=reason, day=day)
    session.flush()
    response, values = safety_message(result.level, protocol, now)
    return Escalated(escalation.id, result.level, response, values)
