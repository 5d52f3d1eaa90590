"""Long polling that one bad update cannot stop.

python-telegram-bot parses a getUpdates batch as a whole (Bot.get_updates):
one update it cannot parse fails the batch, the Updater logs the raw data
(names, messages) at CRITICAL and asks for the same batch again at once, for
ever, and no other update gets through. SkippingBot parses each update of a
batch on its own. One that cannot be parsed is logged by id and kind only,
left out, and confirmed with the next request (the offset moves past it), so
Telegram stops sending it.

With a journal (bot/update_journal.py) each batch is kept in the database
before python-telegram-bot sees it (and so before it is confirmed to
Telegram), and each update is cleared once handled (`finished`, called by
bot/update_order.py); `left_in_hand` gives the next poller what a stopped
one left.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Optional

from telegram import Update
from telegram.ext import ExtBot

from bot.update_journal import UpdateJournal

logger = logging.getLogger(__name__)

_FIELD_NAME = re.compile(r"[a-z_]{1,40}")


def update_kinds(raw: Any) -> str:
    """The kinds of an update ("message", "callback_query"): its top-level
    field names, never their contents."""
    if not isinstance(raw, dict):
        return type(raw).__name__
    kinds = [key for key in raw if key != "update_id"]
    shown = [key if isinstance(key, str) and _FIELD_NAME.fullmatch(key) else "?"
             for key in kinds[:3]]
    return "+".join(shown) + ("+…" if len(kinds) > 3 else "") or "empty"


def update_id_of(raw: Any) -> Optional[int]:
    update_id = raw.get("update_id") if isinstance(raw, dict) else None
    return update_id if isinstance(update_id, int) and not isinstance(update_id, bool) else None


class SkippingBot(ExtBot):
    __slots__ = ("_skip_below", "_journal", "_in_hand")

    def __init__(self, *args: Any, journal: Optional[UpdateJournal] = None,
                 **kwargs: Any) -> None:
        self._skip_below: Optional[int] = None   # updates below this id were left out
        self._journal = journal
        self._in_hand: set[int] = set()          # kept in the journal, not handled yet
        super().__init__(*args, **kwargs)

    async def finished(self, update: object) -> None:
        """The update has been handled: clear it from the journal."""
        await self._clear(getattr(update, "update_id", None))

    async def _clear(self, update_id: Optional[int]) -> None:
        if self._journal is not None and update_id in self._in_hand:
            self._in_hand.discard(update_id)
            await self._journal.handled(update_id)

    async def left_in_hand(self) -> list[Update]:
        """The updates a stopped poller kept and never handled, oldest first,
        now in this process's hand (Telegram is not asked for them again)."""
        if self._journal is None:
            return []
        left = [(update_id, raw) for update_id, raw in await self._journal.left()
                if update_id not in self._in_hand]
        updates = []
        for update_id, raw in left:
            self._in_hand.add(update_id)
            self._skip_below = max(self._skip_below or 0, update_id + 1)
            try:
                updates.append(Update.de_json(raw, self))
            except Exception as exc:  # it was readable when kept; never stall on it
                logger.error("kept update %s cannot be read (%s): cleared", update_id,
                             type(exc).__name__)
                await self._clear(update_id)
        return updates

    async def get_updates(self, offset: Optional[int] = None, *args: Any,
                          **kwargs: Any) -> tuple[Update, ...]:
        # The Updater only moves its offset past updates it received: confirm
        # the ones left out (a batch of nothing but bad updates included).
        if self._skip_below is not None and (offset is None or 0 <= offset < self._skip_below):
            offset = self._skip_below
        return await super().get_updates(offset, *args, **kwargs)

    async def _post(self, endpoint: str, data: Optional[dict] = None, **kwargs: Any) -> Any:
        result = await super()._post(endpoint, data, **kwargs)
        if endpoint == "getUpdates" and isinstance(result, list):
            return await self._keep([raw for raw in result if self._parsable(raw)])
        return result

    async def _keep(self, batch: list[Any]) -> list[Any]:
        """The batch, kept in the journal first if the database takes it. If
        it does not, the batch is handled all the same: the patients still
        get the clinic's number and the safety net, only a crash now would
        lose them."""
        if self._journal is None or not batch:
            return batch
        entries = [(update_id, raw) for raw in batch
                   if (update_id := update_id_of(raw)) is not None]
        try:
            await self._journal.keep(entries)
        except Exception as exc:   # the database is down or locked
            logger.error("could not keep %d update(s) before handling them (%s): handling "
                         "them without", len(batch), type(exc).__name__)
            return batch
        self._in_hand.update(update_id for update_id, _ in entries)
        return batch

    def _parsable(self, raw: Any) -> bool:
        try:
            Update.de_json(raw, self)
            return True
        except Exception as exc:  # anything the library cannot read: skip it, never stall
            update_id = update_id_of(raw)
            if update_id is not None:
                self._skip_below = max(self._skip_below or 0, update_id + 1)
            logger.error("update %s skipped: python-telegram-bot cannot read it (kind %s, %s)",
                         update_id, update_kinds(raw), type(exc).__name__)
            return False
