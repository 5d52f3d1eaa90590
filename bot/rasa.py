"""An async client for the Rasa server: patient messages through the REST
channel, check-ins and enrolment through trigger_intent (external events).

While the supervisor knows Rasa or the action server is down or restarting
(`available` is False), every call fails at once with RasaUnavailable, so
patients get the degraded answer instead of a wait or a half answer: Rasa
without its action server still sends some replies, even "I have told the
clinic", but the custom actions that record escalations and answer for the
patient's day do not run.

With several Rasa servers (RASA_URLS, or AFTERCARE_RASA_SERVERS for `aftercare
run`) each conversation always goes to the same server while it is up: the
servers are ranked for each sender id by rendezvous hashing, and the first in
its ranking that is up takes it. A server that refuses connections (or that
the supervisor knows is down) is skipped, so only its own conversations move,
to the next server in their ranking; it is probed every few seconds and gets
them back once it answers. While `spread` is False (no Redis for Rasa's lock
store, or Redis unreachable) every conversation goes to the first server that
is up, in the configured order: in-memory locks order a conversation only
within one server. With AFTERCARE_RASA_TOKEN every request carries the token.

A patient's message (or a triggered intent: a check-in) in flight to a server
that dies (the connection breaks mid-request) is not answered with the
degraded answer while another server is up: Rasa records a turn in the shared
tracker store only once it has been handled in full, so the bot looks the
message up there (each carries a key of its own, in its metadata or as an
entity). Never recorded: the next server handles it.
Recorded: the replies recorded after it are sent. A request that times out is
not retried: the server may still be handling it."""
from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence
from urllib.parse import quote

import httpx

from bot.responses import Button

logger = logging.getLogger(__name__)

PROBE_SECONDS = 2.0     # how often a server that refused connections is tried again
PROBE_TIMEOUT = 2.0
MESSAGE_KEY = "aftercare_message_key"   # metadata that finds a message in its tracker


class RasaUnavailable(RuntimeError):
    """Rasa, or the action server behind it, did not answer properly."""


@dataclass(frozen=True)
class Reply:
    text: str
    buttons: tuple[Button, ...] = ()


def _replies(messages: list[dict[str, Any]]) -> list[Reply]:
    replies = []
    for message in messages:
        buttons = tuple(Button(str(b.get("title", "")), str(b.get("payload", "")))
                        for b in message.get("buttons") or [] if b.get("payload"))
        text = message.get("text") or ""
        if text or buttons:
            replies.append(Reply(text=text, buttons=buttons))
    return replies


def _carries(event: dict[str, Any], message_key: str) -> bool:
    """Whether a tracker's user event is the message sent with this key: in
    its metadata (a patient's message) or as an entity (a triggered intent)."""
    if (event.get("metadata") or {}).get(MESSAGE_KEY) == message_key:
        return True
    entities = (event.get("parse_data") or {}).get("entities") or []
    return any(isinstance(e, dict) and e.get("entity") == MESSAGE_KEY
               and e.get("value") == message_key for e in entities)


def _rank(key: str, url: str) -> int:
    """Rendezvous score of a server for a key: stable across processes and runs."""
    digest = hashlib.blake2b(f"{url}\n{key}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass
class _Server:
    url: str
    stopped: bool = False          # the supervisor knows it (or its action server) is down
    failed_at: Optional[float] = None   # refused a connection; probed until it answers
    probe: Optional[asyncio.Task] = None

    @property
    def up(self) -> bool:
        return not self.stopped and self.failed_at is None


class RasaClient:
    def __init__(self, base_url: str | Sequence[str], timeout: float = 30, *,
                 token: Optional[str] = None, probe_seconds: float = PROBE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        self._servers = [_Server(url.rstrip("/")) for url in urls] or [_Server("")]
        self._token = token
        self._probe_seconds = probe_seconds
        self._clock = clock
        self.available = True      # False while the whole assistant is down or restarting
        self.spread = True         # False: every conversation to the first server up
        self.requests: Counter[str] = Counter()   # per server URL (for tests and benchmarks)
        self._client = httpx.AsyncClient(
            timeout=timeout, limits=httpx.Limits(max_connections=64, max_keepalive_connections=32))

    @property
    def urls(self) -> list[str]:
        return [server.url for server in self._servers]

    async def close(self) -> None:
        for server in self._servers:
            if server.probe is not None:
                server.probe.cancel()
        await self._client.aclose()

    def mark(self, url: str, up: bool) -> None:
        """The supervisor's word on one server (with its action server)."""
        for server in self._servers:
            if server.url == url.rstrip("/") and server.stopped == up:
                server.stopped = not up
                logger.info("Rasa server %s %s", server.url,
                            "is back: its conversations return" if up else
                            "is down: its conversations go to the next server")

    def set_spread(self, spread: bool) -> None:
        if spread != self.spread and len(self._servers) > 1:
            first = next((s.url for s in self._servers if s.up), self._servers[0].url)
            if spread:
                logger.warning("conversations are spread over %d Rasa servers again",
                               len(self._servers))
            else:
                logger.warning("every conversation goes to one Rasa server (%s) until Redis "
                               "is back", first)
        self.spread = spread

    def ranking(self, key: str) -> list[str]:
        """The servers in the order a conversation (or text) with this key tries them."""
        if not self.spread:
            return self.urls
        return [s.url for s in sorted(self._servers, key=lambda s: _rank(key, s.url),
                                      reverse=True)]

    def server_for(self, key: str) -> Optional[str]:
        """Where a request for this key goes now (None: no server is up)."""
        by_url = {s.url: s for s in self._servers}
        return next((url for url in self.ranking(key) if by_url[url].up), None)

    def _failed(self, server: _Server, error: BaseException) -> None:
        if server.failed_at is None:
            server.failed_at = self._clock()
            logger.error("Rasa server %s unreachable (%s): its conversations go to the next "
                         "server while it is probed every %g s", server.url,
                         type(error).__name__, self._probe_seconds)
        if server.probe is None or server.probe.done():
            server.probe = asyncio.get_running_loop().create_task(
                self._probe(server), name=f"rasa-probe {server.url}")

    async def _probe(self, server: _Server) -> None:
        while True:
            await asyncio.sleep(self._probe_seconds)
            try:
                response = await self._client.get(self._url(server, "/status"),
                                                  timeout=PROBE_TIMEOUT)
                if response.status_code == 200:
                    break
            except httpx.HTTPError:
                continue
        logger.warning("Rasa server %s answers again after %.0f s: its conversations return",
                       server.url, self._clock() - (server.failed_at or self._clock()))
        server.failed_at = None

    def _url(self, server: _Server, path: str) -> httpx.URL:
        url = httpx.URL(f"{server.url}{path}")
        return url.copy_merge_params({"token": self._token}) if self._token else url

    async def _post(self, path: str, payload: dict[str, Any], key: str,
                    message_key: Optional[str] = None,
                    as_answer: Callable[[list[dict[str, Any]]], Any] = lambda found: found
                    ) -> Any:
        if not self.available:
            raise RasaUnavailable("the assistant is down or restarting")
        by_url = {s.url: s for s in self._servers}
        tried = 0
        for url in self.ranking(key):
            server = by_url[url]
            if not server.up:
                continue
            tried += 1
            try:
                response = await self._client.post(self._url(server, path), json=payload)
                self.requests[server.url] += 1
                response.raise_for_status()
                return response.json()
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                self._failed(server, exc)   # never reached it: the next one may take it
                continue
            except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
                self._failed(server, exc)   # it may have read the message: not sent twice
                if message_key is None:
                    raise RasaUnavailable(f"{type(exc).__name__} from Rasa at "
                                          f"{path.split('?')[0]}") from None
                recorded = await self._recorded(key, message_key, server.url)
                if recorded is not None:
                    return as_answer(recorded)
                continue
            except (httpx.HTTPError, ValueError) as exc:
                # No payload in the message: it holds the patient's words.
                raise RasaUnavailable(f"{type(exc).__name__} from Rasa at "
                                      f"{path.split('?')[0]}") from None
        raise RasaUnavailable("no Rasa server is reachable" if tried else
                              "every Rasa server is down or restarting")

    async def _recorded(self, sender_id: str, message_key: str,
                        lost: str) -> Optional[list[dict[str, Any]]]:
        """After `lost` broke off with a message in flight: the replies the
        shared tracker recorded for it (as the REST channel gives them), or
        None if it was never recorded. Asked of the next server up."""
        url = self.server_for(sender_id)
        if url is None:
            raise RasaUnavailable("a Rasa server went away with a message in flight and "
                                  "no other is up")
        server = next(s for s in self._servers if s.url == url)
        path = f"/conversations/{quote(sender_id, safe='')}/tracker?include_events=ALL"
        try:
            response = await self._client.get(self._url(server, path))
            response.raise_for_status()
            events = response.json().get("events") or []
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            # Unknown whether it was handled: never risk answering it twice.
            raise RasaUnavailable(f"{type(exc).__name__} from Rasa looking up a message "
                                  f"in flight") from None
        for index in range(len(events) - 1, -1, -1):
            event = events[index]
            if event.get("event") == "user" and _carries(event, message_key):
                replies = []
                for later in events[index + 1:]:
                    if later.get("event") == "user":
                        break
                    if later.get("event") == "bot":
                        replies.append({"text": later.get("text"),
                                        "buttons": (later.get("data") or {}).get("buttons")})
                logger.warning("Rasa server %s went away after handling a message: its "
                               "%d recorded replies are sent", lost, len(replies))
                return replies
        logger.warning("Rasa server %s went away before handling a message: %s takes it",
                       lost, url)
        return None

    async def send(self, sender_id: str, text: str,
                   metadata: Optional[dict[str, Any]] = None) -> list[Reply]:
        key = uuid.uuid4().hex
        body = {"sender": sender_id, "message": text,
                "metadata": {**(metadata or {}), MESSAGE_KEY: key}}
        messages = await self._post("/webhooks/rest/webhook", body, sender_id, key)
        if not isinstance(messages, list):
            raise RasaUnavailable("unexpected answer from Rasa's REST channel")
        return _replies(messages)

    async def parse(self, text: str) -> tuple[Optional[str], float]:
        """The classifier's intent and confidence for text, without touching any
        conversation (Rasa's /model/parse)."""
        answer = await self._post("/model/parse", {"text": text}, text)
        intent = answer.get("intent") if isinstance(answer, dict) else None
        if not isinstance(intent, dict):
            raise RasaUnavailable("unexpected answer from Rasa's /model/parse")
        return intent.get("name"), float(intent.get("confidence") or 0.0)

    async def trigger(self, sender_id: str, intent: str,
                      entities: Optional[dict[str, Any]] = None) -> list[Reply]:
        # trigger_intent takes no metadata: the key goes as an entity, which
        # no slot reads.
        key = uuid.uuid4().hex
        path = f"/conversations/{quote(sender_id, safe='')}/trigger_intent?include_events=NONE"
        answer = await self._post(path, {"name": intent,
                                         "entities": {**(entities or {}), MESSAGE_KEY: key}},
                                  sender_id, key, lambda found: {"messages": found})
        if not isinstance(answer, dict):
            raise RasaUnavailable("unexpected answer from Rasa's trigger_intent")
        return _replies(answer.get("messages") or [])
