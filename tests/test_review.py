"""The staff review page over real HTTP: the real aiohttp application on a free
port, a temporary SQLite database written with the store's own functions, and
httpx with a cookie jar as the browser. No mocks; the clock is the only thing
the tests control."""
from __future__ import annotations

import hashlib
import html as html_lib
import logging
import re
import subprocess
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator, List
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from aftercare import staff as accounts
from aftercare.services import start_review_server, wait_until_healthy
from aftercare.store import db, repository
from aftercare.store.models import (
    Escalation, EscalationEvent, Patient, StaffReply, StaffSession,
)
from review.logs import configure_logging
from tests.bot_harness import free_port
from tests.review_harness import (
    ASSISTANT_TEXT, CLINIC_TEXT, PASSWORD, PATIENT_NAME, REASON, SCRIPT_TEXT, STAFF_EMAIL,
    TRIGGER_TEXT, OffsetClock, add_scene, add_staff, csrf_of, review_settings, serving,
)

NOTE = "Rang her back at 10:05, kiwi-scented plan agreed"
RESOLVE_NOTE = "Seen in clinic; antibiotics by her GP; marmalade follow-up booked"
REPLY = "Hello from the clinic: please come in today at 2pm, quince room."
OTHER_PATIENT = "Bartholomew Fenwick-Ouzel"
ISSUED_TOKENS: List[str] = []   # every session cookie the tests saw, checked against the log
SECRETS = [PATIENT_NAME, OTHER_PATIENT, "zebra-striped", "papaya", "kiwi-scented", "marmalade",
           "quince room", "Thank you for telling me", "please call us", PASSWORD, STAFF_EMAIL,
           "wrong password 123", "overlong-note-marker", "search-term-in-query", REASON]


@pytest.fixture(scope="module")
def review_log(tmp_path_factory) -> Iterator[Path]:
    """Everything this process logs while the module runs, as the review process
    would write it (review/logs.py), to check for patient data at the end."""
    path = tmp_path_factory.mktemp("review-log") / "review.log"
    root = logging.getLogger()
    level = root.level
    handler = configure_logging(path)
    client_log = logging.getLogger("httpx")
    client_level = client_log.level
    client_log.setLevel(logging.WARNING)   # the test's HTTP client, not the review page
    yield path
    client_log.setLevel(client_level)
    root.removeHandler(handler)
    handler.close()
    root.setLevel(level)


@pytest.fixture
def url(database_url: str, review_log: Path) -> str:
    db.migrate(database_url)
    return database_url


@pytest.fixture
def clock() -> OffsetClock:
    return OffsetClock()


@pytest.fixture
def server(url: str, clock: OffsetClock) -> Iterator[str]:
    with serving(review_settings(url, review_session_hours=2.0), clock) as base:
        yield base


@pytest.fixture
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=30) as http:
        yield http


@pytest.fixture
def staff_id(url: str) -> int:
    return add_staff(url)


@pytest.fixture
def scene(url: str):
    return add_scene(url)


def clock_now() -> datetime:
    return datetime.now(timezone.utc)


def sign_in(client: httpx.Client, email: str = STAFF_EMAIL, password: str = PASSWORD,
            next_path: str | None = None) -> httpx.Response:
    page = client.get("/login")
    assert page.status_code == 200
    data = {"csrf": csrf_of(page.text), "email": email, "password": password}
    if next_path is not None:
        data["next"] = next_path
    response = client.post("/login", data=data)
    token = client.cookies.get("review_session")
    if token:
        ISSUED_TOKENS.append(token)
    return response


@pytest.fixture
def signed_in(client: httpx.Client, staff_id: int) -> httpx.Client:
    assert sign_in(client).status_code == 303
    return client


def events(url: str, escalation_id: int) -> list[tuple[str, str, str | None]]:
    with db.session_scope(url) as session:
        rows = session.execute(select(EscalationEvent).where(
            EscalationEvent.escalation_id == escalation_id).order_by(EscalationEvent.id)).scalars()
        return [(e.kind, e.actor, e.note) for e in rows]


def escalation_status(url: str, escalation_id: int) -> str:
    with db.session_scope(url) as session:
        return session.get(Escalation, escalation_id).status


def post_form(client: httpx.Client, path: str, **fields: str) -> httpx.Response:
    page = client.get(path.rsplit("/", 1)[0])
    return client.post(path, data={"csrf": csrf_of(page.text), **fields})


def text_of(html: str) -> str:
    """The page's text as a person reads it (tags dropped, entities decoded)."""
    return html_lib.unescape(re.sub(r"<[^>]+>", " ", html))


# --- without a session --------------------------------------------------------

def test_every_page_but_login_and_health_needs_a_session(client, scene, url):
    for path in (f"/escalations/{scene.escalation_id}", "/patients?sort=name",
                 f"/patients/{scene.patient_id}", f"/photos/{scene.photo_id}", "/no-such-page"):
        response = client.get(path)
        assert response.status_code == 303, path
        location = urlsplit(response.headers["location"])
        assert location.path == "/login" and parse_qs(location.query) == {"next": [path]}
        assert PATIENT_NAME not in response.text
    response = client.get("/")
    assert response.status_code == 303 and response.headers["location"] == "/login"
    response = client.post(f"/escalations/{scene.escalation_id}/resolve",
                           data={"note": "x", "csrf": "x"})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert escalation_status(url, scene.escalation_id) == "open"
    health = client.get("/health")
    assert health.status_code == 200 and health.text == "ok"
    login = client.get("/login")
    assert login.status_code == 200 and 'name="password"' in login.text
    assert client.get("/static/review.css").status_code == 200


# --- signing in -----------------------------------------------------------------

def test_sign_in_sets_a_safe_cookie_and_keeps_only_its_hash(client, staff_id, url):
    response = sign_in(client, next_path="/patients")
    assert response.status_code == 303 and response.headers["location"] == "/patients"
    cookie = next(c for c in response.headers.get_list("set-cookie")
                  if c.startswith("review_session="))
    attributes = {part.strip().split("=")[0].lower(): part.strip()
                  for part in cookie.split(";")[1:]}
    assert "httponly" in attributes
    assert attributes["samesite"].lower() in ("samesite=lax", "samesite=strict")
    assert attributes["max-age"] == "Max-Age=7200"    # review_session_hours=2
    assert attributes["path"] == "Path=/"
    assert "secure" not in attributes
    token = client.cookies["review_session"]
    assert len(token) >= 43
    with db.session_scope(url) as session:
        (row,) = session.execute(select(StaffSession)).scalars()
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert token not in (row.token_hash, row.csrf_token)
        assert row.staff_id == staff_id
        assert abs((row.expires_at - row.created_at).total_seconds() - 7200) < 1
    page = client.get("/patients")
    assert page.status_code == 200 and STAFF_EMAIL in page.text


def test_secure_cookie_behind_https(url, staff_id, clock):
    with serving(review_settings(url, review_secure_cookie=True), clock) as base:
        with httpx.Client(base_url=base) as http:
            page = http.get("/login")
            login_cookie = page.headers["set-cookie"]
            assert "Secure" in login_cookie
            # This test speaks plain HTTP, so the client keeps Secure cookies to itself;
            # behind the clinic's HTTPS proxy the browser would send it back.
            http.cookies.set("review_login_csrf", login_cookie.split(";")[0].split("=", 1)[1])
            response = http.post("/login", data={"csrf": csrf_of(page.text),
                                                 "email": STAFF_EMAIL, "password": PASSWORD})
            assert response.status_code == 303
    cookie = next(c for c in response.headers.get_list("set-cookie")
                  if c.startswith("review_session="))
    assert "Secure" in cookie and "Max-Age=28800" in cookie   # 8 hours by default


def test_wrong_password_unknown_email_and_disabled_account_get_the_same_answer(
        client, staff_id, url):
    add_staff(url, "gone@clinic.example")
    with db.session_scope(url) as session:
        accounts.disable_staff(session, "gone@clinic.example", clock_now())
    answers = [sign_in(client, STAFF_EMAIL, "wrong password 123"),
               sign_in(client, "nobody@clinic.example", PASSWORD),
               sign_in(client, "gone@clinic.example", PASSWORD)]
    messages = set()
    for response in answers:
        assert response.status_code == 401
        assert "do not match an active staff account" in response.text
        messages.add(re.search(r'id="login-error"[^>]*>([^<]+)<', response.text).group(1))
    assert len(messages) == 1
    assert "review_session" not in client.cookies
    empty = sign_in(client, STAFF_EMAIL, "")
    assert empty.status_code == 400 and "Enter your email and your password" in empty.text


def test_sign_in_rotates_the_session(client, staff_id, url):
    sign_in(client)
    first = client.cookies["review_session"]
    assert client.get("/login").status_code == 303   # signed in already: sent on
    # Sign in again from a form loaded before (as from an old tab), old cookie present.
    with httpx.Client(base_url=str(client.base_url)) as old_tab:
        page = old_tab.get("/login")
        cookies = (f"review_session={first}; "
                   f"review_login_csrf={old_tab.cookies['review_login_csrf']}")
        response = httpx.post(f"{client.base_url}/login", headers={"Cookie": cookies},
                              data={"csrf": csrf_of(page.text), "email": STAFF_EMAIL,
                                    "password": PASSWORD})
    assert response.status_code == 303
    second = response.cookies["review_session"]
    ISSUED_TOKENS.append(second)
    assert first != second
    with db.session_scope(url) as session:
        hashes = set(session.execute(select(StaffSession.token_hash)).scalars())
    assert hashes == {hashlib.sha256(second.encode()).hexdigest()}


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x",
                                    "/\\evil.example", "javascript:alert(1)", "/logout"])
def test_next_is_only_ever_a_path_here(client, staff_id, target):
    response = sign_in(client, next_path=target)
    assert response.status_code == 303 and response.headers["location"] == "/"


def test_sign_in_form_needs_its_csrf_token(client, staff_id):
    client.get("/login")
    response = client.post("/login", data={"email": STAFF_EMAIL, "password": PASSWORD})
    assert response.status_code == 403 and "Sign-in form expired" in response.text
    response = client.post("/login", data={"email": STAFF_EMAIL, "password": PASSWORD,
                                           "csrf": "not-the-cookie-value-at-all-000000"})
    assert response.status_code == 403
    assert "review_session" not in client.cookies


def test_repeated_failures_are_refused_for_a_while(client, staff_id, clock, url):
    for _ in range(5):
        assert sign_in(client, STAFF_EMAIL, "wrong password 123").status_code == 401
    blocked = sign_in(client, STAFF_EMAIL, PASSWORD)   # even the right password now
    assert blocked.status_code == 429
    assert "Too many failed sign-in attempts" in blocked.text
    assert 0 < int(blocked.headers["Retry-After"]) <= 15 * 60
    assert "review_session" not in client.cookies
    # Other accounts from the same address may still try, up to the address limit.
    add_staff(url, "second@clinic.example")
    assert sign_in(client, "second@clinic.example", PASSWORD).status_code == 303
    client.cookies.delete("review_session")
    # As a new browser: a known one is not paused (tests/test_signin_limits.py).
    client.cookies.delete("review_device")
    for n in range(15):   # 5 + 15 = 20 failures from this address
        assert sign_in(client, f"guess{n}@clinic.example", "wrong password 123").status_code == 401
    assert sign_in(client, "second@clinic.example", PASSWORD).status_code == 429
    clock.advance(minutes=61)   # the address's pause lasts an hour
    assert sign_in(client, STAFF_EMAIL, PASSWORD).status_code == 303


def test_the_sign_in_limit_survives_a_restart(url, staff_id, clock):
    settings = review_settings(url)
    with serving(settings, clock) as base, httpx.Client(base_url=base, timeout=30) as first:
        for _ in range(5):
            assert sign_in(first, STAFF_EMAIL, "wrong password 123").status_code == 401
    with serving(settings, clock) as base, httpx.Client(base_url=base, timeout=30) as again:
        assert sign_in(again, STAFF_EMAIL, PASSWORD).status_code == 429
        clock.advance(minutes=16)
        assert sign_in(again, STAFF_EMAIL, PASSWORD).status_code == 303


# --- sessions that end ------------------------------------------------------------

def test_disabling_an_account_ends_its_open_session_at_once(signed_in, url, scene):
    assert signed_in.get("/").status_code == 200
    with db.session_scope(url) as session:
        accounts.disable_staff(session, STAFF_EMAIL, clock_now())
    with db.session_scope(url) as session:
        assert session.execute(select(StaffSession)).first() is None
    response = signed_in.get(f"/escalations/{scene.escalation_id}")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
    assert PATIENT_NAME not in response.text


def test_a_session_older_than_sessions_valid_after_is_void(signed_in, url):
    """What `aftercare staff password` relies on, even if a session row survived."""
    with db.session_scope(url) as session:
        account = accounts.get_staff(session, STAFF_EMAIL)
        account.sessions_valid_after = clock_now() + timedelta(seconds=1)
    assert signed_in.get("/").status_code == 303
    with db.session_scope(url) as session:
        assert session.execute(select(StaffSession)).first() is None


def test_an_expired_session_goes_back_to_sign_in(signed_in, clock):
    assert signed_in.get("/patients").status_code == 200
    clock.advance(hours=1, minutes=59)
    assert signed_in.get("/patients").status_code == 200
    clock.advance(minutes=2)
    response = signed_in.get("/patients")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/patients"
    assert "review_session=\"\"" in response.headers["set-cookie"]   # the stale cookie is cleared


def test_sign_out(signed_in, url):
    response = signed_in.post("/logout", data={"csrf": csrf_of(signed_in.get("/").text)})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    with db.session_scope(url) as session:
        assert session.execute(select(StaffSession)).first() is None
    assert signed_in.get("/").status_code == 303


# --- CSRF -----------------------------------------------------------------------

def test_a_post_without_or_with_a_wrong_csrf_token_is_refused_and_changes_nothing(
        signed_in, scene, url, client):
    path = f"/escalations/{scene.escalation_id}"
    for fields in ({"note": NOTE}, {"note": NOTE, "csrf": "wrong"},
                   {"note": NOTE, "csrf": ""}):
        for action in ("note", "resolve", "acknowledge"):
            response = signed_in.post(f"{path}/{action}", data=fields)
            assert response.status_code == 403, (action, fields)
            assert "nothing was changed" in response.text
    # Another session's token is no good either.
    other = httpx.Client(base_url=str(client.base_url))
    sign_in(other)
    other_token = csrf_of(other.get("/").text)
    response = signed_in.post(f"{path}/note", data={"note": NOTE, "csrf": other_token})
    assert response.status_code == 403
    assert signed_in.post("/logout", data={}).status_code == 403
    assert signed_in.post("/logout").status_code == 403   # no body at all
    other.close()
    assert events(url, scene.escalation_id) == []
    assert escalation_status(url, scene.escalation_id) == "open"
    assert signed_in.get("/").status_code == 200   # still signed in


# --- the pages ----------------------------------------------------------------

def test_dashboard_orders_by_level_then_age_and_lists_resolved(signed_in, url):
    scene = add_scene(url, level="routine")
    with db.session_scope(url) as session:
        ids = {}
        for level in ("human", "emergency", "urgent"):
            ids[level] = repository.record_escalation(
                session, patient_id=scene.patient_id, sender_id=scene.sender_id,
                message=f"{level} words", level=level, reason=f"{level} reason", day=2).id
        stranger = repository.record_escalation(
            session, patient_id=None, sender_id="tg-999", message="help me",
            level="urgent", reason="someone without a link", day=None).id
        done = repository.record_escalation(
            session, patient_id=scene.patient_id, sender_id=scene.sender_id,
            message="old", level="routine", reason="old reason", day=1).id
    with db.session_scope(url) as session:
        from aftercare.store import escalations as store

        store.resolve(session, done, "cli:test", "sorted", clock_now())
        store.acknowledge(session, ids["human"], "cli:test", clock_now())
    page = signed_in.get("/")
    assert page.status_code == 200
    open_part = page.text
    order = [int(n) for n in re.findall(r'data-escalation="(\d+)"', open_part)]
    assert order == [ids["emergency"], ids["urgent"], stranger, ids["human"],
                     scene.escalation_id]
    resolved_part = signed_in.get("/?status=resolved").text
    assert re.findall(r'data-escalation="(\d+)"', resolved_part) == [str(done)]
    assert "asked for a person" in open_part and "acknowledged" in open_part
    assert "not a patient of the clinic (chat tg-999)" in open_part
    stranger_page = signed_in.get(f"/escalations/{stranger}")
    assert stranger_page.status_code == 200 and "help me" in stranger_page.text
    assert "someone without a link" in stranger_page.text


def test_escalation_page_shows_the_patient_transcript_and_escapes_it(signed_in, scene):
    page = signed_in.get(f"/escalations/{scene.escalation_id}")
    assert page.status_code == 200
    html = page.text
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; my cheek has a zebra-striped rash" in html
    assert SCRIPT_TEXT in text_of(html)
    text = text_of(html)
    for expected in (PATIENT_NAME, f"patient {scene.patient_id}", TRIGGER_TEXT, REASON,
                     ASSISTANT_TEXT, CLINIC_TEXT, "the clinic", "raised this escalation",
                     "day 2 when this was raised", "check-in", "swelling", "redness",
                     "left cheek"):
        assert expected in text, expected
    assert f'src="/photos/{scene.photo_id}"' in html
    assert f'src="/photos/{scene.jpeg_photo_id}"' in html
    assert f'/photos/{scene.waiting_photo_id}"' not in html   # not agreed to be kept
    assert page.headers["Cache-Control"] == "no-store"


def test_unknown_or_malformed_ids_are_404_pages(signed_in):
    response = signed_in.get("/escalations/424242")
    assert response.status_code == 404 and "There is no escalation 424242" in response.text
    for path in ("/escalations/abc", "/escalations/1.5", "/escalations/-1",
                 "/escalations/99999999999999999999999", "/patients/x", "/photos/%00"):
        response = signed_in.get(path)
        assert response.status_code == 404, path
        assert "There is no such page here" in response.text
    assert signed_in.get("/patients/777").status_code == 404
    response = signed_in.post("/escalations/424242/note",
                              data={"note": "x", "csrf": csrf_of(signed_in.get("/").text)})
    assert response.status_code == 404


def test_acknowledge_note_and_resolve_write_the_timeline(signed_in, scene, url):
    path = f"/escalations/{scene.escalation_id}"
    response = post_form(signed_in, f"{path}/acknowledge")
    assert response.status_code == 303 and response.headers["location"] == f"{path}?done=acknowledged"
    assert post_form(signed_in, f"{path}/note", note=NOTE).status_code == 303
    response = post_form(signed_in, f"{path}/resolve", note=RESOLVE_NOTE)
    assert response.status_code == 303
    assert events(url, scene.escalation_id) == [("acknowledged", STAFF_EMAIL, None),
                                                ("note", STAFF_EMAIL, NOTE),
                                                ("resolved", STAFF_EMAIL, RESOLVE_NOTE)]
    assert escalation_status(url, scene.escalation_id) == "resolved"
    page = signed_in.get(response.headers["location"])
    text = text_of(page.text)
    assert "Resolved." in text and RESOLVE_NOTE in text and NOTE in text
    assert f"resolved by {STAFF_EMAIL}" in " ".join(text.split())
    assert 'id="resolve-form"' not in page.text and 'id="reopen-form"' in page.text


def test_acting_on_a_resolved_escalation_says_why_not(signed_in, scene, url):
    path = f"/escalations/{scene.escalation_id}"
    post_form(signed_in, f"{path}/resolve", note=RESOLVE_NOTE)
    csrf = csrf_of(signed_in.get(path).text)
    for action, fields in (("resolve", {"note": "again"}), ("reply", {"text": REPLY}),
                           ("acknowledge", {})):
        response = signed_in.post(f"{path}/{action}", data={"csrf": csrf, **fields})
        assert response.status_code == 409, action
        assert "is resolved already" in text_of(response.text)
    assert post_form(signed_in, f"{path}/note", note=NOTE).status_code == 303  # notes: always
    assert post_form(signed_in, f"{path}/reopen").status_code == 303
    assert escalation_status(url, scene.escalation_id) == "acknowledged"
    with db.session_scope(url) as session:
        assert session.execute(select(StaffReply)).first() is None


def test_reply_queues_a_message_for_the_bot_and_shows_its_status(signed_in, scene, url):
    path = f"/escalations/{scene.escalation_id}"
    long_reply = (REPLY + " ") * 80   # about 5,300 characters: more than one Telegram message
    assert 4096 < len(long_reply.strip()) <= 16_000
    response = post_form(signed_in, f"{path}/reply", text=long_reply)
    assert response.status_code == 303 and response.headers["location"] == f"{path}?done=reply"
    with db.session_scope(url) as session:
        (reply,) = session.execute(select(StaffReply)).scalars()
        assert (reply.escalation_id, reply.actor, reply.status) == (
            scene.escalation_id, STAFF_EMAIL, "pending")
        assert reply.text == long_reply.strip()
    assert escalation_status(url, scene.escalation_id) == "acknowledged"
    assert [kind for kind, _, _ in events(url, scene.escalation_id)] == ["acknowledged", "replied"]
    page = text_of(signed_in.get(response.headers["location"]).text)
    assert "Reply queued" in page and "queued" in page
    with db.session_scope(url) as session:
        reply = session.execute(select(StaffReply)).scalar_one()
        reply.status, reply.detail = "failed", "patient blocked the bot"
    page = text_of(signed_in.get(path).text)
    assert "failed" in page and "patient blocked the bot" in page


def test_bad_input_gets_a_clear_form_error_and_saves_nothing(signed_in, scene, url):
    path = f"/escalations/{scene.escalation_id}"
    response = post_form(signed_in, f"{path}/note", note="overlong-note-marker " + "x" * 4000)
    assert response.status_code == 400
    assert "The note is too long: 4,021 characters, at most 4,000" in text_of(response.text)
    assert "overlong-note-marker" in response.text   # kept in the box to shorten
    response = post_form(signed_in, f"{path}/reply", text="y" * 16_001)
    assert response.status_code == 400
    assert "The reply is too long: 16,001 characters, at most 16,000" in text_of(response.text)
    for action, field in (("note", "note"), ("reply", "text"), ("resolve", "note")):
        response = post_form(signed_in, f"{path}/{action}", **{field: "   \r\n "})
        assert response.status_code == 400 and "it is empty" in response.text, action
    response = post_form(signed_in, f"{path}/note", note="bell\x07 in the text")
    assert response.status_code == 400 and "control characters" in response.text
    response = post_form(signed_in, f"{path}/reply", text="z" * 600_000)   # over the body cap
    assert response.status_code == 413 and "too large" in response.text
    assert events(url, scene.escalation_id) == []
    assert escalation_status(url, scene.escalation_id) == "open"


def test_a_badly_encoded_form_is_a_400(signed_in, scene, url):
    path = f"/escalations/{scene.escalation_id}/note"
    csrf = csrf_of(signed_in.get("/").text)
    for content_type, body in (
            ("application/x-www-form-urlencoded", f"csrf={csrf}&note=%FF%FE".encode()),
            ("application/x-www-form-urlencoded", f"csrf={csrf}&note=caf\xe9".encode("latin-1")),
            ("application/x-www-form-urlencoded", f"csrf={csrf}&note=a&note=b".encode()),
            ("application/x-www-form-urlencoded; charset=latin-1", f"csrf={csrf}&note=a".encode()),
            ("application/json", b'{"note": "a"}'),
            ("text/plain", f"csrf={csrf}&note=a".encode())):
        response = signed_in.post(path, content=body, headers={"Content-Type": content_type})
        assert response.status_code == 400, (content_type, body)
        assert "could not be read" in response.text
    assert events(url, scene.escalation_id) == []


def test_photos_only_with_a_session_and_with_the_right_type(signed_in, scene, server):
    with httpx.Client(base_url=server) as stranger:
        response = stranger.get(f"/photos/{scene.photo_id}")
        assert response.status_code == 303 and not response.content.startswith(b"\x89PNG")
    png = signed_in.get(f"/photos/{scene.photo_id}")
    assert png.status_code == 200 and png.headers["Content-Type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert png.headers["Cache-Control"] == "no-store"
    assert png.headers["X-Content-Type-Options"] == "nosniff"
    jpeg = signed_in.get(f"/photos/{scene.jpeg_photo_id}")
    assert jpeg.headers["Content-Type"] == "image/jpeg"
    assert signed_in.get(f"/photos/{scene.waiting_photo_id}").status_code == 404


def test_security_headers_on_every_response(signed_in, scene, server):
    with httpx.Client(base_url=server) as anonymous:
        responses = [anonymous.get("/login"), anonymous.get("/"), anonymous.get("/health"),
                     anonymous.get("/static/review.css")]
    responses += [signed_in.get("/"), signed_in.get(f"/escalations/{scene.escalation_id}"),
                  signed_in.get("/patients"), signed_in.get("/escalations/999"),
                  signed_in.get("/nowhere"), signed_in.get(f"/photos/{scene.photo_id}"),
                  signed_in.post(f"/escalations/{scene.escalation_id}/note", data={})]
    for response in responses:
        headers = response.headers
        csp = headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'none'" in csp
        assert "style-src 'self'" in csp and "unsafe-inline" not in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert "aiohttp" not in headers.get("Server", "")
        if response.url.path != "/static/review.css":
            assert headers["Cache-Control"] == "no-store", response.url
    assert "<script" not in "".join(r.text for r in responses if "html" in
                                    r.headers.get("Content-Type", ""))


def test_patients_list_shows_day_last_checkin_open_escalations_and_flags(signed_in, scene, url):
    with db.session_scope(url) as session:
        other = repository.add_patient(session, name=OTHER_PATIENT, treated_at=clock_now(),
                                       timezone="Europe/London")
        other_id = other.id
        me = session.get(Patient, scene.patient_id)
        me.checkins_paused_at = clock_now()
        me.unreachable_at = clock_now()
    page = signed_in.get("/patients")
    assert page.status_code == 200
    rows = dict(re.findall(r'<tr data-patient="(\d+)">(.*?)</tr>', page.text, re.S))
    mine = " ".join(text_of(rows[str(scene.patient_id)]).split())
    assert PATIENT_NAME in mine and "day 2" in mine and "swelling" in mine
    assert "unreachable" in mine and "check-ins paused" in mine
    assert "not enrolled" not in mine
    assert re.search(r'class="open-count">1<', rows[str(scene.patient_id)])
    theirs = " ".join(text_of(rows[str(other_id)]).split())
    assert OTHER_PATIENT in theirs and "day 0" in theirs and "none yet" in theirs
    assert "not enrolled on Telegram" in theirs


def test_patient_page_has_the_chart_conversation_and_escalations(signed_in, scene):
    page = signed_in.get(f"/patients/{scene.patient_id}")
    assert page.status_code == 200
    svg = re.search(r"<svg.*?</svg>", page.text, re.S).group(0)
    circles = re.findall(r'<circle class="point point-(\w+)"[^>]*fill="(#[0-9a-f]{6})"[^>]*>'
                         r"<title>([^<]*)</title>", svg)
    assert [(level, title) for level, _, title in circles] == [
        ("none", "Day 1: redness (nothing to flag), check-in answer"),
        ("urgent", "Day 2: swelling (urgent), check-in answer")]
    assert len({colour for _, colour, _ in circles}) == 2
    assert ">14</text>" in svg and ">0</text>" in svg
    assert "&lt;script&gt;" in page.text and "<script>" not in page.text
    assert f'href="/escalations/{scene.escalation_id}"' in page.text


def test_the_review_process_runs_on_its_own_and_logs_no_query_strings(url, tmp_path):
    """`python -m review`, started as `aftercare run` starts it."""
    settings = replace(review_settings(url), review_port=free_port(), log_dir=tmp_path / "log")
    service = start_review_server(settings, settings.log_dir)
    try:
        wait_until_healthy([service], timeout=60)
        with httpx.Client(base_url=f"http://127.0.0.1:{settings.review_port}") as http:
            assert http.get("/health").text == "ok"
            response = http.get("/patients?q=search-term-in-query")
            assert response.status_code == 303
            assert response.headers["Content-Security-Policy"]
    finally:
        service.stop()
    assert service.process.returncode == 0
    log = (settings.log_dir / "review.log").read_text()
    assert "GET /patients 303 staff=-" in log
    assert "search-term-in-query" not in log and "?q=" not in log


def test_a_port_in_use_is_a_clear_error(url, tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = replace(review_settings(url), review_port=port, log_dir=tmp_path / "log")
        service = start_review_server(settings, settings.log_dir)
        try:
            service.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            service.stop()
            raise
    assert service.process.returncode == 1
    assert "set AFTERCARE_REVIEW_PORT to a free port" in (settings.log_dir / "review.log").read_text()


# --- pieces -------------------------------------------------------------------

def test_chart_geometry():
    from review.chart import COLOURS, INSET, ChartReport, symptom_chart

    chart = symptom_chart([ChartReport(day=3, level="urgent", label="swelling", title="a"),
                           ChartReport(day=3, level="urgent", label="redness", title="b"),
                           ChartReport(day=3, level=None, label="all good", title="c"),
                           ChartReport(day=None, level="routine", label="itching", title="d"),
                           ChartReport(day=20, level="emergency", label="blisters",
                                       title="e")], today=21)
    assert chart.max_day == 20 and chart.not_shown == 1 and chart.today_x is None
    points = {p.title: p for p in chart.points}
    none, first, second, late = points["c"], points["a"], points["b"], points["e"]
    assert first.x == second.x and abs(first.y - second.y) >= 2 * chart.radius  # stacked
    assert max(first.y, second.y) < none.y                                   # higher up
    assert late.y < min(first.y, second.y) and late.colour == COLOURS["emergency"]
    assert late.x == chart.right - INSET                                     # inside the plot
    assert [p.label for p in chart.points] == ["all good", "swelling", "redness", "blisters"]
    assert [t.label for t in chart.ticks] == [str(d) for d in range(21)]
    week = symptom_chart([ChartReport(day=40, level=None, label="x", title="x")])
    assert [t.label for t in week.ticks] == ["0", "7", "14", "21", "28", "35", "40"]
    empty = symptom_chart([], today=2)
    assert empty.max_day == 14 and empty.points == [] and empty.today_x is not None


def test_the_log_holds_no_patient_data_no_passwords_and_no_tokens(review_log, signed_in,
                                                                  scene, client):
    """Runs last, and does a round of everything itself too: every request of this
    module went through this log."""
    path = f"/escalations/{scene.escalation_id}"
    assert signed_in.get(path).status_code == 200
    assert signed_in.get(f"/patients/{scene.patient_id}?q=search-term-in-query").status_code == 200
    assert post_form(signed_in, f"{path}/note", note=NOTE).status_code == 303
    assert post_form(signed_in, f"{path}/reply", text=REPLY).status_code == 303
    assert post_form(signed_in, f"{path}/resolve", note=RESOLVE_NOTE).status_code == 303
    assert signed_in.get(f"/photos/{scene.photo_id}").status_code == 200
    with httpx.Client(base_url=str(client.base_url)) as other:
        assert sign_in(other, STAFF_EMAIL, "wrong password 123").status_code == 401
    log = review_log.read_text()
    assert re.search(r"GET /escalations/\{id\} id=\d+ 200 staff=\d+", log)
    assert re.search(r"POST /escalations/\{id\}/\{action\} id=\d+ action=resolve 303 "
                     r"staff=\d+", log)
    assert "POST /login 401 staff=-" in log
    for secret in SECRETS + ISSUED_TOKENS:
        assert secret not in log, secret
    assert "next=" not in log and "?done" not in log and "?q=" not in log
