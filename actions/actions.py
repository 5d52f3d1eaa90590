"""The Rasa custom actions. Each is thin: it gathers the message, the patient
and the protocol, asks actions/answers.py or the safety net what to say, and
sends the responses defined in domain.yml."""
from __future__ import annotations

import logging
import os
import threading
from abc import ABCMeta, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.answers import (
    ANSWERERS, RED_FLAG_TOPIC_INTENTS, REMINDER_CHECKIN, Reply, SYMPTOM_INTENTS, answer,
    answer_checkin, answer_enrolled, answer_feeling_fine, clinic_values, needs_day,
    opening_note,
)
from actions.context import AssistantContext, PatientView, default_context
from aftercare.authoring.capture import capture_turn, load_misunderstood
from aftercare.dates import DateParseError, parse_treatment_time
from aftercare.privacy import default_deidentifier
from aftercare.recovery import recovery_day
from aftercare.safety.escalation import escalate_red_flag
from aftercare.safety.triage import LEVEL_ORDER, max_level, triage
from aftercare.store import repository

logger = logging.getLogger(__name__)

SELF_REPORTED_NAME = "Self-reported patient"
CLINIC_SLOTS = ("clinic_name", "clinic_phone", "emergency_number")
# Intents the bot triggers through trigger_intent; they carry no patient text.
EXTERNAL_PREFIX = "EXTERNAL_"
EXTERNAL_TEXT_PREFIX = "EXTERNAL: "  # the text Rasa gives a triggered intent
CHECKIN_INTENT = "EXTERNAL_checkin"
# A message counts as the answer to a check-in asked at most this long ago.
CHECKIN_ANSWER_WINDOW = timedelta(hours=12)
CLOCK_TOLERANCE = timedelta(minutes=5)  # Rasa's and the action server's clocks
# "Same as yesterday" repeats the latest report if it is at most this many days old.
NO_CHANGE_LOOKBACK_DAYS = 3
# Every intent whose message is recorded as a symptom report (besides "fine").
REPORTED_SYMPTOM_INTENTS = frozenset(SYMPTOM_INTENTS) | frozenset(RED_FLAG_TOPIC_INTENTS)
FINE = "fine"
PHASE_PREFIX = "utter_symptom_phase_"
NO_CHANGE = "report_no_change"


def _send(dispatcher: CollectingDispatcher, replies: list[Reply]) -> None:
    for reply in replies:
        dispatcher.utter_message(response=reply.response, **reply.values)


def message_text(tracker: Tracker) -> str:
    """The patient's words behind the latest message. A tapped "Do you mean...?"
    button sends only its payload ("/ask_makeup"): the words are those of the
    message the question was about (slot clarify_text)."""
    text = tracker.latest_message.get("text") or ""
    if text.startswith("/") and tracker.get_slot("clarify_text"):
        return str(tracker.get_slot("clarify_text"))
    return text


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
        # A custom session start must carry the slots over itself (domain.yml's
        # session_config asks for it): an open check-in and a pending question
        # survive a pause of more than an hour.
        if (domain.get("session_config") or {}).get("carry_over_slots_to_new_session", True):
            events += [SlotSet(slot, value) for slot, value in (tracker.slots or {}).items()
                       if value is not None and slot not in CLINIC_SLOTS
                       and slot != "session_started_metadata"]
        values = clinic_values(self.context().protocol)
        events += [SlotSet(slot, values[slot]) for slot in CLINIC_SLOTS]
        events.append(ActionExecuted("action_listen"))
        return events


class ActionSafetyCheck(ContextAction):
    """Runs on every message, before any answer: a red flag gets its safety
    message first and an escalation record for the clinic."""

    def name(self) -> str:
        return "action_safety_check"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        intent, confidence = _latest_intent(tracker)
        text = tracker.latest_message.get("text") or ""
        if intent.startswith(EXTERNAL_PREFIX) and text == f"{EXTERNAL_TEXT_PREFIX}{intent}":
            return [SlotSet("red_flag_level", None)]  # sent by the bot: no patient words
        ctx = self.context()
        patient = ctx.patient(tracker.sender_id)
        events = check_and_escalate(ctx, dispatcher, tracker.sender_id, patient, text, intent,
                                    confidence)
        capture_for_authors(ctx, tracker)
        return events


def capture_for_authors(ctx: AssistantContext, tracker: Tracker) -> None:
    """Keep the message for the content authors' inbox when it is worth a look
    (aftercare/authoring/capture.py). Never in the patient's way: any failure
    is logged by its kind only and the turn goes on."""
    try:
        settings = ctx.settings
        phrases = load_misunderstood(settings.inbox_misunderstood_path)
        with ctx.session() as session:
            capture_turn(session, sender_id=tracker.sender_id,
                         parse_data=tracker.latest_message or {}, events=tracker.events or [],
                         net_level=lambda words, day: ctx.net.assess(words, day).level,
                         threshold=settings.inbox_confidence_threshold, phrases=phrases,
                         now=ctx.now())
    except Exception as exc:  # noqa: BLE001 - the patient's answer matters more
        logger.warning("authoring inbox: capture failed (%s)", type(exc).__name__)


def check_and_escalate(ctx: AssistantContext, dispatcher: CollectingDispatcher, sender_id: str,
                       patient: Optional[PatientView], text: str, intent: str,
                       confidence: float) -> list[EventType]:
    with ctx.session() as session:
        escalated = escalate_red_flag(
            session, net=ctx.net, protocol=ctx.protocol, now=ctx.now(), text=text,
            intent=intent, confidence=confidence, patient_id=patient.id if patient else None,
            sender_id=sender_id, day=patient.day if patient else None)
    if escalated is None:
        return [SlotSet("red_flag_level", None)]
    logger.info("escalation %s recorded: level=%s", escalated.escalation_id, escalated.level)
    # urgent and routine say when the clinic will be in touch: today while it is
    # open, else when it next opens; an emergency is always "call now"
    _send(dispatcher, [Reply(escalated.response,
                             {**clinic_values(ctx.protocol), **escalated.values})])
    return [SlotSet("red_flag_level", escalated.level)]


class AnswerAction(ContextAction):
    """Answers the latest question from the protocol and the patient's recovery day.
    A patient the store does not know is asked for the treatment date first."""

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        ctx = self.context()
        intent, _ = _latest_intent(tracker)
        text = message_text(tracker)
        patient = ctx.patient(tracker.sender_id)
        level = tracker.get_slot("red_flag_level")
        if LEVEL_ORDER.get(level, 0) >= LEVEL_ORDER["urgent"]:
            # The safety message stands alone: no "that's expected" after it, and
            # other questions wait for the nurse who will be in touch.
            if intent not in REPORTED_SYMPTOM_INTENTS:
                dispatcher.utter_message(response="utter_other_question_after_red_flag")
            return self.after_answer(ctx, tracker, patient, intent, text)
        if patient is None and needs_day(intent):
            if intent in SYMPTOM_INTENTS or intent == "ask_is_normal":
                _send(dispatcher, answer(ctx, None, intent, text))
            dispatcher.utter_message(response="utter_ask_treatment_date")
            events: list[EventType] = [SlotSet("pending_intent", intent)]
        else:
            replies = answer(ctx, patient, intent, text)
            if level == "routine":
                # the routine message already says it has lasted longer than expected
                replies = [r for r in replies if not r.response.startswith(PHASE_PREFIX)]
            _send(dispatcher, replies)
            events = []
        return events + self.after_answer(ctx, tracker, patient, intent, text)

    def after_answer(self, ctx: AssistantContext, tracker: Tracker,
                     patient: Optional[PatientView], intent: str, text: str) -> list[EventType]:
        return []


class ActionAnswerSymptom(AnswerAction):
    """The day-aware symptom answer; the message is recorded as the day's symptom
    report (answering the open check-in, if any)."""

    def name(self) -> str:
        return "action_answer_symptom"

    def after_answer(self, ctx: AssistantContext, tracker: Tracker,
                     patient: Optional[PatientView], intent: str, text: str) -> list[EventType]:
        if intent not in REPORTED_SYMPTOM_INTENTS:
            return []
        return record_report(ctx, tracker, patient, [intent], text,
                             tracker.get_slot("red_flag_level"))


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


class ActionAnswerEventReady(AnswerAction):
    def name(self) -> str:
        return "action_answer_event_ready"


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


# --- Check-ins and their answers ---------------------------------------------

@dataclass(frozen=True)
class OpenCheckin:
    """The check-in the patient's latest message may answer."""
    checkin_id: str
    asked_at: datetime
    replies_before: int  # patient messages between the check-in and the latest one


def open_checkin(tracker: Tracker, now: datetime) -> Optional[OpenCheckin]:
    """The check-in named by the `checkin` slot, if it was asked at most
    CHECKIN_ANSWER_WINDOW ago (the time of its EXTERNAL_checkin event)."""
    checkin_id = tracker.get_slot("checkin")
    if not checkin_id:
        return None
    user_events = [e for e in tracker.events if e.get("event") == "user"]
    for index in range(len(user_events) - 1, -1, -1):
        event = user_events[index]
        if ((event.get("parse_data") or {}).get("intent") or {}).get("name") != CHECKIN_INTENT:
            continue
        if _entity(event.get("parse_data") or {}, "checkin") not in (None, checkin_id):
            return None  # the slot is left from an earlier check-in
        asked_at = datetime.fromtimestamp(float(event.get("timestamp") or 0), timezone.utc)
        if not -CLOCK_TOLERANCE <= now - asked_at <= CHECKIN_ANSWER_WINDOW:
            return None
        later = len(user_events) - index - 1  # the latest message is among them
        return OpenCheckin(str(checkin_id), asked_at, max(later - 1, 0))
    return None


def _entity(parse_data: dict, name: str) -> Any:
    for entity in parse_data.get("entities") or []:
        if entity.get("entity") == name:
            return entity.get("value")
    return None


def _day_entity(tracker: Tracker) -> Optional[int]:
    value = _entity(tracker.latest_message or {}, "day")
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def record_report(ctx: AssistantContext, tracker: Tracker, patient: Optional[PatientView],
                  symptoms: list[str], text: str, level: Optional[str]) -> list[EventType]:
    """Record the message as the day's symptom report(s), one row per symptom (an
    intent name or "fine"), with the check-in it answers; the check-in is closed.
    A patient the store does not know is not recorded."""
    events: list[EventType] = [SlotSet("checkin", None)] if tracker.get_slot("checkin") else []
    if patient is None:
        return events
    now = ctx.now()
    answered = open_checkin(tracker, now)
    with ctx.session() as session:
        for symptom in symptoms:
            repository.record_symptom_report(
                session, patient_id=patient.id, treatment_id=patient.treatment_id,
                day=patient.day, checkin_id=answered.checkin_id if answered else None,
                symptom=symptom, level=level if LEVEL_ORDER.get(level) else None, text=text,
                created_at=now)
    return events


class ActionSendCheckin(ContextAction):
    """EXTERNAL_checkin (from the bot's scheduler): the check-in question for that
    point of the recovery, utter_checkin_<id> (utter_checkin_generic when the
    domain has no text for that id), with quick-answer buttons. The
    `checkin` slot (filled from the entity) marks it as open for answers."""

    def name(self) -> str:
        return "action_send_checkin"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        ctx = self.context()
        checkin_id = _entity(tracker.latest_message or {}, "checkin")
        checkin_id = str(checkin_id) if checkin_id else None
        # The domain Rasa renders from says which check-ins have a text of their own.
        responses = (domain or {}).get("responses")
        _send(dispatcher, answer_checkin(ctx, ctx.patient(tracker.sender_id), checkin_id,
                                         _day_entity(tracker),
                                         set(responses) if responses else None))
        return [SlotSet("checkin", checkin_id)]


class ActionWelcomeEnrolled(ContextAction):
    """EXTERNAL_enrolled (the bot linked the chat to a patient): the first message
    of the recovery, for the patient's day."""

    def name(self) -> str:
        return "action_welcome_enrolled"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        ctx = self.context()
        _send(dispatcher, answer_enrolled(ctx, ctx.patient(tracker.sender_id)))
        return [SlotSet("checkin", None), SlotSet("pending_intent", None)]


class ActionAnswerFeelingFine(ContextAction):
    """"All good": recorded as a "fine" report; a short, warm acknowledgement
    (none after a red-flag message: its safety message stands alone)."""

    def name(self) -> str:
        return "action_answer_feeling_fine"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        ctx = self.context()
        patient = ctx.patient(tracker.sender_id)
        level = tracker.get_slot("red_flag_level")
        answered = open_checkin(tracker, ctx.now())
        events = record_report(ctx, tracker, patient, [FINE],
                               tracker.latest_message.get("text") or "", level)
        if level is None:
            _send(dispatcher, answer_feeling_fine(
                ctx, patient, answered.checkin_id if answered else None))
        return events


class ActionAnswerNoChange(ContextAction):
    """"Same as yesterday": the patient's latest report (at most a few days old) is
    recorded again for today and answered as if they had said it again, safety
    check included; with nothing to compare, the assistant asks how they are."""

    def name(self) -> str:
        return "action_answer_no_change"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        ctx = self.context()
        patient = ctx.patient(tracker.sender_id)
        text = tracker.latest_message.get("text") or ""
        previous = _latest_reported_symptoms(ctx, patient)
        if not previous:
            # Nothing earlier to repeat (the patient's first check-in, say): the
            # answer is kept for the clinic as it was said, then they are asked.
            events = record_report(ctx, tracker, patient, [NO_CHANGE], text,
                                   tracker.get_slot("red_flag_level"))
            _send(dispatcher, [Reply("utter_checkin_clarify", clinic_values(ctx.protocol))])
            return events
        answered = open_checkin(tracker, ctx.now())
        level = tracker.get_slot("red_flag_level")
        events: list[EventType] = []
        symptoms = [s for s in previous if s != FINE]
        if not symptoms:
            events += record_report(ctx, tracker, patient, [FINE], text, level)
            if level is None:
                _send(dispatcher, answer_feeling_fine(
                    ctx, patient, answered.checkin_id if answered else None))
            return events
        # The same safety rules as if the patient had named each symptom again (e.g.
        # redness still there after day 7 is followed up); safety messages first.
        for symptom in symptoms:
            again = triage(text, symptom, 1.0, patient.day, ctx.net, ctx.protocol)
            if LEVEL_ORDER[again.level] > LEVEL_ORDER.get(level, 0):
                safety = check_and_escalate(ctx, dispatcher, tracker.sender_id, patient, text,
                                            symptom, 1.0)
                level = max_level(level, _slot_value(safety, "red_flag_level"))
        dispatcher.utter_message(response="utter_no_change_noted",
                                 **clinic_values(ctx.protocol))
        for symptom in symptoms:
            _send(dispatcher, answer(ctx, patient, symptom, text))
        events += record_report(ctx, tracker, patient, symptoms, text, level)
        return events + [SlotSet("red_flag_level", level)]


def _latest_reported_symptoms(ctx: AssistantContext,
                              patient: Optional[PatientView]) -> list[str]:
    """The symptoms of the patient's latest day with reports (this treatment)."""
    if patient is None:
        return []
    with ctx.session() as session:
        reports = [r for r in repository.list_symptom_reports(session, patient.id)
                   if r.treatment_id == patient.treatment_id and r.day is not None]
        if not reports:
            return []
        latest_day = reports[-1].day
        if patient.day - latest_day > NO_CHANGE_LOOKBACK_DAYS:
            return []
        symptoms = [r.symptom for r in reports if r.day == latest_day]
    return [s for s in dict.fromkeys(symptoms) if s == FINE or s in ANSWERERS]


def _slot_value(events: list[EventType], slot: str) -> Any:
    for event in reversed(events):
        if event.get("event") == "slot" and event.get("name") == slot:
            return event.get("value")
    return None


class ActionAcknowledge(ContextAction):
    """"Yes", "no", "ok": after the reminder of the next session, yes confirms and
    no gets the clinic's number to rearrange. Right after a question about the
    skin a bare yes or no does not say how the skin is, so the first one is asked
    again with the buttons and nothing is recorded; otherwise (and the second
    time) a plain acknowledgement."""

    def name(self) -> str:
        return "action_acknowledge"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        ctx = self.context()
        values = clinic_values(ctx.protocol)
        intent, _ = _latest_intent(tracker)
        checkin = open_checkin(tracker, ctx.now())
        if checkin is None:
            dispatcher.utter_message(response="utter_acknowledge", **values)
            return [SlotSet("checkin", None)] if tracker.get_slot("checkin") else []
        if checkin.checkin_id == REMINDER_CHECKIN:
            response = ("utter_checkin_reminder_reschedule" if intent == "deny"
                        else "utter_checkin_reminder_confirmed")
            dispatcher.utter_message(response=response, **values)
            return [SlotSet("checkin", None)]
        if checkin.replies_before == 0:
            dispatcher.utter_message(response="utter_checkin_clarify", **values)
            return []
        dispatcher.utter_message(response="utter_acknowledge", **values)
        return [SlotSet("checkin", None)]


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
        on_record = None
        with ctx.session() as session:
            patient = repository.find_patient_by_sender(session, tracker.sender_id)
            treatment = repository.current_treatment(patient) if patient else None
            if patient is None:
                repository.add_patient(session, name=SELF_REPORTED_NAME, treated_at=treated_at,
                                       timezone=tz.key, sender_id=tracker.sender_id,
                                       source="self_reported")
            elif treatment is None:
                repository.add_treatment(session, patient, treated_at)
            elif patient.source == "clinic":
                # The clinic's record is the one its check-ins and staff work from:
                # a patient who remembers it differently is sent to the clinic.
                on_record = treatment.treated_at
            else:
                treatment.treated_at = treated_at  # a correction, not a new session
        if on_record is not None:
            dispatcher.utter_message(
                response="utter_treatment_date_on_record",
                treated_when=_past_moment(on_record, now, tz),
                day=recovery_day(on_record, tz, now), **clinic_values(ctx.protocol))
        else:
            dispatcher.utter_message(
                response="utter_treatment_date_saved",
                treated_when=_past_moment(treated_at, now, tz),
                day=recovery_day(treated_at, tz, now))
        pending = tracker.get_slot("pending_intent")
        events: list[EventType] = [SlotSet("pending_intent", None)]
        if pending in ANSWERERS:
            patient_view = ctx.patient(tracker.sender_id)
            pending_text = _text_of_latest(tracker, pending)
            safety = check_and_escalate(ctx, dispatcher, tracker.sender_id, patient_view,
                                        pending_text, pending, 1.0)
            events += safety
            _send(dispatcher, answer(ctx, patient_view, pending, pending_text))
            if pending in REPORTED_SYMPTOM_INTENTS:
                events += record_report(ctx, tracker, patient_view, [pending], pending_text,
                                        _slot_value(safety, "red_flag_level"))
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


class ActionClarify(ContextAction):
    """An unclear message (nlu_fallback: no reading is confident, or two are
    close). With symptom words, the warning signs are asked about first, so
    nothing alarming slips through as "not understood"; otherwise the closest
    readings are offered as buttons. Every question leaves a way to a person."""

    def name(self) -> str:
        return "action_clarify"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        titles = _meaning_titles(domain)
        readings = [r["name"] for r in tracker.latest_message.get("intent_ranking") or []
                    if r.get("name") in titles][:CLARIFY_CHOICES]
        text = tracker.latest_message.get("text") or ""
        events: list[EventType] = [SlotSet("clarify_text", text)]
        if tracker.get_slot("red_flag_level"):
            return events        # the safety message already asked them to act
        person = {"title": _response_text(domain, "utter_clarify_person"),
                  "payload": "/ask_human"}
        symptom = _symptom_reading(tracker, readings)
        if symptom is not None:
            dispatcher.utter_message(response="utter_clarify_symptom", buttons=[
                {"title": _response_text(domain, "utter_clarify_yes"),
                 "payload": "/confirm_warning_signs"},
                {"title": _response_text(domain, "utter_clarify_no"), "payload": f"/{symptom}"},
                person])
            return events
        if not readings:
            dispatcher.utter_message(response="utter_default",
                                     **clinic_values(self.context().protocol))
            return events
        dispatcher.utter_message(response="utter_clarify_meaning", buttons=[
            *({"title": titles[name], "payload": f"/{name}"} for name in readings), person])
        return events


CLARIFY_CHOICES = 2
MEANING_PREFIX = "utter_meaning_"


def _response_text(domain: dict[str, Any], name: str) -> str:
    variants = (domain.get("responses") or {}).get(name) or [{}]
    return str(variants[0].get("text") or name)


def _meaning_titles(domain: dict[str, Any]) -> dict[str, str]:
    """intent -> the button title that names it (utter_meaning_<intent> in domain.yml)."""
    return {name[len(MEANING_PREFIX):]: _response_text(domain, name)
            for name in (domain.get("responses") or {}) if name.startswith(MEANING_PREFIX)}


def _symptom_reading(tracker: Tracker, readings: list[str]) -> Optional[str]:
    """The symptom intent an unclear message is closest to, when it names a
    symptom (an entity SYMPTOM, or a symptom among the closest readings)."""
    symptoms = [name for name in readings if name in REPORTED_SYMPTOM_INTENTS]
    named = any(e.get("entity") == "SYMPTOM" for e in tracker.latest_message.get("entities") or [])
    if symptoms:
        return next((s for s in symptoms if s in SYMPTOM_INTENTS), symptoms[0])
    if named:
        ranked = [r["name"] for r in tracker.latest_message.get("intent_ranking") or []]
        return next((name for name in ranked if name in SYMPTOM_INTENTS), None)
    return None


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
    # The inbox's de-identification takes seconds to build: in the background,
    # so the server is ready as soon as before.
    threading.Thread(target=default_deidentifier, name="deidentify-warm-up",
                     daemon=True).start()


if os.environ.get("AFTERCARE_WARM_UP") == "1":
    _warm_up()
