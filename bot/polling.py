"""Long polling that one bad update cannot stop.

python-telegram-bot parses a getUpdates batch as a whole (Bot.get_updates):
one update it cannot parse fails the batch, the Updater logs the raw data
(names, messages) at CRITICAL and asks for the same batch again at once, for
ever, and no other update gets through. SkippingBot parses each update of a
batch on its own. One that cannot be parsed is logged by id and kind only,
left out, and confirmed with the next request (the offset moves past it), so
Telegram stops sending it.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Optional

from telegram import Update
from telegram.ext import ExtBot

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
    __slots__ = ("_skip_below",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._skip_below: Optional[int] = None   # updates below this id were left out
        super().__init__(*args, **kwargs)

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
            return [raw for raw in result if self._parsable(raw)]
        return result

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
