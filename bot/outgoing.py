"""Turning the assistant's replies into Telegram messages: merged, split at
Telegram's length limit, with inline buttons."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.responses import Button

MAX_MESSAGE_CHARS = 4096          # Telegram's limit for a message's text
MAX_CALLBACK_BYTES = 64           # and for a button's callback data


@dataclass(frozen=True)
class Outgoing:
    text: str
    keyboard: Optional[InlineKeyboardMarkup] = None


def split_text(text: str, limit: int = MAX_MESSAGE_CHARS) -> list[str]:
    """Pieces of at most `limit` characters, cut at a paragraph, line, sentence
    or word boundary (in that order of preference); a word longer than the
    limit is the only thing ever cut in the middle."""
    text = text.strip()
    pieces = []
    while len(text) > limit:
        window = text[:limit + 1]
        cut = -1
        # A paragraph break near the start would leave a stub of a message (a
        # heading alone): a later sentence or word boundary is better then.
        for floor in (limit // 2, 0):
            for separator in ("\n\n", "\n", ". ", "! ", "? ", " "):
                position = window.rfind(separator, 0, limit)
                if position > floor:
                    # Keep a sentence's closing punctuation with it.
                    cut = position + 1 if separator[0] in ".!?" else position
                    break
            if cut > 0:
                break
        if cut <= 0:
            cut = limit
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        pieces.append(text)
    return pieces


def keyboard(buttons: Sequence[Button]) -> Optional[InlineKeyboardMarkup]:
    """One button per row (titles are short sentences); payloads too long for
    Telegram's callback data are left out rather than failing the message."""
    rows = [[InlineKeyboardButton(b.title, callback_data=b.payload)]
            for b in buttons if 0 < len(b.payload.encode("utf-8")) <= MAX_CALLBACK_BYTES]
    return InlineKeyboardMarkup(rows) if rows else None


def compose(replies: Iterable[tuple[str, Sequence[Button]]]) -> list[Outgoing]:
    """Join consecutive replies into as few Telegram messages as possible (one
    notification, and Telegram's one-message-a-second pace per chat); a reply
    with buttons ends its message, so each keyboard sits under its own text."""
    messages: list[Outgoing] = []
    pending: list[str] = []

    def flush(buttons: Sequence[Button] = ()) -> None:
        text = "\n\n".join(p for p in pending if p.strip())
        pending.clear()
        pieces = split_text(text) if text else []
        if not pieces and buttons:
            pieces = ["Please choose:"]
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            messages.append(Outgoing(piece, keyboard(buttons) if last and buttons else None))

    for text, buttons in replies:
        pending.append(text)
        if buttons:
            flush(buttons)
    flush()
    return messages
