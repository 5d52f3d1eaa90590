"""The escalation and patient pages a nurse acts on, over real HTTP against the
real review application and a temporary SQLite database: the check-ins and
what became of them, answers in words, the phone number to call, replies
refused when they cannot reach the patient, the conversation of any channel
(Rasa's tracker events), and the chart's geometry."""
from __future__ import annotations

import html as html_lib
import json
import logging
import math
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from typing import Iterator

import httpx
import pytest
from sqlalchemy import func, select, text

from aftercare.store import db, repository, tracker_events
from aftercare.store.chats import log_message, mark_unreachable
from aftercare.store.models import EscalationEvent, StaffReply
from review.chart import ChartReport, label_box, symptom_chart
from tests.checkin_scene import NAME, OUTCOMES, PHONE, TYPED_ANSWER, add_checkin_scene
from tests.review_harness import (
    PASSWORD, STAFF_EMAIL, OffsetClock, add_staff, csrf_of, review_settings, serving,
)

SVG = "{http://www.w3.org/2000/svg}"
RED_FLAG = "my cheek is hot and there is yellow pus oozing from a spot"
ASSISTANT_REPLY = "Thank you for telling me. This needs the clinic today: call them now."


@pytest.fixture
def url(database_url: str) -> str:
    db.migrate(database_url)
    return database_url


@pytest.fixture
def signed_in(url: str) -> Iterator[httpx.Client]:
    add_staff(url)
    with serving(review_settings(url), OffsetClock()) as base, \
            httpx.Client(base_url=base, timeout=30) as client:
        page = client.get("/login")
        response = client.post("/login", data={"csrf": csrf_of(page.text),
                                               "email": STAFF_EMAIL, "password": PASSWORD})
        assert response.status_code == 303
        yield client


def text_of(html: str) -> str:
    """The page's text as a person reads it, whitespace collapsed."""
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", html)).split())


def row_text(html: str, attribute: str, value: str) -> str:
    match = re.search(rf'<tr[^>]*{attribute}="{re.escape(value)}"[^>]*>(.*?)</tr>', html, re.S)
    assert match, f"no row {attribute}={value}"
    return text_of(match.group(1))


def escalation(url: str, *, sender_id: str | None, patient_id: int | None = None,
               message: str = RED_FLAG) -> int:
    with db.session_scope(url) as session:
        return repository.record_escalation(
            session, patient_id=patient_id, sender_id=sender_id, message=message,
            level="urgent", reason="possible infection", day=3).id


def post(client: httpx.Client, path: str, **fields: str) -> httpx.Response:
    page = client.get(path.rsplit("/", 1)[0])
    return client.post(path, data={"csrf": csrf_of(page.text), **fields})


def replies_and_events(url: str, escalation_id: int) -> tuple[int, list[str]]:
    with db.session_scope(url) as session:
        replies = session.execute(select(func.count(StaffReply.id)).where(
            StaffReply.escalation_id == escalation_id)).scalar_one()
        kinds = session.execute(select(EscalationEvent.kind).where(
            EscalationEvent.escalation_id == escalation_id)).scalars().all()
        return replies, list(kinds)


# --- 6. check-ins that went wrong, answers in words ---------------------------

def test_patient_page_lists_each_checkin_with_what_became_of_it(signed_in, url):
    scene = add_checkin_scene(url)
    page = signed_in.get(f"/patients/{scene.patient_id}")
    assert page.status_code == 200
    for checkin_id, (_, _, words) in OUTCOMES.items():
        assert words in row_text(page.text, "data-checkin", checkin_id), checkin_id
    assert "checkin-problem" in re.search(r'<tr class="([^"]*)" data-checkin="day3_morning"',
                                          page.text).group(1)
    assert "checkin-problem" not in re.search(
        r'<tr class="([^"]*)" data-checkin="day0_evening"', page.text).group(1)
    assert "planned" in row_text(page.text, "data-checkin", "next_session_reminder")
    # The answers: a tapped button in the words the assistant uses for it.
    day0 = row_text(page.text, "data-checkin", "day0_evening")
    assert "redness" in day0 and "“My skin is red” (tapped)" in day0
    assert TYPED_ANSWER in row_text(page.text, "data-checkin", "day1_morning")
    assert "/report_redness" not in page.text   # nowhere: not in the reports table either


def test_a_tapped_button_in_the_conversation_reads_as_words(signed_in, url):
    scene = add_checkin_scene(url)
    with db.session_scope(url) as session:
        log_message(session, sender_id=scene.sender_id, direction="in",
                    text="/report_feeling_fine", status="answered")
        log_message(session, sender_id=scene.sender_id, direction="in",
                    text="/ask_swimming_sauna", status="answered")
    page = signed_in.get(f"/patients/{scene.patient_id}").text
    conversation = text_of(re.search(r'<section class="conversation".*?</section>', page,
                                     re.S).group(0))
    assert "“All good” (tapped)" in conversation
    assert "“Swimming, sauna or hot tub” (tapped)" in conversation
    assert "/report_feeling_fine" not in page and "/ask_swimming_sauna" not in page


def test_without_a_readable_protocol_the_page_still_shows_and_says_why(url, tmp_path):
    scene = add_checkin_scene(url)
    broken = tmp_path / "protocol.yml"
    broken.write_text("clinic: [unclosed\n")
    add_staff(url)
    settings = review_settings(url, protocol_path=broken)
    with serving(settings, OffsetClock()) as base, httpx.Client(base_url=base) as client:
        login = client.get("/login")
        client.post("/login", data={"csrf": csrf_of(login.text), "email": STAFF_EMAIL,
                                    "password": PASSWORD})
        page = client.get(f"/patients/{scene.patient_id}")
    assert page.status_code == 200
    assert "The check-in plan cannot be shown" in text_of(page.text)
    assert NAME in page.text


# --- 11. the phone number ------------------------------------------------------

def test_the_phone_number_is_a_link_to_call_on_both_pages(signed_in, url, caplog):
    caplog.set_level(logging.DEBUG)
    scene = add_checkin_scene(url)
    escalation_id = escalation(url, sender_id=scene.sender_id, patient_id=scene.patient_id)
    patient_page = signed_in.get(f"/patients/{scene.patient_id}").text
    escalation_page = signed_in.get(f"/escalations/{escalation_id}").text
    link = f'<a class="tel" href="tel:{PHONE}">{PHONE}</a>'
    assert link in patient_page and link in escalation_page
    assert f'href="tel:{PHONE}"' in signed_in.get("/patients").text
    assert PHONE not in caplog.text and "7946" not in caplog.text


def test_a_patient_without_a_phone_says_how_to_add_one(signed_in, url):
    with db.session_scope(url) as session:
        patient_id = repository.add_patient(
            session, "Nobody Phoned", datetime.now(timezone.utc) - timedelta(days=1),
            "Europe/London").id
    page = text_of(signed_in.get(f"/patients/{patient_id}").text)
    assert f"aftercare patients edit {patient_id} --phone NUMBER" in page
    assert "tel:" not in signed_in.get(f"/patients/{patient_id}").text


# --- 13. replies that cannot reach the patient ----------------------------------

def test_a_reply_to_a_patient_outside_telegram_is_refused_with_the_number_to_call(
        signed_in, url):
    scene = add_checkin_scene(url, sender_id="rest-imogen")
    escalation_id = escalation(url, sender_id=scene.sender_id, patient_id=scene.patient_id)
    path = f"/escalations/{escalation_id}"
    page = signed_in.get(path).text
    refused = re.search(r'<p class="reply-refused" id="reply-refused">(.*?)</p>', page, re.S)
    assert refused and f'href="tel:{PHONE}"' in refused.group(1)
    assert "not on Telegram" in text_of(refused.group(1))
    assert 'name="text"' not in page   # no box to write a reply that cannot be sent

    # A form from an older page is refused too, and nothing is queued or recorded.
    response = signed_in.post(f"{path}/reply", data={"csrf": csrf_of(page), "text": "hi"})
    assert response.status_code == 409
    said = text_of(response.text)
    assert "cannot get replies from the bot" in said and "Nothing was queued" in said
    assert f"Call them on {PHONE}" in said
    assert replies_and_events(url, escalation_id) == (0, [])


def test_without_a_chat_or_a_phone_the_refusal_says_so(signed_in, url):
    patient_id = add_checkin_scene(url, sender_id="tg-5151").patient_id
    escalation_id = escalation(url, sender_id=None, patient_id=patient_id)
    with db.session_scope(url) as session:   # the number was removed meanwhile
        repository.set_phone(session, repository.get_patient(session, patient_id), None)
    page = signed_in.get(f"/escalations/{escalation_id}").text
    refused = text_of(re.search(r'id="reply-refused">(.*?)</p>', page, re.S).group(1))
    assert "no Telegram chat is linked" in refused
    assert "no phone number is on record" in refused and "--phone NUMBER" in refused


def test_a_reply_to_a_patient_who_blocked_the_bot_is_queued_with_a_warning(signed_in, url):
    scene = add_checkin_scene(url)
    escalation_id = escalation(url, sender_id=scene.sender_id, patient_id=scene.patient_id)
    with db.session_scope(url) as session:
        mark_unreachable(session, scene.patient_id, datetime.now(timezone.utc))
    path = f"/escalations/{escalation_id}"
    warning = re.search(r'id="reply-warning"[^>]*>(.*?)</p>', signed_in.get(path).text, re.S)
    assert warning and "may not arrive" in text_of(warning.group(1))
    assert f'href="tel:{PHONE}"' in warning.group(1)
    response = post(signed_in, f"{path}/reply", text="Please ring us today.")
    assert response.status_code == 303
    assert response.headers["location"] == f"{path}?done=reply_unreachable"
    done = text_of(signed_in.get(response.headers["location"]).text)
    assert "Reply queued, but the patient has blocked the bot" in done
    assert replies_and_events(url, escalation_id) == (1, ["acknowledged", "replied"])


# --- 10. the conversation, whatever the channel ---------------------------------

def make_tracker_table(url: str) -> None:
    """The table Rasa's SQL tracker store makes (rasa/core/tracker_store.py SQLEvent)."""
    with db.session_scope(url) as session:
        session.execute(text(
            "CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id VARCHAR(255) NOT NULL, "
            "type_name VARCHAR(255) NOT NULL, timestamp FLOAT, intent_name VARCHAR(255), "
            "action_name VARCHAR(255), data TEXT)"))


def add_event(url: str, sender_id: str, type_name: str, data, *, at: float | None = None,
              intent: str | None = None) -> None:
    payload = data if isinstance(data, str) else json.dumps(data)
    with db.session_scope(url) as session:
        session.execute(text(
            "INSERT INTO events (sender_id, type_name, timestamp, intent_name, data) "
            "VALUES (:s, :t, :ts, :i, :d)"), {"s": sender_id, "t": type_name, "ts": at,
                                               "i": intent, "d": payload})


def test_a_conversation_outside_telegram_comes_from_the_tracker_events(signed_in, url):
    make_tracker_table(url)
    start = datetime.now(timezone.utc).timestamp() - 600
    sender = "rest-4f2a"
    add_event(url, sender, "action", {"event": "action", "name": "action_listen"}, at=start)
    add_event(url, sender, "user", {"event": "user", "text": "EXTERNAL: EXTERNAL_enrolled",
                                    "timestamp": start + 1},
              intent="EXTERNAL_enrolled")
    add_event(url, sender, "user", {"event": "user", "text": "hello, day 3 here",
                                    "timestamp": start + 2})
    add_event(url, sender, "bot", {"event": "bot", "text": "Hello! How can I help?",
                                   "timestamp": start + 3})
    add_event(url, sender, "user", {"event": "user", "text": RED_FLAG,
                                    "timestamp": start + 4})
    add_event(url, sender, "bot", {"event": "bot", "text": ASSISTANT_REPLY,
                                   "timestamp": start + 5})
    add_event(url, sender, "user", {"event": "user", "text": "/report_redness",
                                    "timestamp": start + 6})
    for odd in ("{not json", "[1, 2]", '"just a string"', json.dumps({"text": 42}),
                json.dumps({"event": "user", "text": "   "}),
                json.dumps({"event": "user", "text": "lost time", "timestamp": "soon"})):
        add_event(url, sender, "user", odd)
    add_event(url, "someone-else", "user", {"event": "user", "text": "not this chat"})
    escalation_id = escalation(url, sender_id=sender)

    page = signed_in.get(f"/escalations/{escalation_id}")
    assert page.status_code == 200
    section = re.search(r'<section class="conversation".*?</section>', page.text, re.S).group(0)
    said = [text_of(m) for m in re.findall(r'<div class="text">(.*?)</div>', section, re.S)]
    assert said[:5] == ["hello, day 3 here", "Hello! How can I help?", RED_FLAG,
                        ASSISTANT_REPLY, "“My skin is red” (tapped)"]
    assert said[5:] == ["lost time"]   # kept, without a time; the rest could not be read
    triggered = re.findall(r'<li class="message from-patient[^"]*triggered', section)
    assert len(triggered) == 1
    assert "No messages in the log" not in section
    assert 'id="conversation-source"' in page.text
    assert "EXTERNAL" not in section and "not this chat" not in section


def test_a_telegram_chat_is_shown_from_the_message_log_only(signed_in, url):
    """Its tracker events repeat the log: one source, no doubles."""
    make_tracker_table(url)
    sender = "tg-6060"
    with db.session_scope(url) as session:
        log_message(session, sender_id=sender, direction="in", text=RED_FLAG,
                    status="answered")
        log_message(session, sender_id=sender, direction="out", text=ASSISTANT_REPLY)
    add_event(url, sender, "user", {"event": "user", "text": RED_FLAG, "timestamp": 1.0})
    add_event(url, sender, "bot", {"event": "bot", "text": "tracker-only copy",
                                   "timestamp": 2.0})
    page = signed_in.get(f"/escalations/{escalation(url, sender_id=sender)}").text
    section = re.search(r'<section class="conversation".*?</section>', page, re.S).group(0)
    assert section.count("yellow pus oozing") == 1 and "tracker-only copy" not in section
    assert 'id="conversation-source"' not in page


def test_with_no_tracker_table_yet_the_page_still_shows(signed_in, url):
    page = signed_in.get(f"/escalations/{escalation(url, sender_id='rest-new')}")
    assert page.status_code == 200 and "No messages in the log" in page.text


def test_tracker_reader_leaves_out_what_it_cannot_read(url):
    with db.session_scope(url) as session:
        assert tracker_events.conversation(session, ["x"], 10) == ([], 0)
    make_tracker_table(url)
    for n in range(5):
        add_event(url, "x", "user", {"event": "user", "text": f"m{n}", "timestamp": n * 1e20})
    add_event(url, "x", "bot", {"event": "bot", "text": "nan time", "timestamp": math.nan})
    with db.session_scope(url) as session:
        messages, older = tracker_events.conversation(session, ["x"], 3)
        assert [m.text for m in messages] == ["m3", "m4", "nan time"] and older == 3
        assert all(m.created_at is None for m in messages)
    with db.session_scope(url) as session:   # a table of that name that is not Rasa's
        session.execute(text("DROP TABLE events"))
        session.execute(text("CREATE TABLE events (id INTEGER PRIMARY KEY, other TEXT)"))
    with db.session_scope(url) as session:
        assert tracker_events.conversation(session, ["x"], 3) == ([], 0)
        assert session.execute(text("SELECT count(*) FROM events")).scalar_one() == 0


# --- 14. the chart --------------------------------------------------------------

def check_geometry(chart) -> None:
    """Every dot wholly inside the plot, no two dots touching, a label for each,
    every label inside the plot."""
    r = chart.radius
    for p in chart.points:
        assert chart.left + r <= p.x <= chart.right - r, p
        assert chart.top + r <= p.y <= chart.bottom - r, p
        assert p.label
        box = label_box(p.label_x, p.label_y, p.label_anchor, p.label)
        assert chart.left <= box[0] and box[2] <= chart.right, p
        assert chart.top <= box[1] and box[3] <= chart.bottom, p
    for i, a in enumerate(chart.points):
        for b in chart.points[i + 1:]:
            assert math.dist((a.x, a.y), (b.x, b.y)) >= 2 * r, (a, b)


def report(day, level=None, label="redness"):
    return ChartReport(day=day, level=level, label=label, title=f"day {day} {label}")


def test_day_0_dots_stay_inside_the_plot_clear_of_the_row_labels():
    chart = symptom_chart([report(0, level) for level in (None, "routine", "urgent",
                                                          "emergency")], today=0)
    check_geometry(chart)
    assert all(p.x - chart.radius > chart.left for p in chart.points)
    assert chart.today_x == min(p.x for p in chart.points)


def overlaps(a, b) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def test_same_day_dots_are_spread_and_no_label_covers_another():
    """A usual recovery: something reported most days, three things at once on day 0."""
    reports = [report(0, None, "redness"), report(0, None, "swelling"),
               report(0, None, "pain burning"), report(1, None, "redness"),
               report(1, "urgent", "infection signs"), report(2, None, "dryness peeling"),
               report(3, None, "all good"), report(3, "routine", "breakout bumps"),
               report(7, None, "all good"), report(14, "emergency", "allergic reaction")]
    chart = symptom_chart(reports, today=9)
    check_geometry(chart)
    assert sorted(p.label for p in chart.points) == sorted(r.label for r in reports)
    day0 = [p for p in chart.points if p.title.startswith("day 0 ")]
    assert len({(p.x, p.y) for p in day0}) == 3
    labels = [label_box(p.label_x, p.label_y, p.label_anchor, p.label) for p in chart.points]
    for i, (point, box) in enumerate(zip(chart.points, labels)):
        own = (point.x - chart.radius, point.y - chart.radius,
               point.x + chart.radius, point.y + chart.radius)
        assert not overlaps(box, own), point
        for other in labels[i + 1:]:
            assert not overlaps(box, other), (point, other)
    # A week of one answer a day: every label clear of every dot as well.
    week = symptom_chart([report(day, None, "redness" if day < 4 else "all good")
                          for day in range(8)])
    check_geometry(week)
    dots = [(p.x - week.radius, p.y - week.radius, p.x + week.radius, p.y + week.radius)
            for p in week.points]
    for p in week.points:
        box = label_box(p.label_x, p.label_y, p.label_anchor, p.label)
        assert not any(overlaps(box, dot) for dot in dots), p


def test_crowded_days_still_never_overlap_dots():
    crowded = [report(0, None, f"symptom {n}") for n in range(7)]
    crowded += [report(day, "urgent", "swelling") for day in range(40, 70)]   # 120-day axis
    crowded += [report(day, "urgent", "redness") for day in range(40, 70)]
    crowded.append(report(120, "emergency", "blistering"))
    chart = symptom_chart(crowded)
    assert chart.max_day == 120 and len(chart.points) == len(crowded)
    check_geometry(chart)


def test_the_patient_page_svg_has_a_label_for_every_dot_inside_the_plot(signed_in, url):
    scene = add_checkin_scene(url)
    with db.session_scope(url) as session:
        treatment = repository.current_treatment(repository.get_patient(session,
                                                                        scene.patient_id))
        for symptom, level in (("report_swelling", None), ("report_itching", None),
                               ("fine", None), ("report_infection_signs", "urgent")):
            repository.record_symptom_report(
                session, patient_id=scene.patient_id, treatment_id=treatment.id, day=0,
                checkin_id=None, symptom=symptom, level=level, text="words")
    page = signed_in.get(f"/patients/{scene.patient_id}").text
    svg = ET.fromstring(re.search(r"<svg.*?</svg>", page, re.S).group(0))
    plot = svg.find(f"{SVG}rect[@class='plot']")
    left, top = float(plot.get("x")), float(plot.get("y"))
    right, bottom = left + float(plot.get("width")), top + float(plot.get("height"))
    circles = svg.findall(f"{SVG}circle")
    labels = svg.findall(f"{SVG}text[@class='point-label']")
    assert len(circles) == 6 and len(labels) == len(circles)
    centres = []
    for circle in circles:
        x, y, r = (float(circle.get(k)) for k in ("cx", "cy", "r"))
        assert left + r <= x <= right - r and top + r <= y <= bottom - r
        centres.append((x, y, r))
    for i, (x, y, r) in enumerate(centres):
        for (x2, y2, _) in centres[i + 1:]:
            assert math.dist((x, y), (x2, y2)) >= 2 * r
    words = sorted(label.text for label in labels)
    assert words == sorted(["redness", "redness", "swelling", "itching", "all good",
                            "infection signs"])
    for label in labels:
        assert left <= float(label.get("x")) <= right
        assert top <= float(label.get("y")) <= bottom
