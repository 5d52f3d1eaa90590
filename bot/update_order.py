"""Updates of one chat are handled one after another, in the order Telegram sent them.

The application handles up to `max_concurrent_updates` updates at once, so that
one patient waiting for Rasa does not hold up the others. Without more, two
updates of one chat race: a sticker, a voice note and a command sent together
could be answered in any order, and a reply to an earlier message could arrive
after the reply to a later one. Here each chat waits for its previous update
before it takes one of the shared slots, so a chat that floods the bot never
occupies more than one slot.
"""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Optional

from telegram import Update
from telegram.ext import BaseUpdateProcessor


def chat_key(update: object) -> Optional[int]:
    """The chat an update belongs to, or None (such updates are not ordered)."""
    if isinstance(update, Update) and update.effective_chat is not None:
        return update.effective_chat.id
    return None


class ChatOrderedUpdateProcessor(BaseUpdateProcessor):
    """Concurrent across chats, in order within a chat.

    The application creates one task per update in the order it fetched them;
    asyncio.Lock wakes its waiters first come, first served, so each chat's
    updates run in that order."""

    def __init__(self, max_concurrent_updates: int,
                 on_handled: Optional[Callable[[object], Awaitable[None]]] = None) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}
        self._on_handled = on_handled

    async def process_update(self, update: object, coroutine: Awaitable) -> None:
        key = chat_key(update)
        if key is None:
            await super().process_update(update, coroutine)
            return
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                await super().process_update(update, coroutine)
        finally:
            self._users[key] -= 1
            if not self._users[key]:   # nobody waits: forget the chat
                del self._users[key]
                del self._locks[key]

    async def do_process_update(self, update: object, coroutine: Awaitable) -> None:
        """Handle it, then say so (bot/update_journal.py): also when handling
        failed (it would fail again), never when it was cancelled (the
        process is stopping; the next one handles it)."""
        try:
            await coroutine
        except asyncio.CancelledError:
            raise
        except Exception:
            await self._handled(update)
            raise
        await self._handled(update)

    async def _handled(self, update: object) -> None:
        if self._on_handled is not None:
            await self._on_handled(update)

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass
