"""The custom actions on canned trackers, with a real SQLite store and a fixed clock."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import actions as rasa_actions
from actions.context import AssistantContext, set_default_context
from aftercare.settings import get_settings
from aftercare.store import repository
from tests.conftest import london

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
