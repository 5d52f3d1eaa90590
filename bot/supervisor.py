"""Keep the assistant's servers running while the bot stays up.

When the Rasa server, the action server or the review page exits, the bot
carries on: patients get the degraded mode (the bot's own red-flag net, the
safety message, the clinic's number) while the supervisor starts the dead
server again, after 1 s, then 2, 4, ... up to 60 s between attempts, for as
long as it takes. A server that stayed healthy for a while starts again from
1 s when it next dies. Every failure is logged with the server's name and log.

The staff group hears once that the assistant is degraded (which part, what
patients get meanwhile) and once that it is back (ServiceNotices); the notices
go through the staff relay, which keeps them until they are posted.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Callable, Optional

from aftercare.services import Service
from bot import staff_messages as posts
from bot.rasa import RasaClient
from bot.staff_relay import StaffRelay

logger = logging.getLogger(__name__)

UP, DOWN, STARTING = "up", "down", "starting"
ASSISTANT = ("rasa-server", "action-server")   # patients are answered by both together
CHECK_EVERY = 1.0
READY_TIMEOUT = 300.0   # a restart that is not healthy by then is killed and tried again

Listener = Callable[[str, bool], None]   # (service name, now up?)


@dataclass(frozen=True)
class Backoff:
    first: float = 1.0
    cap: float = 60.0
    reset_after: float = 300.0   # healthy this long: the next death counts as the first

    def delay(self, failures: int) -> float:
        """Seconds before the next attempt after `failures` failures in a row."""
        return min(self.cap, self.first * 2 ** max(failures - 1, 0))


@dataclass
class _Watched:
    service: Service
    state: str = UP
    failures: int = 0
    next_attempt: float = 0.0
    started_at: float = 0.0
    healthy_since: float = 0.0


class Supervisor:
    """Watches child services; restarts each one that exits, with backoff."""

    def __init__(self, services: list[Service], listener: Listener, *,
                 backoff: Backoff = Backoff(), check_every: float = CHECK_EVERY,
                 ready_timeout: float = READY_TIMEOUT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        now = clock()
        self._watched = [_Watched(service, healthy_since=now) for service in services]
        self._listener = listener
        self.backoff = backoff
        self.check_every = check_every
        self.ready_timeout = ready_timeout

    def down(self) -> list[str]:
        """Names of the services that are not up (dead or restarting)."""
        return [w.service.name for w in self._watched if w.state != UP]

    async def run(self) -> None:
        while True:
            for watched in self._watched:
                try:
                    await self._check(watched)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # never let one check stop the supervising
                    logger.error("supervising %s failed: %s", watched.service.name,
                                 type(exc).__name__, exc_info=exc)
            await asyncio.sleep(self.check_every)

    async def _check(self, watched: _Watched) -> None:
        service, now = watched.service, self._clock()
        if watched.state == UP:
            if service.process.poll() is None:
                return
            if now - watched.healthy_since >= self.backoff.reset_after:
                watched.failures = 0
            self._failed(watched, now, f"{service.name} stopped (exit status "
                         f"{service.process.returncode}); see {service.log_path}")
            self._tell(service.name, False)
        elif watched.state == DOWN:
            if now >= watched.next_attempt:
                # On this (the main) thread: a child started from a worker thread
                # would be stopped when that thread ends (PR_SET_PDEATHSIG).
                service.respawn()
                watched.state, watched.started_at = STARTING, now
                logger.info("%s starting again (attempt %d); log: %s", service.name,
                            watched.failures, service.log_path)
        elif service.process.poll() is not None:
            self._failed(watched, now, f"{service.name} did not start again (exit status "
                         f"{service.process.returncode}); see {service.log_path}")
        elif await asyncio.to_thread(service.is_healthy):
            await self._ready(watched)
        elif now - watched.started_at > self.ready_timeout:
            await asyncio.to_thread(service.stop)
            self._failed(watched, now, f"{service.name} not ready after "
                         f"{self.ready_timeout:.0f} s; see {service.log_path}")

    async def _ready(self, watched: _Watched) -> None:
        service = watched.service
        if service.after_start is not None:
            try:
                await asyncio.to_thread(service.after_start)
            except Exception as exc:
                await asyncio.to_thread(service.stop)
                self._failed(watched, self._clock(), f"{service.name} failed its warm-up "
                             f"({type(exc).__name__}); see {service.log_path}")
                return
        logger.info("%s is back after %d failure(s)", service.name, watched.failures)
        watched.state, watched.healthy_since = UP, self._clock()
        self._tell(service.name, True)

    def _failed(self, watched: _Watched, now: float, what: str) -> None:
        watched.failures += 1
        delay = self.backoff.delay(watched.failures)
        watched.state, watched.next_attempt = DOWN, now + delay
        logger.error("%s. Next attempt in %g s.", what, delay)

    def _tell(self, name: str, up: bool) -> None:
        try:
            self._listener(name, up)
        except Exception as exc:
            logger.error("could not act on %s being %s: %s", name, "up" if up else "down",
                         type(exc).__name__, exc_info=exc)


def pair_of(name: str) -> Optional[str]:
    """Which Rasa server and action server pair a service belongs to: "" for
    rasa-server/action-server, "-2" for rasa-server-2/action-server-2, ...;
    None for a service that is not part of the assistant."""
    for base in ASSISTANT:
        if name == base:
            return ""
        if name.startswith(base + "-"):
            return name[len(base):]
    return None


class ServiceNotices:
    """What a service going down or coming back means: the Rasa client answers
    at once that the assistant is unavailable, and the staff group is told once
    per outage (the assistant's two servers count as one).

    With several Rasa servers (`pair_urls`: pair suffix -> that Rasa server's
    URL) a pair with a server down only moves its conversations to the other
    servers (RasaClient.mark); the assistant is down, and the staff told, when
    every pair is."""

    def __init__(self, rasa: RasaClient, relay: Optional[StaffRelay],
                 clinic_phone: Callable[[], str],
                 pair_urls: Optional[dict[str, str]] = None) -> None:
        self._rasa = rasa
        self._relay = relay
        self._clinic_phone = clinic_phone
        self._pair_urls = dict(pair_urls or {})
        self._down: set[str] = set()
        self._assistant_told: list[str] = []
        self._review_told = False

    def __call__(self, name: str, up: bool) -> None:
        if up:
            self._down.discard(name)
        else:
            self._down.add(name)
        pairs_down = {pair_of(n) for n in self._down} - {None}
        for pair, url in self._pair_urls.items():
            self._rasa.mark(url, pair not in pairs_down)
        every_pair = set(self._pair_urls) or {""}
        assistant_down = (sorted(n for n in self._down if pair_of(n) is not None)
                          if every_pair <= pairs_down else [])
        self._rasa.available = not assistant_down
        if assistant_down and not self._assistant_told:
            self._assistant_told = assistant_down
            self._post(posts.assistant_degraded(assistant_down, self._clinic_phone()))
        elif assistant_down:   # another part of the same outage: named when it is back
            self._assistant_told = sorted(set(self._assistant_told) | set(assistant_down))
        elif not assistant_down and self._assistant_told:
            self._post(posts.assistant_back(self._assistant_told))
            self._assistant_told = []
        review_down = "review" in self._down
        if review_down != self._review_told:
            self._review_told = review_down
            self._post(posts.review_down() if review_down else posts.review_back())

    def _post(self, text: str) -> None:
        if self._relay is not None:
            self._relay.queue_notice(text)
