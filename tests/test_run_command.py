"""`aftercare run` with a Telegram token: Rasa, the action server and the bot
start together, Ctrl-C stops all three, and a dead service is restarted while
the bot stays up, with a notice in the staff group each way. Runs the real
command in a subprocess against the fake Telegram server. Without a token, it
says where its logs really are."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aftercare.services import MODEL_DIR
from aftercare.settings import PROJECT_ROOT
from support.fake_telegram import FakeTelegramServer
from tests.bot_harness import free_port

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not (MODEL_DIR / "aftercare.tar.gz").exists(),
                                 reason="no trained model: run `make model` first")]
TOKEN = "424242:RUN-test"
STAFF_CHAT = -1004445556667
SECRET_WORDS = "zebra-striped rash"   # patient text that must never reach a log
RASA_PORT, ACTIONS_PORT, REVIEW_PORT = free_port(), free_port(), free_port()


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _start(tmp_path: Path, telegram: FakeTelegramServer) -> subprocess.Popen:
    env = {**os.environ,
           "TELEGRAM_TOKEN": TOKEN,
           "TELEGRAM_BASE_URL": telegram.base_url,
           "TELEGRAM_BASE_FILE_URL": telegram.base_file_url,
           "AFTERCARE_DATABASE_URL": f"sqlite:///{tmp_path / 'aftercare.db'}",
           "RASA_URL": f"http://127.0.0.1:{RASA_PORT}",
           "ACTION_SERVER_URL": f"http://127.0.0.1:{ACTIONS_PORT}/webhook",
           "AFTERCARE_REVIEW_PORT": str(REVIEW_PORT),
           "TELEGRAM_STAFF_CHAT_ID": str(STAFF_CHAT),
           "AFTERCARE_LOG_DIR": str(tmp_path / "log")}
    return subprocess.Popen([str(Path(sys.executable).parent / "aftercare"), "run"], cwd=PROJECT_ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _wait_for_polling(process: subprocess.Popen, telegram: FakeTelegramServer) -> None:
    deadline = time.monotonic() + 300
    while not telegram.calls_to("getUpdates"):
        if process.poll() is not None:
            raise AssertionError(process.stdout.read().decode())
        assert time.monotonic() < deadline, "the bot never started polling"
        time.sleep(0.2)


def _logs(tmp_path: Path, output: str) -> str:
    files = [p.read_text(errors="replace") for p in (tmp_path / "log").glob("*.log")]
    return output + "".join(files)


def test_ctrl_c_stops_the_bot_rasa_and_the_action_server(tmp_path):
    with FakeTelegramServer(token=TOKEN) as telegram:
        process = _start(tmp_path, telegram)
        try:
            _wait_for_polling(process, telegram)
            assert _port_open(RASA_PORT) and _port_open(ACTIONS_PORT)
            assert _port_open(REVIEW_PORT)   # the staff review page runs too
            telegram.push_message(1001, f"my cheek has a {SECRET_WORDS}, is that normal?")
            (reply,) = telegram.wait_for_messages(1001, 1, timeout=30)
            assert reply.text
            # A rash is escalated: the alert reaches the staff group, with the
            # patient's words, which still stay out of every log.
            (alert,) = telegram.wait_for_messages(STAFF_CHAT, 1, timeout=30)
            assert "escalation #1" in alert.text and SECRET_WORDS in alert.text
            os.killpg(process.pid, signal.SIGINT)
            output, _ = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    output = output.decode()
    assert process.returncode == 0, output
    assert not _port_open(RASA_PORT) and not _port_open(ACTIONS_PORT)
    assert not _port_open(REVIEW_PORT)
    assert f"http://127.0.0.1:{REVIEW_PORT}/" in output and "aftercare staff add EMAIL" in output
    assert (tmp_path / "log" / "review.log").is_file()
    logs = _logs(tmp_path, output)
    assert SECRET_WORDS not in logs and TOKEN not in logs


def _child_pids(process: subprocess.Popen, pattern: str) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(process.pid), "-f", pattern],
                           capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in found]


def _wait_for_staff(telegram: FakeTelegramServer, heading: str, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while True:
        texts = [m.text for m in telegram.sent_messages(STAFF_CHAT)
                 if m.text and m.text.startswith(heading)]
        if texts:
            return texts[0]
        assert time.monotonic() < deadline, f"no {heading!r} in the staff group"
        time.sleep(0.2)


def test_dead_services_are_restarted_while_the_bot_stays_up(tmp_path):
    with FakeTelegramServer(token=TOKEN) as telegram:
        process = _start(tmp_path, telegram)
        try:
            _wait_for_polling(process, telegram)
            (actions,) = _child_pids(process, f"[-]-port {ACTIONS_PORT}")
            (review,) = _child_pids(process, "python.*-m review")
            os.kill(actions, signal.SIGKILL)
            os.kill(review, signal.SIGKILL)
            degraded = _wait_for_staff(telegram, "🛠 ASSISTANT DEGRADED")
            assert "action server" in degraded
            _wait_for_staff(telegram, "🛠 REVIEW PAGE DOWN")
            _wait_for_staff(telegram, "✅ ASSISTANT BACK")
            _wait_for_staff(telegram, "✅ REVIEW PAGE BACK")
            assert process.poll() is None and _port_open(ACTIONS_PORT) and _port_open(REVIEW_PORT)
            assert _child_pids(process, f"[-]-port {ACTIONS_PORT}") != [actions]
            telegram.push_message(1002, "when can I wear makeup?")
            (reply,) = telegram.wait_for_messages(1002, 1, timeout=30)
            assert not reply.text.startswith("Sorry, I can't answer right now")
            os.killpg(process.pid, signal.SIGINT)
            output, _ = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    output = output.decode()
    assert process.returncode == 0, output
    assert not _port_open(RASA_PORT) and not _port_open(ACTIONS_PORT)
    assert not _port_open(REVIEW_PORT)
    logs = _logs(tmp_path, output)
    assert (f"action-server stopped (exit status -9); see "
            f"{tmp_path / 'log' / 'action-server.log'}") in logs
    assert f"review stopped (exit status -9); see {tmp_path / 'log' / 'review.log'}" in logs


def test_run_says_where_its_logs_really_are(tmp_path):
    """AFTERCARE_LOG_DIR is where the logs go, and what `aftercare run` prints.
    The review page's port is taken, so the command stops at once, naming its log."""
    log_dir = tmp_path / "elsewhere"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {key: value for key, value in os.environ.items() if key != "TELEGRAM_TOKEN"}
        env.update({"TELEGRAM_TOKEN": "", "AFTERCARE_LOG_DIR": str(log_dir),
                    "AFTERCARE_DATABASE_URL": f"sqlite:///{tmp_path / 'aftercare.db'}",
                    "RASA_URL": f"http://127.0.0.1:{free_port()}",
                    "ACTION_SERVER_URL": f"http://127.0.0.1:{free_port()}/webhook",
                    "AFTERCARE_REVIEW_PORT": str(taken.getsockname()[1])})
        result = subprocess.run([str(Path(sys.executable).parent / "aftercare"), "run"],
                                cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"(logs in {log_dir}) ..." in output
    assert f"see {log_dir / 'review.log'}" in output
    assert "var/log" not in output
    assert (log_dir / "review.log").is_file()
