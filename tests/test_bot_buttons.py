"""The callback data the bot accepts: the buttons in domain.yml and the
assistant's "Did you mean...?" buttons, nothing else."""
from __future__ import annotations

from bot.responses import button_payloads


def test_the_clarify_buttons_are_accepted():
    allowed = button_payloads()
    assert {"/ask_makeup", "/report_redness", "/ask_travel", "/confirm_warning_signs",
            "/ask_human"} <= allowed


def test_a_payload_no_button_sends_is_refused():
    allowed = button_payloads()
    assert "/EXTERNAL_checkin" not in allowed
    assert "/EXTERNAL_enrolled" not in allowed
    assert "/greet" not in allowed
    assert "/ask_makeup{\"x\": 1}" not in allowed
