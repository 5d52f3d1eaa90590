"""Day-aware answers: which responses (from domain.yml) to send, with which values.

Each answer function returns a list of Reply; the Rasa actions in
actions/actions.py send them. Keeping the choice here, free of Rasa objects,
lets the terminal chat, the evaluation and the tests share it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Collection, Optional

from actions.context import AssistantContext, PatientView
from actions.topics import topic_map
from aftercare.opening_hours import next_opening, open_period
from aftercare.protocol import (
    GENERIC_CHECKIN_RESPONSE, Protocol, checkin_response_name, domain_response_names,
)
from aftercare.safety.messages import RESPONSES as SAFETY_RESPONSES
from aftercare.safety.triage import SYMPTOM_INTENTS  # intent -> protocol symptom
from aftercare.settings import PROJECT_ROOT
from aftercare.recovery import (
    Phase, describe_day, describe_moment, local_date_of_day, symptom_phase, waiting_status,
)

# Check-ins about the course rather than the skin: a yes or no answers them.
REMINDER_CHECKIN = "next_session_reminder"
RESULTS_CHECKIN = "results"
# What a newly treated patient still has to wait for, and the protocol topics
# behind each line (when several, the longest wait counts).
WAITS = (
    ("washing your face", ("washing",)),
    ("makeup", ("makeup",)),
    ("retinol, vitamin C, acids and scrubs", ("retinoids", "vitamin_c", "exfoliants")),
    ("exercise and anything that makes you sweat", ("exercise",)),
    ("sauna, steam room and hot tub", ("sauna_steam",)),
    ("swimming", ("swimming",)),
    ("alcohol", ("alcohol",)),
    ("Botox, filler, laser and peels", ("injectables_laser",)),
)

RED_FLAG_TOPIC_INTENTS = {
    "report_infection_signs": "infection_signs",
    "report_allergic_reaction": "allergic_reaction",
    "report_cold_sore": "cold_sore",
    "report_blistering": "blistering",
}
# How the normal-course summary names each symptom.
SYMPTOM_LABELS = {
    "redness": "redness and warmth",
    "swelling": "some swelling",
    "dryness_peeling": "dryness, tightness and flaking",
    "itching": "mild itching",
    "pain_burning": "stinging or tenderness",
    "bleeding_scabbing": "tiny pinpoint scabs",
    "bruising": "small bruises",
    "breakout_bumps": "a few small spots or bumps",
    "pigmentation": "dark spots looking darker for a while",
}


@dataclass(frozen=True)
class Reply:
    response: str
    values: dict = field(default_factory=dict)


def clinic_values(protocol: Protocol) -> dict:
    clinic = protocol.clinic
    return {
        "clinic_name": clinic.name,
        "clinic_phone": clinic.phone,
        "emergency_number": clinic.emergency_number,
        "booking": clinic.booking,
    }


def needs_day(intent: str) -> bool:
    """Answers that cannot be given without knowing the treatment date."""
    return (intent in SYMPTOM_INTENTS or intent in topic_map().intents
            or intent in ("ask_is_normal", "ask_next_treatment"))


def answer_symptom(ctx: AssistantContext, patient: Optional[PatientView], intent: str,
                   text: str = "") -> list[Reply]:
    if intent in RED_FLAG_TOPIC_INTENTS:
        return [Reply(f"utter_symptom_{RED_FLAG_TOPIC_INTENTS[intent]}", clinic_values(ctx.protocol))]
    symptom = SYMPTOM_INTENTS[intent]
    values = clinic_values(ctx.protocol)
    care = Reply(f"utter_symptom_{symptom}", values)
    if patient is None:
        return [Reply("utter_symptom_phase_unknown_day", values), care]
    course = ctx.protocol.symptoms[symptom]
    now = ctx.now()
    phase = symptom_phase(course, patient.day)
    until_start = local_date_of_day(patient.treated_at, patient.tz, course.expected_until)
    routine_start = local_date_of_day(patient.treated_at, patient.tz, course.routine_after + 1)
    phase_values = {
        **values,
        "day": patient.day,
        "until_day": course.expected_until,
        "until_when": f"the end of {describe_day(until_start, now, patient.tz)}",
        "routine_when": _on_day(describe_day(routine_start, now, patient.tz)),
    }
    return [Reply(f"utter_symptom_phase_{phase.value}", phase_values), care]


def _on_day(name: str) -> str:
    return name if name in ("today", "tomorrow", "yesterday") else f"on {name}"


def answer_when_allowed(ctx: AssistantContext, patient: PatientView, intent: str,
                        text: str) -> list[Reply]:
    replies = []
    for topic in topic_map().topics_for(intent, text):
        replies.extend(_topic_replies(ctx, patient, topic))
    return replies


def _topic_replies(ctx: AssistantContext, patient: PatientView, topic: str) -> list[Reply]:
    protocol = ctx.protocol
    values = clinic_values(protocol)
    if topic == "cool_compress" and not protocol.cool_compress_allowed:
        return [Reply("utter_cool_compress_off", values)]
    now = ctx.now()
    waiting = waiting_status(patient.treated_at, protocol.aftercare[topic], now)
    if waiting.allowed_now:
        status = Reply(f"utter_{topic}_allowed", values)
    else:
        status = Reply(f"utter_{topic}_not_yet", {
            **values,
            "from_when": describe_moment(waiting.from_moment, now, patient.tz),
            "hours": _format_hours(waiting.hours),
        })
    return [status, Reply(f"utter_{topic}_how", values)]


def _format_hours(hours: float) -> str:
    return str(int(hours)) if float(hours).is_integer() else f"{hours:g}"


def answer_pain_relief(ctx: AssistantContext, patient: PatientView, intent: str,
                       text: str) -> list[Reply]:
    return answer_when_allowed(ctx, patient, intent, text)


def answer_is_normal(ctx: AssistantContext, patient: Optional[PatientView], intent: str = "",
                     text: str = "") -> list[Reply]:
    values = clinic_values(ctx.protocol)
    if patient is None:
        return [Reply("utter_normal_course_unknown_day", values)]
    expected = [
        SYMPTOM_LABELS[name] for name, course in ctx.protocol.symptoms.items()
        if course.expected_from <= patient.day <= course.expected_until
    ]
    if not expected:
        return [Reply("utter_normal_course_settled", {**values, "day": patient.day})]
    return [Reply("utter_normal_course", {**values, "day": patient.day,
                                          "expected_today": _join(expected)})]


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def answer_results_timeline(ctx: AssistantContext, patient: Optional[PatientView],
                            intent: str = "", text: str = "") -> list[Reply]:
    course = ctx.protocol.course
    return [Reply("utter_results_timeline", {
        **clinic_values(ctx.protocol),
        "glow_weeks": course.results_glow_weeks,
        "collagen_weeks": course.results_collagen_weeks,
        "full_months": course.results_full_months,
        "sessions": course.sessions,
        "interval_weeks": course.interval_weeks,
    })]


def answer_next_treatment(ctx: AssistantContext, patient: Optional[PatientView],
                          intent: str, text: str) -> list[Reply]:
    protocol = ctx.protocol
    if patient is not None and topic_map().topics_for(intent, text):
        return answer_when_allowed(ctx, patient, intent, text)
    values = {**clinic_values(protocol), "sessions": protocol.course.sessions,
              "interval_weeks": protocol.course.interval_weeks}
    if patient is None:
        return [Reply("utter_next_treatment_unknown", values)]
    values["number"] = patient.treatment_number
    if patient.treatment_number >= protocol.course.sessions:
        return [Reply("utter_next_treatment_course_done", values)]
    next_day = patient.treated_at + timedelta(weeks=protocol.course.interval_weeks)
    values["next_when"] = describe_day(next_day, ctx.now(), patient.tz)
    return [Reply("utter_next_treatment", values)]


def opening_note(ctx: AssistantContext) -> str:
    """Whether the clinic is open now, in the clinic's own time zone."""
    protocol, now = ctx.protocol, ctx.now()
    period = open_period(protocol, now)
    if period is not None:
        return f"The clinic is open today until {period[1].strftime('%H:%M')}."
    opening = next_opening(protocol, now)
    if opening is not None:
        return f"The clinic is closed now and opens again {describe_moment(opening, now, protocol.tz)}."
    return "The clinic is closed now."


def still_waiting(ctx: AssistantContext, patient: PatientView) -> list[tuple[str, datetime]]:
    """The WAITS lines not allowed yet, with the moment each is allowed again."""
    now = ctx.now()
    waiting = []
    for label, topics in WAITS:
        hours = max(ctx.protocol.aftercare[topic] for topic in topics)
        status = waiting_status(patient.treated_at, hours, now)
        if not status.allowed_now:
            waiting.append((label, status.from_moment))
    return waiting


def _settle_days(protocol: Protocol) -> str:
    """How many days the sunburn-like look lasts: the days by which swelling and
    redness have settled ("2–3"), from the protocol."""
    low, high = sorted((protocol.symptoms["swelling"].expected_until,
                        protocol.symptoms["redness"].expected_until))
    return str(high) if low == high else f"{low}–{high}"


def checkin_response(protocol: Protocol, checkin_id: Optional[str],
                     responses: Optional[Collection[str]] = None) -> str:
    """utter_checkin_<id> for a check-in of the protocol that has that text
    among `responses` (the domain's; None: not known, assumed), else the
    generic one. A response the domain lacks would reach the patient as nothing."""
    if checkin_id and checkin_id in {c.id for c in protocol.checkins}:
        name = checkin_response_name(checkin_id)
        if responses is None or name in responses:
            return name
    return GENERIC_CHECKIN_RESPONSE


def answer_checkin(ctx: AssistantContext, patient: Optional[PatientView],
                   checkin_id: Optional[str], day: Optional[int],
                   responses: Optional[Collection[str]] = None) -> list[Reply]:
    """The check-in question for this point of the recovery (buttons are in domain.yml)."""
    protocol = ctx.protocol
    if day is None and patient is not None:
        day = patient.day
    values = {**clinic_values(protocol), "day": day if day is not None else "",
              "settle_days": _settle_days(protocol),
              "full_months": protocol.course.results_full_months}
    response = checkin_response(protocol, checkin_id, responses)
    if response == "utter_checkin_day0_evening":
        waits = [label for label, _ in still_waiting(ctx, patient)] if patient else \
            [label for label, _ in WAITS]
        values["off_limits"] = _join(waits) if waits else "anything that heats up your skin"
    if response == f"utter_checkin_{RESULTS_CHECKIN}":
        days = next(c.days_after_last_session for c in protocol.checkins
                    if c.id == RESULTS_CHECKIN)
        if not days:
            values["since_last"] = "a while"
        elif days >= 45:
            values["since_last"] = f"about {round(days / 30)} months"
        else:
            values["since_last"] = f"{days} days"
    if response == f"utter_checkin_{REMINDER_CHECKIN}":
        values["next_when"] = "in the next few days"
        if patient is not None:
            next_day = patient.treated_at + timedelta(weeks=protocol.course.interval_weeks)
            values["next_when"] = f"on {describe_day(next_day, ctx.now(), patient.tz)}"
    return [Reply(response, values)]


def answer_feeling_fine(ctx: AssistantContext, patient: Optional[PatientView],
                        checkin_id: Optional[str] = None) -> list[Reply]:
    """A short, warm acknowledgement; during the first week a reminder of what helps."""
    protocol = ctx.protocol
    values = clinic_values(protocol)
    if checkin_id == RESULTS_CHECKIN:
        return [Reply("utter_feeling_fine_results", {
            **values, "full_months": protocol.course.results_full_months})]
    if patient is not None and patient.day <= protocol.symptoms["dryness_peeling"].expected_until:
        return [Reply("utter_feeling_fine_healing", {**values, "day": patient.day})]
    return [Reply("utter_feeling_fine", values)]


def answer_enrolled(ctx: AssistantContext, patient: Optional[PatientView]) -> list[Reply]:
    """The first message of the recovery, one message: what to expect now, what to
    wait for and until when (from the protocol), and how to reach a person. The
    day is the patient's own (the bot's `day` entity is computed the same way)."""
    protocol = ctx.protocol
    values = {**clinic_values(protocol), "settle_days": _settle_days(protocol)}
    if patient is None:
        # Without the treatment time nothing can be said about what is allowed yet.
        return [Reply("utter_enrolled_unknown_day", values)]
    day = patient.day
    expected = [SYMPTOM_LABELS[name] for name, course in protocol.symptoms.items()
                if course.expected_from <= day <= course.expected_until]
    values.update(day=day, expected_today=_join(expected) if expected else "")
    waits = still_waiting(ctx, patient)
    if not expected:
        return [Reply("utter_enrolled_settled", values)]
    if not waits:
        return [Reply("utter_enrolled_no_waits", values)]
    now = ctx.now()
    values["waits"] = "\n".join(f"- {label}: until {describe_moment(moment, now, patient.tz)}"
                                for label, moment in waits)
    return [Reply("utter_enrolled_day0" if day == 0 else "utter_enrolled_later", values)]


def answer_event_ready(ctx: AssistantContext, patient: Optional[PatientView], intent: str = "",
                       text: str = "") -> list[Reply]:
    """When the patient will look like themselves again: when redness settles and
    makeup is allowed, for their own day (from the protocol)."""
    protocol = ctx.protocol
    values = clinic_values(protocol)
    redness, flaking = protocol.symptoms["redness"], protocol.symptoms["dryness_peeling"]
    if patient is None:
        return [Reply("utter_event_ready_unknown_day", {
            **values, "settle_days": _settle_days(protocol),
            "makeup_hours": _format_hours(protocol.aftercare["makeup"])})]
    if patient.day > redness.expected_until:
        return [Reply("utter_event_ready_settled", {**values, "day": patient.day})]
    now = ctx.now()
    settle = local_date_of_day(patient.treated_at, patient.tz, redness.expected_until)
    makeup = waiting_status(patient.treated_at, protocol.aftercare["makeup"], now)
    return [Reply("utter_event_ready", {
        **values, "day": patient.day,
        "settle_when": f"the end of {describe_day(settle, now, patient.tz)}",
        "makeup_when": "now" if makeup.allowed_now
        else describe_moment(makeup.from_moment, now, patient.tz),
        "flaking_until": flaking.expected_until})]


# Intents answered by a response of their own that "Did you mean...?" offers too.
CLARIFY_ALSO = ("ask_travel", "ask_sleeping")

Answerer = Callable[[AssistantContext, Optional[PatientView], str, str], list[Reply]]

ANSWERERS: dict[str, Answerer] = {
    **{intent: answer_symptom for intent in SYMPTOM_INTENTS},
    **{intent: answer_symptom for intent in RED_FLAG_TOPIC_INTENTS},
    **{intent: answer_when_allowed for intent in topic_map().intents
       if intent not in ("ask_next_treatment", "ask_pain_relief")},
    "ask_pain_relief": answer_pain_relief,
    "ask_is_normal": answer_is_normal,
    "ask_results_timeline": answer_results_timeline,
    "ask_next_treatment": answer_next_treatment,
    "ask_event_ready": answer_event_ready,
}


def answer(ctx: AssistantContext, patient: Optional[PatientView], intent: str,
           text: str) -> list[Reply]:
    return ANSWERERS[intent](ctx, patient, intent, text)


def responses_sent_by_actions(protocol: Protocol,
                              domain_responses: Optional[Collection[str]] = None) -> set[str]:
    """Every response name the custom actions can send (for the authoring checks).
    A check-in sends its own text only if the domain has it (domain.yml's
    responses unless given), the generic one otherwise."""
    if domain_responses is None:
        domain_responses = domain_response_names(PROJECT_ROOT / "domain.yml")
    topics = set(protocol.aftercare)
    return (
        {f"utter_symptom_{s}" for s in SYMPTOM_INTENTS.values()}
        | {f"utter_symptom_{t}" for t in RED_FLAG_TOPIC_INTENTS.values()}
        | {f"utter_symptom_phase_{p.value}" for p in Phase} | {"utter_symptom_phase_unknown_day"}
        | {f"utter_{t}_{kind}" for t in topics for kind in ("not_yet", "allowed", "how")}
        | {"utter_cool_compress_off"}
        | {"utter_normal_course", "utter_normal_course_settled", "utter_normal_course_unknown_day"}
        | {"utter_results_timeline", "utter_next_treatment", "utter_next_treatment_course_done",
           "utter_next_treatment_unknown", "utter_human_handoff", "utter_default",
           "utter_ask_treatment_date", "utter_treatment_date_saved",
           "utter_treatment_date_on_record", "utter_treatment_date_not_understood"}
        | set(SAFETY_RESPONSES)
        | {checkin_response(protocol, c.id, domain_responses) for c in protocol.checkins}
        | {checkin_response(protocol, None), "utter_checkin_clarify",
           "utter_checkin_reminder_confirmed", "utter_checkin_reminder_reschedule",
           "utter_acknowledge"}
        | {"utter_feeling_fine", "utter_feeling_fine_healing", "utter_feeling_fine_results",
           "utter_no_change_noted"}
        | {"utter_event_ready", "utter_event_ready_settled", "utter_event_ready_unknown_day",
           "utter_other_question_after_red_flag", "utter_clarify_meaning",
           "utter_clarify_symptom", "utter_clarify_yes", "utter_clarify_no",
           "utter_clarify_person"}
        | {f"utter_meaning_{intent}" for intent in (*ANSWERERS, *CLARIFY_ALSO)}
        | {"utter_enrolled_day0", "utter_enrolled_later", "utter_enrolled_no_waits",
           "utter_enrolled_settled", "utter_enrolled_unknown_day"}
    )
