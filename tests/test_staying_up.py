"""The bot stays up when a server it needs dies.

End to end: for a minute in which Rasa cannot start again (its port is held
by another socket, so each restart really fails), patients get the degraded
mode and the staff group hears once that the assistant is degraded; then the
supervisor's next restart succeeds, the staff group hears once that it is
back, and answers are normal again. The real bot, Rasa and action server, over
real HTTP to the fake Telegram server.

The supervisor on its own, with small real servers (python -m http.server) as
its children: restarts, growing waits between failed attempts, the reset
after a healthy spell, and one notice each way.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Callable

import pytest
from sqlalchemy import select

from aftercare.services import MODEL_DIR, Service, running_services
from aftercare.settings import get_settings
from aftercare.store import db
from aftercare.store.models import Escalation, Message
from bot.app import build_application, running
from bot.context import sender_for_chat
from bot.rasa import RasaClient, RasaUnavailable
from bot.staff_messages import BACK_HEADING, DEGRADED_HEADING
from bot.supervisor import Backoff, ServiceNotices, Supervisor
from support.fake_telegram import FakeTelegramServer, SentMessage
from tests.bot_harness import (
    TOKEN, ManualClock, bot_settings, enrol, free_port, treated_hours_ago,
)

STAFF_CHAT = -1002223334445
DOWN_FOR = 60.0
QUESTION = "can I use retinol tonight?"
RED_FLAG = "my lips and tongue are swelling and it's hard to breathe"
TROUBLE = "Sorry, I can't answer right now"


async def _await_text(telegram: FakeTelegramServer, chat_id: int, after: int,
                      wanted: Callable[[str], bool], timeout: float = 30) -> SentMessage:
    """The first message to chat_id, after the first `after` ones, whose text fits."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        for message in telegram.sent_messages(chat_id)[after:]:
            if message.text and wanted(message.text):
                return message
        assert loop.time() < deadline, [m.text for m in telegram.sent_messages(chat_id)]
        await asyncio.sleep(0.1)


def _staff_notices(telegram: FakeTelegramServer, heading: str) -> list[str]:
    return [m.text for m in telegram.sent_messages(STAFF_CHAT)
            if m.text and m.text.startswith(heading)]


async def _hold_port(port: int, timeout: float = 5) -> socket.socket:
    """Listen on the dead Rasa's port, so the restarted Rasa cannot bind it."""
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            holder.bind(("127.0.0.1", port))
            holder.listen()
            return holder
        except OSError:
            assert asyncio.get_running_loop().time() < deadline, "the port was never freed"
            await asyncio.sleep(0.01)


@pytest.mark.e2e
@pytest.mark.skipif(not (MODEL_DIR / "aftercare.tar.gz").exists(),
                    reason="no trained model: run `make model` first")
@pytest.mark.asyncio
async def test_rasa_down_for_a_minute_patients_get_the_degraded_mode_then_it_is_back(
        tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="bot")
    rasa_port = free_port()
    settings = replace(get_settings(), database_url=f"sqlite:///{tmp_path / 'aftercare.db'}",
                       rasa_url=f"http://127.0.0.1:{rasa_port}",
                       action_server_url=f"http://127.0.0.1:{free_port()}/webhook",
                       log_dir=tmp_path / "log")
    db.migrate(settings.database_url)
    with running_services(settings, timeout=300, include_review=False) as services, \
            FakeTelegramServer(token=TOKEN) as telegram:
        application = build_application(
            bot_settings(settings, telegram, telegram_staff_chat_id=STAFF_CHAT),
            clock=ManualClock(), restart_backoff=Backoff(first=1, cap=8))
        application.bot_data["services"] = services
        async with running(application, poll_timeout=1):
            patient_id, chat_id = await enrol(telegram, settings, treated_hours_ago(30))
            rasa = next(s for s in services if s.name == "rasa-server")
            loop = asyncio.get_running_loop()

            os.killpg(rasa.process.pid, signal.SIGKILL)
            killed_at = loop.time()
            holder = await _hold_port(rasa_port)
            try:
                notice = await _await_text(telegram, STAFF_CHAT, 0,
                                           lambda t: t.startswith(DEGRADED_HEADING))
                assert "Rasa server" in notice.text and "+44 20 7946 0321" in notice.text

                # A red flag: the safety message from the bot's own net, and the alert.
                seen = len(telegram.sent_messages(chat_id))
                telegram.push_message(chat_id, RED_FLAG)
                safety = await _await_text(telegram, chat_id, seen, lambda t: TROUBLE in t)
                assert safety.text.startswith("⚠️ Please call 999 now")
                alert = await _await_text(telegram, STAFF_CHAT, 0,
                                          lambda t: t.startswith("🚨 EMERGENCY"))
                assert RED_FLAG in alert.text

                # A plain question: the degraded answer, at once.
                seen = len(telegram.sent_messages(chat_id))
                asked_at = loop.time()
                telegram.push_message(chat_id, QUESTION)
                await _await_text(telegram, chat_id, seen, lambda t: t.startswith(TROUBLE))
                assert loop.time() - asked_at < 10
                assert application.running

                await asyncio.sleep(max(0.0, killed_at + DOWN_FOR - loop.time()))
                assert rasa.process.poll() is not None or not rasa.is_healthy()
            finally:
                holder.close()

            back = await _await_text(telegram, STAFF_CHAT, 0,
                                     lambda t: t.startswith(BACK_HEADING), timeout=180)
            assert "Rasa server" in back.text
            seen = len(telegram.sent_messages(chat_id))
            telegram.push_message(chat_id, QUESTION)
            answer = await _await_text(telegram, chat_id, seen, lambda t: True)
            assert not answer.text.startswith(TROUBLE)
            await asyncio.sleep(3)   # a second notice, were there one, would be posted by now
            assert len(_staff_notices(telegram, DEGRADED_HEADING)) == 1
            assert len(_staff_notices(telegram, BACK_HEADING)) == 1

    with db.session_scope(settings.database_url) as session:
        statuses = session.execute(
            select(Message.status).where(Message.sender_id == sender_for_chat(chat_id),
                                         Message.direction == "in")
            .order_by(Message.id)).scalars().all()
        levels = session.execute(select(Escalation.level).where(
            Escalation.patient_id == patient_id)).scalars().all()
    assert statuses[-3:] == ["unanswered", "unanswered", "answered"]
    assert levels == ["emergency"]
    failures = [r.getMessage() for r in caplog.records
                if r.name == "bot.supervisor" and r.levelno == logging.ERROR]
    assert failures[0].startswith("rasa-server stopped")
    retries = [f for f in failures if f.startswith("rasa-server did not start again")]
    assert retries   # a restart failed while the port was held, and was tried again
    assert all(str(rasa.log_path) in f for f in failures)


# --- the supervisor with small real servers ------------------------------------

class Outbox:
    """Stands in for the staff relay's queue: what would be posted, in order."""

    def __init__(self) -> None:
        self.notices: list[str] = []

    def queue_notice(self, text: str) -> None:
        self.notices.append(text)


def _web_server(name: str, tmp_path: Path) -> Service:
    """A real child process answering on a port of its own, started the way
    services.py starts the product's servers (own session, own log)."""
    port = free_port()
    args = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    log_path = tmp_path / f"{name}.log"
    env = dict(os.environ)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
    return Service(name=name, process=process, health_url=f"http://127.0.0.1:{port}/",
                   log_path=log_path, args=args, env=env)


def _failing_at_start(name: str, tmp_path: Path) -> Service:
    args = [sys.executable, "-c", "raise SystemExit(3)"]
    process = subprocess.Popen(args)
    return Service(name=name, process=process, health_url="http://127.0.0.1:9/",
                   log_path=tmp_path / f"{name}.log", args=args, env=dict(os.environ))


async def _until(condition: Callable[[], bool], timeout: float = 20) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def _healthy(service: Service) -> bool:
    return await asyncio.to_thread(service.is_healthy)


def test_backoff_doubles_up_to_its_cap():
    backoff = Backoff(first=1, cap=60)
    assert [backoff.delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]


@pytest.mark.asyncio
async def test_a_dead_server_is_restarted_and_staff_hear_once_each_way(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="bot.supervisor")
    actions, review = _web_server("action-server", tmp_path), _web_server("review", tmp_path)
    rasa, outbox = RasaClient("http://127.0.0.1:9"), Outbox()
    supervisor = Supervisor([actions, review], ServiceNotices(rasa, outbox, lambda: "+44 1"),
                            backoff=Backoff(first=0.1, cap=0.4), check_every=0.05)
    task = asyncio.create_task(supervisor.run())
    try:
        await _until(lambda: actions.is_healthy() and review.is_healthy())
        first_pid = actions.process.pid
        os.killpg(actions.process.pid, signal.SIGKILL)
        os.killpg(review.process.pid, signal.SIGKILL)
        await _until(lambda: not rasa.available)
        with pytest.raises(RasaUnavailable):   # patients get the degraded answer at once
            await rasa.send("tg-1", "hello")
        await _until(lambda: supervisor.down() == [])
        assert actions.process.pid != first_pid and await _healthy(actions)
        assert await _healthy(review)
        assert rasa.available
    finally:
        task.cancel()
        for service in (actions, review):
            service.stop()
        await rasa.close()
    degraded = [n for n in outbox.notices if n.startswith(DEGRADED_HEADING)]
    back = [n for n in outbox.notices if n.startswith(BACK_HEADING)]
    assert len(degraded) == 1 and "action server" in degraded[0] and "+44 1" in degraded[0]
    assert len(back) == 1 and "action server" in back[0]
    assert sum(n.startswith("🛠 REVIEW PAGE DOWN") for n in outbox.notices) == 1
    assert sum(n.startswith("✅ REVIEW PAGE BACK") for n in outbox.notices) == 1
    stopped = [r.getMessage() for r in caplog.records if "stopped (exit status" in r.getMessage()]
    assert any(m.startswith("action-server") and str(actions.log_path) in m for m in stopped)
    assert any(m.startswith("review") and str(review.log_path) in m for m in stopped)


@pytest.mark.asyncio
async def test_a_server_that_cannot_start_is_tried_again_and_again(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="bot.supervisor")
    broken, rasa, outbox = _failing_at_start("rasa-server", tmp_path), RasaClient(""), Outbox()
    supervisor = Supervisor([broken], ServiceNotices(rasa, outbox, lambda: "+44 1"),
                            backoff=Backoff(first=0.05, cap=0.2), check_every=0.01)
    task = asyncio.create_task(supervisor.run())

    def failures() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    try:
        await _until(lambda: len(failures()) >= 6)
        assert not task.done()   # still supervising
    finally:
        task.cancel()
        await rasa.close()
    waits = [m.rsplit("Next attempt in ", 1)[1] for m in failures()[:6]]
    assert waits == ["0.05 s.", "0.1 s.", "0.2 s.", "0.2 s.", "0.2 s.", "0.2 s."]
    assert failures()[0].startswith("rasa-server stopped (exit status 3)")
    assert all(m.startswith("rasa-server did not start again (exit status 3)")
               and str(broken.log_path) in m for m in failures()[1:6])
    assert [n.split(":")[0] for n in outbox.notices] == [DEGRADED_HEADING]


@pytest.mark.asyncio
async def test_a_healthy_spell_starts_the_waits_again_from_the_first(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="bot.supervisor")
    service, rasa = _web_server("review", tmp_path), RasaClient("")
    supervisor = Supervisor([service], ServiceNotices(rasa, None, lambda: ""),
                            backoff=Backoff(first=0.1, cap=10, reset_after=1.5),
                            check_every=0.02)
    task = asyncio.create_task(supervisor.run())

    def waits() -> list[str]:
        return [r.getMessage().rsplit("Next attempt in ", 1)[1] for r in caplog.records
                if r.levelno == logging.ERROR]
    async def kill_and_wait_back(deaths: int) -> None:
        os.killpg(service.process.pid, signal.SIGKILL)
        await _until(lambda: len(waits()) == deaths)
        await _until(lambda: supervisor.down() == [])

    try:
        await _until(service.is_healthy)
        await kill_and_wait_back(1)
        await kill_and_wait_back(2)    # died again at once: the wait doubles
        await asyncio.sleep(2.0)       # then healthy for longer than reset_after
        await kill_and_wait_back(3)
    finally:
        task.cancel()
        service.stop()
        await rasa.close()
    assert waits() == ["0.1 s.", "0.2 s.", "0.1 s."]
