"""Rasa's lock store for the aftercare servers (endpoints.yml `lock_store`).

Rasa handles one conversation's messages one at a time by taking a ticket
lock per conversation. Its in-memory lock store orders them within one Rasa
server only; with several servers the locks must be shared, in Redis. This
store is Rasa's own RedisLockStore when AFTERCARE_REDIS_URL is set (the whole
URL: host, port, database, password, TLS with rediss://), and Rasa's
in-memory one otherwise.

Rasa's RedisLockStore fails every message while Redis cannot be reached (the
lock cannot be taken, the reply is a 500). Here a server then takes its locks
in memory instead, says so once in its log, tries Redis again every few
seconds and goes back to it when it answers. In-memory locks order a
conversation only on one server, which is why the bot sends every
conversation to one Rasa server while it cannot reach Redis either
(bot/rasa.py).

The open-source RedisLockStore reads and writes a lock in separate steps, so
two servers taking one conversation's lock at the same moment can both get
it (RasaHQ/rasa pull request 11256, reverted). The bot keeps each
conversation on one Rasa server while it is up, and one server takes its
tickets one at a time, so that race does not arise (tests/test_rasa_routing.py).

A conversation's lock lasts LOCK_SECONDS, not Rasa's 60: a server killed while
handling a message leaves its ticket in Redis until it expires, and the server
that takes the conversation over waits for it. The bot sends a chat's messages
one at a time and waits 30 s for an answer, so the wait must end well before.
A waiting message whose own ticket expires takes a new one (see _acquire).
"""
from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from typing import AsyncIterator, Callable, Optional, Text

from rasa.core.lock import TicketLock
from rasa.core.lock_store import (
    InMemoryLockStore, LockError, LockStore, RedisLockStore,
)

from aftercare.settings import redis_address

logger = logging.getLogger(__name__)

KEY_PREFIX = "aftercare"       # keys are aftercare:lock:<conversation id>
RETRY_SECONDS = 5.0            # how often Redis is tried again while it is down
SOCKET_TIMEOUT = 2.0           # a Redis that hangs must not hold every reply for long
LOCK_SECONDS = 20.0            # a ticket's lifetime (see the module docstring)
WAIT_SECONDS = 0.1             # how often a waiting message looks whether it is its turn


class _UrlRedisLockStore(RedisLockStore):
    """Rasa's RedisLockStore, connected from one URL."""

    def __init__(self, url: str) -> None:  # noqa: super().__init__ wants host and port
        import redis

        self.red = redis.StrictRedis.from_url(url, socket_timeout=SOCKET_TIMEOUT,
                                              socket_connect_timeout=SOCKET_TIMEOUT)
        self.key_prefix = ""
        self._set_key_prefix(KEY_PREFIX)
        LockStore.__init__(self)


class AftercareLockStore(LockStore):
    """Redis (shared by every Rasa server) when configured and reachable, else
    memory; see the module docstring. Rasa calls it as
    `AftercareLockStore(endpoint_config=...)`, with the Redis URL as `url`."""

    def __init__(self, endpoint_config=None, url: Optional[str] = None,
                 retry_seconds: float = RETRY_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if url is None and endpoint_config is not None:
            url = endpoint_config.url
        url = (url or "").strip()
        self._memory = InMemoryLockStore()
        self._redis: Optional[_UrlRedisLockStore] = _UrlRedisLockStore(url) if url else None
        self._address = redis_address(url) if url else ""
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._down_since: Optional[float] = None
        self._next_try = 0.0
        super().__init__()
        logger.info("conversation locks: %s", f"Redis at {self._address}" if url
                    else "in memory (one Rasa server)")

    @property
    def shared(self) -> bool:
        """True while the locks are in Redis."""
        return self._redis is not None and self._down_since is None

    # The plain LockStore interface, for whatever in Rasa uses it directly.
    def get_lock(self, conversation_id: Text) -> Optional[TicketLock]:
        return self._store().get_lock(conversation_id)

    def delete_lock(self, conversation_id: Text) -> None:
        self._store().delete_lock(conversation_id)

    def save_lock(self, lock: TicketLock) -> None:
        self._store().save_lock(lock)

    def _store(self) -> LockStore:
        if self._redis is None:
            return self._memory
        if self._down_since is None:
            return self._redis
        now = self._clock()
        if now < self._next_try:
            return self._memory
        try:
            self._redis.red.ping()
        except Exception as exc:   # redis' ConnectionError, TimeoutError, AuthenticationError
            self._next_try = now + self._retry_seconds
            logger.debug("Redis at %s still unreachable: %s", self._address, type(exc).__name__)
            return self._memory
        logger.warning("Redis at %s is back after %.0f s: conversation locks are shared again",
                       self._address, now - self._down_since)
        self._down_since = None
        return self._redis

    def _lost(self, exc: BaseException) -> None:
        if self._down_since is None:
            self._down_since = self._clock()
            logger.error("Redis at %s is unreachable (%s): conversation locks are kept in this "
                         "server's memory until it is back (tried every %g s)", self._address,
                         type(exc.__cause__ or exc.__context__ or exc).__name__,
                         self._retry_seconds)
        self._next_try = self._clock() + self._retry_seconds

    @asynccontextmanager
    async def lock(self, conversation_id: Text, lock_lifetime: float = LOCK_SECONDS,
                   wait_time_in_seconds: float = WAIT_SECONDS) -> AsyncIterator[TicketLock]:
        store = self._store()
        try:
            ticket = store.issue_ticket(conversation_id, lock_lifetime)
        except LockError as exc:       # wraps whatever Redis raised
            if store is self._memory:
                raise
            self._lost(exc)
            store = self._memory
            ticket = store.issue_ticket(conversation_id, lock_lifetime)
        try:
            try:
                acquired, ticket = await _acquire(store, conversation_id, ticket,
                                                  lock_lifetime, wait_time_in_seconds)
            except LockError:
                raise
            except Exception as exc:   # Redis went away while we waited our turn
                if store is self._memory:
                    raise
                self._lost(exc)
                store = self._memory
                ticket = store.issue_ticket(conversation_id, lock_lifetime)
                acquired, ticket = await _acquire(store, conversation_id, ticket,
                                                  lock_lifetime, wait_time_in_seconds)
            yield acquired
        finally:
            try:
                store.cleanup(conversation_id, ticket)
            except Exception as exc:   # the ticket expires with its lifetime anyway
                if store is self._memory:
                    raise
                self._lost(exc)


async def _acquire(store: LockStore, conversation_id: Text, ticket: int, lifetime: float,
                   wait: float) -> tuple[TicketLock, int]:
    """Rasa's LockStore._acquire_lock, except that a ticket which expires while
    it waits is replaced by a new one. Rasa's waits for ever then: once every
    ticket has expired the lock serves ticket 0, and a waiter whose own
    ticket expired a moment after the dead holder's never gets its turn."""
    while True:
        lock = store.get_lock(conversation_id)
        if lock is None:
            raise LockError(f"Could not acquire lock for conversation_id '{conversation_id}'.")
        if lock._ticket_for_ticket_number(ticket) is None:
            ticket = store.issue_ticket(conversation_id, lifetime)
            continue
        if not lock.is_locked(ticket):
            return lock, ticket
        await asyncio.sleep(wait)
        store.update_lock(conversation_id)
