"""One Rasa server against two, side by side in one run, on this machine.

    .venv/bin/python benchmarks/benchmark_scale.py [--crowds 50 200] [--messages 4]

Each setup runs as `aftercare run` would start it, on a PostgreSQL database of
its own (tests/support/postgres.py) with enrolled patients treated 20 hours
ago: "1 Rasa server" is the shipped default (one Rasa server, one action
server, in-memory conversation locks); "2 Rasa servers" is
AFTERCARE_RASA_SERVERS=2 with AFTERCARE_REDIS_URL (two Rasa servers, each
with its own action server, locks in Redis). The patients talk to the
assistant through the bot's own Rasa client (bot/rasa.py: each conversation
on one server), the way the Telegram bot does, without Telegram: N patients
write at once, each sending its next message when the answer to the last
one has arrived.

For each setup and crowd: replies per second, reply latency p50 / p95, and
the CPU time each kind of process used per message (Rasa servers, action
servers, PostgreSQL, Redis, this client), from /proc. From the CPU per
message it works out how many replies a second a machine with more cores
would give if every core were as busy, and which process would then be the
limit. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from aftercare.services import running_services  # noqa: E402
from aftercare.settings import get_settings, rasa_server_urls  # noqa: E402
from bot.rasa import RasaClient, RasaUnavailable  # noqa: E402
from support.bot_process import QUESTIONS, cpu_seconds, enrol_patients, percentile  # noqa: E402
from support.postgres import PostgresServer  # noqa: E402
from support.redis import RedisServer  # noqa: E402

FIRST_CHAT = 930_000_001
FUTURE_CORES = (8, 16)


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def descendants(pid: int) -> list[int]:
    """pid and every process below it (PostgreSQL's backends, a server's workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def group_cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(p) for root in pids for p in descendants(root))


def enrol(url: str, count: int) -> list[str]:
    """Enrolled Telegram patients treated 20 hours ago; their sender ids."""
    chats = enrol_patients(url, [FIRST_CHAT + n for n in range(count)],
                           datetime.now(timezone.utc) - timedelta(hours=20),
                           name="Scale Patient")
    return [f"tg-{chat}" for chat in chats]


@dataclass
class Run:
    setup: str
    crowd: int
    messages: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    unanswered: int = 0
    cpu: dict[str, float] = field(default_factory=dict)   # kind -> CPU seconds
    per_server: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    def cpu_ms_per_message(self, kind: str) -> float:
        return 1000 * self.cpu.get(kind, 0.0) / max(self.messages, 1)


async def crowd_run(client: RasaClient, senders: list[str], each: int) -> tuple[list[float], int]:
    latencies: list[float] = []
    unanswered = 0

    async def patient(index: int, sender: str) -> None:
        nonlocal unanswered
        for k in range(each):
            started = time.perf_counter()
            try:
                replies = await client.send(sender, QUESTIONS[(index + k) % len(QUESTIONS)],
                                            metadata={"channel": "telegram"})
            except RasaUnavailable:
                unanswered += 1
                continue
            latencies.append((time.perf_counter() - started) * 1000)
            if not replies:
                unanswered += 1

    await asyncio.gather(*(patient(i, s) for i, s in enumerate(senders)))
    return latencies, unanswered


def measure(setup: str, servers: int, postgres: PostgresServer, cache: RedisServer | None,
            crowds: list[int], each: int, work: Path, port: int) -> list[Run]:
    url = postgres.create_database(template=postgres.migrated_template())
    senders = enrol(url, max(crowds))
    settings = replace(get_settings(), database_url=url, rasa_url=f"http://127.0.0.1:{port}",
                       action_server_url=f"http://127.0.0.1:{port + 50}/webhook",
                       rasa_servers=servers, redis_url=cache.url if cache else None,
                       log_dir=work / setup.replace(" ", "-"))
    runs = []
    log(f"{setup}: starting")
    started = time.monotonic()
    with running_services(settings, log_dir=settings.log_dir, timeout=900,
                          include_review=False) as services:
        log(f"{setup}: ready in {time.monotonic() - started:.0f} s")
        kinds = {"Rasa": [s.process.pid for s in services if s.name.startswith("rasa-server")],
                 "action": [s.process.pid for s in services
                            if s.name.startswith("action-server")],
                 "PostgreSQL": [postgres.process.pid],
                 "Redis": [cache.process.pid] if cache else []}
        client = RasaClient(list(rasa_server_urls(settings)))

        async def everything() -> None:
            log(f"{setup}: every conversation says hello first")
            await crowd_run(client, senders, 1)
            for crowd in crowds:
                run = Run(setup, crowd)
                before = {kind: group_cpu(pids) for kind, pids in kinds.items()}
                mine = time.process_time()
                client.requests.clear()
                began = time.monotonic()
                run.latencies, run.unanswered = await crowd_run(client, senders[:crowd], each)
                run.seconds = time.monotonic() - began
                run.messages = len(run.latencies) + run.unanswered
                run.cpu = {kind: group_cpu(pids) - before[kind] for kind, pids in kinds.items()}
                run.cpu["client"] = time.process_time() - mine
                run.per_server = dict(client.requests)
                log(f"{setup}, {crowd} at once: {run.rate:.1f} replies/s, p50 "
                    f"{statistics.median(run.latencies):.0f} ms, p95 "
                    f"{percentile(run.latencies, 0.95):.0f} ms, per server {run.per_server}")
                runs.append(run)
            await client.close()

        asyncio.run(everything())
    postgres.drop_database(url)
    return runs


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores ({model}), load average at start {load}"


def report(runs: list[Run]) -> str:
    kinds = ("Rasa", "action", "PostgreSQL", "Redis", "client")
    lines = ["| setup | patients at once | messages | replies/s | p50 | p95 | unanswered | "
             "CPU ms per message: " + " / ".join(kinds) + " | replies/s per busy core |",
             "|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        total = sum(run.cpu.values())
        per_core = run.messages / total if total else 0.0
        lines.append(
            f"| {run.setup} | {run.crowd} | {run.messages} | {run.rate:.1f} | "
            f"{statistics.median(run.latencies):.0f} ms | {percentile(run.latencies, 0.95):.0f} ms"
            f" | {run.unanswered} | "
            + " / ".join(f"{run.cpu_ms_per_message(kind):.0f}" for kind in kinds)
            + f" | {per_core:.1f} |")
    lines.append("")
    for run in runs:
        if run.setup.startswith("2") and run.crowd == max(r.crowd for r in runs):
            server_side = {k: v for k, v in run.cpu.items() if k != "client"}
            seconds = sum(server_side.values()) / run.messages
            limit = max(server_side, key=server_side.get)
            share = server_side[limit] / sum(server_side.values())
            for cores in FUTURE_CORES:
                lines.append(
                    f"- {cores} cores, every one as busy, with as many Rasa servers as it takes: "
                    f"about {cores / seconds:.0f} replies/s ({seconds * 1000:.0f} ms of CPU per "
                    f"reply over all server processes, from the {run.crowd}-patient run with 2 "
                    f"Rasa servers). The {limit} processes take {share:.0%} of it: they are the "
                    f"limit, so more of them (AFTERCARE_RASA_SERVERS, RASA_URLS) is what scales.")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crowds", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--messages", type=int, default=4, help="messages per patient")
    parser.add_argument("--port", type=int, default=5705,
                        help="first Rasa port (action servers 50 above)")
    args = parser.parse_args()
    about = machine()
    log(f"machine: {about}")
    began = datetime.now()
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    runs: list[Run] = []
    with PostgresServer.start() as postgres:
        runs += measure("1 Rasa server", 1, postgres, None, args.crowds, args.messages, work,
                        args.port)
        with RedisServer.start() as cache:
            runs += measure("2 Rasa servers", 2, postgres, cache, args.crowds, args.messages,
                            work, args.port)
    minutes = (datetime.now() - began).total_seconds() / 60
    print(f"Measured {began:%Y-%m-%d %H:%M} on {about}; the run took {minutes:.0f} min "
          f"(`.venv/bin/python benchmarks/benchmark_scale.py --crowds "
          f"{' '.join(map(str, args.crowds))} --messages {args.messages}`).\n")
    print(report(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
