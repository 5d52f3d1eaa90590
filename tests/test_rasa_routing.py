"""Several Rasa servers behind the bot (issue 12): each conversation always
on the same server while it is up, the next one in its ranking when it is
not, and back when it returns; one server only without Redis; Rasa's lock
store in Redis, and in memory while Redis is down; Rasa's API and webhook
behind a token.

The routing tests talk HTTP to small servers on loopback that record what
reaches them; the end-to-end tests run two real Rasa servers, each with its
own action server, on a real PostgreSQL database and a real Redis.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import AsyncIterator, Iterator, Optional

import pytest
import redis
from aiohttp import web
from sqlalchemy import text

from aftercare.services import (
    MODEL_DIR, Service, assistant_pairs, running_services, wait_until_healthy, warm_up_rasa,
)
from aftercare.settings import (
    PROJECT_ROOT, SettingsError, get_settings, one_rasa_without_redis, rasa_server_urls,
)
from aftercare.store import db
from bot.app import _pair_urls
from bot.rasa import RasaClient, RasaUnavailable
from bot.redis_link import RedisLink
from bot.supervisor import ServiceNotices
from support.processes import consecutive_free_ports, free_port
from support.redis import RedisServer

TOKEN = "rasa-api-token-5d41402abc4b2a76b9719d91"
SECRET_PASSWORD = "hunter2-not-in-messages"


# --- settings --------------------------------------------------------------------

def test_rasa_urls_and_server_counts_are_read_and_checked(monkeypatch):
    monkeypatch.setenv("RASA_URLS", "http://10.0.0.5:5005, http://10.0.0.6:5005/")
    assert get_settings().rasa_urls == ("http://10.0.0.5:5005", "http://10.0.0.6:5005")
    for wrong in ("10.0.0.5:5005", "http://10.0.0.5", "ftp://a:1", "http://a:1,http://a:1"):
        monkeypatch.setenv("RASA_URLS", wrong)
        with pytest.raises(SettingsError, match="RASA_URLS"):
            get_settings()
    monkeypatch.setenv("RASA_URLS", "http://10.0.0.5:5005")
    monkeypatch.setenv("AFTERCARE_RASA_SERVERS", "2")
    with pytest.raises(SettingsError, match="not both"):
        get_settings()
    monkeypatch.delenv("RASA_URLS")
    monkeypatch.setenv("RASA_URL", "http://127.0.0.1:6100")
    monkeypatch.setenv("AFTERCARE_RASA_SERVERS", "3")
    assert rasa_server_urls(get_settings()) == (
        "http://127.0.0.1:6100", "http://127.0.0.1:6101", "http://127.0.0.1:6102")
    for wrong in ("0", "two", "17"):
        monkeypatch.setenv("AFTERCARE_RASA_SERVERS", wrong)
        with pytest.raises(SettingsError, match="AFTERCARE_RASA_SERVERS"):
            get_settings()


def test_a_wrong_redis_url_names_the_setting_but_never_the_password(monkeypatch):
    monkeypatch.setenv("AFTERCARE_REDIS_URL", f"http://:{SECRET_PASSWORD}@cache:6379/0")
    with pytest.raises(SettingsError, match="AFTERCARE_REDIS_URL") as raised:
        get_settings()
    assert SECRET_PASSWORD not in str(raised.value)
    monkeypatch.setenv("AFTERCARE_REDIS_URL", f"rediss://:{SECRET_PASSWORD}@cache:6380/1")
    assert get_settings().redis_url.startswith("rediss://")


def test_without_redis_only_the_first_rasa_server_is_used_and_it_says_why():
    settings = replace(get_settings(), rasa_urls=("http://a:5005", "http://b:5005"),
                       redis_url=None)
    used, message = one_rasa_without_redis(settings)
    assert rasa_server_urls(used) == ("http://a:5005",)
    assert "AFTERCARE_REDIS_URL is not set" in message and "RASA_URLS" in message
    with_redis = replace(settings, redis_url="redis://127.0.0.1:6379/0")
    assert one_rasa_without_redis(with_redis) == (with_redis, None)


def test_aftercare_run_starts_pairs_and_the_bot_knows_which_rasa_server_each_is():
    settings = replace(get_settings(), rasa_url="http://127.0.0.1:6100",
                       action_server_url="http://127.0.0.1:6150/webhook", rasa_servers=2,
                       redis_url="redis://127.0.0.1:6379/0")
    assert [(suffix, pair.rasa_url, pair.action_server_url)
            for suffix, pair in assistant_pairs(settings)] == [
        ("", "http://127.0.0.1:6100", "http://127.0.0.1:6150/webhook"),
        ("-2", "http://127.0.0.1:6101", "http://127.0.0.1:6151/webhook")]
    services = [SimpleNamespace(name=name) for name in (
        "action-server", "rasa-server", "review", "action-server-2", "rasa-server-2")]
    assert _pair_urls(services, list(rasa_server_urls(settings))) == {
        "": "http://127.0.0.1:6100", "-2": "http://127.0.0.1:6101"}


# --- routing, against servers on loopback that record what reaches them -----------

class RecordingRasa:
    """Answers the Rasa routes the bot uses and records each request's sender
    and token; can be stopped and started again on the same port."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = free_port()
        self.seen: list[tuple[str, Optional[str]]] = []   # (sender or path, token)
        self._runner: Optional[web.AppRunner] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _webhook(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.seen.append((body["sender"], request.query.get("token")))
        return web.json_response([{"text": f"answered by {self.name}"}])

    async def _trigger(self, request: web.Request) -> web.Response:
        self.seen.append((request.match_info["sender"], request.query.get("token")))
        return web.json_response({"messages": [{"text": f"check-in from {self.name}"}]})

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response({"model_id": "x"})

    async def start(self) -> "RecordingRasa":
        app = web.Application()
        app.router.add_post("/webhooks/rest/webhook", self._webhook)
        app.router.add_post("/conversations/{sender}/trigger_intent", self._trigger)
        app.router.add_get("/status", self._status)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def senders(self) -> set[str]:
        return {sender for sender, _ in self.seen}


async def _until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


SENDERS = [f"tg-{700_000 + n}" for n in range(60)]


@pytest.mark.asyncio
async def test_each_conversation_stays_on_one_server_and_the_conversations_spread():
    servers = [await RecordingRasa(name).start() for name in ("a", "b", "c")]
    client = RasaClient([s.url for s in servers])
    other_process = RasaClient([s.url for s in reversed(servers)])   # listed the other way round
    try:
        for _ in range(3):
            for sender in SENDERS:
                await client.send(sender, "hello")
        for sender in SENDERS[:10]:
            await client.trigger(sender, "EXTERNAL_checkin", {"checkin": "day_1"})
        owners = {s.name: s.senders() for s in servers}
        assert sum(len(senders) for senders in owners.values()) == len(SENDERS)   # one each
        assert all(len(senders) >= 8 for senders in owners.values()), owners   # spread out
        assert {server.url: len(server.seen) for server in servers} == dict(client.requests)
        # Another bot process, with the servers in another order, agrees on every owner.
        assert all(other_process.server_for(sender) == client.server_for(sender)
                   for sender in SENDERS)
    finally:
        await client.close()
        await other_process.close()
        for server in servers:
            await server.stop()


@pytest.mark.asyncio
async def test_a_dead_server_moves_only_its_conversations_and_gets_them_back():
    servers = [await RecordingRasa(name).start() for name in ("a", "b", "c")]
    client = RasaClient([s.url for s in servers], probe_seconds=0.2)
    try:
        owner = {sender: client.server_for(sender) for sender in SENDERS}
        dead = servers[0]
        await dead.stop()
        for server in servers:
            server.seen.clear()
        for sender in SENDERS:
            replies = await client.send(sender, "hello")
            assert replies and "answered by" in replies[0].text   # nobody went unanswered
        moved = {s for s in SENDERS if owner[s] == dead.url}
        assert moved and all(client.server_for(s) != dead.url for s in SENDERS)
        for server in servers[1:]:     # the others kept their own conversations
            assert {s for s in server.senders() if owner[s] != dead.url} == {
                s for s in SENDERS if owner[s] == server.url}
        assert servers[1].senders() | servers[2].senders() == set(SENDERS)

        await dead.start()             # back on the same port: its conversations return
        await _until(lambda: all(client.server_for(s) == owner[s] for s in SENDERS))
        dead.seen.clear()
        for sender in sorted(moved):
            await client.send(sender, "hello again")
        assert dead.senders() == moved
    finally:
        await client.close()
        for server in servers:
            await server.stop()


@pytest.mark.asyncio
async def test_without_spreading_every_conversation_goes_to_the_first_server_up():
    servers = [await RecordingRasa(name).start() for name in ("a", "b")]
    client = RasaClient([s.url for s in servers], probe_seconds=0.2)
    try:
        client.set_spread(False)
        for sender in SENDERS[:20]:
            await client.send(sender, "hello")
        assert servers[0].senders() == set(SENDERS[:20]) and not servers[1].seen
        client.mark(servers[0].url, up=False)    # the supervisor: its pair is down
        await client.send(SENDERS[0], "hello")
        assert servers[1].senders() == {SENDERS[0]}
        client.mark(servers[1].url, up=False)
        with pytest.raises(RasaUnavailable):
            await client.send(SENDERS[0], "hello")
    finally:
        await client.close()
        for server in servers:
            await server.stop()


@pytest.mark.asyncio
async def test_the_token_goes_with_every_request_to_rasa():
    server = await RecordingRasa("a").start()
    client = RasaClient([server.url], token=TOKEN)
    try:
        await client.send("tg-1", "hello")
        await client.trigger("tg-1", "EXTERNAL_checkin", {"checkin": "day_1"})
        assert server.seen == [("tg-1", TOKEN), ("tg-1", TOKEN)]
    finally:
        await client.close()
        await server.stop()


@pytest.mark.asyncio
async def test_no_server_reachable_is_the_degraded_answer_not_a_crash():
    client = RasaClient([f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"],
                        probe_seconds=0.2)
    try:
        with pytest.raises(RasaUnavailable, match="no Rasa server is reachable"):
            await client.send("tg-1", "hello")
    finally:
        await client.close()


class _Outbox:
    """Stands in for the staff relay's queue of notices (as in test_staying_up.py)."""

    def __init__(self) -> None:
        self.notices: list[str] = []

    def queue_notice(self, text: str) -> None:
        self.notices.append(text)


@pytest.mark.asyncio
async def test_a_pair_the_supervisor_restarts_hands_its_conversations_over_without_alarm():
    servers = [await RecordingRasa(name).start() for name in ("a", "b")]
    client, outbox = RasaClient([s.url for s in servers]), _Outbox()
    notices = ServiceNotices(client, outbox, lambda: "+44 1",
                             pair_urls={"": servers[0].url, "-2": servers[1].url})
    second_pairs = [s for s in SENDERS if client.server_for(s) == servers[1].url]
    try:
        notices("action-server-2", False)     # its action server died: Rasa 2 is no use
        for sender in second_pairs:
            await client.send(sender, "hello")
        assert servers[0].senders() == set(second_pairs) and not servers[1].seen
        assert client.available and outbox.notices == []   # patients are still answered
        notices("rasa-server", False)         # now neither pair: the assistant is down
        assert not client.available and len(outbox.notices) == 1
        with pytest.raises(RasaUnavailable):
            await client.send(second_pairs[0], "hello")
        notices("action-server-2", True)
        assert client.available and len(outbox.notices) == 2   # and back
        await client.send(second_pairs[0], "hello again")
        assert servers[1].senders() == {second_pairs[0]}
    finally:
        await client.close()
        for server in servers:
            await server.stop()


# --- two real Rasa servers, each with its own action server ------------------------

needs_model = pytest.mark.skipif(not (MODEL_DIR / "aftercare.tar.gz").exists(),
                                 reason="no trained model: run `make model` first")


@pytest.fixture(scope="module")
def scaled(postgres, tmp_path_factory) -> Iterator[dict]:
    """Two Rasa servers with a token, two action servers, Redis for their locks,
    all on one PostgreSQL database, as `aftercare run` starts them with
    AFTERCARE_RASA_SERVERS=2."""
    work = tmp_path_factory.mktemp("scaled")
    url = postgres.create_database(template=postgres.migrated_template())
    cache = RedisServer.start()
    rasa_port = consecutive_free_ports(2)
    action_port = consecutive_free_ports(2, avoid=(rasa_port, rasa_port + 1))
    settings = replace(get_settings(), database_url=url,
                       rasa_url=f"http://127.0.0.1:{rasa_port}",
                       action_server_url=f"http://127.0.0.1:{action_port}/webhook",
                       rasa_servers=2, redis_url=cache.url, rasa_token=TOKEN,
                       log_dir=work / "log")
    try:
        with running_services(settings, log_dir=work / "log", timeout=600,
                              include_review=False) as services:
            yield {"settings": settings, "services": services, "redis": cache,
                   "urls": list(rasa_server_urls(settings)), "log": work / "log"}
    finally:
        cache.stop()
        postgres.drop_database(url)


def _turns(url: str, sender: str) -> list[tuple[str, Optional[str]]]:
    """(event type, action name or user text) of a conversation, in order."""
    with db.make_engine(url).connect() as connection:
        rows = connection.execute(text(
            "SELECT type_name, action_name, data FROM events WHERE sender_id = :s ORDER BY id"),
            {"s": sender}).all()
    return [(kind, json.loads(data).get("text") if kind == "user" else action)
            for kind, action, data in rows]


def _in_order(turns: list[tuple[str, Optional[str]]]) -> bool:
    """Each message is read, answered and followed by action_listen before the
    next message of the conversation is read: no two turns interleaved."""
    listening = True
    for kind, what in turns:
        if kind == "user":
            if not listening:
                return False
            listening = False
        elif kind == "action" and what == "action_listen":
            listening = True
    return True


def _lock_commands(redis_url: str) -> int:
    stats = redis.Redis.from_url(redis_url).info("commandstats")
    return sum(stats.get(name, {}).get("calls", 0) for name in ("cmdstat_get", "cmdstat_set"))


@pytest.mark.e2e
@needs_model
@pytest.mark.asyncio
async def test_one_conversations_messages_sent_at_once_are_handled_in_order_on_one_server(
        scaled):
    """The race of Rasa's open-source RedisLockStore (two servers taking one
    conversation's lock at the same moment) needs two servers on one
    conversation: all of one conversation's messages, sent together, reach
    one server and are handled one after another."""
    settings, urls = scaled["settings"], scaled["urls"]
    client = RasaClient(urls, token=TOKEN)
    sender = "tg-race-1"
    messages = [f"question {n}: can I wear makeup today?" for n in range(6)]
    lock_commands = _lock_commands(settings.redis_url)
    try:
        answers = await asyncio.gather(*(client.send(sender, m) for m in messages))
    finally:
        await client.close()
    assert all(answers), "every message was answered"
    assert set(client.requests) == {client.server_for(sender)}
    assert sum(client.requests.values()) == len(messages)
    turns = _turns(settings.database_url, sender)
    assert sorted(what for kind, what in turns if kind == "user") == sorted(messages)
    assert _in_order(turns), turns
    assert _lock_commands(settings.redis_url) > lock_commands   # the locks were in Redis


@pytest.mark.e2e
@needs_model
def test_rasa_refuses_requests_without_its_token(scaled):
    url = scaled["urls"][1]
    body = json.dumps({"sender": "tg-token-1", "message": "hello"}).encode()
    for path, data in (("/webhooks/rest/webhook", body), ("/model/parse", b'{"text": "hi"}'),
                       ("/status", None), ("/conversations/tg-token-1/tracker", None)):
        for query in ("", "?token=wrong-token-of-the-same-length-xx"):
            request = urllib.request.Request(f"{url}{path}{query}", data=data,
                                             headers={"Content-Type": "application/json"})
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=30)
            assert refused.value.code == 401, (path, query)
    request = urllib.request.Request(f"{url}/webhooks/rest/webhook?token={TOKEN}", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        assert json.loads(answer.read())
    assert _turns(scaled["settings"].database_url, "tg-token-1")   # only the one with it


def test_rasa_will_not_listen_beyond_loopback_without_a_token(tmp_path):
    env = {**os.environ, "AFTERCARE_RASA_TOKEN": ""}
    done = subprocess.run(
        [sys.executable, "-m", "aftercare.rasa_server", "run", "--model", "none.tar.gz",
         "--interface", "0.0.0.0", "--port", str(free_port())],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "AFTERCARE_RASA_TOKEN" in done.stderr and "0.0.0.0" in done.stderr


@pytest.mark.e2e
@needs_model
@pytest.mark.asyncio
async def test_with_redis_down_rasa_keeps_answering_on_one_server_and_says_so(scaled):
    settings, urls, cache = scaled["settings"], scaled["urls"], scaled["redis"]
    client = RasaClient(urls, token=TOKEN)
    link = RedisLink(settings.redis_url, check_seconds=0.2)
    link.on_change(client.set_spread)
    senders = [f"tg-redis-down-{n}" for n in range(12)]
    try:
        await link.start()
        assert {client.server_for(s) for s in senders} == set(urls)   # spread while it is up
        cache.kill()
        await _until(lambda: not link.up)
        assert {client.server_for(s) for s in senders} == {urls[0]}
        answers = await asyncio.gather(*(client.send(s, "is redness normal?") for s in senders))
        assert all(answers) and set(client.requests) == {urls[0]}
        for sender in senders:
            assert _in_order(_turns(settings.database_url, sender))
        logs = "".join(p.read_text(errors="replace") for p in scaled["log"].glob("rasa-server*.log"))
        assert "conversation locks are kept in this server's memory" in logs
        assert SECRET_PASSWORD not in logs
        cache.restart()
        await _until(lambda: link.up)
        assert {client.server_for(s) for s in senders} == set(urls)
        client.requests.clear()
        await asyncio.sleep(6)   # the servers try Redis again every 5 s
        await asyncio.gather(*(client.send(s, "thanks") for s in senders))
        assert set(client.requests) == set(urls)
    finally:
        await link.stop()
        await client.close()
        if not cache.is_running():
            cache.restart()


@pytest.mark.e2e
@needs_model
@pytest.mark.asyncio
async def test_a_killed_rasa_server_hands_its_conversations_over_and_gets_them_back(scaled):
    settings, urls, services = scaled["settings"], scaled["urls"], scaled["services"]
    by_url = {url: next(s for s in services if s.name == name)
              for url, name in zip(urls, ("rasa-server", "rasa-server-2"))}
    client = RasaClient(urls, token=TOKEN, probe_seconds=0.5)
    sender = next(s for s in (f"tg-failover-{n}" for n in range(50))
                  if client.server_for(s) == urls[1])
    try:
        assert await client.send(sender, "hello")
        victim: Service = by_url[urls[1]]
        os.killpg(victim.process.pid, signal.SIGKILL)
        victim.process.wait()
        assert await client.send(sender, "is it normal to peel on day 3?")   # answered anyway
        assert client.requests[urls[0]] == 1 and client.server_for(sender) == urls[0]

        victim.respawn()     # from the main thread: the child dies with the thread that started it
        await asyncio.to_thread(wait_until_healthy, [victim], 600)
        await asyncio.to_thread(warm_up_rasa, replace(settings, rasa_url=urls[1]))
        await _until(lambda: client.server_for(sender) == urls[1], timeout=30)
        assert await client.send(sender, "thank you")
        assert client.requests[urls[1]] == 2
    finally:
        await client.close()
    turns = _turns(settings.database_url, sender)
    assert [what for kind, what in turns if kind == "user"] == [
        "hello", "is it normal to peel on day 3?", "thank you"]
    assert _in_order(turns)


class DroppingProxy:
    """In front of a real Rasa server: passes every request on, and for the
    REST webhook and trigger_intent (while `drop` is set) closes the connection
    once Rasa has answered, without the answer: a server that dies just after
    recording a turn."""

    DROPPED = ("/webhooks/rest/webhook", "/trigger_intent")   # the ends of those paths

    def __init__(self, upstream: str) -> None:
        self.upstream, self.port, self.drop = upstream, free_port(), True
        self.dropped: list[list[dict]] = []
        self._runner: Optional[web.AppRunner] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _pass(self, request: web.Request) -> web.StreamResponse:
        import httpx

        async with httpx.AsyncClient(timeout=60) as client:
            answer = await client.request(request.method, f"{self.upstream}{request.path_qs}",
                                          content=await request.read(),
                                          headers={"Content-Type": "application/json"})
        if self.drop and request.path.endswith(self.DROPPED):
            self.dropped.append(answer.json())
            request.transport.close()
            raise ConnectionResetError("dropped on purpose")
        return web.Response(body=answer.content, status=answer.status_code,
                            content_type="application/json")

    async def __aenter__(self) -> "DroppingProxy":
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._pass)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()


@asynccontextmanager
async def _behind_dropping_proxy(urls: list[str], prefix: str
                                 ) -> AsyncIterator[tuple[DroppingProxy, RasaClient, str]]:
    """A Rasa client whose first server sits behind a DroppingProxy, and a
    sender (prefix-n) that the client sends there."""
    async with DroppingProxy(urls[0]) as proxy:
        client = RasaClient([proxy.url, urls[1]], token=TOKEN, probe_seconds=0.5)
        sender = next(s for s in (f"{prefix}-{n}" for n in range(50))
                      if client.server_for(s) == proxy.url)
        try:
            yield proxy, client, sender
        finally:
            await client.close()


def _user_texts(url: str, sender: str) -> list[Optional[str]]:
    return [what for kind, what in _turns(url, sender) if kind == "user"]


@pytest.mark.e2e
@needs_model
@pytest.mark.asyncio
async def test_a_message_whose_server_broke_off_after_handling_it_gets_the_recorded_answer(
        scaled):
    """The connection breaks after Rasa recorded the turn: the bot finds the
    message in the shared tracker and sends the replies recorded for it, and
    the message is handled once, not again on the next server."""
    settings, urls = scaled["settings"], scaled["urls"]
    async with _behind_dropping_proxy(urls, "tg-broke-off") as (proxy, client, sender):
        replies = await client.send(sender, "when can I wear makeup again?")
    assert len(proxy.dropped) == 1 and proxy.dropped[0], "Rasa answered behind the proxy"
    assert [r.text for r in replies] == [m.get("text") or "" for m in proxy.dropped[0]]
    assert client.requests == {}          # no server answered it a second time
    assert _user_texts(settings.database_url, sender) == ["when can I wear makeup again?"]


@pytest.mark.e2e
@needs_model
@pytest.mark.asyncio
async def test_a_checkin_whose_server_broke_off_after_handling_it_is_not_triggered_twice(
        scaled):
    """The same for a triggered check-in: the replies recorded for it are
    sent, and the tracker holds the check-in once."""
    settings, urls = scaled["settings"], scaled["urls"]
    async with _behind_dropping_proxy(urls, "tg-checkin-broke-off") as (proxy, client, sender):
        replies = await client.trigger(sender, "EXTERNAL_checkin",
                                       {"checkin": "day2_morning", "day": 2})
    assert len(proxy.dropped) == 1
    recorded = proxy.dropped[0]["messages"]
    assert recorded and [r.text for r in replies] == [m.get("text") or "" for m in recorded]
    assert client.requests == {}
    turns = _turns(settings.database_url, sender)
    assert [what for kind, what in turns if kind == "user"] == ["EXTERNAL: EXTERNAL_checkin"]


@pytest.mark.e2e
@needs_model
@pytest.mark.asyncio
async def test_a_message_in_flight_when_its_server_dies_is_handled_by_the_next_one(scaled):
    """The server is frozen with the message in its socket, then killed: it
    never recorded it, so the next server handles it, once, in order. (This
    leaves the second server dead: the last test of the module to use it.)"""
    settings, urls, services = scaled["settings"], scaled["urls"], scaled["services"]
    victim = next(s for s in services if s.name == "rasa-server-2")
    client = RasaClient(urls, token=TOKEN, probe_seconds=0.5)
    sender = next(s for s in (f"tg-in-flight-{n}" for n in range(50))
                  if client.server_for(s) == urls[1])
    try:
        assert await client.send(sender, "hello")
        os.killpg(victim.process.pid, signal.SIGSTOP)
        in_flight = asyncio.create_task(client.send(sender, "is it ok to go to the gym?"))
        await asyncio.sleep(1.0)
        assert not in_flight.done()
        os.killpg(victim.process.pid, signal.SIGKILL)
        victim.process.wait()
        replies = await asyncio.wait_for(in_flight, timeout=60)
    finally:
        await client.close()
    assert replies and client.requests[urls[0]] == 1
    assert _user_texts(settings.database_url, sender) == ["hello", "is it ok to go to the gym?"]
    assert _in_order(_turns(settings.database_url, sender))


# --- `aftercare run` with AFTERCARE_RASA_SERVERS=2 ------------------------------------

RUN_TOKEN = "424243:RUN-scale-test"
STAFF_CHAT = -1004445556668


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _wait_for(condition, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout:.0f} s"
        time.sleep(0.2)


@pytest.mark.e2e
@needs_model
def test_aftercare_run_with_two_rasa_servers_keeps_answering_when_one_dies(tmp_path, redis_url):
    from support.fake_telegram import FakeTelegramServer

    rasa_port = consecutive_free_ports(2)
    action_port = consecutive_free_ports(2, avoid=(rasa_port, rasa_port + 1))
    review_port = consecutive_free_ports(1, avoid=(rasa_port, rasa_port + 1, action_port,
                                                   action_port + 1))
    urls = [f"http://127.0.0.1:{rasa_port}", f"http://127.0.0.1:{rasa_port + 1}"]
    ranking = RasaClient(urls)     # the bot ranks the same way: which chats are on server 2
    chats = [chat for chat in range(2001, 2100) if ranking.server_for(f"tg-{chat}") == urls[1]][:3]
    log_dir = tmp_path / "log"
    env = {**os.environ, "TELEGRAM_TOKEN": RUN_TOKEN, "TELEGRAM_STAFF_CHAT_ID": str(STAFF_CHAT),
           "AFTERCARE_DATABASE_URL": f"sqlite:///{tmp_path / 'aftercare.db'}",
           "RASA_URL": urls[0], "ACTION_SERVER_URL": f"http://127.0.0.1:{action_port}/webhook",
           "AFTERCARE_RASA_SERVERS": "2", "AFTERCARE_REDIS_URL": redis_url,
           "AFTERCARE_REVIEW_PORT": str(review_port), "AFTERCARE_LOG_DIR": str(log_dir)}
    with FakeTelegramServer(token=RUN_TOKEN) as telegram:
        env.update(TELEGRAM_BASE_URL=telegram.base_url,
                   TELEGRAM_BASE_FILE_URL=telegram.base_file_url)
        process = subprocess.Popen([str(Path(sys.executable).parent / "aftercare"), "run"],
                                   cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait_for(lambda: telegram.calls_to("getUpdates") or process.poll() is not None,
                      "polling")
            assert process.poll() is None, process.stdout.read().decode()
            assert all(_port_open(p) for p in (rasa_port, rasa_port + 1, action_port,
                                                 action_port + 1))
            for chat in chats:
                telegram.push_message(chat, "when can I wear makeup?")
            answered = [telegram.wait_for_messages(chat, 1, timeout=60)[0] for chat in chats]

            second = subprocess.run(["pgrep", "-P", str(process.pid), "-f",
                                     f"aftercare.rasa_server.*--port {rasa_port + 1}"],
                                    capture_output=True, text=True).stdout.split()
            assert len(second) == 1
            os.kill(int(second[0]), signal.SIGKILL)
            # Once it is gone (a message sent while it was dying may have been read:
            # that one gets the degraded answer and is kept, never sent twice).
            _wait_for(lambda: not _port_open(rasa_port + 1), "the port closed", timeout=30)
            for chat in chats:      # their server is dead: the other one answers them
                telegram.push_message(chat, "when can I wear makeup?")
            again = [telegram.wait_for_messages(chat, 2, timeout=60)[1] for chat in chats]
            assert [m.text for m in again] == [m.text for m in answered]

            bot_log = log_dir / "bot.log"
            _wait_for(lambda: "rasa-server-2 is back" in bot_log.read_text(errors="replace"),
                      "restart of rasa-server-2")
            telegram.push_message(chats[0], "thank you")
            telegram.wait_for_messages(chats[0], 3, timeout=60)
            os.killpg(process.pid, signal.SIGINT)
            output, _ = process.communicate(timeout=90)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
        staff = [m.text or "" for m in telegram.sent_messages(STAFF_CHAT)]
    output = output.decode()
    assert process.returncode == 0, output
    assert "Starting 2 Rasa servers" in output
    log = bot_log.read_text(errors="replace")
    assert f"Rasa server {urls[1]} is down: its conversations go to the next server" in log
    assert f"Rasa server {urls[1]} is back: its conversations return" in log
    assert not any("DEGRADED" in text for text in staff)   # the other pair answered meanwhile
    assert (log_dir / "rasa-server-2.log").is_file() and (log_dir / "action-server-2.log").is_file()
    assert not any(_port_open(p) for p in (rasa_port, rasa_port + 1))
