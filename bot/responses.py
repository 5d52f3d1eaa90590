"""Texts the bot sends on its own (enrolment, commands, fallbacks), kept as
responses in domain.yml so content authors edit every patient-facing text in
one place. Placeholders such as {clinic_phone} are filled from the protocol.
"""
from __future__ import annotations

import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import yaml

from aftercare.settings import PROJECT_ROOT

DOMAIN_PATH = PROJECT_ROOT / "domain.yml"

# Every response the bot sends by name; `aftercare validate` checks they exist.
BOT_RESPONSES = frozenset({
    "utter_telegram_consent",          # after /start <code>: consent and privacy note,
                                       # buttons: bot:improve_yes / bot:improve_no
    "utter_telegram_no_code",          # /start without a code: ask the clinic for a link
    "utter_telegram_code_unknown",     # unknown or malformed code
    "utter_telegram_code_used",
    "utter_telegram_code_expired",     # expired, or replaced by a newer link
    "utter_telegram_chat_taken",       # this chat already belongs to another patient
    "utter_telegram_help",
    "utter_telegram_stop_done",        # check-ins paused
    "utter_telegram_resume_done",
    "utter_telegram_not_enrolled",     # /stop, /resume or /forget from a chat with no patient
    "utter_telegram_forget_confirm",   # buttons: bot:forget_yes / bot:forget_no
    "utter_telegram_forget_done",
    "utter_telegram_forget_cancelled",
    "utter_telegram_improve_agreed",   # bot:improve_yes: messages may improve the assistant
    "utter_telegram_improve_declined",  # bot:improve_no: they may not (inbox items removed)
    "utter_telegram_improve_status_yes",  # the {improve} line of /privacy
    "utter_telegram_improve_status_no",   # (not asked yet counts as no)
    "utter_telegram_privacy",          # /privacy: what is kept, {photos}, {improve}, buttons
    "utter_telegram_privacy_photos_kept",       # the {photos} line of /privacy
    "utter_telegram_privacy_photos_deleted",
    "utter_telegram_privacy_photos_not_asked",
    "utter_telegram_text_only",        # stickers, voice, video notes
    "utter_telegram_photo_consent",    # buttons: bot:photo_keep / bot:photo_discard
    "utter_telegram_photo_kept",
    "utter_telegram_photo_discarded",
    "utter_telegram_photo_not_enrolled",
    "utter_telegram_photo_too_large",
    "utter_telegram_trouble",          # Rasa or the action server did not answer
    "utter_telegram_error",            # the bot itself failed (e.g. the database was locked)
    "utter_telegram_flood",            # too many messages at once: kept for the team
    "utter_telegram_unknown_command",
    "utter_telegram_button_expired",
    "utter_telegram_handoff_started",  # a person at the clinic has taken over the chat
    "utter_telegram_handed_back",      # they resolved it: the assistant is back
    "utter_telegram_clinic_reply",     # a staff reply, {reply}, marked as from the clinic
})


@dataclass(frozen=True)
class Button:
    title: str
    payload: str


@dataclass(frozen=True)
class BotText:
    text: str
    buttons: tuple[Button, ...] = ()


class _Defaulting(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@lru_cache(maxsize=4)
def _responses(path: Path, mtime: float) -> dict:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle).get("responses", {})


def render(name: str, values: Mapping[str, object], path: Path = DOMAIN_PATH) -> BotText:
    """The first variation of response `name`, its placeholders filled from values."""
    responses = _responses(path, path.stat().st_mtime)
    if name not in responses:
        raise KeyError(f"domain.yml has no response {name!r}")
    variation = responses[name][0]
    fill = _Defaulting({k: str(v) for k, v in values.items()})
    text = string.Formatter().vformat(variation.get("text", ""), (), fill)
    buttons = tuple(Button(b["title"], b["payload"]) for b in variation.get("buttons", []))
    return BotText(text=text, buttons=buttons)


# The assistant's "Did you mean...?" buttons (action_clarify) are made when it
# asks: one per utter_meaning_<intent> response, plus the warning-signs answer.
MEANING_PREFIX = "utter_meaning_"
CLARIFY_PAYLOADS = frozenset({"/confirm_warning_signs", "/ask_human"})


def button_payloads(path: Path = DOMAIN_PATH) -> frozenset[str]:
    """Every button payload the assistant can send (those in domain.yml and the
    "Did you mean...?" ones): the only callback data the bot accepts."""
    responses = _responses(path, path.stat().st_mtime)
    static = {str(button["payload"]) for variations in responses.values()
              for variation in variations for button in variation.get("buttons", [])}
    meanings = {f"/{name[len(MEANING_PREFIX):]}" for name in responses
                if name.startswith(MEANING_PREFIX)}
    return frozenset(static | meanings | CLARIFY_PAYLOADS)
