"""What the multi-process tests and the benchmarks share: enrolled patients
written straight into a database, a protocol copy with check-ins of their own,
and the bot as a real `python -m bot` process against the fake Telegram server.
"""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Optional
from zoneinfo import ZoneInfo

import yaml

from aftercare.services import die_with_parent
from aftercare.settings import PROJECT_ROOT
from aftercare.store import db
from aftercare.store.models import Patient, Treatment

from .fake_telegram import FakeTelegramServer

TOKEN = "123456:BENCH-token"
PATIENT_TZ = "Europe/London"
# Our own wording: what patients ask in the first days (the benchmarks' patients).
QUESTIONS = [
    "when can I put makeup on again?",
    "is it ok to go to the gym today?",
    "my face is still quite red, is that normal?",
    "can I wash my face tonight?",
    "when am I allowed to go swimming?",
    "can I have a glass of wine this evening?",
    "my skin feels really tight and dry",
    "should I wear sunscreen tomorrow?",
    "when can I start using my retinol again?",
    "it's a bit itchy, what can I do?",
    "can I use my vitamin c serum?",
    "is it ok to go in the sauna this weekend?",
]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def enrol_patients(url: str, chats: list[int], treated_at: datetime,
                   name: str = "Test Patient", timezone_name: str = PATIENT_TZ) -> list[int]:
    """Enrolled Telegram patients (sender tg-<chat>, one treatment each, in
    timezone_name), written in one transaction on SQLite or PostgreSQL;
    returns the chat ids."""
    enrolled_at = treated_at + timedelta(minutes=5)
    now = datetime.now(timezone.utc)
    engine = db.make_engine(url)
    try:
        with engine.begin() as connection:
            first = connection.exec_driver_sql(
                "SELECT coalesce(max(id), 0) FROM patients").scalar_one() + 1
            first_treatment = connection.exec_driver_sql(
                "SELECT coalesce(max(id), 0) FROM treatments").scalar_one() + 1
            connection.execute(Patient.__table__.insert(), [
                {"id": first + n, "name": f"{name} {chat}", "timezone": timezone_name,
                 "sender_id": f"tg-{chat}", "source": "clinic", "created_at": now,
                 "enrolled_at": enrolled_at} for n, chat in enumerate(chats)])
            connection.execute(Treatment.__table__.insert(), [
                {"id": first_treatment + n, "patient_id": first + n, "number_in_series": 1,
                 "treated_at": treated_at, "created_at": now} for n in range(len(chats))])
            if engine.dialect.name == "postgresql":   # ids given: move the sequences on
                for table in ("patients", "treatments"):
                    connection.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))")
    finally:
        engine.dispose()
    return chats


def write_protocol(path: Path, checkins: list[dict],
                   quiet: Optional[tuple[str, str]] = None) -> Path:
    """The clinic's protocol with these check-ins (and quiet hours), written atomically."""
    protocol = yaml.safe_load((PROJECT_ROOT / "clinic" / "protocol.yml").read_text("utf-8"))
    protocol["checkins"] = checkins
    if quiet is not None:
        protocol["quiet_hours"] = {"start": quiet[0], "end": quiet[1]}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(protocol, sort_keys=False), encoding="utf-8")
    tmp.replace(path)
    return path


def quiet_hours_away_from(moment: datetime) -> tuple[str, str]:
    """An hour of quiet six hours from moment: never in the way of a run."""
    local = moment.astimezone(ZoneInfo(PATIENT_TZ))
    return (f"{(local + timedelta(hours=6)):%H:%M}", f"{(local + timedelta(hours=7)):%H:%M}")


class BotProcess:
    """`python -m bot`, configured through its environment like production,
    against the fake Telegram server. env: further settings (RASA_URLS,
    AFTERCARE_REDIS_URL, TELEGRAM_RECEIVE_UPDATES, ...)."""

    def __init__(self, url: str, protocol: Path, log_dir: Path, telegram: FakeTelegramServer,
                 name: str, *, rasa_url: str = "", action_server_url: str = "",
                 env: Optional[dict[str, str]] = None, cwd: Path = PROJECT_ROOT,
                 profile_dir: Optional[Path] = None) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.cwd = cwd
        self.env = {**os.environ,
                    "TELEGRAM_TOKEN": TOKEN, "TELEGRAM_BASE_URL": telegram.base_url,
                    "TELEGRAM_BASE_FILE_URL": telegram.base_file_url,
                    "TELEGRAM_WEBHOOK_URL": "", "AFTERCARE_DATABASE_URL": url,
                    "RASA_URL": rasa_url, "ACTION_SERVER_URL": action_server_url,
                    "AFTERCARE_PROTOCOL": str(protocol), "AFTERCARE_LOG_DIR": str(log_dir),
                    "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(cwd), **(env or {})}
        self.telegram = telegram
        self.log_path = log_dir / f"bot-{name}.out"
        self.name = name
        self.profile_dir = profile_dir
        self.process: Optional[subprocess.Popen] = None
        self.profiler: Optional[subprocess.Popen] = None
        self.started = 0.0

    def start(self) -> "BotProcess":
        with open(self.log_path, "ab") as log_file:
            self.started = time.monotonic()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot"], cwd=self.cwd, env=self.env, stdout=log_file,
                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent)
        if self.profile_dir is not None:
            self.profiler = subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(self.pid),
                 "--rate", "100", "--gil", "--format", "raw",
                 "--output", str(self.profile_dir / f"{self.name}.txt")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no output)"

    def check_alive(self) -> None:
        if not self.alive():
            raise RuntimeError(f"bot {self.name} exited ({self.process.returncode}); "
                               f"its output:\n{self.output()}")

    def wait_ready(self, timeout: float = 600) -> float:
        """Seconds from process start to its first getUpdates at the fake server."""
        deadline = time.monotonic() + timeout
        while True:
            polls = [c for c in self.telegram.calls_to("getUpdates") if c.time >= self.started]
            if polls:
                return polls[0].time - self.started
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"bot {self.name} did not poll within {timeout:.0f} s")
            time.sleep(0.01)

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 120) -> float:
        """Send sig; seconds until the process was gone (SIGKILL after timeout)."""
        if not self.alive():
            return 0.0
        sent = time.monotonic()
        os.kill(self.pid, sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.process.wait()
        gone = time.monotonic() - sent
        if self.profiler is not None:
            self.profiler.wait(60)
        return gone
