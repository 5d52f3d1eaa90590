"""Which text a check-in goes out with: its own utter_checkin_<id> when the
assistant's domain has it, the generic check-in otherwise (never a response
the domain lacks, which Rasa would turn into no message at all)."""
from __future__ import annotations

from dataclasses import replace

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import actions as rasa_actions
from actions.answers import responses_sent_by_actions
from actions.context import AssistantContext, set_default_context
from aftercare.protocol import load_protocol
from aftercare.settings import PROJECT_ROOT, get_settings
from tests.conftest import PROTOCOL_PATH

pytestmark = pytest.mark.all_databases
DOMAIN = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text())


@pytest.fixture
def extra_protocol(tmp_path):
    data = yaml.safe_load(PROTOCOL_PATH.read_text())
    data["checkins"].append({"id": "day5_extra", "day": 5, "time": "10:00", "grace_hours": 6})
    path = tmp_path / "protocol.yml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def context(database_url, extra_protocol):
    ctx = AssistantContext(settings=replace(get_settings(), database_url=database_url,
                                            protocol_path=extra_protocol))
    set_default_context(ctx)
    yield ctx
    set_default_context(None)


async def _checkin(checkin_id: str, domain: dict) -> tuple[list[dict], list]:
    message = {"text": "EXTERNAL: EXTERNAL_checkin", "intent": {"name": "EXTERNAL_checkin"},
               "entities": [{"entity": "checkin", "value": checkin_id},
                            {"entity": "day", "value": 5}]}
    tracker = Tracker("chat-1", {}, message, [], False, None, {}, "action_listen")
    dispatcher = CollectingDispatcher()
    events = await rasa_actions.ActionSendCheckin().run(dispatcher, tracker, domain)
    return dispatcher.messages, events


@pytest.mark.asyncio
async def test_a_protocol_checkin_the_domain_has_no_text_for_gets_the_generic_one(context):
    messages, events = await _checkin("day5_extra", DOMAIN)
    assert [m["response"] for m in messages] == ["utter_checkin_generic"]
    assert messages[0]["clinic_phone"] == "+44 20 7946 0321"
    assert events == [SlotSet("checkin", "day5_extra")]   # its answers still count for it


@pytest.mark.asyncio
async def test_a_checkin_with_its_own_text_keeps_it(context):
    messages, _ = await _checkin("day7", DOMAIN)
    assert [m["response"] for m in messages] == ["utter_checkin_day7"]


def test_the_authoring_checks_see_the_generic_text_for_a_checkin_without_its_own():
    protocol = load_protocol(PROTOCOL_PATH)
    protocol = protocol.copy(update={"checkins": [
        *protocol.checkins, protocol.checkins[0].copy(update={"id": "day5_extra"})]})
    sent = responses_sent_by_actions(protocol)
    assert "utter_checkin_day5_extra" not in sent
    assert {"utter_checkin_generic", "utter_checkin_day7"} <= sent
    assert sent <= set(DOMAIN["responses"])


def test_the_generic_checkin_asks_about_the_skin_and_gives_the_clinics_number():
    (variation,) = DOMAIN["responses"]["utter_checkin_generic"]
    assert "how is your skin" in variation["text"] and "{clinic_phone}" in variation["text"]
