"""The compiled action-response validator checks exactly what Rasa's does."""
from __future__ import annotations

import pytest
from jsonschema import ValidationError, validate
from rasa.core.actions.action import RemoteAction

from aftercare import rasa_server

GOOD = {"events": [{"event": "slot", "name": "red_flag_level", "value": None}],
        "responses": [{"response": "utter_greet", "clinic_name": "X"}]}
BAD = [{"events": "not a list"}, {"events": [{"no_event_key": 1}]}, {"events": [], "responses": "x"}]


def test_accepts_what_rasa_accepts():
    validate(GOOD, RemoteAction.action_response_format_spec())
    assert rasa_server._validate_action_result(None, GOOD) is True


@pytest.mark.parametrize("response", BAD)
def test_refuses_what_rasa_refuses(response):
    with pytest.raises(ValidationError):
        validate(response, RemoteAction.action_response_format_spec())
    with pytest.raises(ValidationError, match="Failed to validate Action server response"):
        rasa_server._validate_action_result(None, response)


def test_install_replaces_the_method():
    rasa_server.install()
    assert RemoteAction._validate_action_result is rasa_server._validate_action_result
