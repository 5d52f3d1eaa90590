"""The content authors' pages and the nurse's "the assistant misread this":
roles, the inbox (order, what an item says, counts, filters, pages), labels
and bad input, the quality page, and a nurse's flag from both kinds of
conversation. The real aiohttp application on a free port, a temporary
SQLite database written with the store's and the inbox's own functions (and
Rasa's own SQL tracker store for conversations), httpx as the browser. Times
are set relative to the real clock, so any date and time zone works."""
from __future__ import annotations

import asyncio
import html as html_lib
import re
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import httpx
import pytest
from sqlalchemy import select, update

from aftercare import staff as accounts
from aftercare.authoring.capture import Reading, capture_reading
from aftercare.authoring.inbox import set_improve_consent
from aftercare.quality import history
from aftercare.store import chats, db, repository
from aftercare.store.models import InboxItem, InboxReason, Message
from tests.review_harness import (
    LONDON, PASSWORD, OffsetClock, add_scene, csrf_of, review_settings, serving,
)

NURSE = "nurse.only@clinic.example"
AUTHOR = "writer.only@clinic.example"
BOTH = "nurse.writer@clinic.example"
PLANTED_NAME = "Philippa Quennell-Brightwater"


# --------------------------------------------------------------------------- the site

@pytest.fixture
def url(database_url: str) -> str:
    db.migrate(database_url)
    with db.session_scope(database_url) as session:
        accounts.add_staff(session, NURSE, PASSWORD)
        accounts.add_staff(session, AUTHOR, PASSWORD, roles=("author",))
        accounts.add_staff(session, BOTH, PASSWORD, roles=("nurse", "author"))
    return database_url


class Browser:
    """httpx signed in as one account on a running review page."""

    def __init__(self, base: str, email: str) -> None:
        self.client = httpx.Client(base_url=base, timeout=60)
        page = self.client.get("/login")
        self.landing = self.client.post("/login", data={
            "csrf": csrf_of(page.text), "email": email, "password": PASSWORD})
        assert self.landing.status_code == 303
        self.csrf = csrf_of(self.client.get(self.landing.headers["location"]).text)

    def get(self, path: str, status: int = 200) -> str:
        response = self.client.get(path)
        assert response.status_code == status, (path, response.status_code, response.text[:800])
        return response.text

    def post(self, path: str, data: Dict[str, str], csrf: bool = True) -> httpx.Response:
        return self.client.post(path, data={**({"csrf": self.csrf} if csrf else {}), **data})


@pytest.fixture
def quality_dir(tmp_path: Path) -> Path:
    return tmp_path / "quality"


@pytest.fixture
def base(url: str, quality_dir: Path) -> Iterator[str]:
    with serving(review_settings(url, quality_dir=quality_dir), OffsetClock()) as running:
        yield running


@pytest.fixture
def author(base: str) -> Iterator[Browser]:
    browser = Browser(base, AUTHOR)
    yield browser
    browser.client.close()


@pytest.fixture
def nurse(base: str) -> Iterator[Browser]:
    browser = Browser(base, NURSE)
    yield browser
    browser.client.close()


@pytest.fixture
def both(base: str) -> Iterator[Browser]:
    browser = Browser(base, BOTH)
    yield browser
    browser.client.close()


# --------------------------------------------------------------------------- inbox items

def now() -> datetime:
    return datetime.now(timezone.utc)


def add_patient(url: str, sender: str, *, name: str = "Ana Kowalska", consent=True,
                treated_days_ago: int = 3) -> int:
    """A patient treated at noon (London) treated_days_ago days ago: on that day of recovery."""
    treated = datetime.now(LONDON).replace(hour=12, minute=0, second=0, microsecond=0) \
        - timedelta(days=treated_days_ago)
    with db.session_scope(url) as session:
        patient = repository.add_patient(session, name=name, treated_at=treated,
                                         timezone="Europe/London", sender_id=sender)
        patient.improve_consent = consent
        session.flush()
        return patient.id


def keep(url: str, sender: str, words: str, reasons: List[str], *, intent: str = "ask_makeup",
         confidence: float = 0.41, runner_up: str = "ask_skincare_products",
         at: Optional[datetime] = None, answer: Optional[str] = None) -> int:
    """A message captured into the inbox as the assistant's safety check does."""
    at = at or now()
    reading = Reading.from_parse_data({
        "text": words, "message_id": uuid.uuid4().hex,
        "intent": {"name": intent, "confidence": confidence},
        "intent_ranking": [{"name": intent, "confidence": confidence},
                           {"name": runner_up, "confidence": round(confidence / 2, 2)}]},
        timestamp=at.timestamp())
    with db.session_scope(url) as session:
        patient = repository.find_patient_by_sender(session, sender)
        item = capture_reading(session, patient, sender, reading, reasons=reasons, now=at,
                               answer=answer)
        return item.id


def item(url: str, item_id: int) -> Optional[InboxItem]:
    with db.session_scope(url) as session:
        found = session.get(InboxItem, item_id)
        if found is not None:
            session.expunge(found)
        return found


def listed(page: str) -> List[int]:
    return [int(n) for n in re.findall(r'<li class="inbox-item[^"]*" data-item="(\d+)"', page)]


def card(page: str, item_id: int) -> str:
    """One listed item as the words a person reads."""
    part = page.split(f'data-item="{item_id}"', 1)[1].split("</li>\n", 1)[0]
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", part.split(">", 1)[1])).split())


def words(page: str) -> str:
    main = page.split("<main>", 1)[1].split("</main>", 1)[0]
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", main)).split())


def reason_counts(page: str) -> Dict[str, int]:
    return {reason: int(n) for reason, n in re.findall(
        r'data-reason="(\w+)">\s*<a[^>]*><strong class="reason-number">(\d+)</strong>', page)}


# --------------------------------------------------------------------------- roles

def test_a_nurse_who_is_not_an_author_gets_403_and_no_link(url, nurse):
    assert "/authoring" not in nurse.get("/")
    for path in ("/authoring", "/authoring/quality", "/authoring/items/1"):
        page = html_lib.unescape(nurse.get(path, status=403))
        assert "for the clinic's content authors" in page and "--role nurse,author" in page
    add_patient(url, "chat-a")
    item_id = keep(url, "chat-a", "can i put tinted stuff on", ["low_confidence"])
    refused = nurse.post(f"/authoring/items/{item_id}/label", {"intent": "ask_makeup"})
    assert refused.status_code == 403
    assert item(url, item_id).status == "new"


def test_an_author_who_is_not_a_nurse_sees_only_the_authoring_pages(url, author):
    scene = add_scene(url)
    assert author.landing.headers["location"] == "/authoring"
    page = author.get("/authoring")
    assert 'href="/authoring"' in page and 'href="/authoring/quality"' in page
    assert 'href="/patients"' not in page and ">Escalations<" not in page
    for path in ("/", "/?status=resolved", "/patients", f"/patients/{scene.patient_id}",
                 f"/escalations/{scene.escalation_id}", f"/photos/{scene.photo_id}"):
        refused = html_lib.unescape(author.get(path, status=403))
        assert "only nurses' accounts can see" in refused, path
        assert scene.sender_id not in refused and "Zelda" not in refused
        assert 'href="/authoring"' in refused
    action = author.post(f"/escalations/{scene.escalation_id}/acknowledge", {})
    assert action.status_code == 403
    assert author.get("/no-such-page", status=404)


def test_both_roles_see_both_and_start_on_the_escalations(url, both):
    assert both.landing.headers["location"] == "/"
    page = both.get("/")
    assert 'href="/patients"' in page and 'href="/authoring"' in page
    both.get("/authoring")
    both.get("/authoring/quality")


# --------------------------------------------------------------------------- the inbox

def test_the_inbox_newest_first_with_what_each_item_says(url, author):
    add_patient(url, "chat-a", treated_days_ago=3)
    older = keep(url, "chat-a", "what about the thing", ["fallback"], intent="out_of_scope",
                 confidence=0.22, runner_up="ask_makeup", at=now() - timedelta(hours=5))
    newer = keep(url, "chat-a", "can i put tinted stuff on", ["low_confidence", "misunderstood"],
                 at=now() - timedelta(hours=1),
                 answer="Not yet: wait 24 hours before makeup.")
    page = author.get("/authoring")
    assert listed(page) == [newer, older]
    said = card(page, newer)
    assert "can i put tinted stuff on" in said
    assert "Read as ask_makeup When can I wear makeup? 41%" in said
    assert "Runner-up ask_skincare_products Which skincare can I use? 20%" in said
    assert "Patient's day day 3" in said
    assert "The assistant answered Not yet: wait 24 hours before makeup." in said
    assert "answered with low confidence (under 50%)" in said
    assert "the patient said it misunderstood" in said
    assert "new, not labelled yet" in said
    fallback = card(page, older)
    assert "the assistant fell back or asked “Did you mean …?”" in fallback
    assert "Something the assistant does not cover" in fallback   # out_of_scope in words
    assert "not known yet" in fallback
    assert reason_counts(page) == {"fallback": 1, "low_confidence": 1, "misunderstood": 1,
                                   "nurse_flagged": 0, "net_disagreed": 0}


def test_filters_by_reason_intent_date_and_state(url, author):
    add_patient(url, "chat-a")
    old = keep(url, "chat-a", "is the sea ok", ["fallback"], intent="ask_swimming_sauna",
               at=now() - timedelta(days=10))
    middle = keep(url, "chat-a", "tinted cream?", ["low_confidence"], at=now() - timedelta(days=5))
    new = keep(url, "chat-a", "my face feels like sandpaper", ["misunderstood", "fallback"],
               intent="report_dryness_peeling", at=now() - timedelta(hours=1))
    assert listed(author.get("/authoring?reason=fallback")) == [new, old]
    by_reason = author.get("/authoring?reason=low_confidence")
    assert listed(by_reason) == [middle]
    # the counts follow the other filters, not the reason chosen
    assert reason_counts(by_reason)["fallback"] == 2
    assert listed(author.get("/authoring?intent=ask_makeup")) == [middle]
    since = (now() - timedelta(days=7)).astimezone(LONDON).date()
    until = (now() - timedelta(days=3)).astimezone(LONDON).date()
    window = author.get(f"/authoring?since={since}&until={until}")
    assert listed(window) == [middle]
    assert reason_counts(window) == {"fallback": 0, "low_confidence": 1, "misunderstood": 0,
                                     "nurse_flagged": 0, "net_disagreed": 0}
    day = (now() - timedelta(days=5)).astimezone(LONDON).date()
    assert listed(author.get(f"/authoring?since={day}&until={day}")) == [middle]
    with db.session_scope(url) as session:
        session.execute(update(InboxItem).where(InboxItem.id == old).values(status="not_useful"))
    assert listed(author.get("/authoring")) == [new, middle]
    assert listed(author.get("/authoring?status=not_useful")) == [old]
    assert listed(author.get("/authoring?status=all")) == [new, middle, old]


def test_bad_filters_are_said_and_change_nothing_else(url, author):
    add_patient(url, "chat-a")
    only = keep(url, "chat-a", "tinted cream?", ["low_confidence"])
    page = author.get("/authoring?since=31/12/2025&intent=no_such_intent&reason=rude"
                      "&status=later&page=abc")
    assert listed(page) == [only]
    assert "The “from” date was not understood (write it as YYYY-MM-DD)" in words(page)
    assert "That intent is not one of the domain's" in words(page)
    backwards = author.get("/authoring?since=2030-01-02&until=2030-01-01")
    assert "The “from” date is after the “to” date" in words(backwards)
    assert listed(backwards) == []


def test_pages_of_25(url, author):
    add_patient(url, "chat-a")
    ids = [keep(url, "chat-a", f"question number {n} about tinted cream", ["fallback"],
                at=now() - timedelta(minutes=n)) for n in range(30)]
    first = author.get("/authoring")
    assert listed(first) == ids[:25] and "1–25 of 30" in words(first)
    second = author.get("/authoring?page=2")
    assert listed(second) == ids[25:] and "26–30 of 30" in words(second)
    assert listed(author.get("/authoring?page=99")) == ids[25:]


def test_no_patient_name_id_or_chat_on_any_authoring_page(url, author):
    patient_id = add_patient(url, "tg-9131", name=PLANTED_NAME)
    with db.session_scope(url) as session:
        chats.log_message(session, sender_id="tg-9131", direction="in", status="answered",
                          text=f"hi it's {PLANTED_NAME}, can I swim", patient_id=patient_id)
    item_id = keep(url, "tg-9131", f"hi it's {PLANTED_NAME}, can I swim", ["fallback"],
                   answer=f"Hello {PLANTED_NAME.split()[0]}! Not yet: no swimming for 48 hours.")
    label = author.post(f"/authoring/items/{item_id}/label",
                        {"intent": "ask_swimming_sauna", "back": "/authoring",
                         "text": f"{PLANTED_NAME} here, can I swim", "original": "x"})
    assert label.status_code == 303
    pages = [author.get("/authoring"), author.get(f"/authoring/items/{item_id}"),
             author.get(f"/authoring/items/{item_id}?done=labelled"),
             author.get("/authoring?status=all&reason=fallback")]
    for page in pages:
        for part in (*PLANTED_NAME.split(), "Philippa", "tg-9131"):
            assert part not in page
        assert "/patients/" not in page and "/escalations/" not in page
        assert f"patient {patient_id}" not in page
    assert "&lt;name&gt;" in pages[0] and "can I swim" in pages[0]
    assert item(url, item_id).label_text == "<name> here, can I swim"


# --------------------------------------------------------------------------- labels

def options(page: str) -> List[str]:
    select_html = page.split('id="intent-choice"', 1)[1].split("</select>", 1)[0]
    return [v for v in re.findall(r'<option value="([^"]*)"', select_html) if v]


def test_label_an_item_from_its_page_and_change_it(url, author):
    add_patient(url, "chat-a")
    item_id = keep(url, "chat-a", "when may I return to my hot pilates", ["misunderstood"],
                   intent="ask_swimming_sauna", runner_up="ask_exercise_sweat")
    page = author.get(f"/authoring/items/{item_id}?back=%2Fauthoring%3Freason%3Dmisunderstood")
    choices = options(page)
    assert choices[:2] == ["ask_swimming_sauna", "ask_exercise_sweat"]
    assert "greet" in choices and "nlu_fallback" not in choices
    assert len(set(choices)) == len(choices)
    assert "ask_exercise_sweat: Exercise and sweating" in page
    response = author.post(f"/authoring/items/{item_id}/label", {
        "intent": "ask_exercise_sweat", "text": "when may I return to my hot pilates",
        "original": "when may I return to my hot pilates",
        "back": "/authoring?reason=misunderstood"})
    assert response.status_code == 303
    target = response.headers["location"]
    assert target.startswith(f"/authoring/items/{item_id}?done=labelled")
    shown = author.get(target)
    assert "Label saved: ask_exercise_sweat Exercise and sweating" in words(shown)
    assert 'href="/authoring?reason=misunderstood"' in shown
    saved = item(url, item_id)
    assert (saved.status, saved.label_intent, saved.label_text) == (
        "labelled", "ask_exercise_sweat", None)
    with db.session_scope(url) as session:
        writer = accounts.find_staff(session, AUTHOR).id
    assert saved.labelled_by == writer and saved.labelled_via == "review"
    assert "labelled ask_exercise_sweat" in card(author.get("/authoring"), item_id)
    assert "by writer.only@clinic.example" in card(author.get("/authoring"), item_id)
    again = author.post(f"/authoring/items/{item_id}/label", {
        "intent": "ask_sun_sunscreen", "text": "hot pilates?", "original": "x"})
    assert again.status_code == 303
    assert (item(url, item_id).label_intent, item(url, item_id).label_text) == (
        "ask_sun_sunscreen", "hot pilates?")


def test_not_useful(url, author):
    add_patient(url, "chat-a")
    item_id = keep(url, "chat-a", "ok", ["low_confidence"])
    response = author.post(f"/authoring/items/{item_id}/not-useful", {"back": "/authoring"})
    assert response.status_code == 303
    assert "Set aside as not useful" in author.get(response.headers["location"])
    assert item(url, item_id).status == "not_useful"
    assert listed(author.get("/authoring")) == []


def test_after_a_label_the_next_new_item_is_offered(url, author):
    add_patient(url, "chat-a")
    second = keep(url, "chat-a", "older one", ["fallback"], at=now() - timedelta(hours=2))
    first = keep(url, "chat-a", "newer one", ["fallback"], at=now() - timedelta(hours=1))
    response = author.post(f"/authoring/items/{first}/label", {"intent": "ask_makeup"})
    page = author.get(response.headers["location"])
    assert f'href="/authoring/items/{second}?back=' in page and "Next new item" in page


@pytest.mark.parametrize("form, status, message", [
    ({"intent": "ask_time_travel"}, 400, "there is no intent 'ask_time_travel' to label with"),
    ({"intent": ""}, 400, "Choose the intent the patient meant first"),
    ({"intent": "ask_makeup", "text": "can I wear [foundation](product)"}, 400,
     "may not contain [ ] { }"),
    ({"intent": "ask_makeup", "text": "x" * 600}, 400, "the text is too long"),
])
def test_bad_labels_are_said_on_the_page_and_change_nothing(url, author, form, status, message):
    add_patient(url, "chat-a")
    item_id = keep(url, "chat-a", "can i put tinted stuff on", ["low_confidence"])
    response = author.post(f"/authoring/items/{item_id}/label", {**form, "original": "y"})
    assert response.status_code == status
    assert message in html_lib.unescape(response.text)
    assert "Nothing was changed" in response.text
    # what the author chose and wrote is kept in the form
    if form.get("text"):
        assert html_lib.escape(form["text"][:50]) in response.text
    assert item(url, item_id).status == "new" and item(url, item_id).label_intent is None


def test_an_item_exported_or_erased_meanwhile(url, author):
    patient_id = add_patient(url, "chat-a")
    exported = keep(url, "chat-a", "tinted cream?", ["low_confidence"])
    erased = keep(url, "chat-a", "sea ok?", ["fallback"], at=now() - timedelta(minutes=1))
    page = author.get(f"/authoring/items/{exported}")   # the author opens it ...
    assert 'id="label-form"' in page
    with db.session_scope(url) as session:              # ... and it is exported meanwhile
        session.execute(update(InboxItem).where(InboxItem.id == exported).values(
            status="exported", label_intent="ask_makeup", exported_at=now()))
    response = author.post(f"/authoring/items/{exported}/label",
                           {"intent": "ask_skincare_products"})
    assert response.status_code == 409
    assert "was exported" in response.text and "Nothing was changed" in response.text
    assert item(url, exported).label_intent == "ask_makeup"
    assert 'id="label-form"' not in author.get(f"/authoring/items/{exported}")
    with db.session_scope(url) as session:              # the patient says no
        set_improve_consent(session, patient_id, False)
    for response in (author.post(f"/authoring/items/{erased}/label", {"intent": "ask_makeup"}),
                     author.post(f"/authoring/items/{erased}/not-useful", {}),
                     author.client.get(f"/authoring/items/{erased}")):
        assert response.status_code == 404
        assert "It is not in the inbox any more" in response.text


def test_a_form_without_its_csrf_token_changes_nothing(url, author):
    add_patient(url, "chat-a")
    item_id = keep(url, "chat-a", "tinted cream?", ["low_confidence"])
    response = author.post(f"/authoring/items/{item_id}/label", {"intent": "ask_makeup"},
                           csrf=False)
    assert response.status_code == 403
    assert item(url, item_id).status == "new"


# --------------------------------------------------------------------------- a nurse's flag

def save_conversation(url: str, sender: str, turns: List[tuple]) -> List[int]:
    """The conversation as Rasa's own SQL tracker store writes it; the user events' ids."""
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.events import BotUttered, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    store = SQLTrackerStore(dialect="sqlite", db=url[len("sqlite:///"):])
    events = []
    for moment, (said, intent, confidence, answer, stamp) in enumerate(turns):
        events.append(UserUttered(said, {"name": intent, "confidence": confidence},
                                  parse_data={"intent_ranking": [
                                      {"name": intent, "confidence": confidence}]},
                                  timestamp=stamp, message_id=uuid.uuid4().hex))
        events.append(BotUttered(answer, timestamp=stamp + 1))
    asyncio.run(store.save(DialogueStateTracker.from_events(sender, events)))
    with db.session_scope(url) as session:
        from sqlalchemy import text
        return list(session.execute(text(
            "SELECT id FROM events WHERE sender_id = :s AND type_name = 'user' ORDER BY id"),
            {"s": sender}).scalars())


def misread_forms(page: str) -> List[tuple]:
    return re.findall(r'<input type="hidden" name="source" value="(\w+)">\s*'
                      r'<input type="hidden" name="id" value="(\d+)">', page)


def test_a_nurse_marks_a_telegram_message_misread_from_the_escalation(url, nurse, author):
    scene = add_scene(url, name=PLANTED_NAME)
    with db.session_scope(url) as session:
        repository.get_patient(session, scene.patient_id).improve_consent = True
        logged = session.execute(select(Message).where(
            Message.sender_id == scene.sender_id, Message.direction == "in")
            .order_by(Message.id)).scalars().all()
        said = [(m.id, m.text, m.created_at.timestamp()) for m in logged]
    save_conversation(url, scene.sender_id, [
        (text, "ask_makeup", 0.61, "Makeup from day 2.", stamp) for _, text, stamp in said])
    page = nurse.get(f"/escalations/{scene.escalation_id}")
    assert misread_forms(page) == [("log", str(m)) for m, _, _ in said]
    first = said[0][0]
    response = nurse.post("/conversation/misread", {
        "source": "log", "id": str(first), "back": f"/escalations/{scene.escalation_id}"})
    assert response.status_code == 303
    target = response.headers["location"]
    assert target.startswith(f"/escalations/{scene.escalation_id}?misread=new")
    shown = nurse.get(target)
    assert "Sent to the content authors' inbox as misread" in html_lib.unescape(shown)
    assert "Marked as misread" in shown.split(f'id="message-log-{first}"', 1)[1][:2000]
    with db.session_scope(url) as session:
        kept = session.execute(select(InboxItem)).scalars().all()
        reasons = session.execute(select(InboxReason.reason, InboxReason.staff_id)).all()
        nurse_id = accounts.find_staff(session, NURSE).id
        assert [(k.intent, k.confidence) for k in kept] == [("ask_makeup", 0.61)]
    assert reasons == [("nurse_flagged", nurse_id)]
    again = nurse.post("/conversation/misread", {
        "source": "log", "id": str(first), "back": f"/escalations/{scene.escalation_id}"})
    assert "in the content authors' inbox already" in words(nurse.get(again.headers["location"]))
    inbox_page = author.get("/authoring")
    assert "a nurse marked it “the assistant misread this”" in words(inbox_page)
    assert PLANTED_NAME.split()[0] not in inbox_page
    # an author cannot flag (and cannot see the conversation to do it)
    assert author.post("/conversation/misread", {"source": "log", "id": str(first)}
                       ).status_code == 403


def test_a_conversation_from_rasas_record_on_the_patient_page(url, nurse):
    patient_id = add_patient(url, "rest-77")
    stamp = (now() - timedelta(minutes=30)).timestamp()
    first, second = save_conversation(url, "rest-77", [
        ("can I use my jade roller", "ask_washing", 0.55, "Wash gently.", stamp),
        ("/report_redness", "report_redness", 1.0, "Some redness is expected.", stamp + 60)])
    page = nurse.get(f"/patients/{patient_id}")
    # a tapped button is not the patient's own words: no button on it
    assert misread_forms(page) == [("rasa", str(first))]
    response = nurse.post("/conversation/misread", {
        "source": "rasa", "id": str(first), "back": f"/patients/{patient_id}"})
    assert response.headers["location"].startswith(f"/patients/{patient_id}?misread=new")
    with db.session_scope(url) as session:
        [kept] = session.execute(select(InboxItem)).scalars().all()
        assert (kept.text, kept.intent, kept.answer) == (
            "can I use my jade roller", "ask_washing", "Wash gently.")


def test_no_button_for_a_patient_who_did_not_agree_and_a_clear_refusal(url, nurse):
    patient_id = add_patient(url, "rest-78", consent=None)
    stamp = (now() - timedelta(minutes=30)).timestamp()
    [event] = save_conversation(url, "rest-78", [
        ("can I swim", "ask_swimming_sauna", 0.7, "Not yet.", stamp)])
    page = nurse.get(f"/patients/{patient_id}")
    assert misread_forms(page) == []
    assert "this patient has not agreed to their messages being used to improve" in words(page)
    # a form sent anyway (an old page, the patient said no since) is refused in words
    response = nurse.post("/conversation/misread", {
        "source": "rasa", "id": str(event), "back": f"/patients/{patient_id}"})
    assert response.status_code == 409
    assert "This patient has not agreed" in words(response.text)
    assert "Nothing was changed" in response.text
    assert f'href="/patients/{patient_id}#conversation"' in response.text
    bad = nurse.post("/conversation/misread", {"source": "rasa", "id": "abc", "back": "/x"})
    assert bad.status_code == 400
    with db.session_scope(url) as session:
        assert session.execute(select(InboxItem)).first() is None


def test_the_flag_returns_only_to_a_conversation_page(url, nurse):
    patient_id = add_patient(url, "rest-79")
    stamp = (now() - timedelta(minutes=30)).timestamp()
    [event] = save_conversation(url, "rest-79", [
        ("can I swim", "ask_swimming_sauna", 0.7, "Not yet.", stamp)])
    response = nurse.post("/conversation/misread", {
        "source": "rasa", "id": str(event), "back": "https://elsewhere.example/patients/1"})
    assert response.status_code == 303 and response.headers["location"].startswith("/?misread=")


# --------------------------------------------------------------------------- quality

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


def record(model_id: str, trained_at: datetime, f1: Dict[str, float], *, accuracy: float,
           thin: Optional[Dict[str, int]] = None) -> dict:
    labels = sorted(f1)
    return {
        "schema": 1, "recorded_at": (trained_at + timedelta(minutes=5)).isoformat(),
        "model": {"id": model_id, "sha256": model_id * 5, "trained_at": trained_at.isoformat(),
                  "path": "models/aftercare.tar.gz"},
        "sets": {"dev_messages": {
            "path": "dev_messages.tsv", "sha256": "s1", "n": 120, "intent_accuracy": accuracy,
            "intent_macro_f1": accuracy - 0.02, "red_flag_recall": 1.0,
            "red_flag_precision": 0.961,
            "per_intent": {k: {"f1": v, "support": 10} for k, v in f1.items()},
            "misclassified": 10, "missed_red_flags": 0, "false_red_flags": 1}},
        "cross_validation": {
            "folds": 3, "seed": 42, "n": 900, "accuracy": 0.881, "macro_f1": 0.872,
            "seconds": 50.0, "cpu_seconds": 90.0, "labels": labels,
            "matrix": [[20 if i == j else (3 if {i, j} == {"ask_exercise_sweat",
                                                         "ask_swimming_sauna"} else 0)
                        for j in labels] for i in labels],
            "per_intent_f1": f1,
            "confused_pairs": [{"a": "ask_exercise_sweat", "b": "ask_swimming_sauna",
                                "a_as_b": 3, "b_as_a": 3, "total": 6}],
            "training_data": "data/nlu", "training_sha256": "t", "model_trained_on_it": True,
            "key": f"key-{model_id}", "reused_from": None},
        "training_examples": {k: 40 for k in labels},
        "thin_intents": {"threshold": 30, "intents": thin or {}},
        "seconds": 60.0,
    }


def test_the_quality_page_without_a_history_says_how_to_record_one(author, quality_dir):
    page = author.get("/authoring/quality")
    assert "No model's quality has been recorded yet" in words(page)
    assert "make evaluate" in page and "--record" in page


def test_the_quality_page_shows_each_model_with_tables_and_plots(author, quality_dir):
    history.save(record("aaaaaaaaaaaa", T0, {"ask_exercise_sweat": 0.70, "ask_makeup": 0.95,
                                             "ask_swimming_sauna": 0.80}, accuracy=0.90),
                 quality_dir)
    history.save(record("bbbbbbbbbbbb", T0 + timedelta(days=2),
                        {"ask_exercise_sweat": 0.82, "ask_makeup": 0.95,
                         "ask_swimming_sauna": 0.78}, accuracy=0.93,
                        thin={"ask_travel": 12}), quality_dir)
    (quality_dir / "broken.json").write_text("{not json", encoding="utf-8")
    page = author.get("/authoring/quality")
    said = words(page)
    assert "The last 2 of 2 recorded models" in said
    assert "skipped" in said and "broken.json" in said
    headline = page.split('data-set="dev_messages"', 1)[1].split("</table>", 1)[0]
    assert re.search(r'data-model="bbbbbbbbbbbb".*?0\.930.*?0\.910.*?1\.000.*?0\.961', headline,
                     re.S)
    assert 'data-model="aaaaaaaaaaaa"' in headline
    assert "0.881" in page and "0.872" in page   # the cross-validation
    rows = page.split('id="intent-f1-table"', 1)[1].split("</table>", 1)[0]
    sweat = rows.split('data-intent="ask_exercise_sweat"', 1)[1].split("</tr>", 1)[0]
    assert "0.700" in sweat and "0.820" in sweat and "+0.120" in sweat
    sauna = rows.split('data-intent="ask_swimming_sauna"', 1)[1].split("</tr>", 1)[0]
    assert "-0.020" in sauna
    pairs = page.split('id="confused-pairs-table"', 1)[1].split("</table>", 1)[0]
    assert "ask_exercise_sweat" in pairs and "ask_swimming_sauna" in pairs and ">6<" in pairs
    assert 'data-intent="ask_travel"' in page.split('id="thin-table"', 1)[1]
    for plot in ("heatmap", "f1-plot", "thin-plot"):
        assert f'id="{plot}"><svg' in page, plot
    on_set = author.get("/authoring/quality?source=dev_messages")
    assert "Measured on measuring set dev_messages" in on_set
    assert author.get("/authoring/quality?source=<script>").count("<script>") == 0


def test_with_one_model_the_plot_shows_its_weakest_intents(author, quality_dir):
    history.save(record("aaaaaaaaaaaa", T0, {"ask_exercise_sweat": 0.70, "ask_makeup": 0.95,
                                             "ask_swimming_sauna": 0.80}, accuracy=0.90),
                 quality_dir)
    page = author.get("/authoring/quality")
    plot = page.split('id="f1-plot">', 1)[1].split("</figure>", 1)[0]
    assert "F1 of the weakest intents" in plot and "one model so far" in plot
    assert plot.index("ask_exercise_sweat: 0.70") < plot.index("ask_swimming_sauna: 0.80")
    assert "Every intent has at least 30 training examples" in words(page)


def test_listing_and_labelling_do_not_load_spacy():
    """The review page lists and labels stored, already masked items: loading
    spaCy (and TensorFlow with it: seconds, hundreds of MB) waits for a label
    whose text an author shortened."""
    import subprocess
    import sys
    code = ("import sys, review.app, review.authoring_views, review.authoring, "
            "aftercare.authoring.inbox, aftercare.authoring.export; "
            "print(sorted(m for m in ('spacy', 'tensorflow') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=True)
    assert result.stdout.strip() == "[]"
