"""What the bot posts in the clinic's staff group: alerts, reminders, closures.

These are for staff, not patients, so they live here rather than in
domain.yml. Plain text (no parse mode): the patient's own words are quoted
as they are, and nothing in them can change the formatting.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Optional
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from aftercare.store.models import Escalation

HEADINGS = {
    "emergency": "🚨 EMERGENCY",
    "urgent": "⚠️ URGENT",
    "human": "🙋 ASKS FOR A PERSON",
    "routine": "ℹ️ ROUTINE",
}
# The patient's words are cut here so the alert stays inside one Telegram
# message; the review page has the whole conversation.
QUOTE_LIMIT = 3000
CALLBACK_PREFIX = "esc"
ACTIONS = {"ack": "Acknowledge", "res": "Resolve", "rep": "Reply"}


@dataclass(frozen=True)
class AlertView:
    """An escalation as the staff group sees it (read in the database thread)."""

    id: int
    level: str
    status: str
    patient_name: Optional[str]
    patient_id: Optional[int]
    sender_id: Optional[str]
    day: Optional[int]
    message: str
    reason: str
    created_at: datetime
    acknowledged_by: Optional[str]
    acknowledged_at: Optional[datetime]
    resolved_at: Optional[datetime]
    resolved_by: Optional[str]
    note: Optional[str]

    @classmethod
    def of(cls, escalation: Escalation) -> "AlertView":
        patient = escalation.patient
        resolved_by = next((e.actor for e in reversed(escalation.events)
                            if e.kind == "resolved"), None)
        return cls(id=escalation.id, level=escalation.level, status=escalation.status,
                   patient_name=patient.name if patient else None,
                   patient_id=patient.id if patient else None,
                   sender_id=escalation.sender_id, day=escalation.day,
                   message=escalation.message, reason=escalation.reason,
                   created_at=escalation.created_at,
                   acknowledged_by=escalation.acknowledged_by,
                   acknowledged_at=escalation.acknowledged_at,
                   resolved_at=escalation.resolved_at, resolved_by=resolved_by,
                   note=escalation.note)

    @property
    def who(self) -> str:
        if self.patient_name:
            return f"{self.patient_name} (patient {self.patient_id})"
        return "an unregistered chat"


def _clock(moment: Optional[datetime], zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%a %d %b %H:%M") if moment else "?"


def _quote(text: str) -> str:
    if len(text) > QUOTE_LIMIT:
        text = text[:QUOTE_LIMIT] + " … (cut; the whole message is on the review page)"
    return text


def status_line(view: AlertView, zone: ZoneInfo) -> str:
    if view.status == "resolved":
        line = f"✅ Resolved by {view.resolved_by or '?'} at {_clock(view.resolved_at, zone)}"
        return line + (f"\nNote: {view.note}" if view.note else "")
    if view.status == "acknowledged":
        return (f"👤 Acknowledged by {view.acknowledged_by or '?'} at "
                f"{_clock(view.acknowledged_at, zone)}: the assistant is quiet for this "
                "patient until it is resolved")
    return "Status: open, not yet acknowledged"


def alert_text(view: AlertView, zone: ZoneInfo, reminder: Optional[int] = None,
               waited_minutes: Optional[int] = None) -> str:
    heading = f"{HEADINGS.get(view.level, view.level.upper())} · escalation #{view.id}"
    if reminder is not None:
        heading = (f"⏰ REMINDER {reminder}: not acknowledged after {waited_minutes} min\n"
                   + heading)
    day = f"day {view.day} of recovery" if view.day is not None else "recovery day unknown"
    return "\n".join([
        heading,
        f"Patient: {view.who}, {day}",
        f"Reason: {view.reason}",
        f"Message: “{_quote(view.message)}”",
        f"Received: {_clock(view.created_at, zone)}",
        status_line(view, zone),
    ])


def buttons(view: AlertView) -> Optional[InlineKeyboardMarkup]:
    """Acknowledge / Resolve / Reply; fewer as the escalation moves on; none when resolved."""
    if view.status == "resolved":
        return None
    wanted = ["ack", "res", "rep"] if view.status == "open" else ["res", "rep"]
    return InlineKeyboardMarkup([[
        InlineKeyboardButton(ACTIONS[action],
                             callback_data=f"{CALLBACK_PREFIX}:{action}:{view.id}")
        for action in wanted]])


def parse_callback(data: str) -> Optional[tuple[str, int]]:
    """("ack" | "res" | "rep", escalation id) from a staff button, or None if malformed."""
    parts = data.split(":")
    if len(parts) != 3 or parts[0] != CALLBACK_PREFIX or parts[1] not in ACTIONS:
        return None
    if not parts[2].isdigit() or len(parts[2]) > 12:
        return None
    return parts[1], int(parts[2])


def reply_prompt(view: AlertView) -> str:
    return (f"✍️ Reply to this message with your answer for {view.who} (escalation "
            f"#{view.id}). It reaches them from the bot, marked as a message from the clinic.")


def patient_message(view: AlertView, text: str) -> str:
    return (f"💬 {view.who} wrote (escalation #{view.id}, a person is handling it, the "
            f"assistant is quiet):\n“{_quote(text)}”\nReply to this message to answer them.")


def closure_text(view: AlertView, zone: ZoneInfo, handed_back: bool) -> str:
    text = f"Escalation #{view.id}: {status_line(view, zone)}"
    if handed_back:
        text += "\nThe patient has been told the assistant is back."
    return text


def reply_sent(view: AlertView, parts: int) -> str:
    how = "" if parts == 1 else f" in {parts} messages (it was longer than Telegram allows)"
    return f"✉️ Your reply reached {view.who} (escalation #{view.id}){how}."


def reply_failed(view: AlertView, why: str) -> str:
    return (f"❗ Your reply to {view.who} (escalation #{view.id}) could not be delivered: "
            f"{why}. Please phone them.")


# --- the assistant's own health (bot/supervisor.py) -----------------------------

SERVICE_PARTS = {
    "rasa-server": "the Rasa server (reads the messages)",
    "action-server": "the action server (writes the answers)",
    "review": "the staff review page",
}
DEGRADED_HEADING = "🛠 ASSISTANT DEGRADED"
BACK_HEADING = "✅ ASSISTANT BACK"


def _part(name: str) -> str:
    """"rasa-server-2" (the second of several) reads as "the Rasa server 2 (...)"."""
    base, _, number = name.rpartition("-")
    if name not in SERVICE_PARTS and base in SERVICE_PARTS and number.isdigit():
        return SERVICE_PARTS[base].replace(" (", f" {number} (", 1)
    return SERVICE_PARTS.get(name, name)


def _parts(names: list[str]) -> str:
    return " and ".join(_part(name) for name in names)


def assistant_degraded(down: list[str], clinic_phone: str) -> str:
    return (f"{DEGRADED_HEADING}: {_parts(down)} stopped; it is being restarted "
            "automatically.\nMeanwhile patients still get the bot's own red-flag check: "
            "a red flag gets its safety message and an alert here, as usual. Any other "
            f"message gets a reply with the clinic's number ({clinic_phone}) and is kept as "
            "unanswered on the review page. Check-ins wait until the assistant is back.")


def assistant_back(parts: list[str]) -> str:
    return (f"{BACK_HEADING}: {_parts(parts)} running again; patients get the assistant's "
            "answers again. Messages kept as unanswered meanwhile are on the review page.")


def review_down() -> str:
    return (f"🛠 REVIEW PAGE DOWN: {_parts(['review'])} stopped; it is being restarted "
            "automatically. Patients are not affected, and alerts, buttons and /reply keep "
            "working here.")


def review_back() -> str:
    return f"✅ REVIEW PAGE BACK: {_parts(['review'])} is running again."
