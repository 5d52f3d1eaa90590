"""What the bot's handlers and check-in workers share: settings, the protocol,
the database, the Rasa client, the safety net and a clock."""
from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import AsyncIterator, Callable, Optional, TypeVar

from sqlalchemy.orm import Session

from aftercare.protocol import Protocol, current_protocol
from aftercare.safety import RedFlagNet
from aftercare.settings import Settings
from aftercare.store import db
from bot.rasa import RasaClient
from bot.responses import BotText, render

T = TypeVar("T")
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def sender_for_chat(chat_id: int) -> str:
    """The conversation id of a Telegram chat, in Rasa and in the patient store."""
    return f"tg-{chat_id}"


def chat_for_sender(sender_id: str) -> Optional[int]:
    if not sender_id.startswith("tg-"):
        return None
    try:
        return int(sender_id[3:])
    except ValueError:
        return None


_nets: dict[tuple, RedFlagNet] = {}


def _net_for(path: Path, protocol: Protocol) -> RedFlagNet:
    """One net per patterns file version and protocol in the process (building
    one takes seconds); rebuilt when either changes."""
    key = (str(path), path.stat().st_mtime, id(protocol))
    if key not in _nets:
        _nets.clear()
        _nets[key] = RedFlagNet.from_file(path, protocol)
    return _nets[key]


class FloodGuard:
    """At most `limit` messages per chat in `window` seconds go to the assistant;
    the rest are kept for the clinic (and still checked for red flags)."""

    def __init__(self, limit: int = 8, window: float = 20.0) -> None:
        self.limit = limit
        self.window = window
        self._seen: dict[int, deque[float]] = defaultdict(deque)
        self._warned: dict[int, float] = {}

    def allow(self, chat_id: int, now: Optional[float] = None) -> bool:
        now = time.monotonic() if now is None else now
        seen = self._seen[chat_id]
        while seen and now - seen[0] > self.window:
            seen.popleft()
        seen.append(now)
        return len(seen) <= self.limit

    def should_warn(self, chat_id: int, now: Optional[float] = None) -> bool:
        """Once per window, so the notice itself does not flood the chat."""
        now = time.monotonic() if now is None else now
        if now - self._warned.get(chat_id, -1e9) < self.window:
            return False
        self._warned[chat_id] = now
        return True


class ChatPace:
    """Telegram allows about one message a second in a chat, counted when its
    server accepts each one. That moment lies somewhere inside the request, so
    the next send starts a full second after the previous one *ended*: spacing
    the starts instead lets a slow request and a fast one land closer than a
    second apart, and be refused."""

    def __init__(self, interval: float = 1.0) -> None:
        self._interval = interval
        self._lock = asyncio.Lock()
        self._last_end: Optional[float] = None

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        async with self._lock:
            loop = asyncio.get_running_loop()
            if self._last_end is not None:
                wait = self._last_end + self._interval - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
            try:
                yield
            finally:
                self._last_end = loop.time()


@dataclass
class BotContext:
    settings: Settings
    rasa: RasaClient
    clock: Clock = utc_now
    flood: FloodGuard = field(default_factory=FloodGuard)
    _locks: dict[int, asyncio.Lock] = field(default_factory=lambda: defaultdict(asyncio.Lock))
    _paces: dict[int, ChatPace] = field(default_factory=lambda: defaultdict(ChatPace))

    @property
    def protocol(self) -> Protocol:
        return current_protocol(self.settings.protocol_path)

    @property
    def net(self) -> RedFlagNet:
        return _net_for(self.settings.red_flag_patterns_path, self.protocol)

    def now(self) -> datetime:
        return self.clock()

    def chat_lock(self, chat_id: int) -> asyncio.Lock:
        """Messages of one chat are handled one at a time, in order."""
        return self._locks[chat_id]

    def chat_pace(self, chat_id: int) -> ChatPace:
        """The first message to a chat goes at once; one right after waits its turn."""
        return self._paces[chat_id]

    def clinic_values(self) -> dict[str, object]:
        clinic = self.protocol.clinic
        return {"clinic_name": clinic.name, "clinic_phone": clinic.phone,
                "emergency_number": clinic.emergency_number, "booking": clinic.booking,
                "link_expiry_days": self.protocol.enrolment.link_expiry_days}

    def text(self, name: str, **values: object) -> BotText:
        return render(name, {**self.clinic_values(), **values})

    async def db(self, work: Callable[[Session], T]) -> T:
        """Run work(session) in a worker thread and commit: a busy or slow
        database must not stall every other chat."""
        def run() -> T:
            with db.session_scope(self.settings.database_url) as session:
                return work(session)
        return await asyncio.to_thread(run)
