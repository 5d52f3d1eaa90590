"""One bot process at a time schedules and sends check-ins (bot/leader.py):
a PostgreSQL advisory lock, a file lock on SQLite. The locks against the real
databases and a real process killed with SIGKILL; then two real bot
Applications on one database (SQLite, then PostgreSQL) with the real Rasa and
action servers and the fake Telegram server: each check-in is sent once, the
second process stands by and says so, and takes over when the first stops."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
from contextlib import AsyncExitStack
from datetime import timedelta

import pytest

from aftercare.services import MODEL_DIR
from aftercare.settings import PROJECT_ROOT
from aftercare.store import db, deliveries, repository
from bot.app import build_application, running
from bot.checkin_service import job_id
from bot.leader import AdvisoryLock, FileLock, lock_for
from support.fake_telegram import FakeTelegramServer
from tests.bot_harness import (
    TOKEN, ManualClock, bot_settings, checkins, enrol, fire_now, planned_checkin,
    running_assistant, treated_hours_ago, wait_until,
)

needs_model = pytest.mark.skipif(not (MODEL_DIR / "aftercare.tar.gz").exists(),
                                 reason="no trained model: run `make model` first")


def _holder(code: str) -> subprocess.Popen:
    """Another process that takes a lock (code sets `lock`), says so, and waits."""
    script = textwrap.dedent(code) + textwrap.dedent("""
        assert lock.try_acquire()
        print("held", flush=True)
        import time
        time.sleep(600)
    """)
    process = subprocess.Popen([sys.executable, "-c", script], cwd=PROJECT_ROOT,
                               stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
    assert process.stdout.readline().strip() == "held"
    return process


def _kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


# --- the locks ------------------------------------------------------------------

def test_on_sqlite_one_process_holds_the_file_lock_until_it_dies(tmp_path):
    url = f"sqlite:///{tmp_path / 'aftercare.db'}"
    first, second = lock_for(url), lock_for(url)
    assert isinstance(first, FileLock)
    assert first.try_acquire() and first.held()
    assert not second.try_acquire()
    first.release()
    assert second.try_acquire()
    second.release()

    other = _holder(f"""
        from pathlib import Path
        from bot.leader import FileLock
        lock = FileLock(Path({str(tmp_path / 'aftercare.db-scheduler.lock')!r}))
    """)
    try:
        assert not first.try_acquire()
        _kill(other)               # the kernel frees the lock however the process ends
        assert first.try_acquire()
    finally:
        _kill(other)
        first.release()


def test_on_postgresql_the_advisory_lock_passes_on_when_its_holder_dies(postgres):
    url = postgres.create_database()
    first, second = lock_for(url), lock_for(url)
    try:
        assert isinstance(first, AdvisoryLock)
        assert first.try_acquire() and first.held()
        assert not second.try_acquire()
        first.release()
        assert second.try_acquire()
        second.release()

        other = _holder(f"""
            from bot.leader import AdvisoryLock
            lock = AdvisoryLock({url!r})
        """)
        try:
            assert not first.try_acquire()
            _kill(other)           # PostgreSQL ends its session, and the lock with it
            assert _eventually(first.try_acquire)
        finally:
            _kill(other)
        # The leader's connection cut (as by a restart): it knows it no longer leads.
        connection = postgres.connect(url.rsplit("/", 1)[1])
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_locks "
                           "WHERE locktype = 'advisory' AND pid <> pg_backend_pid() AND "
                           "database = (SELECT oid FROM pg_database "
                           "            WHERE datname = current_database())")
        connection.close()
        assert not first.held()
        assert second.try_acquire() and not first.try_acquire()
    finally:
        first.release()
        second.release()
        postgres.drop_database(url)


def _eventually(check, attempts: int = 50) -> bool:
    import time
    for _ in range(attempts):
        if check():
            return True
        time.sleep(0.1)
    return False


# --- two bot processes on one database -------------------------------------------

@pytest.fixture(scope="module")
def assistant(tmp_path_factory, module_database_url):
    with running_assistant(tmp_path_factory.mktemp("leader"), module_database_url) as settings:
        yield settings


def _status(settings, patient_id: int, checkin_id: str):
    with db.session_scope(settings.database_url) as session:
        rows = [d for d in deliveries.for_patient(session, patient_id)
                if d.checkin_id == checkin_id]
        return rows[0].status if rows else None


def _treatment_id(settings, patient_id: int) -> int:
    with db.session_scope(settings.database_url) as session:
        return repository.current_treatment(repository.get_patient(session, patient_id)).id


@pytest.mark.e2e
@pytest.mark.all_databases
@needs_model
@pytest.mark.asyncio
async def test_two_bot_processes_send_each_checkin_once_and_the_standby_takes_over(
        assistant, caplog):
    caplog.set_level(logging.INFO, logger="bot.checkin_service")
    clock = ManualClock()
    with FakeTelegramServer(token=TOKEN) as telegram:
        first = build_application(bot_settings(assistant, telegram), clock=clock)
        second = build_application(
            bot_settings(assistant, telegram, telegram_receive_updates=False), clock=clock)
        async with AsyncExitStack() as first_running:
            await first_running.enter_async_context(running(first, poll_timeout=1))
            async with running(second, poll_timeout=1):
                assert checkins(first).leading and not checkins(second).leading
                assert not checkins(second).scheduler.running
                assert "stands by without a scheduler" in caplog.text

                patient_id, chat_id = await enrol(telegram, assistant, treated_hours_ago(30))
                treatment = _treatment_id(assistant, patient_id)
                day2 = planned_checkin(assistant, patient_id, "day2_morning")
                clock.set(day2.due_at + timedelta(minutes=1))
                fire_now(first, job_id(treatment, "day2_morning"))
                await wait_until(lambda: _status(assistant, patient_id, "day2_morning") == "sent",
                                 timeout=30)

                # Day 3 falls due while the first process is gone: the second one
                # takes over, finds it missed (still within its grace) and sends it.
                day3 = planned_checkin(assistant, patient_id, "day3_morning")
                clock.set(day3.due_at + timedelta(minutes=1))
                await first_running.aclose()
                await wait_until(lambda: checkins(second).leading, timeout=20)
                assert "takes over" in caplog.text
                await wait_until(lambda: _status(assistant, patient_id, "day3_morning") == "sent",
                                 timeout=40)
                assert checkins(second).scheduler.running
        sent = [m.text for m in telegram.sent_messages(chat_id)]
    assert not telegram.duplicates()
    assert len(sent) == len(set(sent))


def test_a_bot_process_that_only_sends_takes_no_updates_and_stops_cleanly(tmp_path):
    """TELEGRAM_RECEIVE_UPDATES=no: `python -m bot` starts (check-ins, staff
    relay), never asks Telegram for updates, and stops on SIGTERM."""
    url = f"sqlite:///{tmp_path / 'aftercare.db'}"
    with FakeTelegramServer(token=TOKEN) as telegram:
        env = {**os.environ, "TELEGRAM_TOKEN": TOKEN, "TELEGRAM_BASE_URL": telegram.base_url,
               "TELEGRAM_BASE_FILE_URL": telegram.base_file_url, "TELEGRAM_WEBHOOK_URL": "",
               "TELEGRAM_RECEIVE_UPDATES": "no", "AFTERCARE_DATABASE_URL": url,
               "RASA_URL": "http://127.0.0.1:9", "AFTERCARE_LOG_DIR": str(tmp_path / "log")}
        process = subprocess.Popen([sys.executable, "-m", "bot"], cwd=PROJECT_ROOT, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            telegram.wait_for_call("setMyCommands", timeout=120)   # started
            assert _eventually(lambda: "ready" in (tmp_path / "log" / "bot.log").read_text())
            assert process.poll() is None and not telegram.calls_to("getUpdates")
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        assert not telegram.calls_to("getUpdates")
    assert process.returncode == 0, output.decode()
    log = (tmp_path / "log" / "bot.log").read_text()
    assert "TELEGRAM_RECEIVE_UPDATES=no" in log
    assert "this bot process schedules and sends the check-ins" in log
