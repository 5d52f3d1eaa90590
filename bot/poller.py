"""Long polling by one bot process at a time, and a standby that takes over.

Telegram serves one getUpdates at a time for a bot: a second poller gets 409
Conflict, and the two keep cutting each other off. So every polling process
(the default; TELEGRAM_RECEIVE_UPDATES=no never polls, a webhook needs no
lock) asks for the polling lock (bot/leader.py): the one that gets it polls,
the others stand by and ask again every few seconds. When the poller dies
its lock is freed (the kernel drops a file lock, PostgreSQL an advisory lock
with the session), and a standby takes over. Telegram keeps the updates
nobody fetched meanwhile, so patients' messages wait for the new poller
rather than being lost, and before it polls it handles the updates the
last poller had fetched and not handled (bot/update_journal.py). A poller
that loses its lock (PostgreSQL restarted) stops polling until it has the
lock again.
"""
from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional, TypeVar

from telegram import Update
from telegram.ext import Updater

from bot.leader import ASK_AGAIN_SECONDS, LeaderLock
from bot.polling import SkippingBot

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Poller:
    def __init__(self, updater: Updater, lock: LeaderLock, *, poll_timeout: int = 10,
                 ask_again_seconds: float = ASK_AGAIN_SECONDS) -> None:
        self._updater = updater
        self._lock = lock
        self._poll_timeout = poll_timeout
        self._ask_again_seconds = ask_again_seconds
        # The lock's connection is used from one thread, never the event loop's.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="polling-lock")
        self._task: Optional[asyncio.Task] = None

    @property
    def polling(self) -> bool:
        return self._updater.running

    async def start(self) -> None:
        if await self._in_thread(self._lock.try_acquire):
            await self._poll()
            logger.info("this process polls Telegram for updates (%s)", self._lock.description)
        else:
            logger.warning("another bot process polls Telegram for updates (%s): this one "
                           "stands by, and takes over if that one stops", self._lock.description)
        self._task = asyncio.create_task(self._watch(), name="polling-leadership")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._updater.running:
            await self._updater.stop()
        await self._in_thread(self._lock.release)
        self._thread.shutdown(wait=False)

    async def _poll(self) -> None:
        bot = self._updater.bot
        left = await bot.left_in_hand() if isinstance(bot, SkippingBot) else []
        if left:
            logger.warning("%d update(s) fetched by a bot process that stopped before it "
                           "handled them: handling them first", len(left))
        for update in left:
            await self._updater.update_queue.put(update)
        await self._updater.start_polling(poll_interval=0, timeout=self._poll_timeout,
                                          allowed_updates=Update.ALL_TYPES)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._ask_again_seconds)
            try:
                if self._updater.running:
                    if not await self._in_thread(self._lock.held):
                        logger.error("the polling lock was lost (%s): this process stops "
                                     "polling until it has it again", self._lock.description)
                        await self._updater.stop()
                elif await self._in_thread(self._lock.try_acquire):
                    logger.warning("the bot process that polled Telegram has stopped: this one "
                                   "takes over (%s)", self._lock.description)
                    await self._poll()
            except Exception as exc:   # asked again next time
                logger.error("polling lock: %s", type(exc).__name__, exc_info=exc)

    async def _in_thread(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, work)
