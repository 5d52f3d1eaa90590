"""What the authoring inbox costs: the time its capture adds to each patient
message in the action server, and how long the store takes to list an inbox
of 5,000 items (newest first, with counts per reason, with and without filters).

    .venv/bin/python benchmarks/measure_inbox_capture.py [--runs 300] [--items 5000]

In-process, on a temporary SQLite database: the safety-check action's own
capture call (actions.actions.capture_for_authors) with a conversation as Rasa
sends it, for a patient who did not agree (the usual case: nothing but a
lookup), one who agreed and whose message is not kept, and one whose
message is kept (masked, stored, the previous message's answer filled in).
The red-flag net and the de-identification are built before timing, as the
action server does when it starts.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rasa_sdk import Tracker  # noqa: E402

from actions.actions import capture_for_authors  # noqa: E402
from actions.context import AssistantContext  # noqa: E402
from aftercare.authoring import inbox  # noqa: E402
from aftercare.authoring.capture import Reading, capture_reading  # noqa: E402
from aftercare.privacy import default_deidentifier  # noqa: E402
from aftercare.settings import get_settings  # noqa: E402
from aftercare.store import db, repository  # noqa: E402
from aftercare.store.models import INBOX_REASONS  # noqa: E402

NOW = datetime.now(timezone.utc)
FALLBACK = [("nlu_fallback", 0.15), ("ask_skincare_products", 0.31), ("ask_makeup", 0.27)]


def turn(text: str, intent: str, confidence: float, ranking=None, history: int = 6) -> tuple:
    """(parse data, events) of a message after a few earlier turns."""
    events = []
    moment = NOW.timestamp()
    for n in range(history):
        message_id = uuid.uuid4().hex
        parse = {"text": f"earlier question {n}", "message_id": message_id,
                 "intent": {"name": "ask_makeup", "confidence": 0.97},
                 "intent_ranking": [{"name": "ask_makeup", "confidence": 0.97}]}
        events += [{"event": "user", "text": parse["text"], "parse_data": parse,
                    "message_id": message_id, "timestamp": moment + n},
                   {"event": "action", "name": "action_safety_check"},
                   {"event": "bot", "text": "Makeup from 24 hours after your treatment.",
                    "data": {}}]
    message_id = uuid.uuid4().hex
    ranking = ranking or [(intent, confidence)]
    parse = {"text": text, "message_id": message_id,
             "intent": {"name": intent, "confidence": confidence},
             "intent_ranking": [{"name": n, "confidence": c} for n, c in ranking]}
    events.append({"event": "user", "text": text, "parse_data": parse, "message_id": message_id,
                   "timestamp": moment + history})
    return parse, events


def timed(runs: int, once) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        once()
        times.append((time.perf_counter() - started) * 1000)
    return times


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return f"p50 {statistics.median(ordered):6.2f} ms   p95 {p95:6.2f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--items", type=int, default=5000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="inbox-bench-"))
    url = f"sqlite:///{work / 'bench.db'}"
    ctx = AssistantContext(settings=replace(get_settings(), database_url=url),
                           clock=lambda: NOW)
    with ctx.session() as session:
        for sender, consent in (("no-consent", None), ("consent", True)):
            patient = repository.add_patient(session, name="Ana Kowalska",
                                             treated_at=NOW - timedelta(days=2),
                                             timezone="Europe/London", sender_id=sender)
            patient.improve_consent = consent
    ctx.net.assess("warm-up", None)
    default_deidentifier()("warm-up", ())

    def run(sender: str, text: str, intent: str, confidence: float, ranking=None):
        parse, events = turn(text, intent, confidence, ranking)
        tracker = Tracker(sender, {}, parse, events, False, None, {}, "action_safety_check")
        return lambda: capture_for_authors(ctx, tracker)

    unclear = "Ana here, can I put the tinted stuff on, call me on 07700 900123"
    print(f"Capture added to each patient message ({args.runs} runs each):")
    cases = [
        ("no consent (not asked or said no)", "no-consent", unclear, "nlu_fallback", 0.15,
         FALLBACK),
        ("consent, confident message (not kept)", "consent", "when can i wear makeup",
         "ask_makeup", 0.98, None),
        ("consent, fallback (kept, masked)", "consent", unclear, "nlu_fallback", 0.15, FALLBACK),
    ]
    for label, sender, text, intent, confidence, ranking in cases:
        times = []
        for _ in range(args.runs):   # a new message each run, so "kept" stores one each time
            times += timed(1, run(sender, text, intent, confidence, ranking))
        print(f"  {label:40} {summary(times)}")

    with ctx.session() as session:
        patient = repository.find_patient_by_sender(session, "consent")
        intents = ["ask_makeup", "ask_skincare_products", "report_redness", "out_of_scope"]
        for n in range(args.items):
            reading = Reading.from_parse_data({
                "text": f"message number {n}", "message_id": uuid.uuid4().hex,
                "intent": {"name": intents[n % 4], "confidence": 0.3}},
                timestamp=(NOW - timedelta(minutes=n)).timestamp())
            capture_reading(session, patient, "consent", reading,
                            reasons=[INBOX_REASONS[n % 5], INBOX_REASONS[(n + 2) % 5]], now=NOW)
    filters = {
        "all open, first page of 50": inbox.InboxFilter(),
        "reason misunderstood": inbox.InboxFilter(reason="misunderstood"),
        "intent report_redness, last 3 days": inbox.InboxFilter(
            intent="report_redness", since=NOW - timedelta(days=3)),
    }
    total = args.items + args.runs
    print(f"\nListing an inbox of {total} items (page, total, counts per reason):")
    for label, chosen in filters.items():
        def once(chosen=chosen):
            with ctx.session() as session:
                inbox.list_inbox(session, chosen, limit=50)
        print(f"  {label:40} {summary(timed(max(20, args.runs // 5), once))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
