"""What the bot's handlers and check-in workers share: settings, the protocol,
the database, the Rasa client, the safety net and a clock.

When clinic/protocol.yml or the red-flag signs file changes, the new safety
net is built in a thread of its own (it takes seconds) while the old one
keeps answering, and swapped in when ready. An edit that does not load
(invalid YAML, a wrong field) keeps the previous protocol and net, and the
error, naming the file, is logged once per version of the file.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import defaultdict, deque
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import AsyncIterator, Callable, Optional, TypeVar

from sqlalchemy.orm import Session

from aftercare.protocol import Protocol, ProtocolError, current_protocol
from aftercare.safety import RedFlagNet
from aftercare.settings import Settings
from aftercare.store import db
from bot.rasa import RasaClient
from bot.responses import BotText, render

T = TypeVar("T")
Clock = Callable[[], datetime]
logger = logging.getLogger(__name__)


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


def _file_version(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (0, -1)
    return (stat.st_mtime_ns, stat.st_size)


class ProtocolKeeper:
    """The clinic's protocol, re-read when the file changes; a version that does
    not load keeps the last good one (start-up still fails on a bad file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._good: Optional[Protocol] = None
        self._bad_version: Optional[tuple[int, int]] = None
        self._lock = threading.Lock()

    def get(self) -> Protocol:
        version = _file_version(self.path)
        if self._good is not None and version == self._bad_version:
            return self._good
        try:
            protocol = current_protocol(self.path)
        except (ProtocolError, OSError) as exc:
            if self._good is None:
                raise
            with self._lock:
                if self._bad_version != version:
                    self._bad_version = version
                    logger.error("the clinic protocol %s did not load; the previous version "
                                 "stays in use until it is fixed: %s", self.path, exc)
            return self._good
        self._good = protocol
        return protocol


class NetKeeper:
    """The red-flag net for the current signs file and protocol. Asking for it
    never waits for a rebuild (after the first build): a change starts one in
    a background thread, and the old net answers until the new one is ready."""

    def __init__(self, path: Path, protocol: Callable[[], Protocol]) -> None:
        self.path = path
        self._protocol = protocol
        self._net: Optional[RedFlagNet] = None
        self._key: Optional[tuple] = None
        self._failed_key: Optional[tuple] = None
        self._lock = threading.Lock()
        self._building: Optional[threading.Thread] = None

    @property
    def building(self) -> bool:
        return self._building is not None

    def _wanted(self) -> tuple[tuple, Protocol]:
        protocol = self._protocol()
        return (_file_version(self.path), id(protocol)), protocol

    def get(self) -> RedFlagNet:
        if self._net is None:
            with self._lock:
                if self._net is None:   # the first build: nothing else to answer with
                    key, protocol = self._wanted()
                    self._net, self._key = RedFlagNet.from_file(self.path, protocol), key
            return self._net
        self.refresh()
        return self._net

    def refresh(self) -> bool:
        """Start a rebuild if the files changed since the net was built; True if
        one is under way."""
        key, protocol = self._wanted()
        with self._lock:
            if self._building is not None:
                return True
            if self._net is None or key in (self._key, self._failed_key):
                return False
            self._building = threading.Thread(target=self._rebuild, args=(key, protocol),
                                              name="red-flag-net", daemon=True)
            self._building.start()
            return True

    def _rebuild(self, key: tuple, protocol: Protocol) -> None:
        started = time.monotonic()
        try:
            net = RedFlagNet.from_file(self.path, protocol)
        except Exception as exc:   # a broken edit: keep answering with the old net
            logger.error("the red-flag signs %s did not load; the previous net stays in use "
                         "until it is fixed: %s", self.path, exc)
            with self._lock:
                self._failed_key, self._building = key, None
            return
        with self._lock:
            self._net, self._key, self._building = net, key, None
        logger.info("red-flag net rebuilt from %s in %.1f s", self.path,
                    time.monotonic() - started)


_keepers: dict[tuple[Path, Path], tuple[ProtocolKeeper, NetKeeper]] = {}
_keepers_lock = threading.Lock()


def keepers_for(protocol_path: Path, patterns_path: Path) -> tuple[ProtocolKeeper, NetKeeper]:
    """One protocol and one net per pair of files in the process (a net takes
    seconds to build): every context of the same files shares them."""
    with _keepers_lock:
        key = (Path(protocol_path), Path(patterns_path))
        if key not in _keepers:
            protocols = ProtocolKeeper(key[0])
            _keepers[key] = (protocols, NetKeeper(key[1], protocols.get))
        return _keepers[key]


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
    protocols: ProtocolKeeper = field(init=False)
    nets: NetKeeper = field(init=False)

    def __post_init__(self) -> None:
        self.protocols, self.nets = keepers_for(self.settings.protocol_path,
                                                self.settings.red_flag_patterns_path)

    @property
    def protocol(self) -> Protocol:
        return self.protocols.get()

    @property
    def net(self) -> RedFlagNet:
        return self.nets.get()

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
