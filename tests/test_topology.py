"""Issue 12's topology on loopback, with the real servers: PostgreSQL, Redis,
two Rasa servers each with its own action server (as `aftercare run` starts
them with AFTERCARE_RASA_SERVERS=2), two `python -m bot` processes of one bot
token and the fake Telegram server holding the bot to 30 messages a second
overall and one a second per chat.

Bot B only sends (TELEGRAM_RECEIVE_UPDATES=no) and starts first, so it leads
the check-ins; bot A polls and answers the patients, and stands by for the
check-ins. 200 enrolled patients write while two waves of check-ins fire with
the real clock (tests/support/topology.py plans them); one Rasa server is
killed in the middle of the conversations and bot B in the middle of wave 2.

Afterwards every patient message was answered once and in order, every
check-in was delivered exactly once, no second held more than 30 sends, and
nothing was lost from any store.
"""
from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Optional
from zoneinfo import ZoneInfo

import pytest
import redis
from sqlalchemy import text

from aftercare import checkins
from aftercare.protocol import load_protocol
from aftercare.services import MODEL_DIR, running_services
from aftercare.settings import get_settings, rasa_server_urls
from aftercare.store import db
from bot.checkin_service import job_id
from bot.rasa import RasaClient
from support.bot_process import BotProcess, TOKEN, enrol_patients, write_protocol
from support.fake_telegram import FakeTelegramServer
from support.processes import consecutive_free_ports, log_tail
from support.topology import Waves, most_in_one_second, plan_waves, tracker_turns

pytestmark = pytest.mark.skipif(not (MODEL_DIR / "aftercare.tar.gz").exists(),
                                reason="no trained model: run `make model` first")

PATIENTS = 200
FIRST_CHAT = 812_000_001
MESSAGES_EACH = 3
QUESTIONS = [   # our own wording
    "can I put moisturiser on tonight?",
    "is it fine to go for a run tomorrow?",
    "how long does the redness usually last?",
    "when can I wear foundation again?",
    "is it alright to sit in the sun this afternoon?",
    "can I go to the sauna this week?",
    "my skin feels tight, is that expected?",
    "when can I go back to my retinol cream?",
    "can I have a hot shower tonight?",
    "is it ok to wash my face with cool water?",
]
RED_FLAGS = [   # our own wording; the bot's net reads each as an emergency
    "the redness is spreading across my cheek, it is oozing pus and I feel feverish",
    "the red patch keeps getting bigger, there is yellow pus in it and I am running a "
    "temperature",
]
RED_FLAG_EVERY = 40        # patients 0, 40, 80, ... end with a red-flag message
TOGETHER_EVERY = 8         # patients 3, 11, 19, ... send two messages back to back
LEAD = timedelta(seconds=45)   # the protocol is written this long before wave 1 at least
REPLY_TIMEOUT = 90.0
STEP_TIMEOUT = 300.0
LOCK_PREFIX = "aftercare:lock:"    # Rasa's conversation locks (aftercare/rasa_locks.py)
TAKEOVER = "the bot process that sent check-ins stopped: this one takes over"


def _script(index: int) -> list[str]:
    """What patient `index` writes, in order."""
    said = [QUESTIONS[(index + k) % len(QUESTIONS)] for k in range(MESSAGES_EACH)]
    if index % RED_FLAG_EVERY == 0:
        said[-1] = RED_FLAGS[(index // RED_FLAG_EVERY) % len(RED_FLAGS)]
    return said


@dataclass
class Scene:
    """What the run did and saw (ids, counts and times; the texts are ours)."""
    pushed: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list), repr=False)
    pushed_at: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list),
                                              repr=False)
    late_replies: list[int] = field(default_factory=list)
    in_flight_at_rasa_kill: int = 0   # messages the killed Rasa server was handling
    wave_1_seconds: float = 0.0       # from wave 1's time to its last check-in sent
    rasa_killed_at: Optional[float] = None
    bot_killed_at: Optional[float] = None
    takeover_seconds: Optional[float] = None
    stop_attempts: int = 0
    sent_by_b_in_wave_2: int = 0


class Topology:
    """The running servers and the two bots; everything stopped in close()."""

    def __init__(self, postgres, redis_server, work: Path) -> None:
        self.work = work
        self.postgres = postgres
        self.url = postgres.create_database(template=postgres.migrated_template())
        client = redis.Redis.from_url(redis_server.url)
        client.flushall()
        client.close()
        rasa_port = consecutive_free_ports(2)
        action_port = consecutive_free_ports(2, avoid=(rasa_port, rasa_port + 1))
        self.settings = replace(get_settings(), database_url=self.url,
                                rasa_url=f"http://127.0.0.1:{rasa_port}",
                                action_server_url=f"http://127.0.0.1:{action_port}/webhook",
                                rasa_servers=2, redis_url=redis_server.url,
                                log_dir=work / "services")
        self.rasa_urls = list(rasa_server_urls(self.settings))
        self.engine = db.make_engine(self.url)
        self.telegram = FakeTelegramServer(token=TOKEN).start()
        self.telegram.enforce_rate_limits(global_per_second=30, per_chat_per_second=1)
        self.bots: dict[str, BotProcess] = {}
        self._services = None
        self.services = []

    def start_assistant(self) -> None:
        self._services = running_services(self.settings, log_dir=self.settings.log_dir,
                                          timeout=600, include_review=False)
        self.services = self._services.__enter__()

    def rasa_service(self, url: str):
        name = "rasa-server" if url == self.rasa_urls[0] else "rasa-server-2"
        return next(s for s in self.services if s.name == name)

    def start_bot(self, name: str, protocol: Path, receive: bool) -> BotProcess:
        bot = BotProcess(self.url, protocol, self.work / f"bot-{name}", self.telegram, name,
                         rasa_url=self.rasa_urls[0], env={
                             "RASA_URLS": ",".join(self.rasa_urls),
                             "AFTERCARE_REDIS_URL": self.settings.redis_url,
                             "AFTERCARE_BOT_PROCESSES": "2",
                             "TELEGRAM_RECEIVE_UPDATES": "yes" if receive else "no"})
        self.bots[name] = bot.start()
        return bot

    def bot_log(self, name: str) -> str:
        try:
            return (self.work / f"bot-{name}" / "bot.log").read_text(errors="replace")
        except OSError:
            return ""

    def rows(self, sql: str, **params) -> list:
        with self.engine.connect() as connection:
            return connection.execute(text(sql), params).all()

    def tails(self) -> str:
        parts = [f"--- bot {name} ---\n{log_tail(self.work / f'bot-{name}' / 'bot.log', 25)}\n"
                 f"{bot.output(1500)}" for name, bot in self.bots.items()]
        parts += [f"--- {s.name} ---\n{log_tail(s.log_path, 15)}" for s in self.services]
        return "\n".join(parts)

    def close(self) -> None:
        for bot in self.bots.values():
            if bot.alive():
                try:
                    os.kill(bot.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
                bot.stop(signal.SIGTERM, timeout=30)
        if self._services is not None:
            self._services.__exit__(None, None, None)
        self.telegram.stop()
        self.engine.dispose()
        self.postgres.drop_database(self.url)


def _wait_for(condition, what: str, timeout: float, topology: Topology) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for bot in topology.bots.values():
            if bot.process is not None and bot.process.returncode is None:
                bot.check_alive()
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout:.0f} s\n{topology.tails()}")
        time.sleep(0.1)


def _open_checkins(topology: Topology) -> int:
    return topology.rows("SELECT count(*) FROM checkin_deliveries "
                         "WHERE status IN ('claimed', 'sending')")[0][0]


def _status_counts(topology: Topology) -> dict[str, int]:
    return dict(topology.rows("SELECT status, count(*) FROM checkin_deliveries GROUP BY status"))


async def _converse(topology: Topology, scene: Scene, chats: list[int], start: float,
                    spread: float, checkin_texts: tuple[str, ...]) -> None:
    """Every patient writes its script from a random moment within `spread`
    seconds of `start`: mostly the next message once the reply to the last
    has come, some two back to back, with a few seconds to think between."""
    telegram = topology.telegram
    answered: dict[int, int] = defaultdict(int)   # messages to each chat but check-ins

    async def watch() -> None:
        while True:
            answered.update(Counter(m.chat_id for m in telegram.sent_messages()
                                    if not (m.text or "").startswith(checkin_texts)))
            await asyncio.sleep(0.2)

    async def replies(chat: int, at_least: int) -> None:
        deadline = time.monotonic() + REPLY_TIMEOUT
        while answered[chat] < at_least:
            if time.monotonic() > deadline:
                scene.late_replies.append(chat)
                return
            await asyncio.sleep(0.2)

    def push(chat: int, said: str) -> None:
        scene.pushed[chat].append(said)
        scene.pushed_at[chat].append(time.monotonic())
        telegram.push_message(chat, said)

    async def patient(index: int, chat: int, rng: random.Random) -> None:
        await asyncio.sleep(max(0.0, start + rng.uniform(0, spread) - time.monotonic()))
        script = _script(index)
        together = index % TOGETHER_EVERY == 3
        k = 0
        while k < len(script):
            batch = script[k:k + 2] if together and k == 0 else script[k:k + 1]
            before = answered[chat]
            for said in batch:
                push(chat, said)
            await replies(chat, before + len(batch))
            k += len(batch)
            await asyncio.sleep(rng.uniform(3, 9))

    watcher = asyncio.create_task(watch())
    try:
        rng = random.Random(12)
        await asyncio.gather(*(patient(i, chat, random.Random(rng.random()))
                               for i, chat in enumerate(chats)))
    finally:
        watcher.cancel()


async def _kill_rasa_mid_conversation(topology: Topology, scene: Scene, waves: Waves) -> str:
    """Once wave 1 is out and before wave 2 (no check-in between Rasa's
    trigger and Telegram), SIGKILL the second Rasa server while it handles a
    patient's message (its conversation's lock is in Redis), if one comes
    soon enough: its patients go on on the other one."""
    def settled() -> bool:
        return (datetime.now(timezone.utc) >= waves.first and
                topology.rows("SELECT count(*) FROM checkin_deliveries WHERE status IN "
                              "('due', 'claimed', 'sending')")[0][0] == 0 and
                _status_counts(topology).get("sent", 0) >= PATIENTS)
    deadline = time.monotonic() + STEP_TIMEOUT
    while not await asyncio.to_thread(settled):
        assert time.monotonic() < deadline, f"wave 1 not out\n{topology.tails()}"
        await asyncio.sleep(0.2)
    scene.wave_1_seconds = (datetime.now(timezone.utc) - waves.first).total_seconds()
    victim_url = topology.rasa_urls[1]
    victim = topology.rasa_service(victim_url)
    ranking = RasaClient(topology.rasa_urls)
    locks = redis.Redis.from_url(topology.settings.redis_url)

    def handled_by_victim() -> int:
        return sum(1 for key in locks.keys(f"{LOCK_PREFIX}tg-*")
                   if ranking.ranking(key.decode()[len(LOCK_PREFIX):])[0] == victim_url)

    deadline = time.monotonic() + min(
        30.0, (waves.second - datetime.now(timezone.utc)).total_seconds() - 5)
    while True:
        scene.in_flight_at_rasa_kill = handled_by_victim()
        if scene.in_flight_at_rasa_kill or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.01)
    os.killpg(victim.process.pid, signal.SIGKILL)
    scene.rasa_killed_at = time.monotonic()
    await asyncio.to_thread(victim.process.wait)
    locks.close()
    await ranking.close()
    return victim_url


async def _kill_leader_mid_wave_2(topology: Topology, scene: Scene, wave_2_first: int) -> None:
    """SIGKILL bot B once some of wave 2 is out, at a moment it has no
    check-in between claimed-and-triggered and sent; see the test's docstring."""
    bot = topology.bots["B"]
    deadline = time.monotonic() + STEP_TIMEOUT
    while await asyncio.to_thread(
            lambda: topology.rows("SELECT count(*) FROM checkin_deliveries WHERE checkin_id = "
                                  "'day2_morning' AND status = 'sent'")[0][0]) < wave_2_first:
        bot.check_alive()
        assert time.monotonic() < deadline, f"wave 2 did not start\n{topology.tails()}"
        await asyncio.sleep(0.1)
    deadline = time.monotonic() + STEP_TIMEOUT
    while True:
        scene.stop_attempts += 1
        os.kill(bot.pid, signal.SIGSTOP)
        # Whatever B had written to its sockets reaches PostgreSQL and the
        # fake Telegram server meanwhile; then the database shows all it did.
        await asyncio.sleep(0.3)
        if await asyncio.to_thread(_open_checkins, topology) == 0:
            break
        os.kill(bot.pid, signal.SIGCONT)
        await asyncio.sleep(random.uniform(0.02, 0.2))
        assert time.monotonic() < deadline, "bot B never paused between two check-ins"
    os.kill(bot.pid, signal.SIGKILL)
    await asyncio.to_thread(bot.process.wait)
    scene.bot_killed_at = time.monotonic()
    scene.sent_by_b_in_wave_2 = await asyncio.to_thread(
        lambda: topology.rows("SELECT count(*) FROM checkin_deliveries WHERE checkin_id IN "
                              "('day2_morning', 'day3_morning') AND status = 'sent'")[0][0])
    while TAKEOVER not in topology.bot_log("A"):
        topology.bots["A"].check_alive()
        assert time.monotonic() - scene.bot_killed_at < 60, "bot A did not take over"
        await asyncio.sleep(0.05)
    scene.takeover_seconds = time.monotonic() - scene.bot_killed_at


def _expected_checkins(topology: Topology, waves: Waves, protocol_path: Path,
                       chats: list[int]) -> tuple[dict, set[str]]:
    """(sender -> check-in ids sent in the run, job ids still scheduled) from
    the protocol copy and the patients' treatments, as the bot plans them."""
    protocol = load_protocol(protocol_path)
    zone = ZoneInfo(waves.zone)
    end = waves.third + timedelta(minutes=30)
    sent: dict[str, set[str]] = {}
    jobs: set[str] = set()
    for sender, treatment_id, treated_at in topology.rows(
            "SELECT p.sender_id, t.id, t.treated_at FROM patients p "
            "JOIN treatments t ON t.patient_id = p.id"):
        if isinstance(treated_at, str):
            treated_at = datetime.fromisoformat(treated_at)
        if treated_at.tzinfo is None:
            treated_at = treated_at.replace(tzinfo=timezone.utc)
        planned = checkins.plan(protocol, treated_at, zone, 1)
        sent[sender] = {p.checkin_id for p in planned if p.due_at <= end}
        jobs |= {job_id(treatment_id, p.checkin_id) for p in planned if p.due_at > end}
        assert all(p.due_at >= waves.first for p in planned), "a check-in planned before the run"
    assert len(sent) == len(chats)
    return sent, jobs


@pytest.mark.e2e
def test_two_rasa_servers_and_two_bots_lose_nothing_when_one_of_each_is_killed(
        postgres, redis_server, tmp_path):
    """Bot B is killed in the middle of wave 2, at a moment it has no
    check-in in flight: it is stopped (SIGSTOP), the delivery log is read, and
    if any row is `claimed` or `sending` it is let go on (SIGCONT) and tried
    again a few ms later; then SIGKILL. Within a burst the leader always has
    check-ins claimed and triggered (24 at once), so wave 2 comes in two halves
    a minute apart and the kill lands after B has sent some of the first half,
    usually when it is all out, before the second half falls due; bot A
    sends that. A row `sending` at the kill is the designed
    at-most-once window (it may or may not have reached Telegram, so it
    becomes `uncertain` and is never sent again: tests/test_checkin_crash.py),
    and a `claimed` row whose check-in Rasa had already been asked for is
    triggered again by the next leader (a second check-in turn in the
    tracker, the patient still sees it once). Both are correct, and neither
    could be told apart from a lost or doubled check-in by the strict
    assertions here, which are about everything else: every patient message
    answered once and in order, every check-in sent exactly once, never more
    than 30 sends in a second, nothing lost from any store."""
    began = time.monotonic()
    topology = Topology(postgres, redis_server, tmp_path)
    scene = Scene()
    chats = [FIRST_CHAT + n for n in range(PATIENTS)]
    senders = {chat: f"tg-{chat}" for chat in chats}
    try:
        topology.start_assistant()
        assistant_ready = time.monotonic() - began

        protocol_path = tmp_path / "protocol.yml"
        waves = plan_waves(datetime.now(timezone.utc), LEAD)
        write_protocol(protocol_path, waves.checkins, quiet=("02:00", "03:00"))
        half = PATIENTS // 2
        enrol_patients(topology.url, chats[:half], waves.treated_today,
                       name="Topology Patient", timezone_name=waves.zone)
        enrol_patients(topology.url, chats[half:], waves.treated_yesterday,
                       name="Topology Patient", timezone_name=waves.zone)
        expected_sent, expected_jobs = _expected_checkins(topology, waves, protocol_path, chats)
        assert sum(map(len, expected_sent.values())) == 2 * PATIENTS

        bots_started = time.monotonic()
        topology.start_bot("B", protocol_path, receive=False)
        _wait_for(lambda: "this bot process schedules and sends the check-ins"
                  in topology.bot_log("B"), "bot B leading", 300, topology)
        topology.start_bot("A", protocol_path, receive=True)
        topology.bots["A"].wait_ready(300)
        _wait_for(lambda: "stands by without a scheduler" in topology.bot_log("A"),
                  "bot A standing by", 60, topology)
        bots_ready = time.monotonic() - bots_started
        assert "getUpdates" not in {c.method for c in topology.telegram.calls
                                    if c.time < topology.bots["A"].started}
        checkin_texts = tuple(_checkin_prefix(checkin["id"]) for checkin in waves.checkins)
        conversation_start = time.monotonic() + max(
            0.0, (waves.first - datetime.now(timezone.utc)).total_seconds() - 20)

        async def scenario() -> str:
            talk = asyncio.create_task(_converse(
                topology, scene, chats, conversation_start, 130.0, checkin_texts))
            victim = await _kill_rasa_mid_conversation(topology, scene, waves)
            await _kill_leader_mid_wave_2(topology, scene, wave_2_first=30)
            await talk
            return victim

        victim_url = asyncio.run(scenario())

        def all_done() -> bool:
            return _status_counts(topology).get("sent", 0) >= 2 * PATIENTS
        _wait_for(all_done, "check-in sent to every patient", 300, topology)
        time.sleep(2)     # the last replies' log rows
        topology.bots["A"].stop(signal.SIGTERM, timeout=60)
        figures = _check_everything(topology, scene, chats, senders, expected_sent,
                                    expected_jobs, victim_url)
        print(f"\ntopology: assistant ready after {assistant_ready:.0f} s, both bots "
              f"{bots_ready:.0f} s later; "
              f"{figures}; whole test {time.monotonic() - began:.0f} s")
    except BaseException:
        print(topology.tails())
        raise
    finally:
        topology.close()


def _checkin_prefix(checkin_id: str) -> str:
    """The start of a check-in's text in domain.yml (up to its first slot)."""
    import yaml

    from bot.responses import DOMAIN_PATH
    responses = yaml.safe_load(DOMAIN_PATH.read_text("utf-8"))["responses"]
    return responses[f"utter_checkin_{checkin_id}"][0]["text"].split("{")[0]


def _check_everything(topology: Topology, scene: Scene, chats: list[int],
                      senders: dict[int, str], expected_sent: dict[str, set[str]],
                      expected_jobs: set[str], victim_url: str) -> str:
    telegram = topology.telegram
    sent = telegram.sent_messages()
    # Telegram's limits: never above 30 a second overall, never a 429.
    busiest = most_in_one_second([m.time for m in sent])
    assert telegram.rate_limit_hits == 0, f"{telegram.rate_limit_hits} answers 429"
    assert busiest <= 30, f"{busiest} sends in one second"
    assert not scene.late_replies, f"{len(scene.late_replies)} replies never came"

    # Every message answered once and in order; every check-in once.
    by_chat: dict[int, list[str]] = defaultdict(list)
    for message in sent:
        by_chat[message.chat_id].append(message.text or "")
    problems: list[str] = []
    checkin_messages = 0
    for chat in chats:
        turns = tracker_turns(topology.engine, senders[chat])
        said = [t.user_text for t in turns if t.checkin is None]
        if said != scene.pushed[chat]:
            problems.append(f"chat {chat}: tracker has {len(said)} patient messages, "
                            f"{len(scene.pushed[chat])} were sent, or not in order")
        triggered = [t.checkin for t in turns if t.checkin is not None]
        if sorted(triggered) != sorted(expected_sent[senders[chat]]):
            problems.append(f"chat {chat}: check-ins in the tracker {sorted(triggered)}, "
                            f"expected {sorted(expected_sent[senders[chat]])}")
        remaining = list(by_chat[chat])
        for turn in turns:
            if turn.checkin is None:
                continue
            for text_ in turn.messages:
                checkin_messages += 1
                if remaining.count(text_) != 1:
                    problems.append(f"chat {chat}: check-in {turn.checkin} reached it "
                                    f"{remaining.count(text_)} times")
                if text_ in remaining:
                    remaining.remove(text_)
        replies = [m for t in turns if t.checkin is None for m in t.messages]
        if remaining != replies:
            problems.append(f"chat {chat}: {len(remaining)} replies reached Telegram, the "
                            f"tracker has {len(replies)}, or not in the same order")
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:20])

    # The bot's own message log: every message in, answered; every send out.
    logged_in = topology.rows("SELECT sender_id, status, count(*) FROM messages "
                              "WHERE direction = 'in' GROUP BY sender_id, status")
    assert {(s, st) for s, st, _ in logged_in} == {(senders[c], "answered") for c in chats}
    assert sum(n for _, _, n in logged_in) == sum(map(len, scene.pushed.values()))
    logged_out = topology.rows("SELECT count(*) FROM messages WHERE direction = 'out'")[0][0]
    assert logged_out == len(sent)

    # The delivery log: one row per patient and check-in, all sent.
    rows = topology.rows("SELECT p.sender_id, d.checkin_id, d.status FROM checkin_deliveries d "
                         "JOIN patients p ON p.id = d.patient_id")
    assert Counter((s, c) for s, c, _ in rows) == Counter(
        (s, c) for s, ids in expected_sent.items() for c in ids)
    assert {status for _, _, status in rows} == {"sent"}

    # Nothing lost from the other stores.
    assert topology.rows("SELECT count(*) FROM patients")[0][0] == len(chats)
    assert topology.rows("SELECT count(*) FROM treatments")[0][0] == len(chats)
    jobs = [j for (j,) in topology.rows("SELECT id FROM checkin_jobs")]
    assert Counter(jobs) == Counter(expected_jobs)
    flagged = Counter((senders[chat], said) for chat in chats for said in scene.pushed[chat]
                      if said in RED_FLAGS)
    escalated = Counter(topology.rows("SELECT sender_id, message FROM escalations"))
    assert {key: escalated[key] for key in flagged} == flagged, "one escalation per red flag"

    # Bot A took over the check-ins; the dead Rasa server's conversations went
    # on on the other one.
    log_a = topology.bot_log("A")
    assert TAKEOVER in log_a and "schedules and sends the check-ins" in log_a
    assert f"Rasa server {victim_url} unreachable" in log_a
    ranking = RasaClient(topology.rasa_urls)
    moved = sum(1 for chat in chats if ranking.ranking(senders[chat])[0] == victim_url
                for at in scene.pushed_at[chat] if at > scene.rasa_killed_at)
    asyncio.run(ranking.close())
    assert moved > 0, "no conversation of the killed Rasa server went on"
    for name in ("A", "B"):
        words = topology.bot_log(name)
        assert not any(said in words for said in QUESTIONS + RED_FLAGS), \
            f"bot {name}'s log holds a patient's words"

    messages = sum(map(len, scene.pushed.values()))
    assert scene.sent_by_b_in_wave_2 < PATIENTS, "bot A sent none of wave 2"
    return (f"{messages} patient messages ({len(flagged)} red flags, "
            f"{sum(escalated.values())} escalations), {checkin_messages} check-ins "
            f"(wave 1 out {scene.wave_1_seconds:.0f} s after it fell due; "
            f"{scene.sent_by_b_in_wave_2} of wave 2 sent by B before it was killed, "
            f"{scene.stop_attempts} SIGSTOP tries), {len(sent)} sends, at most {busiest} in one "
            f"second, {moved} messages moved off the killed Rasa server "
            f"({scene.in_flight_at_rasa_kill} in flight at the kill), takeover "
            f"{scene.takeover_seconds:.1f} s after SIGKILL")
