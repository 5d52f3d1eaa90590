"""The custom actions on canned trackers, with a real SQLite store and a fixed clock."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import actions as rasa_actions
from actions.context import AssistantContext, set_default_context
from aftercare.settings import get_settings
from aftercare.store import repository
from aftercare.store.models import SymptomReport

LONDON = ZoneInfo("Europe/London")


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)


SENDER = "patient-chat-1"
TREATED = london(2026, 11, 25, 10, 0)  # a Wednesday


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(london(2026, 11, 25, 15, 0))


@pytest.fixture
def context(database_url, clock):
    ctx = AssistantContext(settings=replace(get_settings(), database_url=database_url),
                           clock=clock)
    set_default_context(ctx)
    yield ctx
    set_default_context(None)


@pytest.fixture
def enrolled(context):
    with context.session() as session:
        patient = repository.add_patient(session, name="Ana", treated_at=TREATED,
                                         timezone="Europe/London", sender_id=SENDER)
        session.flush()
        return patient.id


def tracker(text: str, intent: str, confidence: float = 0.95, sender: str = SENDER,
            slots: dict | None = None, events: list | None = None) -> Tracker:
    message = {"text": text, "intent": {"name": intent, "confidence": confidence},
               "entities": []}
    return Tracker(sender, slots or {}, message, events or [], False, None, {}, "action_listen")


async def run(action, tracker_: Tracker) -> tuple[list[dict], list]:
    dispatcher = CollectingDispatcher()
    events = await action().run(dispatcher, tracker_, {})
    return dispatcher.messages, events


def responses(messages: list[dict]) -> list[str]:
    return [m["response"] for m in messages]


def escalations(context) -> list[tuple[str, str, int | None]]:
    with context.session() as session:
        return [(e.level, e.message, e.day) for e in repository.list_escalations(session)]


@pytest.mark.asyncio
async def test_makeup_on_day_0_is_not_yet_with_the_weekday_and_time(context, enrolled):
    messages, _ = await run(rasa_actions.ActionAnswerWhenAllowed,
                            tracker("when can I wear makeup?", "ask_makeup"))
    assert responses(messages) == ["utter_makeup_not_yet", "utter_makeup_how"]
    assert messages[0]["from_when"] == "tomorrow at 10:00"
    assert messages[0]["hours"] == "24"


@pytest.mark.asyncio
async def test_makeup_on_day_2_is_allowed(context, enrolled, clock):
    clock.now = london(2026, 11, 27, 9, 0)
    messages, _ = await run(rasa_actions.ActionAnswerWhenAllowed,
                            tracker("can i wear makeup now", "ask_makeup"))
    assert responses(messages) == ["utter_makeup_allowed", "utter_makeup_how"]


@pytest.mark.asyncio
async def test_skincare_question_picks_the_product_named(context, enrolled):
    messages, _ = await run(rasa_actions.ActionAnswerWhenAllowed,
                            tracker("ok to use my retinol tonight?", "ask_skincare_products"))
    assert responses(messages) == ["utter_retinoids_not_yet", "utter_retinoids_how"]
    assert messages[0]["from_when"] == "Wednesday 2 December at 10:00"


@pytest.mark.asyncio
async def test_redness_on_day_1_is_expected_and_no_escalation(context, enrolled, clock):
    clock.now = london(2026, 11, 26, 9, 0)
    text = "my face is still really red, is that normal?"
    safety, events = await run(rasa_actions.ActionSafetyCheck, tracker(text, "report_redness"))
    assert safety == [] and events == [SlotSet("red_flag_level", None)]
    messages, _ = await run(rasa_actions.ActionAnswerSymptom, tracker(text, "report_redness"))
    assert responses(messages) == ["utter_symptom_phase_expected", "utter_symptom_redness"]
    assert messages[0]["day"] == 1 and messages[0]["until_day"] == 3
    assert messages[0]["until_when"] == "the end of Saturday"
    assert escalations(context) == []


@pytest.mark.asyncio
async def test_redness_on_day_8_is_routine_and_recorded(context, enrolled, clock):
    clock.now = london(2026, 12, 3, 9, 0)
    text = "my face is still really red, is that normal?"
    safety, events = await run(rasa_actions.ActionSafetyCheck, tracker(text, "report_redness"))
    assert responses(safety) == ["utter_red_flag_routine"]
    assert events == [SlotSet("red_flag_level", "routine")]
    assert escalations(context) == [("routine", text, 8)]
    messages, _ = await run(rasa_actions.ActionAnswerSymptom, tracker(text, "report_redness"))
    assert responses(messages)[0] == "utter_symptom_phase_overdue"


@pytest.mark.asyncio
async def test_emergency_comes_first_whatever_the_intent(context, enrolled):
    text = "can i wear makeup? also my lips are swelling up and my throat feels tight"
    safety, _ = await run(rasa_actions.ActionSafetyCheck, tracker(text, "ask_makeup"))
    assert responses(safety) == ["utter_red_flag_emergency"]
    assert safety[0]["emergency_number"] == "999"
    assert [level for level, _, _ in escalations(context)] == ["emergency"]


# --- The safety message depends on whether the clinic is open ------------------
# clinic/protocol.yml: weekdays 09:00-18:00 (Thursday to 20:00), Saturday
# 10:00-16:00, Sunday closed, Europe/London. 2026-11-27 is a Friday.

PUS = "there's pus coming out of one of the spots"


def rendered(message: dict) -> str:
    """The patient's text of a dispatched response, placeholders filled."""
    from bot.responses import render
    values = {k: v for k, v in message.items() if k not in ("response", "template")}
    return render(message["response"], values).text


@pytest.mark.asyncio
async def test_urgent_while_the_clinic_is_open_says_today(context, enrolled, clock):
    clock.now = london(2026, 11, 27, 11, 0)  # Friday, day 2
    safety, events = await run(rasa_actions.ActionSafetyCheck,
                               tracker(PUS, "report_infection_signs"))
    assert responses(safety) == ["utter_red_flag_urgent"]
    assert events == [SlotSet("red_flag_level", "urgent")]
    assert escalations(context) == [("urgent", PUS, 2)]
    text = rendered(safety[0])
    assert "today" in text and "+44 20 7946 0321" in text and "{" not in text


@pytest.mark.asyncio
@pytest.mark.parametrize("now,opens_when", [
    (london(2026, 11, 27, 22, 30), "tomorrow at 10:00"),   # Friday night; Saturday opens at 10
    (london(2026, 11, 28, 16, 0), "Monday at 09:00"),      # Saturday after closing; Sunday closed
    (london(2026, 11, 29, 3, 0), "tomorrow at 09:00"),     # Sunday night
    (london(2026, 11, 26, 6, 30), "today at 09:00"),       # Thursday before opening
])
async def test_urgent_while_the_clinic_is_closed_says_when_it_opens(context, enrolled, clock,
                                                                    now, opens_when):
    clock.now = now
    safety, events = await run(rasa_actions.ActionSafetyCheck,
                               tracker(PUS, "report_infection_signs"))
    assert responses(safety) == ["utter_red_flag_urgent_closed"]
    assert safety[0]["opens_when"] == opens_when
    assert events == [SlotSet("red_flag_level", "urgent")]
    assert [level for level, _, _ in escalations(context)] == ["urgent"]
    text = rendered(safety[0])
    assert f"when it opens {opens_when}" in text and "closed" in text
    assert "will contact you today" not in text
    assert "+44 20 7946 0321" in text and "999" in text and "{" not in text


@pytest.mark.asyncio
async def test_routine_while_the_clinic_is_closed_says_when_it_opens(context, enrolled, clock):
    clock.now = london(2026, 12, 6, 12, 0)  # Sunday, day 11
    text = "my face is still red"
    safety, _ = await run(rasa_actions.ActionSafetyCheck, tracker(text, "report_redness"))
    assert responses(safety) == ["utter_red_flag_routine_closed"]
    assert safety[0]["opens_when"] == "tomorrow at 09:00"
    assert escalations(context) == [("routine", text, 11)]
    clock.now = london(2026, 12, 7, 12, 0)  # Monday, open
    safety, _ = await run(rasa_actions.ActionSafetyCheck, tracker(text, "report_redness"))
    assert responses(safety) == ["utter_red_flag_routine"]


@pytest.mark.asyncio
@pytest.mark.parametrize("now", [london(2026, 11, 27, 11, 0), london(2026, 11, 29, 3, 0)])
async def test_emergency_is_call_now_open_or_closed(context, enrolled, clock, now):
    clock.now = now
    safety, _ = await run(rasa_actions.ActionSafetyCheck,
                          tracker("my tongue is swelling up", "report_allergic_reaction"))
    assert responses(safety) == ["utter_red_flag_emergency"]
    text = rendered(safety[0])
    assert text.startswith("⚠️ Please call 999 now") and "{" not in text


@pytest.mark.asyncio
async def test_unknown_patient_is_asked_for_the_date_then_answered(context):
    question = tracker("when can i go to the gym", "ask_exercise_sweat", sender="stranger")
    messages, events = await run(rasa_actions.ActionAnswerWhenAllowed, question)
    assert responses(messages) == ["utter_ask_treatment_date"]
    assert events == [SlotSet("pending_intent", "ask_exercise_sweat")]

    history = [{"event": "user", "text": "when can i go to the gym",
                "parse_data": {"intent": {"name": "ask_exercise_sweat"}}}]
    answer = tracker("this morning", "inform_treatment_date", sender="stranger",
                     slots={"pending_intent": "ask_exercise_sweat"}, events=history)
    messages, events = await run(rasa_actions.ActionSetTreatmentDate, answer)
    assert responses(messages) == ["utter_treatment_date_saved", "utter_exercise_not_yet",
                                   "utter_exercise_how"]
    assert messages[0]["day"] == 0
    assert messages[1]["from_when"] == "Friday at 09:00"
    assert SlotSet("pending_intent", None) in events
    with context.session() as session:
        patient = repository.find_patient_by_sender(session, "stranger")
        assert patient.source == "self_reported"


@pytest.mark.asyncio
async def test_a_clinic_patient_cannot_move_the_clinics_treatment_date(context, enrolled):
    """Check-ins and staff go by the clinic's record; a patient remembering a
    different day is told the date on record and who can correct it."""
    messages, events = await run(rasa_actions.ActionSetTreatmentDate,
                                 tracker("it was 3 days ago", "inform_treatment_date"))
    assert responses(messages) == ["utter_treatment_date_on_record"]
    assert messages[0]["treated_when"] == "today at 10:00"
    assert messages[0]["day"] == 0 and messages[0]["clinic_phone"]
    with context.session() as session:
        patient = repository.find_patient_by_sender(session, SENDER)
        assert repository.current_treatment(patient).treated_at.astimezone(LONDON) == TREATED


@pytest.mark.asyncio
async def test_a_self_reported_patient_can_correct_their_date(context):
    for text, day in (("this morning", 0), ("2 days ago", 2)):
        messages, _ = await run(rasa_actions.ActionSetTreatmentDate,
                                tracker(text, "inform_treatment_date", sender="stranger"))
        assert responses(messages) == ["utter_treatment_date_saved"]
        assert messages[0]["day"] == day
    with context.session() as session:
        patient = repository.find_patient_by_sender(session, "stranger")
        assert len(patient.treatments) == 1


@pytest.mark.asyncio
async def test_a_date_that_cannot_be_understood_gets_a_clear_answer(context):
    for text in ("next week", "in 3 days", "🌞🌞"):
        messages, events = await run(rasa_actions.ActionSetTreatmentDate,
                                     tracker(text, "inform_treatment_date", sender="stranger"))
        assert responses(messages) == ["utter_treatment_date_not_understood"]
        assert messages[0]["problem"]
        assert events == []
    with context.session() as session:
        assert repository.find_patient_by_sender(session, "stranger") is None


@pytest.mark.asyncio
async def test_asking_for_a_person_is_recorded_and_says_when(context, enrolled):
    messages, _ = await run(rasa_actions.ActionRequestHuman,
                            tracker("can i talk to a nurse please", "ask_human"))
    assert responses(messages) == ["utter_human_handoff"]
    assert messages[0]["opening_note"] == "The clinic is open today until 18:00."
    assert [level for level, _, _ in escalations(context)] == ["human"]


@pytest.mark.asyncio
async def test_next_treatment_date_follows_the_interval(context, enrolled):
    messages, _ = await run(rasa_actions.ActionAnswerNextTreatment,
                            tracker("when is my next session", "ask_next_treatment"))
    assert responses(messages) == ["utter_next_treatment"]
    assert messages[0]["next_when"] == "Wednesday 23 December"
    assert messages[0]["number"] == 1


@pytest.mark.asyncio
async def test_session_start_fills_the_clinic_slots(context):
    _, events = await run(rasa_actions.ActionSessionStart, tracker("", "greet"))
    assert SlotSet("clinic_phone", "+44 20 7946 0321") in events
    assert SlotSet("emergency_number", "999") in events


@pytest.mark.asyncio
async def test_every_response_an_action_can_send_is_in_the_domain(protocol):
    import yaml

    from actions.answers import responses_sent_by_actions
    from aftercare.settings import PROJECT_ROOT

    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text())
    assert responses_sent_by_actions(protocol) <= set(domain["responses"])


# --- Check-ins, enrolment and symptom reports -----------------------------------

def user_event(text: str, intent: str, at: datetime, entities: list | None = None) -> dict:
    return {"event": "user", "timestamp": at.timestamp(), "text": text,
            "parse_data": {"intent": {"name": intent}, "entities": entities or []}}


def checkin_event(checkin_id: str, day: int, at: datetime) -> dict:
    return user_event("EXTERNAL: EXTERNAL_checkin", "EXTERNAL_checkin", at, [
        {"entity": "checkin", "value": checkin_id}, {"entity": "day", "value": day}])


def external(intent: str, entities: dict, sender: str = SENDER) -> Tracker:
    message = {"text": f"EXTERNAL: {intent}", "intent": {"name": intent},
               "entities": [{"entity": k, "value": v} for k, v in entities.items()]}
    return Tracker(sender, {}, message, [], False, None, {}, "action_listen")


def answer_to_checkin(text: str, intent: str, checkin_id: str, asked_at: datetime,
                      now: datetime, level: str | None = None, sender: str = SENDER,
                      earlier_replies: int = 0) -> Tracker:
    """A patient message some time after a check-in, as Rasa hands it to the actions."""
    events = [checkin_event(checkin_id, 1, asked_at)]
    events += [user_event("hmm", "affirm", asked_at) for _ in range(earlier_replies)]
    events.append(user_event(text, intent, now))
    return tracker(text, intent, sender=sender, events=events,
                   slots={"checkin": checkin_id, "red_flag_level": level})


def reports(context) -> list[tuple]:
    with context.session() as session:
        patient = repository.find_patient_by_sender(session, SENDER)
        return [(r.symptom, r.day, r.checkin_id, r.level, r.text, r.treatment_id)
                for r in repository.list_symptom_reports(session, patient.id)]


def treatment_id(context) -> int:
    with context.session() as session:
        patient = repository.find_patient_by_sender(session, SENDER)
        return repository.current_treatment(patient).id


@pytest.mark.asyncio
async def test_a_checkin_sends_its_own_question_and_opens_the_checkin(context, enrolled, clock):
    clock.now = london(2026, 11, 26, 9, 0)
    messages, events = await run(rasa_actions.ActionSendCheckin,
                                 external("EXTERNAL_checkin", {"checkin": "day1_morning",
                                                               "day": 1}))
    assert responses(messages) == ["utter_checkin_day1_morning"]
    assert messages[0]["day"] == 1
    assert events == [SlotSet("checkin", "day1_morning")]


@pytest.mark.asyncio
async def test_the_evening_checkin_names_what_is_still_off_limits(context, enrolled, clock):
    clock.now = london(2026, 11, 25, 19, 0)  # 9 hours after the treatment
    messages, _ = await run(rasa_actions.ActionSendCheckin,
                            external("EXTERNAL_checkin", {"checkin": "day0_evening", "day": 0}))
    assert responses(messages) == ["utter_checkin_day0_evening"]
    off_limits = messages[0]["off_limits"]
    assert "makeup" in off_limits and "alcohol" in off_limits
    assert "washing" not in off_limits  # allowed 8 hours after the treatment
    assert messages[0]["settle_days"] == "2–3"


@pytest.mark.asyncio
async def test_the_reminder_names_the_day_of_the_next_session(context, enrolled, clock):
    clock.now = london(2026, 12, 20, 10, 0)
    messages, _ = await run(rasa_actions.ActionSendCheckin,
                            external("EXTERNAL_checkin", {"checkin": "next_session_reminder",
                                                          "day": 25}))
    assert responses(messages) == ["utter_checkin_next_session_reminder"]
    assert messages[0]["next_when"] == "on Wednesday"  # the 23rd, 3 days ahead


@pytest.mark.asyncio
async def test_an_unknown_checkin_id_gets_the_generic_checkin(context, enrolled):
    messages, events = await run(rasa_actions.ActionSendCheckin,
                                 external("EXTERNAL_checkin", {"checkin": "day5_whatever"}))
    assert responses(messages) == ["utter_checkin_generic"]
    assert messages[0]["clinic_name"] == "Riverside Skin Clinic"
    assert events == [SlotSet("checkin", "day5_whatever")]


def test_every_checkin_response_has_two_to_four_intent_buttons(protocol):
    import yaml

    from actions.answers import checkin_response
    from aftercare.settings import PROJECT_ROOT

    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text())
    names = {checkin_response(protocol, c.id) for c in protocol.checkins}
    names |= {checkin_response(protocol, None), "utter_checkin_clarify"}
    for name in names:
        for variation in domain["responses"][name]:
            buttons = variation["buttons"]
            assert 2 <= len(buttons) <= 4, name
            for button in buttons:
                payload = button["payload"]
                assert len(payload.encode()) <= 64 and payload.startswith("/"), name
                assert payload[1:] in domain["intents"], (name, payload)


@pytest.mark.asyncio
async def test_a_checkin_answer_is_recorded_with_the_checkin_and_day(context, enrolled, clock):
    asked = london(2026, 11, 26, 9, 0)
    clock.now = london(2026, 11, 26, 11, 30)
    text = "still a bit red on my cheeks"
    messages, events = await run(rasa_actions.ActionAnswerSymptom, answer_to_checkin(
        text, "report_redness", "day1_morning", asked, clock.now))
    assert responses(messages) == ["utter_symptom_phase_expected", "utter_symptom_redness"]
    assert events == [SlotSet("checkin", None)]  # answered: the check-in is closed
    assert reports(context) == [
        ("report_redness", 1, "day1_morning", None, text, treatment_id(context))]


@pytest.mark.asyncio
async def test_a_report_long_after_the_checkin_is_recorded_without_it(context, enrolled, clock):
    asked = london(2026, 11, 26, 9, 0)
    clock.now = london(2026, 11, 27, 8, 0)  # 23 hours later: no longer its answer
    await run(rasa_actions.ActionAnswerSymptom, answer_to_checkin(
        "it's really itchy today", "report_itching", "day1_morning", asked, clock.now))
    assert reports(context) == [
        ("report_itching", 2, None, None, "it's really itchy today", treatment_id(context))]


@pytest.mark.asyncio
async def test_a_report_without_any_checkin_is_recorded_with_its_triage_level(context, enrolled,
                                                                             clock):
    clock.now = london(2026, 11, 27, 8, 0)
    text = "there's yellow crust on my chin"
    await run(rasa_actions.ActionAnswerSymptom,
              tracker(text, "report_infection_signs", slots={"red_flag_level": "urgent"}))
    assert reports(context) == [
        ("report_infection_signs", 2, None, "urgent", text, treatment_id(context))]


@pytest.mark.asyncio
async def test_an_unknown_patient_is_answered_but_nothing_is_recorded(context, clock):
    asked = london(2026, 11, 26, 9, 0)
    clock.now = london(2026, 11, 26, 10, 0)
    messages, events = await run(rasa_actions.ActionAnswerSymptom, answer_to_checkin(
        "still red", "report_redness", "day1_morning", asked, clock.now, sender="stranger"))
    assert "utter_ask_treatment_date" in responses(messages)
    assert SlotSet("pending_intent", "report_redness") in events
    messages, _ = await run(rasa_actions.ActionAnswerFeelingFine, answer_to_checkin(
        "all good", "report_feeling_fine", "day1_morning", asked, clock.now, sender="stranger"))
    assert responses(messages) == ["utter_feeling_fine"]
    with context.session() as session:
        assert session.query(SymptomReport).count() == 0


@pytest.mark.asyncio
async def test_fine_is_recorded_as_fine_and_acknowledged_for_the_day(context, enrolled, clock):
    asked = london(2026, 11, 27, 9, 0)
    clock.now = london(2026, 11, 27, 9, 20)
    messages, events = await run(rasa_actions.ActionAnswerFeelingFine, answer_to_checkin(
        "all good thanks", "report_feeling_fine", "day2_morning", asked, clock.now))
    assert responses(messages) == ["utter_feeling_fine_healing"]
    assert messages[0]["day"] == 2
    assert events == [SlotSet("checkin", None)]
    assert reports(context) == [
        ("fine", 2, "day2_morning", None, "all good thanks", treatment_id(context))]


@pytest.mark.asyncio
async def test_fine_with_a_red_flag_gets_no_cheerful_reply(context, enrolled, clock):
    text = "all good except my lips are swelling up"
    messages, _ = await run(rasa_actions.ActionAnswerFeelingFine,
                            tracker(text, "report_feeling_fine",
                                    slots={"red_flag_level": "emergency"}))
    assert messages == []  # the safety message (sent before) stands alone
    assert reports(context)[0][:4] == ("fine", 0, None, "emergency")


@pytest.mark.asyncio
async def test_happy_with_results_gets_the_results_acknowledgement(context, enrolled, clock):
    asked = london(2027, 4, 24, 10, 0)
    clock.now = london(2027, 4, 24, 12, 0)
    messages, _ = await run(rasa_actions.ActionAnswerFeelingFine, answer_to_checkin(
        "/report_feeling_fine", "report_feeling_fine", "results", asked, clock.now))
    assert responses(messages) == ["utter_feeling_fine_results"]
    assert messages[0]["full_months"] == 6


@pytest.mark.asyncio
async def test_same_as_yesterday_repeats_the_latest_report(context, enrolled, clock):
    clock.now = london(2026, 11, 26, 9, 30)
    await run(rasa_actions.ActionAnswerSymptom,
              tracker("my cheeks are still red", "report_redness"))
    asked = london(2026, 11, 27, 9, 0)
    clock.now = london(2026, 11, 27, 9, 5)
    messages, events = await run(rasa_actions.ActionAnswerNoChange, answer_to_checkin(
        "same as yesterday", "report_no_change", "day2_morning", asked, clock.now))
    assert responses(messages) == ["utter_no_change_noted", "utter_symptom_phase_expected",
                                   "utter_symptom_redness"]
    assert SlotSet("checkin", None) in events
    assert reports(context)[-1][:4] == ("report_redness", 2, "day2_morning", None)


@pytest.mark.asyncio
async def test_same_as_before_on_day_8_is_followed_up_like_the_symptom(context, enrolled, clock):
    clock.now = london(2026, 12, 2, 10, 0)  # day 7
    await run(rasa_actions.ActionAnswerSymptom, tracker("still red", "report_redness"))
    clock.now = london(2026, 12, 3, 10, 0)  # day 8: redness is past its window
    messages, events = await run(rasa_actions.ActionAnswerNoChange,
                                 tracker("no change", "report_no_change"))
    assert responses(messages)[:2] == ["utter_red_flag_routine", "utter_no_change_noted"]
    assert SlotSet("red_flag_level", "routine") in events
    assert [level for level, _, _ in escalations(context)] == ["routine"]
    assert reports(context)[-1][:4] == ("report_redness", 8, None, "routine")


@pytest.mark.asyncio
async def test_same_as_yesterday_with_nothing_to_compare_is_kept_and_asks_again(context, enrolled):
    """A first check-in answered "same as yesterday": the answer is kept for the
    clinic as said (not lost), and the patient is asked how the skin is."""
    messages, events = await run(rasa_actions.ActionAnswerNoChange,
                                 tracker("same as yesterday", "report_no_change"))
    assert responses(messages) == ["utter_checkin_clarify"]
    assert events == []
    assert reports(context) == [("report_no_change", 0, None, None, "same as yesterday",
                                 treatment_id(context))]


@pytest.mark.asyncio
async def test_a_bare_yes_after_a_checkin_is_asked_again_once(context, enrolled, clock):
    asked = london(2026, 11, 26, 9, 0)
    clock.now = london(2026, 11, 26, 9, 10)
    messages, events = await run(rasa_actions.ActionAcknowledge, answer_to_checkin(
        "yes", "affirm", "day1_morning", asked, clock.now))
    assert responses(messages) == ["utter_checkin_clarify"] and events == []
    messages, events = await run(rasa_actions.ActionAcknowledge, answer_to_checkin(
        "yes", "affirm", "day1_morning", asked, clock.now, earlier_replies=1))
    assert responses(messages) == ["utter_acknowledge"]
    assert events == [SlotSet("checkin", None)]
    assert reports(context) == []


@pytest.mark.asyncio
async def test_yes_and_no_answer_the_reminder_of_the_next_session(context, enrolled, clock):
    asked = london(2026, 12, 20, 10, 0)
    clock.now = london(2026, 12, 20, 10, 5)
    for intent, expected in (("affirm", "utter_checkin_reminder_confirmed"),
                             ("deny", "utter_checkin_reminder_reschedule")):
        messages, events = await run(rasa_actions.ActionAcknowledge, answer_to_checkin(
            "x", intent, "next_session_reminder", asked, clock.now))
        assert responses(messages) == [expected]
        assert messages[0]["clinic_phone"] == "+44 20 7946 0321"
        assert events == [SlotSet("checkin", None)]


@pytest.mark.asyncio
async def test_yes_without_a_checkin_is_a_plain_acknowledgement(context, enrolled):
    messages, events = await run(rasa_actions.ActionAcknowledge, tracker("ok", "affirm"))
    assert responses(messages) == ["utter_acknowledge"] and events == []


@pytest.mark.asyncio
async def test_the_welcome_on_the_treatment_day(context, enrolled, clock):
    messages, events = await run(rasa_actions.ActionWelcomeEnrolled,
                                 external("EXTERNAL_enrolled", {"day": 0}))
    assert responses(messages) == ["utter_enrolled_day0"]  # one message
    assert messages[0]["settle_days"] == "2–3"
    waits = messages[0]["waits"].splitlines()
    assert "- makeup: until tomorrow at 10:00" in waits
    assert "- exercise and anything that makes you sweat: until Friday at 10:00" in waits
    assert "- washing your face: until today at 18:00" in waits
    assert messages[0]["emergency_number"] == "999"
    assert SlotSet("checkin", None) in events


@pytest.mark.asyncio
async def test_the_welcome_is_for_the_day_the_patient_enrols(context, enrolled, clock):
    clock.now = london(2026, 11, 28, 12, 0)  # day 3
    messages, _ = await run(rasa_actions.ActionWelcomeEnrolled,
                            external("EXTERNAL_enrolled", {"day": 3}))
    assert responses(messages) == ["utter_enrolled_later"]
    assert messages[0]["day"] == 3
    assert "redness and warmth" in messages[0]["expected_today"]
    waits = messages[0]["waits"]
    assert "makeup" not in waits and "exercise" not in waits
    assert "- retinol, vitamin C, acids and scrubs: until Wednesday at 10:00" in waits
    assert "- swimming: until Monday at 10:00" in waits

    clock.now = london(2026, 12, 3, 12, 0)  # day 8: bruises can linger; Botox waits to day 14
    messages, _ = await run(rasa_actions.ActionWelcomeEnrolled,
                            external("EXTERNAL_enrolled", {"day": 8}))
    assert responses(messages) == ["utter_enrolled_later"]
    assert messages[0]["expected_today"] == "small bruises"
    assert messages[0]["waits"] == "- Botox, filler, laser and peels: until Wednesday at 10:00"

    clock.now = london(2026, 12, 10, 12, 0)  # day 15
    messages, _ = await run(rasa_actions.ActionWelcomeEnrolled,
                            external("EXTERNAL_enrolled", {"day": 15}))
    assert responses(messages) == ["utter_enrolled_settled"]


@pytest.mark.asyncio
async def test_the_welcome_for_a_chat_the_store_does_not_know(context):
    messages, _ = await run(rasa_actions.ActionWelcomeEnrolled,
                            external("EXTERNAL_enrolled", {"day": 2}, sender="stranger"))
    assert responses(messages) == ["utter_enrolled_unknown_day"]
    assert messages[0]["clinic_phone"] == "+44 20 7946 0321"


@pytest.mark.asyncio
async def test_the_safety_check_lets_external_intents_through(context, enrolled):
    messages, events = await run(rasa_actions.ActionSafetyCheck,
                                 external("EXTERNAL_checkin", {"checkin": "day7"}))
    assert messages == [] and events == [SlotSet("red_flag_level", None)]
    assert escalations(context) == []


@pytest.mark.asyncio
async def test_a_new_session_keeps_the_open_checkin(context):
    old = Tracker(SENDER, {"checkin": "day1_morning", "clinic_phone": "x",
                           "pending_intent": None}, {}, [], False, None, {}, "action_listen")
    _, events = await run(rasa_actions.ActionSessionStart, old)
    assert SlotSet("checkin", "day1_morning") in events
    assert SlotSet("clinic_phone", "+44 20 7946 0321") in events
    assert SlotSet("pending_intent", None) not in events


@pytest.mark.asyncio
async def test_the_results_checkin_says_how_long_it_has_been(context, enrolled):
    messages, _ = await run(rasa_actions.ActionSendCheckin,
                            external("EXTERNAL_checkin", {"checkin": "results", "day": 90}))
    assert responses(messages) == ["utter_checkin_results"]
    assert messages[0]["since_last"] == "about 3 months"
    assert messages[0]["full_months"] == 6


# --- One coherent reply, and asking instead of guessing (issue 9) ------------

DOMAIN = yaml.safe_load((Path(__file__).resolve().parent.parent / "domain.yml").read_text())


def ranked(text: str, ranking: list[tuple[str, float]], entities: list | None = None,
           slots: dict | None = None) -> Tracker:
    message = {"text": text, "intent": {"name": "nlu_fallback", "confidence": 0.3},
               "intent_ranking": [{"name": "nlu_fallback", "confidence": 0.3}]
               + [{"name": n, "confidence": c} for n, c in ranking],
               "entities": entities or []}
    return Tracker(SENDER, slots or {}, message, [], False, None, {}, "action_listen")


async def run_with_domain(action, tracker_: Tracker) -> tuple[list[dict], list]:
    dispatcher = CollectingDispatcher()
    events = await action().run(dispatcher, tracker_, DOMAIN)
    return dispatcher.messages, events


@pytest.mark.asyncio
async def test_an_urgent_message_gets_no_that_is_expected(context, enrolled):
    messages, events = await run(rasa_actions.ActionAnswerSymptom, tracker(
        "redder again today", "report_redness", slots={"red_flag_level": "urgent"}))
    assert messages == []
    assert reports(context)[-1][:4] == ("report_redness", 0, None, "urgent")


@pytest.mark.asyncio
async def test_a_question_after_an_emergency_is_left_to_the_nurse(context, enrolled):
    messages, _ = await run(rasa_actions.ActionAnswerWhenAllowed, tracker(
        "lips swelling, can i wear lipstick", "ask_makeup", slots={"red_flag_level": "emergency"}))
    assert responses(messages) == ["utter_other_question_after_red_flag"]


@pytest.mark.asyncio
async def test_after_a_routine_flag_only_the_care_advice_follows(context, enrolled, clock):
    clock.now = london(2026, 12, 4, 12, 0)   # day 9
    messages, _ = await run(rasa_actions.ActionAnswerSymptom, tracker(
        "still red over a week on", "report_redness", slots={"red_flag_level": "routine"}))
    assert responses(messages) == ["utter_symptom_redness"]


@pytest.mark.asyncio
async def test_close_readings_are_offered_as_buttons_with_a_person(context, enrolled):
    messages, events = await run_with_domain(rasa_actions.ActionClarify, ranked(
        "what about the weekend thing", [("ask_makeup", 0.31), ("ask_alcohol", 0.29),
                                         ("greet", 0.1)]))
    assert responses(messages) == ["utter_clarify_meaning"]
    assert messages[0]["buttons"] == [
        {"title": "When can I wear makeup?", "payload": "/ask_makeup"},
        {"title": "Drinking alcohol", "payload": "/ask_alcohol"},
        {"title": "Talk to a person", "payload": "/ask_human"}]
    assert events == [SlotSet("clarify_text", "what about the weekend thing")]


@pytest.mark.asyncio
async def test_an_unclear_symptom_is_asked_about_warning_signs_first(context, enrolled):
    messages, _ = await run_with_domain(rasa_actions.ActionClarify, ranked(
        "face weird and hot", [("ask_is_normal", 0.3), ("report_redness", 0.28)]))
    assert responses(messages) == ["utter_clarify_symptom"]
    assert [b["payload"] for b in messages[0]["buttons"]] == [
        "/confirm_warning_signs", "/report_redness", "/ask_human"]


@pytest.mark.asyncio
async def test_after_a_safety_message_the_unclear_message_is_not_asked_about(context, enrolled):
    messages, _ = await run_with_domain(rasa_actions.ActionClarify, ranked(
        "lips big", [("report_swelling", 0.3)], slots={"red_flag_level": "emergency"}))
    assert messages == []


@pytest.mark.asyncio
async def test_yes_to_the_warning_signs_is_escalated_as_urgent(context, enrolled):
    messages, events = await run(rasa_actions.ActionSafetyCheck, tracker(
        "/confirm_warning_signs", "confirm_warning_signs"))
    assert responses(messages)[0].startswith("utter_red_flag_urgent")
    assert SlotSet("red_flag_level", "urgent") in events


@pytest.mark.asyncio
async def test_a_tapped_meaning_is_answered_for_the_original_words(context, enrolled):
    messages, _ = await run(rasa_actions.ActionAnswerWhenAllowed, tracker(
        "/ask_skincare_products", "ask_skincare_products",
        slots={"clarify_text": "when can i use retinol again"}))
    assert responses(messages) == ["utter_retinoids_not_yet", "utter_retinoids_how"]


@pytest.mark.asyncio
async def test_event_ready_names_when_the_redness_settles(context, enrolled):
    messages, _ = await run(rasa_actions.ActionAnswerEventReady, tracker(
        "wedding on saturday, will i look ok", "ask_event_ready"))
    assert responses(messages) == ["utter_event_ready"]
    assert messages[0]["makeup_when"] == "tomorrow at 10:00"
    assert messages[0]["settle_when"].startswith("the end of ")
    assert messages[0]["flaking_until"] == 7
