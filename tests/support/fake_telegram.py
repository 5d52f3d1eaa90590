"""A small fake Telegram Bot API server for tests and benchmarks.

The real python-telegram-bot (PTB) library talks to it over loopback HTTP::

    with FakeTelegramServer() as tg:
        app = (ApplicationBuilder().token("123:TEST")
               .base_url(tg.base_url).base_file_url(tg.base_file_url).build())
        tg.push_command(42, "/start")
        ...
        tg.wait_for_messages(42, 1)

The server runs aiohttp in its own thread and event loop, so synchronous test
code and the test's own asyncio loop can both use it.  All helpers are
thread-safe: state lives behind one lock, and waiters block on a condition
variable (never a sleep loop).  From async test code use the ``await_*``
variants so the test's event loop (which runs the bot) is not blocked.

PTB sends form-encoded (or multipart, for uploads) bodies in which strings are
sent as-is and every other value is JSON-encoded; see ``_decode``.
"""
from __future__ import annotations

import asyncio
import collections
import itertools
import json
import threading
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

from aiohttp import web

# Parameters that PTB JSON-encodes; everything else that is a string stays a string
# (a message text of "123" or "[1]" must not be decoded).
_JSON_FIELDS = frozenset({
    "reply_markup", "entities", "caption_entities", "allowed_updates", "commands", "scope",
    "link_preview_options", "reply_parameters", "media",
})
_INT_FIELDS = frozenset({
    "chat_id", "message_id", "offset", "limit", "user_id", "from_chat_id", "cache_time",
    "max_connections", "message_thread_id", "reply_to_message_id",
})
_FLOAT_FIELDS = frozenset({"timeout"})
_BOOL_FIELDS = frozenset({
    "drop_pending_updates", "show_alert", "disable_notification", "protect_content",
    "allow_sending_without_reply",
})
MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
FAULT_KINDS = ("retry_after", "forbidden", "drop", "server_error")


class Call(NamedTuple):
    """One request the bot made: method name as sent, decoded params, time.monotonic()."""

    method: str
    params: dict[str, Any]
    time: float


@dataclass
class SentMessage:
    """A message the bot sent (its text or caption, as originally sent; edits are in ``calls``)."""

    chat_id: int
    text: str | None
    reply_markup: dict[str, Any] | None
    message_id: int
    time: float
    method: str = "sendMessage"
    parse_mode: str | None = None


@dataclass
class _Fault:
    method: str  # lower-case, or "*"
    kind: str
    remaining: int
    retry_after: int
    chat_id: int | None
    status: int


class ApiError(Exception):
    """Raised inside method handlers; becomes Telegram's ``{"ok": false, ...}`` answer."""

    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.code, self.description, self.parameters = code, description, parameters


def _decode(name: str, value: str) -> Any:
    try:
        if name in _JSON_FIELDS:
            return json.loads(value)
        if name in _INT_FIELDS:
            return int(value)
        if name in _FLOAT_FIELDS:
            return float(value)
        if name in _BOOL_FIELDS:
            return value.lower() == "true"
    except ValueError:
        pass  # e.g. chat_id="@channel": keep the string
    return value


def _error(code: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=code)


class FakeTelegramServer:
    """Fake Bot API on 127.0.0.1 (random port). Use ``start()``/``stop()`` or ``with``."""

    def __init__(self, *, token: str | None = None, bot_username: str = "aftercare_test_bot",
                 bot_id: int = 7_000_000_001, bot_first_name: str = "Aftercare Test Bot") -> None:
        self.token = token  # if set, any other token gets 401 Unauthorized
        self.bot_user = {"id": bot_id, "is_bot": True, "first_name": bot_first_name,
                         "username": bot_username, "can_join_groups": True,
                         "can_read_all_group_messages": False, "supports_inline_queries": False}
        self.tokens_seen: set[str] = set()
        self.webhook: dict[str, Any] = {"url": ""}
        self.rate_limit_hits = 0
        self.polling_conflicts = 0  # getUpdates cut off by another bot instance's (409)
        self.deleted: list[tuple[int, int]] = []  # (chat_id, message_id) the bot deleted
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._calls: list[Call] = []
        self._sent: list[SentMessage] = []
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}  # (chat, id) -> Message JSON
        self._chats: dict[int, dict[str, Any]] = {}
        self._updates: list[dict[str, Any]] = []  # pending, not yet confirmed by an offset
        self._fetched: collections.Counter[int] = collections.Counter()  # update_id -> answers
        self._allowed_updates: list[str] | None = None
        self._files: dict[str, tuple[str, bytes]] = {}  # file_id -> (file_path, content)
        self._commands: dict[str, list[Any]] = {}
        self._faults: list[_Fault] = []
        self._blocked: set[int] = set()
        self._members: dict[int, set[int]] = collections.defaultdict(set)  # group -> user ids
        self._limits: tuple[int | None, int | None] | None = None
        self._limit_retry_after = 1
        self._window: collections.deque[float] = collections.deque()
        self._chat_windows: dict[int, collections.deque[float]] = collections.defaultdict(
            collections.deque)
        self._update_ids = itertools.count(100_000)
        self._message_ids = itertools.count(1)
        self._other_ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._new_updates: asyncio.Event | None = None
        self._poll: tuple[web.Request, asyncio.Event] | None = None  # the getUpdates waiting
        self._stopping = False
        self.port = 0

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder().base_url(...)`` / ``Bot(base_url=...)``."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    def start(self) -> FakeTelegramServer:
        if self._thread is not None:
            return self
        self._stopping = False
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:  # report startup errors to the caller
                failure.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-telegram", daemon=True)
        self._thread.start()
        started.wait(10)
        if failure:
            raise RuntimeError("fake Telegram server failed to start") from failure[0]
        return self

    async def _serve(self) -> None:
        self._new_updates = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        # handler_cancellation: a long poll abandoned by PTB (on stop) ends instead of lingering.
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._stopping = True
        self._wake_pollers()
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None

    def __enter__(self) -> FakeTelegramServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wake_pollers(self) -> None:
        """Wake waiting getUpdates calls (from any thread)."""
        def swap() -> None:  # runs in the server loop, so no wake-up can be lost
            assert self._new_updates is not None
            self._new_updates.set()
            self._new_updates = asyncio.Event()
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(swap)

    # ------------------------------------------------------------------ HTTP
    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        raw: dict[str, Any] = dict(request.query)
        if request.body_exists:
            if request.content_type == "application/json":
                return {**raw, **await request.json()}
            for name, value in (await request.post()).items():
                if isinstance(value, web.FileField):  # an upload: keep it for getFile/download
                    raw[name] = self.add_file(value.file.read())
                else:
                    raw[name] = value
        return {k: _decode(k, v) if isinstance(v, str) else v for k, v in raw.items()}

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        token, method = request.match_info["token"], request.match_info["method"]
        params = await self._read_params(request)
        name = method.lower()
        with self._lock:
            self.tokens_seen.add(token)
            self._calls.append(Call(method, params, time.monotonic()))
            self._cond.notify_all()
            if self.token is not None and token != self.token:
                return _error(401, "Unauthorized")
            handler = getattr(self, f"_api_{name}", None)
            if handler is None:
                return _error(404, "Not Found: method not found")
            fault = self._take_fault(name, params.get("chat_id"))
        try:
            if fault is not None:
                return await self._inject(request, fault)
            if asyncio.iscoroutinefunction(handler):  # getUpdates long-polls outside the lock
                result = await handler(params, request)
            else:
                with self._lock:
                    if params.get("chat_id") in self._blocked:
                        raise ApiError(403, "Forbidden: bot was blocked by the user")
                    result = handler(params)
        except ApiError as err:
            return _error(err.code, err.description, err.parameters)
        return web.json_response({"ok": True, "result": result})

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        token, path = request.match_info["token"], request.match_info["path"]
        with self._lock:
            if self.token is not None and token != self.token:
                return _error(401, "Unauthorized")
            content = next((c for p, c in self._files.values() if p == path), None)
        if content is None:
            return _error(404, "Not Found")
        return web.Response(body=content, content_type="application/octet-stream")

    # ------------------------------------------------------------------ faults and limits
    def _take_fault(self, name: str, chat_id: Any) -> _Fault | None:
        for fault in self._faults:
            if fault.method in (name, "*") and fault.chat_id in (None, chat_id):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    async def _inject(self, request: web.Request, fault: _Fault) -> web.StreamResponse:
        if fault.kind == "retry_after":
            return _error(429, f"Too Many Requests: retry after {fault.retry_after}",
                          {"retry_after": fault.retry_after})
        if fault.kind == "forbidden":
            return _error(403, "Forbidden: bot was blocked by the user")
        if fault.kind == "server_error":
            phrase = "Bad Gateway" if fault.status == 502 else "Internal Server Error"
            return _error(fault.status, phrase)
        # "drop": close the socket without answering; the client sees a disconnect and
        # aiohttp cancels this handler (handler_cancellation=True).
        if request.transport is not None:
            request.transport.close()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    def _check_rate(self, chat_id: int, now: float) -> None:
        """Sliding one-second windows of accepted sends, overall and per chat."""
        chat_window = self._chat_windows[chat_id]
        for window in (self._window, chat_window):
            while window and window[0] <= now - 1.0:
                window.popleft()
        if self._limits is not None:
            overall, per_chat = self._limits
            if (overall is not None and len(self._window) >= overall) or (
                    per_chat is not None and len(chat_window) >= per_chat):
                self.rate_limit_hits += 1
                retry = self._limit_retry_after
                raise ApiError(429, f"Too Many Requests: retry after {retry}",
                               {"retry_after": retry})
        self._window.append(now)
        chat_window.append(now)

    # ------------------------------------------------------------------ Bot API methods
    # Each ``_api_<lower-case method>`` runs under the lock and returns the ``result``.
    def _api_getme(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.bot_user

    async def _api_getupdates(self, p: dict[str, Any],
                              request: web.Request) -> list[dict[str, Any]]:
        assert self._loop is not None
        offset, limit = p.get("offset"), min(max(int(p.get("limit", 100)), 1), 100)
        deadline = self._loop.time() + max(float(p.get("timeout", 0)), 0.0)
        with self._lock:
            if self.webhook["url"]:
                raise ApiError(409, "Conflict: can't use getUpdates method while webhook is "
                                    "active; use deleteWebhook to delete the webhook first")
            if "allowed_updates" in p:  # Telegram remembers the last setting
                self._allowed_updates = p["allowed_updates"] or None
        cut_off = self._take_polling(request)
        try:
            while True:
                if cut_off.is_set():
                    raise ApiError(409, "Conflict: terminated by other getUpdates request; make "
                                        "sure that only one bot instance is running")
                woken = self._new_updates  # taken before checking: a push in between wakes us
                assert woken is not None
                with self._lock:
                    batch = self._pending(offset)[:limit]
                    if batch:
                        self._fetched.update(u.get("update_id") for u in batch)
                remaining = deadline - self._loop.time()
                if batch or remaining <= 0 or self._stopping:
                    return batch
                try:
                    await asyncio.wait_for(woken.wait(), remaining)
                except asyncio.TimeoutError:
                    pass
        finally:
            if self._poll is not None and self._poll[1] is cut_off:
                self._poll = None

    def _take_polling(self, request: web.Request) -> asyncio.Event:
        """As Telegram does, a getUpdates cuts off the one still waiting, which
        gets 409 Conflict; counted when that one's client is still connected
        (another bot instance polling), not when it went away (a poller that
        stopped or died). Runs in the server's loop, like every handler."""
        previous = self._poll
        if previous is not None:
            transport = previous[0].transport
            if transport is not None and not transport.is_closing():
                with self._lock:
                    self.polling_conflicts += 1
            previous[1].set()
            assert self._new_updates is not None
            self._new_updates.set()             # wakes it (and the others, who wait on)
            self._new_updates = asyncio.Event()
        cut_off = asyncio.Event()
        self._poll = (request, cut_off)
        return cut_off

    def _pending(self, offset: int | None) -> list[dict[str, Any]]:
        if offset is not None and offset > 0:  # confirms (forgets) everything before offset
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        if self._allowed_updates is not None:  # Telegram drops updates of other types
            allowed = set(self._allowed_updates)
            self._updates = [u for u in self._updates if not set(u) - {"update_id"} - allowed]
        if offset is not None and offset < 0:
            return self._updates[offset:]
        return list(self._updates)

    def _chat_id(self, p: dict[str, Any]) -> int:
        chat_id = p.get("chat_id")
        if chat_id in (None, ""):
            raise ApiError(400, "Bad Request: chat_id is empty")
        if not isinstance(chat_id, int):
            raise ApiError(400, "Bad Request: chat not found")
        return chat_id

    @staticmethod
    def _check_text(text: Any, limit: int = MAX_TEXT_LENGTH) -> str:
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > limit:  # Telegram counts after entity parsing; close enough here
            raise ApiError(400, "Bad Request: message is too long")
        return text

    @staticmethod
    def _check_markup(p: dict[str, Any]) -> dict[str, Any] | None:
        markup = p.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        for row in markup.get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA_BYTES:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return markup

    def _chat_json(self, chat_id: int) -> dict[str, Any]:
        if chat_id in self._chats:
            return self._chats[chat_id]
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": "Pat"}
        return {"id": chat_id, "type": "supergroup" if chat_id < -10**12 else "group",
                "title": "Test group"}

    def _deliver(self, method: str, p: dict[str, Any], content: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat_id(p)
        markup = self._check_markup(p)
        now = time.monotonic()
        self._check_rate(chat_id, now)
        message = {"message_id": next(self._message_ids), "from": self.bot_user,
                   "chat": self._chat_json(chat_id), "date": int(time.time()), **content}
        if markup and "inline_keyboard" in markup:  # Telegram only echoes inline keyboards
            message["reply_markup"] = markup
        reply = p.get("reply_parameters") or {}
        reply_to = reply.get("message_id", p.get("reply_to_message_id"))
        if reply_to is not None:
            replied = self._messages.get((chat_id, reply_to))
            if replied is not None:
                message["reply_to_message"] = {k: v for k, v in replied.items()
                                               if k != "reply_to_message"}
            elif not (reply.get("allow_sending_without_reply")
                      or p.get("allow_sending_without_reply")):
                raise ApiError(400, "Bad Request: message to be replied not found")
        self._messages[(chat_id, message["message_id"])] = message
        text = content.get("text", content.get("caption"))
        self._sent.append(SentMessage(chat_id, text, markup, message["message_id"], now, method,
                                      p.get("parse_mode")))
        self._cond.notify_all()
        return message

    def _api_sendmessage(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._deliver("sendMessage", p, {"text": self._check_text(p.get("text"))})

    def _caption(self, p: dict[str, Any]) -> dict[str, Any]:
        caption = p.get("caption")
        if caption and len(caption) > MAX_CAPTION_LENGTH:
            raise ApiError(400, "Bad Request: message caption is too long")
        return {"caption": caption} if caption else {}

    def _api_sendphoto(self, p: dict[str, Any]) -> dict[str, Any]:
        file_id = self._known_file(p.get("photo"))
        size = len(self._files[file_id][1])
        photo = [{"file_id": file_id, "file_unique_id": f"u{file_id}", "width": 800,
                  "height": 800, "file_size": size}]
        return self._deliver("sendPhoto", p, {"photo": photo, **self._caption(p)})

    def _known_file(self, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise ApiError(400, "Bad Request: there is no file in the request")
        if value not in self._files:  # a URL or an unseen file_id: accept it as empty content
            self._files[value] = (f"remote/{next(self._other_ids)}", b"")
        return value

    def _api_sendchataction(self, p: dict[str, Any]) -> bool:
        self._chat_id(p)
        return True

    def _api_answercallbackquery(self, p: dict[str, Any]) -> bool:
        if not p.get("callback_query_id"):
            raise ApiError(400, "Bad Request: query is too old and response timeout expired "
                                "or query ID is invalid")
        return True

    def _editable(self, p: dict[str, Any]) -> dict[str, Any] | None:
        if p.get("inline_message_id"):
            return None
        message = self._messages.get((self._chat_id(p), p.get("message_id")))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if message.get("from", {}).get("id") != self.bot_user["id"]:
            raise ApiError(400, "Bad Request: message can't be edited")
        return message

    def _apply_edit(self, message: dict[str, Any] | None, changes: dict[str, Any]) -> Any:
        if message is None:
            return True  # inline messages: Telegram answers True
        if all(message.get(k) == v for k, v in changes.items()):
            raise ApiError(400, "Bad Request: message is not modified: specified new message "
                                "content and reply markup are exactly the same as a current "
                                "content and reply markup of the message")
        message.update(changes)
        message["edit_date"] = int(time.time())
        if message.get("reply_markup") is None:
            message.pop("reply_markup", None)
        return message

    def _api_editmessagetext(self, p: dict[str, Any]) -> Any:
        text = self._check_text(p.get("text"))
        markup = self._check_markup(p)
        return self._apply_edit(self._editable(p), {"text": text, "reply_markup": markup})

    def _api_editmessagereplymarkup(self, p: dict[str, Any]) -> Any:
        markup = self._check_markup(p)
        return self._apply_edit(self._editable(p), {"reply_markup": markup})

    def _api_deletemessage(self, p: dict[str, Any]) -> bool:
        key = (self._chat_id(p), p.get("message_id"))
        if key not in self._messages:
            raise ApiError(400, "Bad Request: message to delete not found")
        del self._messages[key]
        self.deleted.append(key)
        return True

    def _api_setwebhook(self, p: dict[str, Any]) -> bool:
        self.webhook = {k: p[k] for k in ("url", "secret_token", "allowed_updates",
                                          "max_connections", "ip_address") if k in p}
        self.webhook.setdefault("url", "")
        if p.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _api_deletewebhook(self, p: dict[str, Any]) -> bool:
        self.webhook = {"url": ""}
        if p.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _api_getwebhookinfo(self, p: dict[str, Any]) -> dict[str, Any]:
        info = {k: v for k, v in self.webhook.items() if k != "secret_token"}
        return {**info, "has_custom_certificate": False, "pending_update_count": len(self._updates)}

    def _api_getfile(self, p: dict[str, Any]) -> dict[str, Any]:
        file_id = p.get("file_id")
        if file_id not in self._files:
            raise ApiError(400, "Bad Request: invalid file_id")
        path, content = self._files[file_id]
        return {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_size": len(content),
                "file_path": path}

    @staticmethod
    def _commands_key(p: dict[str, Any]) -> str:
        return json.dumps([p.get("scope") or {"type": "default"}, p.get("language_code", "")])

    def _api_setmycommands(self, p: dict[str, Any]) -> bool:
        self._commands[self._commands_key(p)] = list(p.get("commands") or [])
        return True

    def _api_getmycommands(self, p: dict[str, Any]) -> list[Any]:
        return self._commands.get(self._commands_key(p), [])

    def _api_getchatmember(self, p: dict[str, Any]) -> dict[str, Any]:
        chat_id, user_id = self._chat_id(p), p.get("user_id")
        if not isinstance(user_id, int):
            raise ApiError(400, "Bad Request: invalid user_id specified")
        user = {"id": user_id, "is_bot": False, "first_name": "User"}
        status = "member" if user_id in self._members.get(chat_id, ()) else "left"
        return {"status": status, "user": user}

    def _api_close(self, p: dict[str, Any]) -> bool:
        return True

    _api_logout = _api_close

    # ------------------------------------------------------------------ test helpers: setup
    def add_file(self, content: bytes, *, file_path: str | None = None,
                 file_id: str | None = None) -> str:
        """Register bytes that getFile and the download route will serve; returns the file_id."""
        with self._lock:
            n = next(self._other_ids)
            file_id = file_id or f"file{n}"
            self._files[file_id] = (file_path or f"files/{file_id}", content)
            return file_id

    def fail_next(self, method: str, kind: str, times: int = 1, retry_after: int = 1, *,
                  chat_id: int | None = None, status: int = 500) -> None:
        """Make the next ``times`` calls of ``method`` ("*" = any) fail with ``kind``."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}")
        with self._lock:
            self._faults.append(_Fault(method.lower() if method != "*" else "*", kind, times,
                                       retry_after, chat_id, status))

    def add_member(self, chat_id: int, user_id: int) -> None:
        """getChatMember answers "member" for this user in this group (else "left")."""
        with self._lock:
            self._members[chat_id].add(user_id)

    def remove_member(self, chat_id: int, user_id: int, announce: bool = True) -> None:
        """The user leaves the group; with ``announce`` the group gets Telegram's
        service message about it, as bots in a group do."""
        with self._lock:
            self._members[chat_id].discard(user_id)
        if announce:
            left = {"id": user_id, "is_bot": False, "first_name": "Former"}
            self._incoming(chat_id, {"left_chat_member": left}, user_id=user_id,
                           chat_type="supergroup")

    def block_chat(self, chat_id: int) -> None:
        """Every call carrying this chat_id answers 403 until ``unblock_chat``."""
        with self._lock:
            self._blocked.add(chat_id)

    def unblock_chat(self, chat_id: int) -> None:
        with self._lock:
            self._blocked.discard(chat_id)

    def enforce_rate_limits(self, global_per_second: int | None = 30,
                            per_chat_per_second: int | None = 1, retry_after: int = 1) -> None:
        with self._lock:
            self._limits = (global_per_second, per_chat_per_second)
            self._limit_retry_after = retry_after
            self._window.clear()
            self._chat_windows.clear()

    def disable_rate_limits(self) -> None:
        with self._lock:
            self._limits = None

    def reset(self) -> None:
        """Forget calls, sent messages, faults, blocks, rate limits and pending updates."""
        with self._lock:
            self._calls.clear()
            self._sent.clear()
            self._faults.clear()
            self._blocked.clear()
            self._updates.clear()
            self._limits = None
            self.rate_limit_hits = 0
            self.polling_conflicts = 0

    # ------------------------------------------------------------------ test helpers: updates
    def push_update(self, raw: dict[str, Any]) -> int:
        """Queue a raw Update (``update_id`` is assigned if missing); returns its update_id.
        It is sent as it is, so it may be one the library cannot parse."""
        with self._lock:
            update = dict(raw)
            update.setdefault("update_id", next(self._update_ids))
            self._updates.append(update)
        self._wake_pollers()
        return update["update_id"]

    def _incoming(self, chat_id: int, content: dict[str, Any], *, user_id: int | None = None,
                  first_name: str = "Pat", username: str | None = None,
                  chat_type: str = "private", kind: str = "message",
                  message_id: int | None = None, reply_to: int | None = None) -> int:
        user = {"id": user_id or (chat_id if chat_type == "private" else 424242),
                "is_bot": False, "first_name": first_name}
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if username:
            user["username"] = username
        if chat_type == "private":
            chat.update({k: v for k, v in user.items() if k in ("first_name", "username")})
        else:
            chat["title"] = "Test group"
        with self._lock:
            self._chats[chat_id] = chat
            message = {"message_id": message_id or next(self._message_ids), "from": user,
                       "chat": chat, "date": int(time.time()), **content}
            if reply_to is not None:  # a snapshot of the message replied to, as Telegram sends
                replied = self._messages.get((chat_id, reply_to))
                if replied is None:
                    raise ValueError(f"no message {reply_to} in chat {chat_id} to reply to")
                message["reply_to_message"] = {k: v for k, v in replied.items()
                                               if k != "reply_to_message"}
            self._messages[(chat_id, message["message_id"])] = message
        return self.push_update({kind: message})

    def push_message(self, chat_id: int, text: str, **who: Any) -> int:
        """A text message from a user (keywords: user_id, first_name, username, chat_type,
        reply_to: the id of a message in the chat it replies to)."""
        return self._incoming(chat_id, {"text": text}, **who)

    def push_command(self, chat_id: int, text: str, **who: Any) -> int:
        """Like push_message, with the bot_command entity PTB's CommandHandler requires."""
        text = text if text.startswith("/") else f"/{text}"
        entity = {"type": "bot_command", "offset": 0, "length": len(text.split()[0])}
        return self._incoming(chat_id, {"text": text, "entities": [entity]}, **who)

    def push_photo(self, chat_id: int, content: bytes, caption: str | None = None,
                   **who: Any) -> int:
        thumb, full = self.add_file(content), self.add_file(content)
        photo = [{"file_id": f, "file_unique_id": f"u{f}", "width": w, "height": w,
                  "file_size": len(content)} for f, w in ((thumb, 90), (full, 800))]
        content_json: dict[str, Any] = {"photo": photo}
        if caption:
            content_json["caption"] = caption
        return self._incoming(chat_id, content_json, **who)

    def _push_media(self, chat_id: int, kind: str, content: bytes, fields: dict[str, Any],
                    who: dict[str, Any]) -> int:
        f = self.add_file(content)
        media = {"file_id": f, "file_unique_id": f"u{f}", "file_size": len(content), **fields}
        return self._incoming(chat_id, {kind: media}, **who)

    def push_sticker(self, chat_id: int, emoji: str = "\U0001f642", **who: Any) -> int:
        return self._push_media(chat_id, "sticker", b"RIFF\0\0\0\0WEBP", {
            "type": "regular", "width": 512, "height": 512, "is_animated": False,
            "is_video": False, "emoji": emoji}, who)

    def push_voice(self, chat_id: int, content: bytes = b"OggS", duration: int = 3,
                   **who: Any) -> int:
        return self._push_media(chat_id, "voice", content,
                                {"duration": duration, "mime_type": "audio/ogg"}, who)

    def push_video_note(self, chat_id: int, content: bytes = b"\0\0", duration: int = 2,
                        **who: Any) -> int:
        return self._push_media(chat_id, "video_note", content,
                                {"length": 240, "duration": duration}, who)

    def push_edited_message(self, chat_id: int, message_id: int, text: str, **who: Any) -> int:
        return self._incoming(chat_id, {"text": text, "edit_date": int(time.time())},
                              kind="edited_message", message_id=message_id, **who)

    def push_callback(self, chat_id: int, data: str, message_id: int | None = None, *,
                      user_id: int | None = None, first_name: str = "Pat") -> int:
        """A button press on ``message_id`` (default: the bot's last message to the chat)."""
        with self._lock:
            if message_id is None:
                message_id = max((m.message_id for m in self._sent if m.chat_id == chat_id),
                                 default=0)
            message = dict(self._messages.get((chat_id, message_id)) or {
                "message_id": message_id, "from": self.bot_user, "date": int(time.time()),
                "chat": self._chat_json(chat_id), "text": ""})  # a snapshot, like Telegram's
            query = {"id": str(next(self._other_ids)), "chat_instance": f"ci{chat_id}",
                     "from": {"id": user_id or chat_id, "is_bot": False, "first_name": first_name},
                     "message": message, "data": data}
        return self.push_update({"callback_query": query})

    # ------------------------------------------------------------------ test helpers: inspection
    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if c.method.lower() == method.lower()]

    def sent_messages(self, chat_id: int | None = None) -> list[SentMessage]:
        with self._lock:
            return [m for m in self._sent if chat_id is None or m.chat_id == chat_id]

    def message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """Current state of a message (after edits), as Telegram JSON."""
        with self._lock:
            return self._messages.get((chat_id, message_id))

    def times_fetched(self, update_id: int) -> int:
        """How many getUpdates answers carried this update."""
        with self._lock:
            return self._fetched[update_id]

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._updates)

    @property
    def delivered_count(self) -> int:
        with self._lock:
            return len(self._sent)

    def delivered_per_chat(self) -> dict[int, int]:
        with self._lock:
            return dict(collections.Counter(m.chat_id for m in self._sent))

    def duplicates(self) -> dict[tuple[int, str | None], int]:
        """(chat_id, text) pairs the bot sent more than once."""
        with self._lock:
            counts = collections.Counter((m.chat_id, m.text) for m in self._sent)
        return {key: n for key, n in counts.items() if n > 1}

    def wait_for_messages(self, chat_id: int | None, count: int,
                          timeout: float = 10.0) -> list[SentMessage]:
        """Block until ``count`` messages went to ``chat_id`` (None: any chat); return them all."""
        with self._cond:
            self._cond.wait_for(lambda: len(self.sent_messages(chat_id)) >= count, timeout)
            got = self.sent_messages(chat_id)
            if len(got) < count:
                everything = [(m.chat_id, m.text) for m in self._sent]
                raise AssertionError(
                    f"expected {count} message(s) to chat {chat_id} within {timeout}s, got "
                    f"{len(got)}: {[m.text for m in got]!r}; all sends: {everything!r}")
            return got

    def wait_for_call(self, method: str, timeout: float = 10.0, *, count: int = 1) -> Call:
        """Block until ``method`` was called ``count`` times; return the latest such call."""
        with self._cond:
            self._cond.wait_for(lambda: len(self.calls_to(method)) >= count, timeout)
            matching = self.calls_to(method)
            if len(matching) < count:
                raise AssertionError(
                    f"expected {count} call(s) to {method} within {timeout}s, got {len(matching)};"
                    f" calls: {[c.method for c in self._calls]!r}")
            return matching[-1]

    async def await_messages(self, chat_id: int | None, count: int,
                             timeout: float = 10.0) -> list[SentMessage]:
        """``wait_for_messages`` for async tests: waits in a worker thread, not the event loop."""
        return await asyncio.to_thread(self.wait_for_messages, chat_id, count, timeout)

    async def await_call(self, method: str, timeout: float = 10.0, *, count: int = 1) -> Call:
        return await asyncio.to_thread(self.wait_for_call, method, timeout, count=count)
