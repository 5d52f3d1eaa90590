"""Updates in hand survive the bot process that fetched them.

python-telegram-bot confirms a batch of updates to Telegram with its next
getUpdates, at once, long before the patient's message in it has been
handled (logged, checked for red flags, answered). A bot process that dies
then takes those messages with it: Telegram will not send them again. So the
poller keeps each batch in the database (pending_updates) before it is
confirmed, and deletes each update once it has been handled; whichever
process polls next (the same one restarted, or a standby taking over,
bot/poller.py) handles what is left first. An update handled just before a
crash and not yet deleted is handled twice (the patient may read a reply
twice), never lost.
"""
from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timezone
from typing import Any, Callable, TypeVar

from sqlalchemy.orm import Session

from aftercare.store import db, pending_updates

logger = logging.getLogger(__name__)

T = TypeVar("T")


class UpdateJournal:
    def __init__(self, database_url: str) -> None:
        self._url = database_url

    async def keep(self, updates: list[tuple[int, dict[str, Any]]]) -> None:
        rows = [(update_id, json.dumps(raw, separators=(",", ":"))) for update_id, raw in updates]
        await self._run(lambda s: pending_updates.keep(s, rows, datetime.now(timezone.utc)))

    async def handled(self, update_id: int) -> None:
        try:
            await self._run(lambda s: pending_updates.handled(s, update_id))
        except Exception as exc:   # it is handled again after a restart: twice, not lost
            logger.warning("could not clear handled update %s: %s", update_id,
                           type(exc).__name__)

    async def left(self) -> list[tuple[int, dict[str, Any]]]:
        rows = await self._run(pending_updates.left)
        return [(update_id, json.loads(content)) for update_id, content in rows]

    async def _run(self, work: Callable[[Session], T]) -> T:
        def run() -> T:
            with db.session_scope(self._url) as session:
                return work(session)
        return await asyncio.to_thread(run)
