"""Speed of the Telegram bot on this machine: reply latency, check-in delivery,
restarts in the middle of a check-in wave, start-up time and memory.

    .venv/bin/python benchmarks/benchmark_bot.py
        [--part latency|checkins|restart|startup|engines|all] [--patients 5000]
        [--startup-patients 14300] [--startup-runs 3] [--database sqlite|postgresql|both]
        [--write-docs]

The bot runs as a real subprocess (`python -m bot`, configured through its
environment variables), so kills, restarts and memory are real. The fake
Telegram Bot API server (tests/support/fake_telegram.py) runs in this process
and records the monotonic time of every message the bot sends. The real Rasa
server and action server run on ports 5605 / 5655, on a temporary database of
each part's own (Rasa's tracker store shares the SQLite file), logs in a
temporary folder (kept with --keep).

1. latency: time from pushing a patient's message into the fake server to the
   bot's reply arriving there; one message at a time, then 50 patients writing
   at once (each sends, waits for the reply, sends the next). Enrolled patients,
   so the assistant answers for their day. No rate limits.
2. checkins: N enrolled patients (default 5,000) with one check-in due at the
   same minute, 2-3 minutes after the bot starts (a protocol copy of our own);
   the fake server enforces 30 messages/s overall and 1/s per chat.
3. restart: the same, with the bot stopped after half the deliveries and
   started again: once with SIGTERM (graceful), once with SIGKILL (a crash).
4. startup: a fresh start with ~100,000 scheduled check-ins in the job store
   (14,300 enrolled patients x 7 future check-ins) and with an empty one:
   seconds from process start to the first getUpdates, and peak RSS (VmHWM);
   on SQLite, PostgreSQL or both (--database).
5. engines: the check-in wave on SQLite and on PostgreSQL (a server of its own
   from tests/support/postgres.py; Rasa's tracker store on it too), with one
   bot process and with two: the second a send-only `python -m bot`
   (TELEGRAM_RECEIVE_UPDATES=no) on the same database, both with the shared
   send budget in Redis (tests/support/redis.py). One of the two leads (the
   advisory lock on PostgreSQL, the file lock on SQLite, where one process per
   file is the supported setup). Then two on PostgreSQL with the leading one
   SIGKILLed halfway: the other takes over. For each: the most sendMessage
   requests in any one second, over both processes. Then part 4 on both
   databases. Its own section in docs/benchmarks.md (engines-benchmark markers).

Prints Markdown tables; with --part all (or --write-docs) it also replaces the
section between the bot-benchmark markers in docs/benchmarks.md (and the
engines-benchmark markers for part 5).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import pickle
import platform
import signal
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator, Optional
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from aiohttp import web  # noqa: E402

from aftercare.services import running_services  # noqa: E402
from aftercare.settings import get_settings  # noqa: E402
from aftercare.store import db  # noqa: E402
from tests.support.bot_process import (  # noqa: E402
    PATIENT_TZ, QUESTIONS, TOKEN, BotProcess, cpu_seconds, percentile, quiet_hours_away_from,
    write_protocol,
)
from tests.support.bot_process import enrol_patients as support_enrol  # noqa: E402
from tests.support.fake_telegram import FakeTelegramServer  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402
from tests.support.redis import RedisServer  # noqa: E402
from tests.support.topology import most_in_one_second  # noqa: E402
from benchmark_scale import group_cpu  # noqa: E402  (this folder, next to this script)

RASA_PORT = int(os.environ.get("BENCH_RASA_PORT", "5605"))
ACTIONS_PORT = int(os.environ.get("BENCH_ACTIONS_PORT", "5655"))
RASA_URL = f"http://127.0.0.1:{RASA_PORT}"
ACTION_SERVER_URL = f"http://127.0.0.1:{ACTIONS_PORT}/webhook"
JOB_TABLE = "checkin_jobs"           # bot.checkin_service.JOB_TABLE
JOB_FUNCTION = "bot.checkin_service:checkin_due"
DOCS = ROOT / "docs" / "benchmarks.md"
PROFILE_DIR: Optional[Path] = None   # --py-spy: a raw py-spy profile of every bot process
BOT_DIR: Optional[Path] = None       # --bot-dir: run the `bot` package found there instead
START_MARK, END_MARK = "<!-- bot-benchmark:start -->", "<!-- bot-benchmark:end -->"
ENGINES_MARKS = ("<!-- engines-benchmark:start -->", "<!-- engines-benchmark:end -->")
ENGINES = ("sqlite", "postgresql")
LEADING = "this bot process schedules and sends the check-ins"   # bot/checkin_service.py
_postgres: Optional[PostgresServer] = None   # started on first use, stopped at the end
FIRST_CHAT = 910_000_001

# The bot's flood guard answers at most 8 messages per chat in 20 s; the
# benchmark's patients stay below it (their wait is not part of any latency).
FLOOD_LIMIT, FLOOD_WINDOW = 7, 21.0
SETTLE_BEFORE_RSS = 2.0  # seconds after the first getUpdates before reading VmHWM


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --- database, protocol, services ----------------------------------------------

def postgres() -> PostgresServer:
    """The benchmark's PostgreSQL server (tests/support/postgres.py), started once."""
    global _postgres
    if _postgres is None:
        _postgres = PostgresServer.start()
        log(f"PostgreSQL running on port {_postgres.port}")
    return _postgres


def new_database(work: Path, name: str, engine: str = "sqlite") -> str:
    """A migrated, empty database: a SQLite file in work, or a PostgreSQL database."""
    if engine == "postgresql":
        server = postgres()
        return server.create_database(template=server.migrated_template())
    url = f"sqlite:///{work / f'{name}.db'}"
    db.migrate(url)
    return url


def chat_id(index: int) -> int:
    return FIRST_CHAT + index


def enrol_patients(url: str, count: int, treated_at: datetime,
                   first_index: int = 0) -> list[int]:
    return support_enrol(url, [chat_id(first_index + n) for n in range(count)], treated_at,
                         name="Bench Patient")


def Bot(url: str, protocol: Path, log_dir: Path, telegram: FakeTelegramServer,
        name: str, env: Optional[dict[str, str]] = None) -> BotProcess:
    """The bot as a real subprocess, on the benchmark's Rasa and action server,
    started (once: the returned process is running)."""
    bot = BotProcess(url, protocol, log_dir, telegram, name, rasa_url=RASA_URL,
                     action_server_url=ACTION_SERVER_URL, env=env, cwd=BOT_DIR or ROOT,
                     profile_dir=PROFILE_DIR).start()
    log(f"bot {name} started, pid {bot.pid}")
    return bot


@contextmanager
def assistant(url: str, protocol: Path, log_dir: Path) -> Iterator[dict[str, int]]:
    """The real Rasa server and action server on this part's database."""
    os.environ["AFTERCARE_PROTOCOL"] = str(protocol)   # service_env copies os.environ
    os.environ["AFTERCARE_DATABASE_URL"] = url
    settings = replace(get_settings(), database_url=url, rasa_url=RASA_URL,
                       action_server_url=ACTION_SERVER_URL, protocol_path=protocol)
    started = time.monotonic()
    with running_services(settings, log_dir=log_dir, timeout=300,
                          include_review=False) as services:
        log(f"Rasa and the action server ready in {time.monotonic() - started:.1f} s")
        yield {s.name: s.process.pid for s in services}


def machine_busy_seconds() -> float:
    """CPU time all processes on the machine have used (all cores), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]   # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class StubAssistant:
    """Answers Rasa's two endpoints the bot uses at once, with a fixed check-in
    question: the bot's own delivery capacity, without the assistant's cost."""

    ANSWER = {"text": "Good morning! How is your skin today?",
              "buttons": [{"title": "All good", "payload": "/feeling_fine"},
                          {"title": "Still red", "payload": "/report_redness"}]}

    def __init__(self, port: int) -> None:
        self.port = port
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None

    async def _trigger(self, request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"messages": [self.ANSWER], "tracker": None})

    async def _message(self, request: web.Request) -> web.Response:
        await request.read()
        return web.json_response([self.ANSWER])

    def __enter__(self) -> dict[str, int]:
        ready = threading.Event()

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_post("/conversations/{sender}/trigger_intent", self._trigger)
            app.router.add_post("/webhooks/rest/webhook", self._message)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="stub-assistant", daemon=True)
        self._thread.start()
        ready.wait(10)
        log(f"stub assistant answering on port {self.port}")
        return {}

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def sql(url: str, query: str, params: tuple = ()) -> list[tuple]:
    """A read outside the bot's process and engine, on a connection of its own:
    sqlite3 for a SQLite URL, psycopg2 for PostgreSQL (placeholders `?`)."""
    if url.startswith("postgresql"):
        import psycopg2

        connection = psycopg2.connect(url)
        try:
            with connection.cursor() as cursor:
                cursor.execute(query.replace("?", "%s"), params)
                return cursor.fetchall()
        finally:
            connection.close()
    connection = sqlite3.connect(url[len("sqlite:///"):], timeout=30)
    try:
        return connection.execute(query, params).fetchall()
    finally:
        connection.close()


# --- 1. reply latency ----------------------------------------------------------------

class Patients:
    """Sends one patient's messages the way a person would: the next only after
    the answer, and never fast enough to trip the bot's flood guard."""

    def __init__(self, telegram: FakeTelegramServer) -> None:
        self.telegram = telegram
        self._sent: dict[int, deque] = {}

    def ask(self, chat: int, text: str, timeout: float = 120) -> float:
        """Seconds from pushing text to the first message of the bot's answer."""
        history = self._sent.setdefault(chat, deque())
        while history and time.monotonic() - history[0] > FLOOD_WINDOW:
            history.popleft()
        if len(history) >= FLOOD_LIMIT:
            time.sleep(max(0.0, FLOOD_WINDOW - (time.monotonic() - history[0])) + 0.01)
            history.popleft()
        before = len(self.telegram.sent_messages(chat))
        pushed = time.monotonic()
        history.append(pushed)
        self.telegram.push_message(chat, text)
        replies = self.telegram.wait_for_messages(chat, before + 1, timeout)
        return replies[before].time - pushed


def single_message_questions(telegram: FakeTelegramServer, chat: int) -> list[str]:
    """The questions whose answer is one Telegram message (so the next question
    can follow the first message of the answer without catching its tail)."""
    patients, kept = Patients(telegram), []
    for question in QUESTIONS:
        before = len(telegram.sent_messages(chat))
        patients.ask(chat, question)
        time.sleep(1.5)
        if len(telegram.sent_messages(chat)) - before == 1:
            kept.append(question)
        else:
            log(f"left out (answered in several messages): {question!r}")
    if len(kept) < 4:
        raise SystemExit("too few questions answered in a single message")
    return kept


def rasa_direct(url: str, questions: list[str], count: int, chats: int) -> list[float]:
    """Milliseconds per reply from Rasa's REST channel for enrolled patients of
    our own (not the bot's chats), one message at a time."""
    import httpx

    senders = [f"tg-{c}" for c in enrol_patients(
        url, chats, datetime.now(timezone.utc) - timedelta(hours=20), first_index=800_000)]
    latencies = []
    with httpx.Client(timeout=60) as client:
        for sender in senders:
            client.post(f"{RASA_URL}/webhooks/rest/webhook",
                        json={"sender": sender, "message": "hello"}).raise_for_status()
        for i in range(count):
            started = time.perf_counter()
            client.post(f"{RASA_URL}/webhooks/rest/webhook",
                        json={"sender": senders[i % chats],
                              "message": questions[i % len(questions)],
                              "metadata": {"channel": "telegram"}}).raise_for_status()
            latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def part_latency(work: Path, args) -> list[tuple[str, str]]:
    log("latency: setting up")
    url = new_database(work, "latency")
    protocol = work / "protocol-latency.yml"
    # One check-in a week away, so no check-in traffic mixes with the replies.
    write_protocol(protocol, [{"id": "day7", "day": 7, "time": "10:00", "grace_hours": 24}],
                   quiet_hours_away_from(datetime.now(timezone.utc)))
    solo_chats, crowd = args.solo_chats, args.crowd
    chats = enrol_patients(url, solo_chats + crowd + 1,
                           datetime.now(timezone.utc) - timedelta(hours=20))
    probe, solo, many = chats[0], chats[1:1 + solo_chats], chats[1 + solo_chats:]
    rows = []
    with assistant(url, protocol, work / "log-latency"), \
            FakeTelegramServer(token=TOKEN) as telegram:
        bot = Bot(url, protocol, work / "log-latency", telegram, "latency")
        try:
            bot.wait_ready()
            questions = single_message_questions(telegram, probe)
            patients = Patients(telegram)
            log("latency: warming up every conversation")
            with ThreadPoolExecutor(len(chats)) as pool:
                list(pool.map(lambda c: patients.ask(c, "hello"), solo + many))
            time.sleep(2)
            warmed = sum(len(telegram.sent_messages(c)) for c in solo + many)

            log(f"latency: {args.solo_messages} messages, one at a time")
            alone = [patients.ask(solo[i % len(solo)], questions[i % len(questions)]) * 1000
                     for i in range(args.solo_messages)]
            time.sleep(2)
            # The assistant's share: the same messages straight to Rasa's REST channel,
            # as other enrolled patients (so every conversation is as long as above).
            direct = rasa_direct(url, questions, args.solo_messages, len(solo))

            log(f"latency: {crowd} patients writing at once, {args.crowd_messages} each")

            def patient(index: int) -> list[float]:
                latencies = []
                for k in range(args.crowd_messages):
                    if k:  # reading the answer (the bot sends a chat one message a second)
                        time.sleep(args.think_seconds)
                    latencies.append(patients.ask(
                        many[index], questions[(index + k) % len(questions)]) * 1000)
                return latencies

            started = time.monotonic()
            with ThreadPoolExecutor(crowd) as pool:
                together = [x for xs in pool.map(patient, range(crowd)) for x in xs]
            crowd_seconds = time.monotonic() - started
            time.sleep(2)
            extra = sum(len(telegram.sent_messages(c)) for c in solo + many) - warmed - \
                len(alone) - len(together)
            rpm = len(together) / crowd_seconds
        finally:
            bot.stop()
    if extra:
        log(f"latency: {extra} more messages than answers (multi-message answers)")
    rows += [
        (f"reply latency, one message at a time ({len(alone)} messages over {len(solo)} "
         "patients), p50 / p95",
         f"{statistics.median(alone):.0f} ms / {percentile(alone, 0.95):.0f} ms"),
        ("of which the assistant: the same messages straight to Rasa's REST channel, "
         "p50 / p95",
         f"{statistics.median(direct):.0f} ms / {percentile(direct, 0.95):.0f} ms"),
        (f"reply latency, {crowd} patients writing at once ({len(together)} messages, "
         f"{args.think_seconds:g} s pause after each answer, {rpm:.1f} answered/s), p50 / p95",
         f"{statistics.median(together):.0f} ms / {percentile(together, 0.95):.0f} ms"),
    ]
    return rows


# --- 2 and 3. check-ins ------------------------------------------------------------------

@dataclass
class Wave:
    label: str
    chats: list[int]
    scheduled_s: float = 0.0      # bot start until all jobs were in the job store
    ready_s: float = 0.0          # bot start until the first getUpdates
    delivered: int = 0
    duplicates: int = 0
    missing: int = 0
    rate: float = 0.0
    span_s: float = 0.0
    rate_limit_hits: int = 0
    statuses: dict = field(default_factory=dict)
    uncertain: int = 0
    uncertain_delivered: int = 0
    missing_not_uncertain: int = 0
    stop_s: float = 0.0           # signal until the process was gone
    left_claimed: int = 0         # rows the stopped bot left claimed (due again at restart)
    left_sending: int = 0         # rows it left sending (uncertain at restart)
    gap_s: float = 0.0            # last delivery before the stop until the first after
    at_stop: int = 0
    after_restart_rate: float = 0.0
    peak_rss_mb: float = 0.0
    cpu_ms: dict = field(default_factory=dict)  # CPU time per check-in, by process
    engine: str = "sqlite"
    bots: int = 1                 # bot processes on the database (the others send only)
    leader: str = ""              # which one scheduled and sent
    max_per_second: int = 0       # most sendMessage requests in any one second, all processes
    takeover_s: float = 0.0       # SIGKILL of the leader until the other's first check-in
    other_cores: float = 0.0      # cores busy with other processes meanwhile, on average


def _plan_wave(lead_minutes: int) -> tuple[datetime, list[dict], datetime]:
    """Treated an hour ago; one check-in at the next whole minute at least
    lead_minutes from now, in the patient's time zone."""
    now = datetime.now(timezone.utc)
    tz = ZoneInfo(PATIENT_TZ)
    treated = now - timedelta(hours=1)
    due = (now + timedelta(minutes=lead_minutes)).astimezone(tz)
    due = due.replace(second=0, microsecond=0) + timedelta(minutes=1)
    day = (due.date() - treated.astimezone(tz).date()).days
    checkin_id = {0: "day0_evening", 1: "day1_morning"}[day]
    return treated, [{"id": checkin_id, "day": day, "time": f"{due:%H:%M}",
                      "grace_hours": 3}], due.astimezone(timezone.utc)


def _count_jobs(url: str) -> int:
    import psycopg2

    try:
        return sql(url, f"SELECT count(*) FROM {JOB_TABLE}")[0][0]
    except (sqlite3.OperationalError, psycopg2.errors.UndefinedTable):  # not made yet
        return 0


def _open_rows(url: str) -> tuple[int, int]:
    (total, open_), = sql(url, "SELECT count(*), coalesce(sum(CASE WHEN status IN "
                               "('due', 'claimed', 'sending') THEN 1 ELSE 0 END), 0) "
                               "FROM checkin_deliveries")
    return total, open_


def cpu_of(name: str, pid: int) -> float:
    """CPU seconds so far: PostgreSQL with its backends (processes below it);
    any other process alone (this one starts the bot, Rasa and the rest)."""
    return group_cpu([pid]) if name == "postgresql" else cpu_seconds(pid)


def _leader(bots: list[BotProcess], timeout: float = 60) -> BotProcess:
    """The bot process that says in its log that it schedules and sends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leading = [b for b in bots if LEADING in b.output(10**7)]
        if len(leading) == 1:
            return leading[0]
        if len(leading) > 1:
            raise SystemExit(f"two bot processes lead: {[b.name for b in leading]}")
        for bot in bots:
            bot.check_alive()
        time.sleep(0.1)
    raise SystemExit("no bot process says it leads")


def run_wave(work: Path, args, label: str, kill: Optional[int] = None,
             stub: bool = False, engine: str = "sqlite", bots: int = 1) -> Wave:
    """One wave of check-ins; kill: a signal sent to the bot halfway, then restart
    (with two bots: to the leading one, and the other takes over, no restart);
    stub: a stub instead of the real assistant (the bot's own capacity);
    engine: sqlite or postgresql; bots: 2 adds a send-only second bot process,
    both with the shared send budget in Redis."""
    name = label.replace(" ", "-").replace(",", "")
    log(f"{label}: enrolling {args.patients} patients on {engine}")
    url = new_database(work, name, engine)
    protocol = work / f"protocol-{name}.yml"
    treated, checkins, _ = _plan_wave(args.lead_minutes)
    write_protocol(protocol, checkins, quiet_hours_away_from(datetime.now(timezone.utc)))
    chats = enrol_patients(url, args.patients, treated)
    wave = Wave(label, chats, engine=engine, bots=bots)
    log_dir = work / f"log-{name}"
    log_dir.mkdir(parents=True, exist_ok=True)
    helper = StubAssistant(RASA_PORT) if stub else assistant(url, protocol, log_dir)
    with ExitStack() as stack:
        shared: dict[str, str] = {}
        if bots > 1:
            cache = stack.enter_context(RedisServer.start())
            shared = {"AFTERCARE_REDIS_URL": cache.url, "AFTERCARE_BOT_PROCESSES": str(bots)}
        pids = stack.enter_context(helper)
        telegram = stack.enter_context(FakeTelegramServer(token=TOKEN))
        telegram.enforce_rate_limits(global_per_second=30, per_chat_per_second=1)
        # The check-in's time is set only now, 2-3 minutes ahead of the bot's start.
        treated, checkins, due = _plan_wave(args.lead_minutes)
        write_protocol(protocol, checkins, quiet_hours_away_from(datetime.now(timezone.utc)))
        log(f"{label}: check-in {checkins[0]['id']} due at {due:%H:%M} UTC")
        bot = Bot(url, protocol, log_dir, telegram, name, env=shared)
        running = [bot]
        for n in range(2, bots + 1):   # the others only send (one process polls Telegram)
            running.append(Bot(url, protocol, log_dir / f"bot{n}", telegram, f"{name}-{n}",
                               env={**shared, "TELEGRAM_RECEIVE_UPDATES": "no"}))
        try:
            while _count_jobs(url) < len(chats):
                for each in running:
                    each.check_alive()
                if datetime.now(timezone.utc) > due:
                    raise SystemExit(f"{label}: the jobs were not all scheduled before the "
                                     f"check-in was due ({_count_jobs(url)} of {len(chats)})")
                time.sleep(0.05)
            wave.scheduled_s = time.monotonic() - bot.started
            wave.ready_s = bot.wait_ready()
            leader = _leader(running) if bots > 1 else bot
            wave.leader = "the polling one" if leader is bot else "the send-only one"
            log(f"{label}: {len(chats)} jobs scheduled {wave.scheduled_s:.1f} s after start; "
                f"polling after {wave.ready_s:.1f} s; leading: {leader.name}")
            wave.peak_rss_mb = leader.peak_rss_mb()
            for n, each in enumerate(running):
                pids["bot" if n == 0 else f"bot {n + 1}"] = each.pid
            pids["benchmark"] = os.getpid()
            if engine == "postgresql":
                pids["postgresql"] = postgres().process.pid
            if bots > 1:
                pids["redis"] = cache.process.pid
            cpu_before = {name: cpu_of(name, pid) for name, pid in pids.items()}
            busy_before, wall_before = machine_busy_seconds(), time.monotonic()
            deadline = time.monotonic() + (due - datetime.now(timezone.utc)).total_seconds() \
                + len(chats) / 10 + 300
            if kill is not None:
                while telegram.delivered_count < len(chats) // 2:
                    leader.check_alive()
                    if time.monotonic() > deadline:
                        raise SystemExit(f"{label}: stuck at {telegram.delivered_count}")
                    time.sleep(0.01)
                wave.at_stop = telegram.delivered_count
                log(f"{label}: {wave.at_stop} delivered; sending {signal.Signals(kill).name} "
                    f"to {leader.name}")
                wave.stop_s = leader.stop(kill)
                killed_at = time.monotonic()
                left = dict(sql(url, "SELECT status, count(*) FROM checkin_deliveries "
                                     "WHERE status IN ('claimed', 'sending') GROUP BY status"))
                wave.left_claimed, wave.left_sending = left.get("claimed", 0), \
                    left.get("sending", 0)
                before = telegram.delivered_count
                if bots > 1:
                    running.remove(leader)
                    log(f"{label}: {leader.name} gone in {wave.stop_s:.1f} s; the other "
                        "should take over")
                    while telegram.delivered_count == before:
                        for each in running:
                            each.check_alive()
                        if time.monotonic() > deadline:
                            raise SystemExit(f"{label}: no takeover")
                        time.sleep(0.01)
                    after = [m.time for m in telegram.sent_messages()[before:]]
                    wave.takeover_s = min(after) - killed_at
                    log(f"{label}: taken over, first check-in {wave.takeover_s:.1f} s after "
                        "the kill")
                else:
                    log(f"{label}: stopped in {wave.stop_s:.1f} s ({before - wave.at_stop} "
                        "more delivered meanwhile); starting again")
                    bot = Bot(url, protocol, log_dir, telegram, name + "-again")
                    running = [bot]
            last_progress, last_state = time.monotonic(), None
            while True:
                for each in running:
                    each.check_alive()
                total, open_ = _open_rows(url)
                count = telegram.delivered_count
                if (count, total, open_) != last_state or datetime.now(timezone.utc) < due:
                    last_progress, last_state = time.monotonic(), (count, total, open_)
                if total >= len(chats) and open_ == 0:
                    break
                if time.monotonic() > deadline or time.monotonic() - last_progress > 180:
                    log(f"{label}: giving up waiting: {total} rows, {open_} open, "
                        f"{count} delivered")
                    break
                time.sleep(0.25)
            time.sleep(1)
            if kill is None:
                used = {name: cpu_of(name, pid) - cpu_before[name]
                        for name, pid in pids.items()}
                wave.cpu_ms = {name: seconds * 1000 / len(chats) for name, seconds in used.items()}
                wall = time.monotonic() - wall_before
                wave.other_cores = max(0.0, (machine_busy_seconds() - busy_before
                                             - sum(used.values())) / wall)
        finally:
            for each in running:
                each.stop()
        sent = [m for m in telegram.sent_messages() if m.chat_id in set(chats)]
        attempts = telegram.calls_to("sendMessage")
        per_chat = telegram.delivered_per_chat()
        wave.rate_limit_hits = telegram.rate_limit_hits
        wave.max_per_second = most_in_one_second([c.time for c in attempts])
    times = sorted(m.time for m in sent)
    if wave.rate_limit_hits and times:
        # A refused send is retried: the first attempts of chats tried more than once.
        first, tries = {}, {}
        for call in attempts:
            chat = call.params.get("chat_id")
            first.setdefault(chat, call.time)
            tries[chat] = tries.get(chat, 0) + 1
        refused = sorted(first[c] - times[0] for c, n in tries.items() if n > 1)
        log(f"{label}: 429s at (s after the first delivery): "
            + ", ".join(f"{t:.1f}" for t in refused[:40]))
    wave.delivered = len({m.chat_id for m in sent})
    wave.duplicates = sum(max(0, per_chat.get(c, 0) - 1) for c in chats)
    missing = {c for c in chats if per_chat.get(c, 0) == 0}
    wave.missing = len(missing)
    if len(times) > 1:
        wave.span_s = times[-1] - times[0]
        wave.rate = (len(times) - 1) / wave.span_s
    wave.statuses = dict(sql(url, "SELECT status, count(*) FROM checkin_deliveries "
                                  "GROUP BY status"))
    uncertain = {int(s[3:]) for (s,) in sql(
        url, "SELECT p.sender_id FROM checkin_deliveries d JOIN patients p "
             "ON p.id = d.patient_id WHERE d.status = 'uncertain'")}
    wave.uncertain = len(uncertain)
    wave.uncertain_delivered = len(uncertain - missing)
    wave.missing_not_uncertain = len(missing - uncertain)
    if kill is not None and len(times) > 2:
        # The restart is the longest pause between two deliveries.
        gaps = [b - a for a, b in zip(times, times[1:])]
        wave.gap_s = max(gaps)
        tail = times[gaps.index(wave.gap_s) + 1:]
        if len(tail) > 1:
            wave.after_restart_rate = (len(tail) - 1) / (tail[-1] - tail[0])
    log(f"{label}: delivered {wave.delivered}, duplicates {wave.duplicates}, missing "
        f"{wave.missing}, {wave.rate:.1f}/s, 429s {wave.rate_limit_hits}, rows {wave.statuses}")
    return wave


def wave_rows(wave: Wave, n: int) -> list[tuple[str, str]]:
    head = f"{n:,} check-ins due at once"
    if wave.label.startswith("stub"):
        return [
            (f"{head}, bot alone (a stub answering for the assistant at once): rate / "
             "duplicates / missing / 429s",
             f"{wave.rate:.1f} msg/s / {wave.duplicates} / {wave.missing} / "
             f"{wave.rate_limit_hits}"),
            (f"{head}, bot alone: CPU time per check-in, bot / this benchmark",
             f"{wave.cpu_ms.get('bot', 0):.1f} ms / {wave.cpu_ms.get('benchmark', 0):.1f} ms"),
        ]
    if wave.label.startswith("checkins"):
        verdict = "ok" if wave.rate >= 27 else "BELOW 27/s"
        return [
            (f"{head}: start until all {n:,} jobs scheduled (start-up reconcile) / until "
             "polling", f"{wave.scheduled_s:.1f} s / {wave.ready_s:.1f} s"),
            (f"{head}: delivered / duplicates / missing",
             f"{wave.delivered:,} / {wave.duplicates} / {wave.missing}"),
            (f"{head}: rate, first to last delivery (30/s and 1/s per chat enforced)",
             f"{wave.rate:.1f} msg/s over {wave.span_s:.0f} s ({verdict})"),
            (f"{head}: 429 answers from the fake server", f"{wave.rate_limit_hits}"),
            (f"{head}: database / bot processes (the second sends only, both with Redis) / "
             "most sendMessage requests in one second",
             f"{ENGINE_NAMES[wave.engine]} / {wave.bots} / {wave.max_per_second}"),
            (f"{head}: bot peak RSS after scheduling", f"{wave.peak_rss_mb:.0f} MB"),
            (f"{head}: CPU time per check-in: bot / Rasa server / action server / this "
             "benchmark (fake Telegram)",
             " / ".join(f"{wave.cpu_ms.get(n, 0):.1f} ms"
                        for n in ("bot", "rasa-server", "action-server", "benchmark"))),
            (f"{head}: other processes on the machine meanwhile (other work, not ours)",
             f"{wave.other_cores:.2f} cores busy on average"),
        ]
    kind = "SIGTERM" if "sigterm" in wave.label else "SIGKILL"
    rows = [
        (f"{head}, {kind} after {wave.at_stop:,} deliveries, restart: delivered / duplicates /"
         " missing", f"{wave.delivered:,} / {wave.duplicates} / {wave.missing}"),
        (f"{head}, {kind}: stop took / longest pause in deliveries / rate after restart",
         f"{wave.stop_s:.1f} s / {wave.gap_s:.1f} s / {wave.after_restart_rate:.1f} msg/s"),
        (f"{head}, {kind}: rows left in flight, claimed (due again at restart) / sending "
         "(marked uncertain)", f"{wave.left_claimed} / {wave.left_sending}"),
        (f"{head}, {kind}: rows marked uncertain (of them delivered) / 429s",
         f"{wave.uncertain} ({wave.uncertain_delivered}) / {wave.rate_limit_hits}"),
    ]
    return rows


# --- 4. start-up and memory -------------------------------------------------------------

def prefill_jobs(url: str, count_patients: int, checkins: list[dict], protocol: Path) -> int:
    """The jobs the bot's reconcile would create, written with APScheduler's own
    job store (same table, same pickled job state) in one transaction."""
    from apscheduler.job import Job
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.util import datetime_to_utc_timestamp

    from aftercare import checkins as plans
    from aftercare.protocol import load_protocol

    engine = db.make_engine(url, future=False)
    scheduler = BackgroundScheduler(timezone=timezone.utc)   # never started: a factory
    store = SQLAlchemyJobStore(engine=engine, tablename=JOB_TABLE)
    store.start(scheduler, "default")   # creates the table as the bot would
    loaded = load_protocol(protocol)
    tz = ZoneInfo(PATIENT_TZ)
    now = datetime.now(timezone.utc)
    rows = []
    treatments = sql(url, "SELECT id, treated_at FROM treatments")
    for treatment_id, treated in treatments:
        if isinstance(treated, str):   # SQLite keeps text; PostgreSQL gives a datetime
            treated = datetime.fromisoformat(treated)
        treated_at = treated.replace(tzinfo=timezone.utc) if treated.tzinfo is None \
            else treated.astimezone(timezone.utc)
        for item in plans.plan(loaded, treated_at, tz, 1):
            trigger = scheduler._create_trigger("date", {"run_date": item.due_at})
            job = Job(scheduler, id=f"checkin:{treatment_id}:{item.checkin_id}",
                      func=JOB_FUNCTION, trigger=trigger, executor="default",
                      args=[treatment_id, item.checkin_id], kwargs={}, name="checkin_due",
                      misfire_grace_time=None, coalesce=True, max_instances=1,
                      next_run_time=trigger.get_next_fire_time(None, now))
            rows.append({"id": job.id,
                         "next_run_time": datetime_to_utc_timestamp(job.next_run_time),
                         "job_state": pickle.dumps(job.__getstate__(), store.pickle_protocol)})
    with engine.begin() as connection:
        connection.execute(store.jobs_t.insert(), rows)
    engine.dispose()
    return len(rows)


def measure_start(url: str, protocol: Path, log_dir: Path, runs: int, name: str
                  ) -> tuple[list[float], list[float], int]:
    readies, peaks = [], []
    for run in range(runs):
        with FakeTelegramServer(token=TOKEN) as telegram:
            bot = Bot(url, protocol, log_dir, telegram, f"{name}-{run}")
            try:
                readies.append(bot.wait_ready())
                time.sleep(SETTLE_BEFORE_RSS)
                peaks.append(bot.peak_rss_mb())
            finally:
                bot.stop()
        log(f"startup {name}: ready in {readies[-1]:.1f} s, peak RSS {peaks[-1]:.0f} MB")
    return readies, peaks, _count_jobs(url)


def part_startup(work: Path, args, engine: str = "sqlite") -> list[tuple[str, str]]:
    log_dir = work / f"log-startup-{engine}"
    log_dir.mkdir(parents=True, exist_ok=True)
    protocol = work / "protocol-startup.yml"
    # Seven check-ins a day apart, all in the future of a treatment an hour ago.
    days = [1, 2, 3, 4, 5, 6, 7]
    write_protocol(protocol, [{"id": f"day{d}_bench", "day": d, "time": "10:00",
                               "grace_hours": 6} for d in days],
                   quiet_hours_away_from(datetime.now(timezone.utc)))
    empty = new_database(work, "startup-empty", engine)
    full = new_database(work, "startup-full", engine)
    log(f"startup ({engine}): enrolling {args.startup_patients} patients")
    enrol_patients(full, args.startup_patients,
                   datetime.now(timezone.utc) - timedelta(hours=1))
    rows = []
    if args.prefill == "bot":
        with FakeTelegramServer(token=TOKEN) as telegram:
            bot = Bot(full, protocol, log_dir, telegram, "first-start")
            try:
                first = bot.wait_ready(timeout=3600)
                first_peak = bot.peak_rss_mb()
            finally:
                bot.stop()
        jobs = _count_jobs(full)
        rows.append((f"first start after enrolling {args.startup_patients:,} patients: "
                     f"scheduling {jobs:,} check-ins (start until polling) / peak RSS",
                     f"{first:.1f} s / {first_peak:.0f} MB"))
    else:
        started = time.monotonic()
        jobs = prefill_jobs(full, args.startup_patients, [], protocol)
        log(f"startup: {jobs} jobs written in {time.monotonic() - started:.1f} s")
    e_ready, e_peak, _ = measure_start(empty, protocol, log_dir, args.startup_runs,
                                       f"{engine}-empty")
    f_ready, f_peak, jobs_after = measure_start(full, protocol, log_dir, args.startup_runs,
                                                f"{engine}-full")
    if jobs_after != jobs:
        log(f"startup: the job store changed: {jobs} jobs before, {jobs_after} after")
    runs = f"median of {args.startup_runs}" if args.startup_runs > 1 else "one start"
    rows += [
        (f"fresh start, empty job store: start until first getUpdates ({runs}) / peak RSS",
         f"{statistics.median(e_ready):.1f} s / {max(e_peak):.0f} MB"),
        (f"fresh start, {jobs:,} scheduled check-ins ({args.startup_patients:,} patients): "
         f"start until first getUpdates ({runs}) / peak RSS",
         f"{statistics.median(f_ready):.1f} s / {max(f_peak):.0f} MB"),
    ]
    return rows


# --- 5. PostgreSQL against SQLite, one bot process against two ----------------------------

ENGINE_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def engines_table(waves: list[Wave], n: int) -> str:
    head = ("| database | bot processes | delivered / duplicates / missing | rate, first to "
            "last delivery | start until all jobs scheduled | most sendMessage requests in "
            "one second (all processes) / 429s | CPU ms per check-in: bots / Rasa / action "
            "server / PostgreSQL / Redis | other work on the machine meanwhile |")
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for w in waves:
        bots = "one" if w.bots == 1 else f"two, with Redis ({w.leader} led)"
        cpu = " / ".join(f"{value:.1f}" for value in (
            sum(v for k, v in w.cpu_ms.items() if k.startswith("bot")),
            w.cpu_ms.get("rasa-server", 0), w.cpu_ms.get("action-server", 0),
            w.cpu_ms.get("postgresql", 0), w.cpu_ms.get("redis", 0)))
        lines.append(f"| {ENGINE_NAMES[w.engine]} | {bots} | {w.delivered:,} / {w.duplicates} / "
                     f"{w.missing} | {w.rate:.1f} msg/s over {w.span_s:.0f} s | "
                     f"{w.scheduled_s:.1f} s | {w.max_per_second} / {w.rate_limit_hits} | "
                     f"{cpu} | {w.other_cores:.2f} cores busy |")
    return "\n".join(lines)


def takeover_rows(w: Wave, n: int) -> list[tuple[str, str]]:
    return [
        (f"{n:,} check-ins due at once, two bot processes on PostgreSQL with Redis, the leading "
         f"one ({w.leader}) SIGKILLed after {w.at_stop:,} deliveries: delivered / duplicates / "
         "missing / marked uncertain (of them delivered)",
         f"{w.delivered:,} / {w.duplicates} / {w.missing} / {w.uncertain} "
         f"({w.uncertain_delivered})"),
        ("the same: SIGKILL until the other process's first check-in / longest pause in "
         "deliveries / rate after the takeover",
         f"{w.takeover_s:.1f} s / {w.gap_s:.1f} s / {w.after_restart_rate:.1f} msg/s"),
        ("the same: rows the killed one left claimed (due again) / sending (uncertain) / "
         "most sendMessage requests in one second / 429s",
         f"{w.left_claimed} / {w.left_sending} / {w.max_per_second} / {w.rate_limit_hits}"),
    ]


def part_engines(work: Path, args) -> str:
    """The wave on both databases with one and two bot processes, the leader
    killed with two on PostgreSQL, then start-up with ~100,000 jobs on both."""
    waves = [run_wave(work, args, f"{engine} {bots} bot{'s' if bots > 1 else ''}",
                      engine=engine, bots=bots)
             for engine in ENGINES for bots in (1, 2)]
    killed = run_wave(work, args, "postgresql 2 bots leader killed", signal.SIGKILL,
                      engine="postgresql", bots=2)
    startup: list[tuple[str, str]] = []
    if args.engines_startup:
        for engine in ENGINES:
            startup += [(f"{ENGINE_NAMES[engine]}: {what}", figure)
                        for what, figure in part_startup(work, args, engine)]
    return (f"{args.patients:,} check-ins due at the same minute; the fake Telegram server "
            "enforces 30 messages a second overall and one a second per chat.\n\n"
            f"{engines_table(waves, args.patients)}\n\n"
            f"{table(takeover_rows(killed, args.patients))}\n\n"
            + (f"Start-up and memory of one bot process:\n\n{table(startup)}\n" if startup
               else ""))


# --- report --------------------------------------------------------------------------------

def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} cores ({model}), load average at start {load}, "
            f"Python {platform.python_version()}")


def table(rows: list[tuple[str, str]]) -> str:
    return "\n".join(["| what | figure |", "|---|---|"] +
                     [f"| {what} | {figure} |" for what, figure in rows])


def write_docs(text: str, marks: tuple[str, str] = (START_MARK, END_MARK)) -> None:
    start_mark, end_mark = marks
    section = f"{start_mark}\n{text}\n{end_mark}"
    if DOCS.exists():
        current = DOCS.read_text(encoding="utf-8")
        if start_mark in current and end_mark in current:
            head, rest = current.split(start_mark, 1)
            tail = rest.split(end_mark, 1)[1]
            DOCS.write_text(head + section + tail, encoding="utf-8")
            return
        DOCS.write_text(current.rstrip("\n") + "\n\n" + section + "\n", encoding="utf-8")
        return
    DOCS.write_text("# Benchmarks\n\n" + section + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("latency", "checkins", "stub", "restart", "startup",
                                           "engines", "all"), default="all",
                        help="stub: only the check-in wave with a stub assistant; engines: "
                             "the wave on SQLite and PostgreSQL with one and two bot "
                             "processes, the leader killed, start-up on both")
    parser.add_argument("--patients", type=int, default=5000,
                        help="patients with a check-in due at once (checkins, restart)")
    parser.add_argument("--lead-minutes", type=int, default=2,
                        help="the check-in is due this many whole minutes after the bot "
                             "starts, plus up to one")
    parser.add_argument("--solo-messages", type=int, default=100)
    parser.add_argument("--solo-chats", type=int, default=30,
                        help="patients the one-at-a-time messages rotate over (the flood "
                             "guard allows 8 messages per chat in 20 s)")
    parser.add_argument("--crowd", type=int, default=50)
    parser.add_argument("--crowd-messages", type=int, default=10)
    parser.add_argument("--stub-wave", action=argparse.BooleanOptionalAction, default=True,
                        help="also run the check-in wave with a stub assistant (the bot's "
                             "own capacity)")
    parser.add_argument("--think-seconds", type=float, default=1.0,
                        help="a patient's pause between an answer and their next message")
    parser.add_argument("--startup-patients", type=int, default=14_300)
    parser.add_argument("--startup-runs", type=int, default=3)
    parser.add_argument("--bots", type=int, default=1, choices=(1, 2),
                        help="the checkins part with a second, send-only bot process "
                             "(both with the shared budget in Redis)")
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"),
                        default="sqlite", help="the startup part's database (checkins "
                        "and restart: sqlite unless postgresql)")
    parser.add_argument("--engines-startup", action=argparse.BooleanOptionalAction,
                        default=True, help="the engines part also measures start-up")
    parser.add_argument("--prefill", choices=("direct", "bot"), default="direct",
                        help="fill the job store with APScheduler's job store API "
                             "(direct), or by a first start of the bot (bot; also timed)")
    parser.add_argument("--write-docs", action="store_true",
                        help="update docs/benchmarks.md also for a single part")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--py-spy", metavar="DIR", type=Path,
                        help="profile every bot process with py-spy (raw stacks into DIR)")
    parser.add_argument("--bot-dir", type=Path,
                        help="run the `bot` package from this folder (before/after "
                             "comparisons; the rest of the project stays this one)")
    args = parser.parse_args()
    global PROFILE_DIR, BOT_DIR
    if args.bot_dir is not None:
        BOT_DIR = args.bot_dir.resolve()
        log(f"running the bot package in {BOT_DIR / 'bot'}")
    if args.py_spy is not None:
        if not (Path(sys.executable).parent / "py-spy").exists():
            parser.error("--py-spy needs py-spy, which the project does not install (it is "
                         "for profiling only): .venv/bin/pip install py-spy")
        PROFILE_DIR = args.py_spy.resolve()
        PROFILE_DIR.mkdir(parents=True, exist_ok=True)

    about = machine()
    started = datetime.now()
    log(f"machine: {about}")
    rows: list[tuple[str, str]] = []
    engines_text = ""
    work = Path(tempfile.mkdtemp(prefix="bench-bot-"))
    try:
        if args.part in ("latency", "all"):
            rows += part_latency(work, args)
        # checkins and restart: on SQLite, or on PostgreSQL with --database postgresql
        single = "postgresql" if args.database == "postgresql" else "sqlite"
        if args.part in ("checkins", "all"):
            rows += wave_rows(run_wave(work, args, "checkins", engine=single, bots=args.bots),
                              args.patients)
        if args.part == "stub" or (args.part in ("checkins", "all") and args.stub_wave):
            rows += wave_rows(run_wave(work, args, "stub checkins", stub=True), args.patients)
        if args.part in ("restart", "all"):
            rows += wave_rows(run_wave(work, args, "sigterm restart", signal.SIGTERM,
                                       engine=single),
                              args.patients)
            rows += wave_rows(run_wave(work, args, "sigkill restart", signal.SIGKILL,
                                       engine=single),
                              args.patients)
        if args.part in ("startup", "all"):
            for engine in (ENGINES if args.database == "both" else (args.database,)):
                found = part_startup(work, args, engine)
                rows += found if engine == "sqlite" and args.database != "both" else [
                    (f"{ENGINE_NAMES[engine]}: {what}", figure) for what, figure in found]
        if args.part in ("engines", "all"):
            engines_text = part_engines(work, args)
    finally:
        if _postgres is not None:
            _postgres.stop()
        if args.keep:
            log(f"kept {work}")
        else:
            import shutil
            shutil.rmtree(work, ignore_errors=True)
    minutes = (datetime.now() - started).total_seconds() / 60
    measured = f"Measured {started:%Y-%m-%d %H:%M} on {about}; the run took {minutes:.0f} min."
    if engines_text:
        command = ("`.venv/bin/python benchmarks/benchmark_bot.py --part engines"
                   f"{'' if args.patients == 5000 else f' --patients {args.patients}'}`")
        engines_text = f"{command}\n\n{measured}\n\n{engines_text}"
        print(engines_text)
        if args.part == "all" or args.write_docs:
            write_docs(engines_text, ENGINES_MARKS)
    if not rows:
        return 0
    text = f"{measured}\n\n{table(rows)}"
    print(text)
    if args.part == "all" or args.write_docs:
        write_docs(f"## Telegram bot (`benchmarks/benchmark_bot.py`)\n\n"
                   f"`.venv/bin/python benchmarks/benchmark_bot.py "
                   f"--part {args.part}`\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
