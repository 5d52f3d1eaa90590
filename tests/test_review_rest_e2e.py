"""The escalation page shows the conversation of a patient who wrote over Rasa's
REST channel (as the terminal chat does), where the bot's message log holds
nothing: the real Rasa server and action server on free ports, their tracker
store in the same database (a SQLite file, then PostgreSQL), and the real review
page over HTTP."""
from __future__ import annotations

import html as html_lib
import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select, text

from aftercare.rasa_client import RasaClient
from aftercare.services import MODEL_DIR
from aftercare.store import db, repository
from aftercare.store.models import Escalation, Message
from tests.bot_harness import running_assistant
from tests.review_harness import (
    PASSWORD, STAFF_EMAIL, OffsetClock, add_staff, csrf_of, review_settings, serving,
)

pytestmark = [pytest.mark.e2e, pytest.mark.all_databases,
              pytest.mark.skipif(not (MODEL_DIR / "aftercare.tar.gz").exists(),
                                 reason="no trained model: run `make model` first")]
LONDON = ZoneInfo("Europe/London")
SENDER = "rest-e2e-quince"
GREETING = "hi, I had my microneedling a few days ago"
RED_FLAG = "there is yellow pus oozing from a spot on my cheek"


def _said(html: str) -> list[str]:
    section = re.search(r'<section class="conversation".*?</section>', html, re.S).group(0)
    return [" ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", text)).split())
            for text in re.findall(r'<div class="text">(.*?)</div>', section, re.S)]


def test_a_red_flag_sent_over_rest_shows_on_the_escalation_page_with_the_reply(tmp_path,
                                                                                database_url):
    with running_assistant(tmp_path, database_url) as settings:
        treated = datetime.combine(datetime.now(LONDON).date() - timedelta(days=3), time(10),
                                   tzinfo=LONDON)
        with db.session_scope(settings.database_url) as session:
            repository.add_patient(session, name="Rest Patient", treated_at=treated,
                                   timezone="Europe/London", sender_id=SENDER)
        client = RasaClient(settings.rasa_url)
        greeted = client.send(SENDER, GREETING)
        replies = client.send(SENDER, RED_FLAG)
    assert greeted and replies
    with db.session_scope(settings.database_url) as session:
        (escalation,) = session.execute(select(Escalation).where(
            Escalation.sender_id == SENDER)).scalars().all()
        escalation_id = escalation.id
        assert session.execute(select(Message)).first() is None   # the log holds nothing
        said_to_rasa = session.execute(text(   # Rasa's own tracker store, in this database
            "SELECT count(*) FROM events WHERE sender_id = :s AND type_name = 'user'"),
            {"s": SENDER}).scalar_one()
    assert said_to_rasa == 2

    add_staff(settings.database_url)
    with serving(review_settings(settings.database_url), OffsetClock()) as base, \
            httpx.Client(base_url=base, timeout=30) as http:
        login = http.get("/login")
        http.post("/login", data={"csrf": csrf_of(login.text), "email": STAFF_EMAIL,
                                  "password": PASSWORD})
        page = http.get(f"/escalations/{escalation_id}")
    assert page.status_code == 200
    said = _said(page.text)
    flat = [" ".join(reply.split()) for reply in greeted + replies]
    assert said == [GREETING, *flat[:len(greeted)], RED_FLAG, *flat[len(greeted):]]
    assert "No messages in the log" not in page.text
    assert 'class="message from-patient kind-text triggered"' in page.text
    assert 'id="conversation-source"' in page.text
    assert 'id="reply-refused"' in page.text   # REST is not Telegram: call instead
