"""An async client for the Rasa server: patient messages through the REST
channel, check-ins and enrolment through trigger_intent (external events).

While the supervisor knows Rasa or the action server is down or restarting
(`available` is False), every call fails at once with RasaUnavailable, so
patients get the degraded answer instead of a wait or a half answer: Rasa
without its action server still sends some replies, even "I have told the
clinic", but the custom actions that record escalations and answer for the
patient's day do not run."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import quote

import httpx

from bot.responses import Button


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


class RasaClient:
    def __init__(self, base_url: str, timeout: float = 30) -> None:
        self._base_url = base_url.rstrip("/")
        self.available = True
        self._client = httpx.AsyncClient(
            timeout=timeout, limits=httpx.Limits(max_connections=64, max_keepalive_connections=32))

    async def close(self) -> None:
        await self._client.aclose()

    async def _post(self, path: str, payload: dict[str, Any]) -> Any:
        if not self.available:
            raise RasaUnavailable("the assistant is down or restarting")
        try:
            response = await self._client.post(f"{self._base_url}{path}", json=payload)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            # No payload in the message: it holds the patient's words.
            raise RasaUnavailable(f"{type(exc).__name__} from Rasa at {path.split('?')[0]}") \
                from None

    async def send(self, sender_id: str, text: str,
                   metadata: Optional[dict[str, Any]] = None) -> list[Reply]:
        body = {"sender": sender_id, "message": text, "metadata": metadata or {}}
        messages = await self._post("/webhooks/rest/webhook", body)
        if not isinstance(messages, list):
            raise RasaUnavailable("unexpected answer from Rasa's REST channel")
        return _replies(messages)

    async def parse(self, text: str) -> tuple[Optional[str], float]:
        """The classifier's intent and confidence for text, without touching any
        conversation (Rasa's /model/parse)."""
        answer = await self._post("/model/parse", {"text": text})
        intent = answer.get("intent") if isinstance(answer, dict) else None
        if not isinstance(intent, dict):
            raise RasaUnavailable("unexpected answer from Rasa's /model/parse")
        return intent.get("name"), float(intent.get("confidence") or 0.0)

    async def trigger(self, sender_id: str, intent: str,
                      entities: Optional[dict[str, Any]] = None) -> list[Reply]:
        path = f"/conversations/{quote(sender_id, safe='')}/trigger_intent?include_events=NONE"
        answer = await self._post(path, {"name": intent, "entities": entities or {}})
        if not isinstance(answer, dict):
            raise RasaUnavailable("unexpected answer from Rasa's trigger_intent")
        return _replies(answer.get("messages") or [])
