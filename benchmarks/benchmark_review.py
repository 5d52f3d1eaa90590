"""Speed and size of the staff review list with a long queue.

    .venv/bin/python benchmarks/benchmark_review.py [--open 2000] [--resolved 1000]
        [--patients 500] [--requests 300] [--write-docs]

A temporary SQLite database gets --patients patients (each with a treatment)
and --open unresolved escalations (mixed levels, a third acknowledged, raised
over the last two weeks, messages of 80-600 characters) plus --resolved
resolved ones. The review page runs as `python -m review`, as `aftercare run`
starts it (its own process, real aiohttp server, real SQLite file); an
aiohttp client in this process signs in and fetches the list one request at a
time: the default view, a name search, a level filter, "mine" and the last
page. For each: p50, p95 and max of the time from sending the request to
having read the whole body, and the page's size.

Prints a Markdown table; --write-docs also replaces the section between the
review-benchmark markers in docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from aftercare import staff as accounts  # noqa: E402
from aftercare.store import db  # noqa: E402
from aftercare.store.models import Escalation, Patient, Treatment  # noqa: E402
from tests.support.processes import free_port  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- review-benchmark:start -->", "<!-- review-benchmark:end -->"
EMAIL = "bench.nurse@clinic.example"
OTHER_EMAIL = "other.nurse@clinic.example"
PASSWORD = "benchmark password, long enough"
LEVELS = (("emergency", 5), ("urgent", 25), ("human", 10), ("routine", 60))
SENTENCES = (
    "My cheek is still very red and it feels hot to touch.",
    "There is a small yellow crust along the jaw line where it was treated.",
    "The swelling round my left eye has got worse since this morning.",
    "I put on my usual moisturiser and now it stings and itches a lot.",
    "Can I wear makeup tomorrow for a wedding, or is that too soon?",
    "I have a tingling on my lip like the cold sores I used to get.",
    "Please can someone from the clinic call me back, I am worried.",
    "It looks like a rash of little bumps spreading down to my neck.",
)
CSRF = re.compile(r'name="csrf" value="([^"]+)"')



def fill(url: str, patients: int, open_count: int, resolved: int, seed: int = 10) -> None:
    """The patients and escalations, written in one transaction."""
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    with db.session_scope(url) as session:
        accounts.add_staff(session, EMAIL, PASSWORD)
        accounts.add_staff(session, OTHER_EMAIL, PASSWORD)
        people = []
        for number in range(patients):
            patient = Patient(name=f"Bench Patient {number:04d} Example", timezone="Europe/London",
                              sender_id=f"tg-{900000 + number}", created_at=now)
            patient.treatments.append(Treatment(
                number_in_series=1, treated_at=now - timedelta(days=rng.randint(0, 20))))
            people.append(patient)
        session.add_all(people)
        session.flush()
        levels = [level for level, share in LEVELS for _ in range(share)]
        for index in range(open_count + resolved):
            patient = people[index % patients]
            created = now - timedelta(minutes=rng.randint(1, 14 * 24 * 60))
            words = " ".join(rng.choice(SENTENCES) for _ in range(rng.randint(2, 10)))
            escalation = Escalation(
                patient_id=patient.id, sender_id=patient.sender_id, message=words[:600],
                level=rng.choice(levels), reason="possible infection: spreading redness, heat",
                day=rng.randint(0, 14), status="open", created_at=created, updated_at=created)
            if index >= open_count or rng.random() < 1 / 3:
                escalation.status = "acknowledged"
                escalation.acknowledged_at = created + timedelta(minutes=rng.randint(1, 90))
                escalation.acknowledged_by = rng.choice((EMAIL, OTHER_EMAIL))
            if index >= open_count:
                escalation.status = "resolved"
                escalation.resolved_at = escalation.acknowledged_at + timedelta(hours=2)
            session.add(escalation)


@dataclass
class Result:
    name: str
    path: str
    times_ms: List[float]
    size: int
    rows: int

    def row(self) -> str:
        times = sorted(self.times_ms)
        p95 = times[max(0, int(round(len(times) * 0.95)) - 1)]
        return (f"| {self.name} | `{self.path}` | {len(times)} | {statistics.median(times):.1f} | "
                f"{p95:.1f} | {times[-1]:.1f} | {self.size / 1024:.1f} KB | {self.rows} |")


async def measure(base: str, paths: List[tuple], requests: int, email: str = EMAIL,
                  row_marker: bytes = b'<tr class="escalation-row') -> List[Result]:
    """Sign in as email, then time each path one request at a time; rows: how
    many times row_marker is in the page."""
    timeout = aiohttp.ClientTimeout(total=30)
    # unsafe=True: the jar keeps cookies from an IP address (127.0.0.1)
    async with aiohttp.ClientSession(base_url=base, timeout=timeout,
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get("/login") as page:
            token = CSRF.search(await page.text()).group(1)
        async with http.post("/login", data={"csrf": token, "email": email,
                                             "password": PASSWORD},
                             allow_redirects=False) as signed:
            assert signed.status == 303, f"sign-in failed: {signed.status}"
        results = []
        for name, path in paths:
            for _ in range(10):   # warm-up: imports, caches, the protocol read once
                async with http.get(path) as response:
                    await response.read()
            times, body = [], b""
            for _ in range(requests):
                started = time.perf_counter()
                async with http.get(path) as response:
                    body = await response.read()
                    assert response.status == 200, (path, response.status)
                times.append((time.perf_counter() - started) * 1000)
            results.append(Result(name, path, times, len(body), body.count(row_marker)))
        return results


def serve(url: str, port: int, log_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "AFTERCARE_DATABASE_URL": url, "AFTERCARE_REVIEW_HOST": "127.0.0.1",
           "AFTERCARE_REVIEW_PORT": str(port), "AFTERCARE_LOG_DIR": str(log_dir)}
    process = subprocess.Popen([sys.executable, "-m", "review"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the review page exited: {process.stderr.read().decode()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    raise SystemExit("the review page did not start within 60 s")


def write_docs(text: str, start: str = START, end: str = END) -> None:
    doc = DOCS.read_text(encoding="utf-8")
    if start not in doc or end not in doc:
        raise SystemExit(f"{DOCS} has no {start} ... {end} section to replace")
    head, rest = doc.split(start, 1)
    tail = rest.split(end, 1)[1]
    DOCS.write_text(f"{head}{start}\n{text}\n{end}{tail}", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--open", type=int, default=2000, help="unresolved escalations")
    parser.add_argument("--resolved", type=int, default=1000, help="resolved escalations")
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--requests", type=int, default=300, help="timed requests per view")
    parser.add_argument("--write-docs", action="store_true",
                        help="replace the review section of docs/benchmarks.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-review-") as work:
        url = f"sqlite:///{Path(work) / 'aftercare.db'}"
        db.migrate(url)
        started = time.perf_counter()
        fill(url, args.patients, args.open, args.resolved)
        print(f"{args.open} open + {args.resolved} resolved escalations of {args.patients} "
              f"patients written in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        port = free_port()
        process = serve(url, port, Path(work) / "logs")
        try:
            paths = [("whole queue, page 1", "/"),
                     ("name search", "/?q=patient+0042"),
                     ("level filter", "/?level=urgent"),
                     ("mine", "/?mine=1"),
                     ("last page", f"/?page={(args.open + 24) // 25}")]
            results = asyncio.run(measure(f"http://127.0.0.1:{port}", paths, args.requests))
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
    lines = [
        f"{args.open:,} unresolved and {args.resolved:,} resolved escalations of "
        f"{args.patients:,} patients; {args.requests} requests per view, one at a time, after "
        f"10 warm-up requests; {datetime.now(timezone.utc):%Y-%m-%d}, Python "
        f"{platform.python_version()}, {os.cpu_count()} cores "
        f"(`.venv/bin/python benchmarks/benchmark_review.py`):",
        "",
        "| view | request | n | p50 ms | p95 ms | max ms | page | rows |",
        "|---|---|---|---|---|---|---|---|",
        *(r.row() for r in results),
    ]
    text = "\n".join(lines)
    print(text)
    if args.write_docs:
        write_docs(text)
        print(f"wrote {DOCS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
