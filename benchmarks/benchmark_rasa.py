"""Speed of the assistant on this machine: full training, start-up and reply latency.

    .venv/bin/python benchmarks/benchmark_rasa.py [--skip-training] [--messages 200]

1. Full training (`rasa train --force`, NLU and dialogue) into a temporary folder.
2. Start-up: from starting the action server and the Rasa server until both
   answer their health checks (and until the first real reply).
3. Reply latency over the REST channel, p50 and p95 over N messages sent one
   after another by 20 enrolled patients in turn, each going through the
   action server (every rule runs action_safety_check and an answer action).
Start-up and latency are measured for each tracker store side by side: the
shipped SQL store (conversations kept in the patient database) and Rasa's
in-memory store (conversations lost on restart; for comparison only).
Runs on a temporary database and ports of its own; prints a Markdown table.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aftercare.rasa_client import RasaClient  # noqa: E402
from aftercare.services import (  # noqa: E402
    VENV_BIN, model_path, service_env, start_action_server, start_rasa_server, wait_until_healthy,
    warm_up_rasa,
)
from aftercare.settings import get_settings  # noqa: E402
from aftercare.store import db, repository  # noqa: E402

# Our own benchmark messages: a mix of questions, symptom reports and chit-chat.
MESSAGES = [
    "hi there", "when can i wear makeup again?", "my face is quite red still",
    "can i go to the gym tomorrow", "is it ok to use retinol", "bit itchy today",
    "when can i go swimming", "can i have a glass of wine tonight", "thank you!",
    "my skin is peeling a lot", "can i take paracetamol", "when will i see results",
    "when is my next session", "is this all normal?", "can i wash my face now",
]


PATIENTS = 20


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def measure_training(work: Path) -> float:
    env = service_env(get_settings())
    started = time.perf_counter()
    subprocess.run([str(VENV_BIN / "rasa"), "train", "--force", "--out", str(work)],
                   cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def measure_serving(work: Path, endpoints: Path, messages: int) -> tuple[float, float, list]:
    work.mkdir()
    database_url = f"sqlite:///{work / 'bench.db'}"
    settings = replace(get_settings(), database_url=database_url,
                       rasa_url="http://127.0.0.1:5105",
                       action_server_url="http://127.0.0.1:5155/webhook")
    db.migrate(database_url)
    senders = [f"bench-patient-{n}" for n in range(PATIENTS)]
    with db.session_scope(database_url) as session:
        for sender in senders:
            repository.add_patient(session, name="Benchmark", timezone="Europe/London",
                                   treated_at=datetime.now(timezone.utc) - timedelta(hours=30),
                                   sender_id=sender)
    started = time.perf_counter()
    services = [start_action_server(settings, work / "log")]
    services.append(start_rasa_server(settings, work / "log", model_path(), endpoints))
    try:
        wait_until_healthy(services, timeout=300)
        warm_up_rasa(settings)
        ready = time.perf_counter() - started
        client = RasaClient(settings.rasa_url)
        client.send(senders[0], "hello")
        first_reply = time.perf_counter() - started
        latencies = []
        for i in range(messages):
            text = MESSAGES[i % len(MESSAGES)]
            sent = time.perf_counter()
            replies = client.send(senders[i % PATIENTS], text)
            latencies.append((time.perf_counter() - sent) * 1000)
            if not replies:
                raise SystemExit(f"no reply to {text!r}")
    finally:
        for service in reversed(services):
            service.stop()
    return ready, first_reply, latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        if not args.skip_training:
            rows.append(("full training (rasa train --force)", f"{measure_training(work):.1f} s"))

        memory_endpoints = work / "endpoints-memory.yml"
        memory_endpoints.write_text("action_endpoint:\n  url: ${ACTION_SERVER_URL}\n")
        for label, endpoints in (("SQL tracker store (shipped)", ROOT / "endpoints.yml"),
                                 ("in-memory tracker store", memory_endpoints)):
            ready, first_reply, latencies = measure_serving(work / label.split()[0], endpoints,
                                                            args.messages)
            rows += [
                (f"{label}: start until both servers are ready (healthy, warmed up)", f"{ready:.1f} s"),
                (f"{label}: start until the first reply", f"{first_reply:.1f} s"),
                (f"{label}: REST reply p50 / p95 ({args.messages} messages)",
                 f"{statistics.median(latencies):.0f} ms / {percentile(latencies, 0.95):.0f} ms"),
            ]
    print(f"Measured {datetime.now():%Y-%m-%d} on {os.cpu_count()} cores:\n")
    print("| what | figure |\n|---|---|")
    for what, figure in rows:
        print(f"| {what} | {figure} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
