"""The Rasa custom actions. Each is thin: it gathers the message, the patient
and the protocol, asks actions/answers.py or the safety net what to say, and
sends the responses defined in domain.yml."""
from __future__ import annotations

import logging
import os
from abc import ABCMeta, abstractmethod
from typing import Any, Optional

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.answers import (
    ANSWERERS, Reply, SYMPTOM_INTENTS, answer, clinic_values, needs_day, opening_note,
)
from actions.context import AssistantContext, PatientView, default_context
from aftercare.dates import DateParseError, parse_treatment_time
from aftercare.recovery import recovery_day
from aftercare.safety.triage import triage
from aftercare.store import repository

logger = logging.getLogger(__name__)

SELF_REPORTED_NAME = "Self-reported patient"


def _send(dispatcher: CollectingDispatcher, replies: list[Reply]) -> None:
    for reply in replies:
        dispatcher.utter_message(response=reply.response, **reply.values)


def _latest_intent(tracker: Tracker) -> tuple[str, float]:
    intent = tracker.latest_message.get("intent") or {}
    return intent.get("name") or "nlu_fallback", float(intent.get("confidence") or 0.0)


class ContextAction(Action, metaclass=ABCMeta):
    """An action that uses the shared AssistantContext. Abstract, so the action
    server registers only the concrete actions below."""

    def context(self) -> AssistantContext:
        return default_context()

    @abstractmethod
    def name(self) -> str:
        """The action's name in domain.yml."""


class ActionSessionStart(ContextAction):
    """Start each session with the clinic's details in slots, for the responses."""

    def name(self) -> str:
        return "action_session_start"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        events: list[EventType] = [SessionStarted()]
        values = clinic_values(self.context().protocol)
        events += [SlotSet(slot, values[slot])
                   for slot in ("clinic_name", "clinic_phone", "emergency_number")]
        events.append(ActionExecuted("action_listen"))
        return events


class ActionSafetyCheck(ContextAction):
    """Runs on every message, before any answer: a red flag gets its safety
    message first and an escalation record for the clinic."""

    def name(self) -> str:
        return "action_safety_check"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        ctx = self.context()
        text = tracker.latest_message.get("text") or ""
        intent, confidence = _latest_intent(tracker)
        patient = ctx.patient(tracker.sender_id)
        return check_and_escalate(ctx, dispatcher, tracker.sender_id, patient, text, intent,
                                  confidence)


def check_and_escalate(ctx: AssistantContext, dispatcher: CollectingDispatcher, sender_id: str,
                       patient: Optional[PatientView], text: str, intent: str,
                       confidence: float) -> list[EventType]:
    day = patient.day if patient else None
    result = triage(text, intent, confidence, day, ctx.net, ctx.protocol)
    if result.level is None:
        return [SlotSet("red_flag_level", None)]
    with ctx.session() as session:
        escalation = repository.record_escalation(
            session, patient_id=patient.id if patient else None, sender_id=sender_id,
            message=text, level=result.level, reason="; ".join(result.reasons), day=day)
        session.flush()
        logger.info("escalation %s recorded: level=%s", escalation.id, result.level)
    _send(dispatcher, [Reply(f"utter_red_flag_{result.level}", {
        **clinic_values(ctx.protocol), "reason": _patient_reason(result.reasons)})])
    return [SlotSet("red_flag_level", result.level)]


def _patient_reason(reasons: list[str]) -> str:
    return ", ".join(dict.fromkeys(reasons)) or "what you describe"


class AnswerAction(ContextAction):
    """Answers the latest question from the protocol and the patient's recovery day.
    A patient the store does not know is asked for the treatment date first."""

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        ctx = self.context()
        intent, _ = _latest_intent(tracker)
        text = tracker.latest_message.get("text") or ""
        patient = ctx.patient(tracker.sender_id)
        if patient is None and needs_day(intent):
            if intent in SYMPTOM_INTENTS or intent == "ask_is_normal":
                _send(dispatcher, answer(ctx, None, intent, text))
            dispatcher.utter_message(response="utter_ask_treatment_date")
            return [SlotSet("pending_intent", intent)]
        _send(dispatcher, answer(ctx, patient, intent, text))
        return []


class ActionAnswerSymptom(AnswerAction):
    def name(self) -> str:
        return "action_answer_symptom"


class ActionAnswerWhenAllowed(AnswerAction):
    def name(self) -> str:
        return "action_answer_when_allowed"


class ActionAnswerPainRelief(AnswerAction):
    def name(self) -> str:
        return "action_answer_pain_relief"


class ActionAnswerIsNormal(AnswerAction):
    def name(self) -> str:
        return "action_answer_is_normal"


class ActionAnswerResultsTimeline(AnswerAction):
    def name(self) -> str:
        return "action_answer_results_timeline"


class ActionAnswerNextTreatment(AnswerAction):
    def name(self) -> str:
        return "action_answer_next_treatment"


class ActionRequestHuman(ContextAction):
    """A patient asking for a person: the clinic is told, the patient hears how
    and when someone will be in touch."""

    def name(self) -> str:
        return "action_request_human"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        ctx = self.context()
        patient = ctx.patient(tracker.sender_id)
        with ctx.session() as session:
            repository.record_escalation(
                session, patient_id=patient.id if patient else None,
                sender_id=tracker.sender_id, message=tracker.latest_message.get("text") or "",
                level="human", reason="asked for a person", day=patient.day if patient else None)
        _send(dispatcher, [Reply("utter_human_handoff", {
            **clinic_values(ctx.protocol), "opening_note": opening_note(ctx)})])
        return []


class ActionSetTreatmentDate(ContextAction):
    """The patient tells us when the treatment was: remember it, then answer the
    question they asked before (if any) for their day of recovery."""

    def name(self) -> str:
        return "action_set_treatment_date"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        ctx = self.context()
        text = tracker.latest_message.get("text") or ""
        tz = ctx.protocol.tz
        now = ctx.now()
        try:
            treated_at = parse_treatment_time(text, now, tz, ctx.assumed_treatment_time())
        except DateParseError as exc:
            dispatcher.utter_message(response="utter_treatment_date_not_understood",
                                     problem=str(exc))
            return []
        with ctx.session() as session:
            patient = repository.find_patient_by_sender(session, tracker.sender_id)
            if patient is None:
                repository.add_patient(session, name=SELF_REPORTED_NAME, treated_at=treated_at,
                                       timezone=tz.key, sender_id=tracker.sender_id,
                                       source="self_reported")
            elif (treatment := repository.current_treatment(patient)) is not None:
                treatment.treated_at = treated_at  # a correction, not a new session
            else:
                repository.add_treatment(session, patient, treated_at)
        dispatcher.utter_message(
            response="utter_treatment_date_saved",
            treated_when=_past_moment(treated_at, now, tz),
            day=recovery_day(treated_at, tz, now))
        pending = tracker.get_slot("pending_intent")
        events: list[EventType] = [SlotSet("pending_intent", None)]
        if pending in ANSWERERS:
            patient_view = ctx.patient(tracker.sender_id)
            pending_text = _text_of_latest(tracker, pending)
            events += check_and_escalate(ctx, dispatcher, tracker.sender_id, patient_view,
                                         pending_text, pending, 1.0)
            _send(dispatcher, answer(ctx, patient_view, pending, pending_text))
        return events


def _past_moment(moment, now, tz) -> str:
    local = moment.astimezone(tz)
    days_back = (now.astimezone(tz).date() - local.date()).days
    clock = local.strftime("%H:%M")
    if days_back == 0:
        return f"today at {clock}"
    if days_back == 1:
        return f"yesterday at {clock}"
    if days_back < 7:
        return f"on {local.strftime('%A')} at {clock}"
    return f"on {local.strftime('%A')} {local.day} {local.strftime('%B')} at {clock}"


def _text_of_latest(tracker: Tracker, intent: str) -> str:
    for event in reversed(tracker.events):
        if event.get("event") == "user" and \
                (event.get("parse_data") or {}).get("intent", {}).get("name") == intent:
            return event.get("text") or ""
    return ""


class ActionDefaultFallback(ContextAction):
    """When the assistant is unsure what to do: ask to rephrase, with a way to a person."""

    def name(self) -> str:
        return "action_default_fallback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        dispatcher.utter_message(response="utter_default",
                                 **clinic_values(self.context().protocol))
        return []


def _warm_up() -> None:
    """Build the safety net and migrate the database when the action server starts,
    so the first patient's message does not wait for them."""
    ctx = default_context()
    ctx.net.assess("warm-up", None)
    with ctx.session():
        pass


if os.environ.get("AFTERCARE_WARM_UP") == "1":
    _warm_up()
