"""The review list as a work queue: order, who has it, overdue, the patient's
words, search, filters and pages. The real aiohttp application on a free port,
a temporary database (SQLite, then PostgreSQL: conftest.py) written with the
store's own functions, httpx as the browser; times are set relative to the
real clock, so any date works."""
from __future__ import annotations

import html as html_lib
import logging
import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import httpx
import pytest
import yaml
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from aftercare import staff as accounts
from aftercare.protocol import load_protocol
from aftercare.settings import PROJECT_ROOT
from aftercare.store import db, escalations as store, repository
from aftercare.store.models import Escalation
from review import queue
from review.logs import configure_logging
from tests.review_harness import (
    PASSWORD, PATIENT_NAME, SCRIPT_TEXT, STAFF_EMAIL, OffsetClock, add_scene, add_staff,
    csrf_of, review_settings, serving,
)

pytestmark = pytest.mark.all_databases
PROTOCOL = PROJECT_ROOT / "clinic" / "protocol.yml"
REALERT = load_protocol(PROTOCOL).escalation.realert_minutes
OTHER_NAME = "Bartholomew Fenwick-Ouzel"
SAM = "sam.lee@clinic.example"


@pytest.fixture
def url(database_url: str) -> str:
    db.migrate(database_url)
    add_staff(database_url)
    return database_url


def start(url: str, **settings) -> "Site":
    return Site(url, settings)


class Site:
    """The review page on url, signed in as STAFF_EMAIL."""

    def __init__(self, url: str, settings: dict) -> None:
        self._serving = serving(review_settings(url, **settings), OffsetClock())
        base = self._serving.__enter__()
        self.client = httpx.Client(base_url=base, timeout=30)
        page = self.client.get("/login")
        response = self.client.post("/login", data={
            "csrf": csrf_of(page.text), "email": STAFF_EMAIL, "password": PASSWORD})
        assert response.status_code == 303

    def get(self, path: str) -> str:
        response = self.client.get(path)
        assert response.status_code == 200, response.text[:500]
        return response.text

    def close(self) -> None:
        self.client.close()
        self._serving.__exit__(None, None, None)


@pytest.fixture
def site(url: str) -> Iterator[Site]:
    running = start(url)
    yield running
    running.close()


def now() -> datetime:
    return datetime.now(timezone.utc)


def escalate(url: str, *, level: str = "urgent", minutes_ago: float = 1,
             patient_id: Optional[int] = None, sender_id: Optional[str] = "tg-777",
             message: str = "my skin is worse", reason: str = "a sign",
             acknowledged_by: Optional[str] = None, acknowledged_minutes_ago: float = 0,
             resolved: bool = False) -> int:
    """An escalation raised minutes_ago, acknowledged and resolved as asked."""
    with db.session_scope(url) as session:
        escalation = repository.record_escalation(
            session, patient_id=patient_id, sender_id=sender_id, message=message,
            level=level, reason=reason, day=2 if patient_id else None)
        escalation.created_at = now() - timedelta(minutes=minutes_ago)
        if acknowledged_by:
            store.acknowledge(session, escalation.id, acknowledged_by,
                              now() - timedelta(minutes=acknowledged_minutes_ago))
        if resolved:
            store.resolve(session, escalation.id, "cli:test", "done", now())
        return escalation.id


def order(page: str) -> List[int]:
    table = page.split('id="queue-table"', 1)[1] if 'id="queue-table"' in page else ""
    return [int(n) for n in re.findall(r'data-escalation="(\d+)"', table)]


def rows(page: str) -> Dict[int, str]:
    """Each listed escalation's row, as text a person reads."""
    found = {}
    for part in page.split('<tr class="escalation-row')[1:]:
        number = int(re.search(r'data-escalation="(\d+)"', part).group(1))
        row = part.split("</tr>", 1)[0]
        found[number] = " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", row)).split())
        found[number] += " CLASSES:" + part.split(">", 1)[0]
    return found


def counts(page: str) -> Dict[str, tuple]:
    found = {}
    for level, block in re.findall(r'data-level="(\w+)">(.*?)</li>', page, re.S):
        waiting = int(re.search(r'count-waiting">(\d+)<', block).group(1))
        unacked = int(re.search(r'count-unacknowledged">(\d+)<', block).group(1))
        late = re.search(r'count-overdue overdue-text">(\d+) overdue<', block)
        found[level] = (waiting, unacked, int(late.group(1)) if late else 0)
    return found


def summary(page: str) -> str:
    part = page.split('id="queue-summary"', 1)[1].split("</p>", 1)[0]
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", part.split(">", 1)[1])).split())


# --- order and what a row says ---------------------------------------------------

def test_by_level_then_nobody_has_it_then_oldest(site, url):
    acked_emergency = escalate(url, level="emergency", minutes_ago=50, acknowledged_by=SAM)
    new_emergency = escalate(url, level="emergency", minutes_ago=10)
    old_emergency = escalate(url, level="emergency", minutes_ago=30)
    new_urgent = escalate(url, level="urgent", minutes_ago=5)
    acked_urgent = escalate(url, level="urgent", minutes_ago=60, acknowledged_by=SAM)
    person = escalate(url, level="human", minutes_ago=100)
    routine = escalate(url, level="routine", minutes_ago=1000)
    escalate(url, level="emergency", minutes_ago=2000, resolved=True)
    assert order(site.get("/")) == [old_emergency, new_emergency, acked_emergency, new_urgent,
                                    acked_urgent, person, routine]


def test_each_row_says_who_has_it_and_for_how_long(site, url):
    sam = escalate(url, minutes_ago=40, acknowledged_by=SAM, acknowledged_minutes_ago=12.1)
    group = escalate(url, minutes_ago=300, acknowledged_by="telegram:4242 Sam Lee",
                     acknowledged_minutes_ago=180.1)
    mine = escalate(url, minutes_ago=20, acknowledged_by=STAFF_EMAIL, acknowledged_minutes_ago=5.1)
    command = escalate(url, minutes_ago=20, acknowledged_by="cli:rota",
                       acknowledged_minutes_ago=2.1)
    nobody = escalate(url, minutes_ago=1)
    listed = rows(site.get("/"))
    assert f"Acknowledged by {SAM}, 12 min ago" in listed[sam]
    assert "Acknowledged by Sam Lee (Telegram), 3 h ago" in listed[group]
    assert "Acknowledged by you, 5 min ago" in listed[mine]
    assert "Acknowledged by rota (command line), 2 min ago" in listed[command]
    assert "Nobody yet" in listed[nobody] and "Acknowledged" not in listed[nobody]


def test_overdue_is_open_past_the_protocols_realert_minutes(site, url):
    late, early = {}, {}
    for level, minutes in REALERT.items():
        late[level] = escalate(url, level=level, minutes_ago=minutes + 1)
        early[level] = escalate(url, level=level, minutes_ago=minutes - 1)
    taken = escalate(url, level="emergency", minutes_ago=REALERT["emergency"] * 10,
                     acknowledged_by=SAM)
    page = site.get("/")
    listed = rows(page)
    for level in REALERT:
        assert "overdue" in listed[late[level]].split("CLASSES:")[1], level
        assert "OVERDUE" not in listed[early[level]].upper(), level
    assert "overdue" not in listed[taken]
    assert counts(page)["emergency"] == (3, 2, 1)
    assert counts(page)["routine"] == (2, 2, 1)
    assert f"{len(REALERT)} overdue" in page


def test_overdue_follows_the_protocol_file_the_bot_reads(url, tmp_path):
    """Same source as the staff relay's reminders: settings.protocol_path, re-read."""
    raw = yaml.safe_load(PROTOCOL.read_text(encoding="utf-8"))
    raw["escalation"]["realert_minutes"]["emergency"] = 30
    changed = tmp_path / "protocol.yml"
    changed.write_text(yaml.safe_dump(raw), encoding="utf-8")
    six = escalate(url, level="emergency", minutes_ago=6)
    running = start(url, protocol_path=changed)
    try:
        assert "overdue" not in rows(running.get("/"))[six].split("CLASSES:")[1]
        raw["escalation"]["realert_minutes"]["emergency"] = 5
        changed.write_text(yaml.safe_dump(raw), encoding="utf-8")
        os.utime(changed, (1, 1))   # a new mtime, whatever the file system's resolution
        assert "overdue" in rows(running.get("/"))[six].split("CLASSES:")[1]
    finally:
        running.close()


def test_an_unreadable_protocol_is_said_and_the_list_still_shows(url, tmp_path):
    broken = tmp_path / "protocol.yml"
    broken.write_text("escalation: [not, a, mapping\n", encoding="utf-8")
    number = escalate(url, level="emergency", minutes_ago=600)
    running = start(url, protocol_path=broken)
    try:
        page = running.get("/")
    finally:
        running.close()
    assert 'id="protocol-error"' in page and "not marked as overdue" in page
    assert order(page) == [number]


def test_the_patients_first_words_are_shown_cut_at_a_word(site, url):
    scene = add_scene(url)
    long_text = ("My cheek went hot and swollen overnight and now there is a yellow crust "
                 "along the jaw line where the pen went over twice, and TAILMARKER it hurts")
    long_one = escalate(url, patient_id=scene.patient_id, sender_id=scene.sender_id,
                        message=long_text)
    script = escalate(url, message=SCRIPT_TEXT)
    huge = [escalate(url, message="swelling " * 2_000) for _ in range(24)]
    page = site.get("/")
    listed = rows(page)
    shown = html_lib.unescape(re.search(
        r'<q class="words">(.*?)</q>', page.split(f'data-escalation="{long_one}"')[1]).group(1))
    assert shown == queue.words(long_text)
    assert long_text.startswith(shown[:-1]) and shown.endswith("…")
    assert len(shown) <= queue.WORDS_CHARS + 1 and not shown[:-1].endswith(" ")
    assert "TAILMARKER" not in page
    assert SCRIPT_TEXT in listed[script] and "<script>" not in page
    assert PATIENT_NAME in listed[long_one]
    assert len(huge) == 24 and len(page.encode()) < 60_000   # long messages stay out


@pytest.mark.parametrize("text, expected", [
    ("  short   and\nsweet ", "short and sweet"),
    ("word " * 30, ("word " * 20).strip() + "…"),
    ("x" * 300, "x" * 100 + "…"),
    ("a" * 97 + " bb", "a" * 97 + " bb"),      # 100 characters: whole
    ("a" * 99 + " bb", "a" * 99 + "…"),
    ("a" * 60 + " " + "b" * 60, "a" * 60 + "…"),
])
def test_words(text, expected):
    assert queue.words(text) == expected


# --- search, filters, pages ----------------------------------------------------------

def test_search_by_name_patient_number_escalation_number_or_chat(site, url):
    zelda = add_scene(url)
    other = add_scene(url, name=OTHER_NAME, sender_id="tg-555")
    stranger = escalate(url, sender_id="tg-999")
    # recorded from Zelda's chat before it was linked: still hers
    unlinked = escalate(url, patient_id=None, sender_id=zelda.sender_id)
    assert sorted(order(site.get("/?q=quarr"))) == sorted([zelda.escalation_id, unlinked])
    assert sorted(order(site.get("/?q=ZELDA+Q"))) == sorted([zelda.escalation_id, unlinked])
    assert order(site.get("/?q=fenwick-ouzel")) == [other.escalation_id]
    assert order(site.get(f"/?q={other.patient_id}")) == [other.escalation_id]
    assert order(site.get(f"/?q=%23{stranger}")) == [stranger]
    assert order(site.get("/?q=tg-999")) == [stranger]
    assert order(site.get("/?q=%25")) == [] and order(site.get("/?q=_")) == []
    empty = site.get("/?q=nobody+by+this+name")
    assert "No escalation matches" in empty and 'value="nobody by this name"' in empty
    assert PATIENT_NAME in rows(site.get("/"))[unlinked]


def test_filters_level_status_and_mine(site, url):
    open_urgent = escalate(url, level="urgent")
    acked_urgent = escalate(url, level="urgent", acknowledged_by=SAM)
    mine = escalate(url, level="routine", acknowledged_by=STAFF_EMAIL)
    resolved_mine = escalate(url, level="routine", acknowledged_by=STAFF_EMAIL, resolved=True)
    resolved = escalate(url, level="emergency", resolved=True)
    assert set(order(site.get("/?level=urgent"))) == {open_urgent, acked_urgent}
    assert order(site.get("/?status=open")) == [open_urgent]
    assert set(order(site.get("/?status=acknowledged"))) == {acked_urgent, mine}
    assert set(order(site.get("/?status=resolved"))) == {resolved_mine, resolved}
    assert set(order(site.get("/?status=all_open"))) == {open_urgent, acked_urgent, mine}
    assert order(site.get("/?mine=1")) == [mine]
    assert order(site.get("/?mine=1&status=resolved")) == [resolved_mine]
    page = site.get("/?level=urgent&status=acknowledged")
    assert order(page) == [acked_urgent]
    assert '<option value="urgent" selected>' in page
    assert '<option value="acknowledged" selected>' in page


@pytest.mark.parametrize("query", [
    "level=bogus", "status=closed", "page=abc", "page=0", "page=-3", "page=1e3",
    "page=%D9%A3", "page=99999999999999999999", "mine=banana", "q=%00%01",
    "level=&status=&mine=&page=&q=", "level[]=urgent", "status=open%00",
])
def test_bad_query_values_give_the_defaults(site, url, query):
    ids = [escalate(url, level=level) for level in ("routine", "emergency")]
    page = site.get("/?" + query)
    assert order(page) == list(reversed(ids))
    assert '<option value="" selected>all levels</option>' in page
    assert '<option value="all_open" selected>' in page and "checked" not in page


def test_an_overlong_search_is_cut_not_refused(site, url):
    escalate(url)
    page = site.get("/?q=" + "a" * 5_000)   # aiohttp itself refuses a request line over 8 KB
    value = re.search(r'id="q" name="q" value="([^"]*)"', page).group(1)
    assert value == "a" * queue.SEARCH_MAX


def test_pages_of_25_with_counts_and_filters_kept(site, url):
    routine = [escalate(url, level="routine", minutes_ago=1000 - i) for i in range(60)]
    emergencies = [escalate(url, level="emergency", minutes_ago=3) for _ in range(3)]
    first = site.get("/")
    assert order(first) == emergencies + routine[:22]
    assert summary(first).startswith("1–25 of 63 waiting for the clinic")
    assert counts(first)["emergency"] == (3, 3, 0) and counts(first)["routine"][0] == 60
    seen = []
    for number in (1, 2, 3):
        page = site.get(f"/?level=routine&page={number}")
        assert counts(page)["emergency"][0] == 3   # the counts are of the whole queue
        seen += order(page)
    assert seen == routine
    second = site.get("/?level=routine&page=2")
    assert summary(second).startswith("26–50 of 60")
    assert 'href="/?level=routine&amp;page=3" rel="next"' in second
    assert 'href="/?level=routine" rel="prev"' in second
    beyond = site.get("/?level=routine&page=99")
    assert order(beyond) == routine[50:] and "Page 3 of 3" in beyond


def test_one_page_is_three_queries_however_many_rows(url):
    """No query per escalation: the level counts, the total and the page."""
    patients = [add_scene(url, name=f"Patient {i}", sender_id=f"tg-{i}") for i in range(3)]
    engine = db.make_engine(url)
    statements: List[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, sql, *rest: statements.append(sql))

    def run() -> queue.Queue:
        statements.clear()
        with Session(engine) as session:
            return queue.load(session, queue.QueueFilters(), STAFF_EMAIL, dict(REALERT), now())

    few = run()
    few_statements = len(statements)
    patients += [add_scene(url, name=f"Patient {i}", sender_id=f"tg-{i}") for i in range(3, 30)]
    many = run()
    assert len(few.items) == 3 and len(many.items) == 25 and many.total == 30
    assert few_statements == len(statements) == 3
    assert {item.patient_name for item in many.items} <= {f"Patient {i}" for i in range(30)}
    assert all(item.day_now == 2 for item in many.items)
    engine.dispose()


def test_search_words_stay_out_of_the_log(url, tmp_path):
    escalate(url)
    log_file = tmp_path / "review.log"
    root_level = logging.getLogger().level
    handler = configure_logging(log_file)
    client_log = logging.getLogger("httpx")
    client_level = client_log.level
    client_log.setLevel(logging.WARNING)   # the test's HTTP client, not the review page
    try:
        running = start(url)
        try:
            running.get("/?q=Quarrington-secret-search&level=urgent&mine=1")
        finally:
            running.close()
    finally:
        client_log.setLevel(client_level)
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(root_level)
        handler.close()
    log = log_file.read_text()
    assert "GET / 200" in log
    assert "Quarrington-secret-search" not in log and "mine=" not in log


def test_sign_in_is_still_needed(url):
    with serving(review_settings(url), OffsetClock()) as base:
        with httpx.Client(base_url=base) as client:
            response = client.get("/?q=zelda")
            assert response.status_code == 303
            assert response.headers["location"] == "/login"
