"""A small client for Rasa's REST channel, shared by the terminal chat,
the end-to-end tests and the benchmarks."""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Optional


class RasaUnavailable(RuntimeError):
    """Rasa (or the action server behind it) did not answer."""


@dataclass(frozen=True)
class Reply:
    text: str
    buttons: tuple[tuple[str, str], ...] = ()    # (title, payload)


@dataclass(frozen=True)
class RasaClient:
    base_url: str
    timeout: float = 30
    token: Optional[str] = None     # AFTERCARE_RASA_TOKEN, when Rasa requires one

    def _query(self) -> str:
        return "?" + urllib.parse.urlencode({"token": self.token}) if self.token else ""

    def send(self, sender_id: str, text: str) -> list[str]:
        """Send a patient's message; return the assistant's reply texts."""
        return [reply.text for reply in self.exchange(sender_id, text) if reply.text]

    def exchange(self, sender_id: str, text: str) -> list["Reply"]:
        """Send a patient's message; return the replies with their buttons."""
        body = json.dumps({"sender": sender_id, "message": text}).encode("utf-8")
        request = urllib.request.Request(
            f"{self.base_url.rstrip('/')}/webhooks/rest/webhook{self._query()}", data=body,
            headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                replies = json.loads(response.read().decode("utf-8"))
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError) as exc:
            raise RasaUnavailable(str(exc)) from exc
        return [Reply(str(reply.get("text") or ""),
                      tuple((str(b.get("title", "")), str(b.get("payload", "")))
                            for b in reply.get("buttons") or []))
                for reply in replies if reply.get("text") or reply.get("buttons")]
