"""The bot's connection to Redis (AFTERCARE_REDIS_URL), and whether it works.

Redis carries what bot processes and Rasa servers share: Rasa's conversation
locks (aftercare/rasa_locks.py) and the Telegram sending budget
(bot/budget.py). The link pings it every few seconds; when Redis stops
answering, or a command through the link fails, it is down, said once in the
log, and the listeners hear it (the Rasa client then sends every conversation
to one Rasa server, the budget falls back to this process's share); when it
answers again, it is up and they hear that too. Only Redis' host and port are
ever logged, never the URL (it may hold a password).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Optional

import redis.asyncio as redis_asyncio

from aftercare.settings import redis_address

logger = logging.getLogger(__name__)

CHECK_SECONDS = 2.0
# Redis answers in milliseconds; a busy machine can hold the event loop up for
# a second or more, and a reply that arrived meanwhile must not read as an outage.
TIMEOUT_SECONDS = 5.0

Listener = Callable[[bool], None]
Hook = Callable[[], Awaitable[None]]


class RedisLink:
    def __init__(self, url: str, check_seconds: float = CHECK_SECONDS) -> None:
        self.client = redis_asyncio.Redis.from_url(
            url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS)
        self.address = redis_address(url)
        self.check_seconds = check_seconds
        self.up = True
        self._listeners: list[Listener] = []
        self._hooks: list[Hook] = []
        self._task: Optional[asyncio.Task] = None

    def on_change(self, listener: Listener) -> None:
        """listener(up) is called each time Redis goes down or comes back."""
        self._listeners.append(listener)

    def every_check(self, hook: Hook) -> None:
        """await hook() after each successful check (a heartbeat of its own)."""
        self._hooks.append(hook)

    async def start(self) -> None:
        await self.check()
        if self.up:
            logger.info("Redis at %s is reachable", self.address)
        self._task = asyncio.create_task(self._watch(), name="redis-link")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.client.close()

    async def check(self) -> bool:
        try:
            await self.client.ping()
            for hook in self._hooks:
                await hook()
        except Exception as exc:   # redis' ConnectionError, TimeoutError, ResponseError...
            self.failed(exc)
            return False
        self._set(True)
        return True

    def failed(self, exc: BaseException) -> None:
        """A command through the link failed: Redis is down until a check passes."""
        if self.up:
            logger.error("Redis at %s is unreachable (%s)", self.address, type(exc).__name__)
        self._set(False)

    def _set(self, up: bool) -> None:
        if up == self.up:
            return
        self.up = up
        if up:
            logger.warning("Redis at %s is reachable again", self.address)
        for listener in self._listeners:
            try:
                listener(up)
            except Exception as exc:   # one listener must not stop the others hearing
                logger.error("acting on Redis being %s failed: %s", "up" if up else "down",
                             type(exc).__name__, exc_info=exc)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.check_seconds)
            await self.check()
