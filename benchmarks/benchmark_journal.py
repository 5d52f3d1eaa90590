"""What keeping updates in hand costs (bot/update_journal.py): the bot's reply
time with the journal on and off, side by side, on SQLite and PostgreSQL.

The real bot Application runs in this process against the fake Telegram
server (no rate limits at the server; the bot keeps its own). Patients in 30
chats send /help, which the bot answers without Rasa or the database, so
what is measured is polling, the journal and sending: the journal's cost is
here at its largest relative to the rest. Two loads:

- steady: 20 messages a second for 15 s (each chat under its one a second);
- burst: 300 messages at once from 300 other chats, until the last is
  answered (Telegram's 30 a second, which the bot keeps, sets the pace).

Reply time runs from the moment the message is put at the fake Telegram
server to the moment the bot's answer reaches it.

    .venv/bin/python benchmarks/benchmark_journal.py     # make benchmark-journal
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from aftercare.settings import get_settings  # noqa: E402
from aftercare.store import db  # noqa: E402
from bot.app import build_application, running  # noqa: E402
from bot_harness import ManualClock, bot_settings  # noqa: E402
from support.bot_process import percentile  # noqa: E402
from support.fake_telegram import FakeTelegramServer  # noqa: E402
from support.postgres import PostgresServer  # noqa: E402

CHATS = 30
FIRST_CHAT = 610_001


async def _answered(telegram: FakeTelegramServer, pushed: list[tuple[int, float]],
                    timeout: float = 120) -> list[float]:
    """Reply times of the pushed messages (chat, when), in order per chat."""
    per_chat: dict[int, int] = {}
    for chat, _ in pushed:
        per_chat[chat] = per_chat.get(chat, 0) + 1
    for chat, count in per_chat.items():
        await telegram.await_messages(chat, count, timeout=timeout)
    replies: dict[int, list[float]] = {}
    for message in telegram.sent_messages():
        replies.setdefault(message.chat_id, []).append(message.time)
    seen: dict[int, int] = {}
    times = []
    for chat, when in pushed:
        index = seen.get(chat, 0)
        seen[chat] = index + 1
        times.append(replies[chat][index] - when)
    return times


async def _measure(url: str, journal: bool, work: Path, steady_rate: float,
                   steady_seconds: float, burst: int) -> dict[str, float]:
    db.migrate(url)
    settings = replace(get_settings(), database_url=url, rasa_url="http://127.0.0.1:9",
                       log_dir=work / "log")
    with FakeTelegramServer() as telegram:
        application = build_application(bot_settings(settings, telegram), clock=ManualClock())
        if not journal:
            application.bot._journal = None     # the bot as before bot/update_journal.py
        async with running(application, poll_timeout=1):
            pushed = []
            count = int(steady_rate * steady_seconds)
            started = time.monotonic()
            for n in range(count):
                await asyncio.sleep(max(0.0, started + n / steady_rate - time.monotonic()))
                chat = FIRST_CHAT + n % CHATS
                telegram.push_command(chat, "/help")
                pushed.append((chat, time.monotonic()))
            steady = await _answered(telegram, pushed)
            telegram.reset()
            pushed = []
            for n in range(burst):
                chat = FIRST_CHAT + CHATS + n
                telegram.push_command(chat, "/help")
                pushed.append((chat, time.monotonic()))
            burst_started = pushed[0][1]
            burst_times = await _answered(telegram, pushed)
            burst_seconds = max(when + reply for (_, when), reply in zip(pushed, burst_times)) \
                - burst_started
    return {"p50": percentile(steady, 0.5), "p95": percentile(steady, 0.95),
            "max": max(steady), "burst_seconds": burst_seconds,
            "burst_p95": percentile(burst_times, 0.95)}


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--burst", type=int, default=300)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    print(f"journal benchmark on {platform.node()} ({platform.processor() or platform.machine()}),"
          f" Python {platform.python_version()}")
    print(f"steady: {args.rate:g} /help a second for {args.seconds:g} s over {CHATS} chats; "
          f"burst: {args.burst} at once from as many chats\n")
    print(f"{'database':<11} {'journal':<8} {'steady p50':>11} {'p95':>8} {'max':>8} "
          f"{'burst: all answered':>20} {'burst p95':>10}")
    with PostgresServer.start() as postgres, tempfile.TemporaryDirectory() as tmp:
        for engine in ("sqlite", "postgresql"):
            for journal in (False, True):
                work = Path(tmp) / f"{engine}-{journal}"
                work.mkdir()
                url = (f"sqlite:///{work / 'aftercare.db'}" if engine == "sqlite"
                       else postgres.create_database())
                row = await _measure(url, journal, work, args.rate, args.seconds, args.burst)
                print(f"{engine:<11} {'on' if journal else 'off':<8} "
                      f"{row['p50'] * 1000:>8.1f} ms {row['p95'] * 1000:>5.1f} ms "
                      f"{row['max'] * 1000:>5.1f} ms {row['burst_seconds']:>18.2f} s "
                      f"{row['burst_p95']:>8.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
