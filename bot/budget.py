"""Telegram's 30 messages a second for one bot, shared by every bot process.

Telegram counts what one bot token sends, whichever process sends it. A
request reaches Telegram somewhere between its start and its end, however
late a busy machine or network makes it, so counting the requests under way
and those that ended in the last second bounds what Telegram sees in any
second. Both budgets here count that way, with the requests spaced evenly
(no bursts):

- Pacer: within one process (the check-ins' own pace, and a bot process's
  share while Redis is down).
- SendBudget: across processes, with AFTERCARE_REDIS_URL set. A request to
  Telegram for a chat (what python-telegram-bot's own limiter counts) asks
  Redis for its turn: a Lua script, atomic, on Redis' clock, lets it go if
  fewer than 30 requests are under way or ended in the last second and the
  previous one went at least 1/30 s ago, and records it under way; when the
  request ends it is marked ended. One request per process asks at a time,
  the others queue behind it in the process. A request left under way by a
  process that died counts for IN_FLIGHT_SECONDS at most. Each ask, and each
  Redis check (bot/redis_link.py), also marks the process as sending and
  counts the processes heard from in the last MEMBER_SECONDS, on Redis'
  clock, so every process knows how many share the token before Redis can
  go away.

Telegram also allows about one message a second in one chat. Each process
spaces its own sends to a chat (bot/context.py ChatPace); with Redis, a send
to a patient's chat also takes the chat's turn there (SendBudget.chat_turn),
so a check-in from one process and a reply from another never reach a chat
less than a second apart either. A turn left by a process that died lapses
after CHAT_IN_FLIGHT_SECONDS; while Redis is down each process spaces only
its own sends to a chat.

While Redis is unreachable a process falls back to a Pacer of its own share
(30 divided by the bot processes: AFTERCARE_BOT_PROCESSES, or as many as
were last seen in Redis, whichever is more), a second later, when what went
through Redis has left the count; it says so in its log. When Redis answers
again it goes back to the shared count after one more check interval and a
second, by when the other processes have found Redis back too and what they
sent on their own shares has left the count. A process that loses Redis
while the others keep it can briefly overlap with them; Telegram's
RetryAfter answer is then honoured and the request sent again. Nothing waits on a dead Redis and no
message is dropped. Without AFTERCARE_REDIS_URL the bot keeps python-
telegram-bot's AIORateLimiter at 30 a second, as a single process needs.
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import os
import socket
import uuid
from collections import deque
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable, Coroutine, Optional

from telegram.ext import AIORateLimiter

from bot.redis_link import RedisLink

logger = logging.getLogger(__name__)

TELEGRAM_PER_SECOND = 30
SENDS_KEY = "aftercare:telegram:sends"          # sorted set: request -> when it ended
NEXT_KEY = "aftercare:telegram:next-send"       # the earliest start of the next request
MEMBERS_KEY = "aftercare:telegram:bots"         # sorted set: bot process -> last heard
MEMBER_SECONDS = 10.0       # a process not heard from for this long has stopped
IN_FLIGHT_SECONDS = 15.0    # longer than any request to Telegram takes
SWITCH_SECONDS = 1.0        # what went through one count leaves it this long after
CHAT_KEY = "aftercare:telegram:chat:"           # + chat id: that chat's turn
CHAT_SECONDS = 1.0          # from the end of one send to a chat to the start of the next
CHAT_IN_FLIGHT_SECONDS = 10.0   # a chat's turn left by a process that died lapses then
CHAT_POLL_SECONDS = 0.02    # how often a chat whose turn is under way elsewhere is asked again

# The start of both scripts below: mark the process (ARGV[1]) as heard from
# now in MEMBERS_KEY (KEYS[1]), on Redis' clock, drop those silent for ARGV[2]
# microseconds, and count the rest. JOIN returns that count.
COUNT_PROCESSES = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('PEXPIRE', KEYS[1], math.floor(window / 1000) * 6)
local processes = redis.call('ZCARD', KEYS[1])
"""
JOIN = COUNT_PROCESSES + "return processes\n"
# KEYS: MEMBERS_KEY, SENDS_KEY, NEXT_KEY. ARGV: the process, the members'
# window, the limit, the spacing and the in-flight time (microseconds), the
# request's id. Returns {wait, processes}: wait is 0 if the request may go now
# (recorded under way), else microseconds to wait before asking again.
TAKE_TURN = COUNT_PROCESSES + """
local limit, spacing, in_flight = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local next_start = tonumber(redis.call('GET', KEYS[3]) or '0')
if next_start > now then
  return {next_start - now, processes}
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 1000000)
if redis.call('ZCARD', KEYS[2]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  return {math.max(1000, math.min(tonumber(oldest[2]) + 1000000 - now, spacing)), processes}
end
redis.call('ZADD', KEYS[2], now + in_flight, ARGV[6])
redis.call('PEXPIRE', KEYS[2], math.floor(in_flight / 1000) + 2000)
redis.call('SET', KEYS[3], string.format('%d', now + spacing), 'PX', 2000)
return {0, processes}
"""
# KEYS: SENDS_KEY. ARGV: the request's id. The request ended now.
END_TURN = """
local t = redis.call('TIME')
redis.call('ZADD', KEYS[1], 'XX', tonumber(t[1]) * 1000000 + tonumber(t[2]), ARGV[1])
return 1
"""

# KEYS: the chat's key. ARGV: the spacing, the in-flight time and the longest
# wait before asking again (microseconds), the request's id. The value is
# "busy:<lapses at>:<id>" while a send is under way, "ended:<when>" after.
# Returns 0 if the send may go now (recorded under way), else microseconds to
# wait before asking again.
TAKE_CHAT_TURN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local spacing, in_flight, poll = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local value = redis.call('GET', KEYS[1])
if value then
  local lapses = tonumber(string.match(value, '^busy:(%d+):'))
  if lapses and lapses > now then
    return math.min(lapses - now, poll)
  end
  local ended = tonumber(string.match(value, '^ended:(%d+)$'))
  if ended and ended + spacing > now then
    return ended + spacing - now
  end
end
redis.call('SET', KEYS[1], string.format('busy:%d:%s', now + in_flight, ARGV[4]),
           'PX', math.floor(in_flight / 1000))
return 0
"""
# KEYS: the chat's key. ARGV: the spacing (microseconds), the request's id.
# The send ended now (unless its turn lapsed and another process has it).
END_CHAT_TURN = """
local value = redis.call('GET', KEYS[1])
if value and string.match(value, '^busy:') and
   string.sub(value, -string.len(ARGV[2]) - 1) ~= ':' .. ARGV[2] then
  return 0
end
local t = redis.call('TIME')
redis.call('SET', KEYS[1], string.format('ended:%d', tonumber(t[1]) * 1000000 + tonumber(t[2])),
           'PX', math.floor(tonumber(ARGV[1]) / 1000) + 1000)
return 1
"""


def _counts_per_chat(endpoint: str, chat_id: Any) -> bool:
    """A request that puts a message in a patient's (private) chat."""
    name = endpoint.lower()
    return (isinstance(chat_id, int) and chat_id > 0 and name != "sendchataction"
            and (name.startswith("send") or name in ("forwardmessage", "copymessage")))


class Pacer:
    """Requests evenly spaced at `rate` a second, and never more than `burst`
    under way or ended in the last second (see the module docstring).

    Each request takes the next slot of a timetable and sleeps until it, so a
    late wake-up (a busy event loop) does not push the later slots back (a
    leaky bucket of one loses that delay every time: 27 a second instead of
    28). After a 429 the bot's rate limiter holds every request for a while,
    and the count keeps the queue behind it from then leaving at 30 a second
    into the next 429.
    """

    def __init__(self, rate_per_second: float, burst: Optional[int] = None,
                 not_before: float = 0.0) -> None:
        self.rate = rate_per_second
        self._interval = 1 / rate_per_second
        self._burst = burst or math.floor(rate_per_second) + 1
        self._next = not_before       # loop time of the first slot
        self._ended: deque[float] = deque()   # when recent requests ended
        self._under_way = 0

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        now = loop.time()
        slot = max(self._next, now)
        self._next = slot + self._interval
        while True:
            if slot > now:
                await asyncio.sleep(slot - now)
                now = loop.time()
            while self._ended and self._ended[0] <= now - 1.0:
                self._ended.popleft()
            if len(self._ended) + self._under_way < self._burst:
                break
            slot = self._ended[0] + 1.0 if self._ended else now + self._interval
        self._under_way += 1
        try:
            yield
        finally:
            self._under_way -= 1
            self._ended.append(loop.time())


class SendBudget:
    """Turns for requests to Telegram, shared through Redis; see the module
    docstring."""

    def __init__(self, link: RedisLink, per_second: int = TELEGRAM_PER_SECOND,
                 bot_processes: int = 1) -> None:
        self._link = link
        self.per_second = per_second
        self._spacing_us = int(1_000_000 / per_second)
        self._configured_processes = max(1, bot_processes)
        self.processes_seen = 1
        self._me = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._ids = itertools.count(1)
        self._join = link.client.register_script(JOIN)
        self._take = link.client.register_script(TAKE_TURN)
        self._end = link.client.register_script(END_TURN)
        self._take_chat = link.client.register_script(TAKE_CHAT_TURN)
        self._end_chat = link.client.register_script(END_CHAT_TURN)
        self._queue = asyncio.Lock()      # one request of this process asks Redis at a time
        self._local = self._local_pacer()
        self._shared_from = 0.0           # loop time from which Redis is asked again
        self.shared_turns = 0
        self.local_turns = 0
        link.every_check(self._heartbeat)
        link.on_change(self._on_change)

    def local_share(self) -> float:
        return self.per_second / max(self._configured_processes, self.processes_seen)

    def _local_pacer(self, not_before: float = 0.0) -> Pacer:
        share = self.local_share()
        return Pacer(share, burst=max(1, math.floor(share)), not_before=not_before)

    @property
    def sharing(self) -> bool:
        """Whether the next request asks Redis for its turn."""
        return self._link.up and asyncio.get_running_loop().time() >= self._shared_from

    async def _heartbeat(self) -> None:
        """Count the bot processes sending with this token (for the share)."""
        processes = await self._join(keys=[MEMBERS_KEY],
                                     args=[self._me, int(MEMBER_SECONDS * 1_000_000)])
        self.processes_seen = max(1, int(processes))

    def _on_change(self, up: bool) -> None:
        loop_now = asyncio.get_running_loop().time()
        if up:
            self._shared_from = loop_now + self._link.check_seconds + SWITCH_SECONDS
            logger.warning("Telegram budget: shared again through Redis (%d messages a second "
                           "for all bot processes together)", self.per_second)
            return
        self._local = self._local_pacer(not_before=loop_now + SWITCH_SECONDS)
        logger.warning("Telegram budget: Redis is unreachable, so this process sends at most "
                       "%.1f messages a second (its share of %d among %d bot processes) until "
                       "it is back", self._local.rate, self.per_second,
                       max(self._configured_processes, self.processes_seen))

    async def _ask_redis(self) -> Optional[str]:
        """Wait for a shared turn; its id, or None if Redis failed meanwhile."""
        request = f"{self._me}:{next(self._ids)}"
        async with self._queue:
            while self._link.up:
                try:
                    wait_us, processes = await self._take(
                        keys=[MEMBERS_KEY, SENDS_KEY, NEXT_KEY],
                        args=[self._me, int(MEMBER_SECONDS * 1_000_000), self.per_second,
                              self._spacing_us, int(IN_FLIGHT_SECONDS * 1_000_000), request])
                except Exception as exc:   # Redis went away: the local share from now on
                    self._link.failed(exc)
                    return None
                self.processes_seen = max(1, int(processes))
                if wait_us == 0:
                    return request
                await asyncio.sleep(wait_us / 1_000_000)
        return None

    async def _ended(self, request: str) -> None:
        try:
            await self._end(keys=[SENDS_KEY], args=[request])
        except Exception as exc:   # it stops counting after IN_FLIGHT_SECONDS anyway
            self._link.failed(exc)

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold a turn for the length of one request to Telegram."""
        request = await self._ask_redis() if self.sharing else None
        if request is None:
            self.local_turns += 1
            async with self._local.turn():
                yield
            return
        self.shared_turns += 1
        try:
            yield
        finally:
            await self._ended(request)

    @asynccontextmanager
    async def chat_turn(self, chat_id: int) -> AsyncIterator[None]:
        """Hold one chat's turn, shared by every bot process, for the length of
        one send (and its retries); a second after it ends the next may go.
        Without Redis this process's own spacing (ChatPace) is all there is."""
        key, request = f"{CHAT_KEY}{chat_id}", f"{self._me}:c{next(self._ids)}"
        spacing = int(CHAT_SECONDS * 1_000_000)
        taken = False
        while self._link.up:
            try:
                wait_us = await self._take_chat(
                    keys=[key], args=[spacing, int(CHAT_IN_FLIGHT_SECONDS * 1_000_000),
                                      int(CHAT_POLL_SECONDS * 1_000_000), request])
            except Exception as exc:   # Redis went away: this process's spacing only
                self._link.failed(exc)
                break
            if wait_us == 0:
                taken = True
                break
            await asyncio.sleep(wait_us / 1_000_000)
        try:
            yield
        finally:
            if taken:
                try:
                    await self._end_chat(keys=[key], args=[spacing, request])
                except Exception as exc:   # the turn lapses by itself
                    self._link.failed(exc)


class SharedRateLimiter(AIORateLimiter):
    """python-telegram-bot's AIORateLimiter (per-group limits, RetryAfter
    honoured and retried) with the overall limit taken from a SendBudget."""

    def __init__(self, budget: SendBudget, max_retries: int = 3) -> None:
        super().__init__(overall_max_rate=0, max_retries=max_retries)
        self.budget = budget

    async def process_request(self, callback: Callable[..., Coroutine[Any, Any, Any]],
                              args: Any, kwargs: dict[str, Any], endpoint: str,
                              data: dict[str, Any], rate_limit_args: Optional[int]) -> Any:
        chat_id = data.get("chat_id")
        if not _counts_per_chat(endpoint, chat_id):
            return await super().process_request(callback, args, kwargs, endpoint, data,
                                                 rate_limit_args)
        async with self.budget.chat_turn(chat_id):
            return await super().process_request(callback, args, kwargs, endpoint, data,
                                                  rate_limit_args)

    async def _run_request(self, chat: bool, group: Any, allow_paid_broadcast: bool,
                           callback: Callable[..., Coroutine[Any, Any, Any]],
                           args: Any, kwargs: dict[str, Any]) -> Any:
        if not chat or allow_paid_broadcast:
            return await super()._run_request(chat, group, allow_paid_broadcast, callback,
                                              args, kwargs)
        group_limit = (self._get_group_limiter(group) if group and self._group_max_rate
                       else contextlib.nullcontext())
        async with group_limit:
            await self._retry_after_event.wait()
            async with self.budget.turn():
                return await callback(*args, **kwargs)
