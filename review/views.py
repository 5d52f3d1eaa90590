"""The review page handlers.

Every POST reads the form strictly (URL-encoded UTF-8, no repeated fields;
anything else is a 400), then checks the CSRF token before it looks at
anything else, so a forged or stale form changes nothing. After a change the
browser is sent back to the page (303), so reloading never repeats it.
"""
from __future__ import annotations

import re
from typing import Dict, Optional, Union
from urllib.parse import parse_qsl

from aiohttp import web
from sqlalchemy.orm import Session

from aftercare.staff import PASSWORD_MAX, find_staff, verify_password
from aftercare.store import escalations as store
from aftercare.store.repository import StoreError
from review import auth, queries, queue
from review.authoring import misread_notice
from review.app import (
    LIMITER, SETTINGS, clear_cookie, client_address, error_page, home, in_db, now, render,
    set_cookie, signed_in,
)
from aftercare.answer_words import symptom_words
from aftercare.protocol import ProtocolError, current_protocol
from review.chart import ChartReport, symptom_chart

NOTE_MAX = 4_000
REPLY_MAX = 16_000   # the bot splits a long reply into Telegram messages of 4,096
EMAIL_FIELD_MAX = 320
MAX_FIELDS = 20
ID = "{id:[0-9]{1,18}}"  # digits only (a word is a 404); 18 digits fit SQLite's integer
ACTIONS = ("acknowledge", "note", "reply", "resolve", "reopen")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

DONE = {
    "acknowledged": "Acknowledged: you have it in hand.",
    "already": "It was acknowledged already.",
    "note": "Note added.",
    "reply": "Reply queued: the Telegram bot sends it to the patient (status below).",
    "reply_unreachable": ("Reply queued, but the patient has blocked the bot, so it may not "
                          "arrive: call them (see below)."),
    "resolved": "Resolved.",
    "reopened": "Reopened.",
}
CSRF_REFUSED = ("This form had expired or did not come from this site (its security "
                "token was missing or wrong), so nothing was changed. Go back, reload the "
                "page and try again.")
LOGIN_FAILED = ("That email and password do not match an active staff account. "
                "Check both and try again.")


class FormError(Exception):
    """The request body is not a form this site sent."""


async def read_form(request: web.Request) -> Dict[str, str]:
    """The fields of a URL-encoded UTF-8 form; FormError for anything else.
    An empty body is an empty form (so a bare POST is refused for its missing
    CSRF token, like any other)."""
    body = await request.read()
    if not body:
        return {}
    if request.content_type != "application/x-www-form-urlencoded":
        raise FormError("not a URL-encoded form")
    if (request.charset or "utf-8").lower() not in ("utf-8", "utf8"):
        raise FormError("not UTF-8")
    try:
        pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=False,
                          encoding="utf-8", errors="strict", max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise FormError("badly encoded form") from None
    fields: Dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise FormError("a field appears twice")
        fields[name] = value
    return fields


async def staff_form(request: web.Request
                     ) -> Union[tuple[Dict[str, str], auth.SignedIn], web.StreamResponse]:
    """The form of a signed-in staff member's POST, its CSRF token checked; or
    the page that refuses it (an unreadable form, a missing or wrong token)."""
    try:
        form = await read_form(request)
    except FormError:
        return _bad_form(request)
    staff = signed_in(request)
    if staff is None or not auth.same_token(form.get("csrf"), staff.csrf_token):
        return error_page(request, 403, CSRF_REFUSED, title="Form refused")
    return form, staff


def _bad_form(request: web.Request) -> web.Response:
    return error_page(request, 400, "The form could not be read (it was not sent as a "
                                    "normal web form in UTF-8). Nothing was changed. Go "
                                    "back, reload the page and try again.")


def _text(value: Optional[str], what: str, limit: int) -> str:
    """Cleaned form text, or ValueError with the message for the form."""
    text = (value or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise ValueError(f"Write the {what} first: it is empty.")
    if CONTROL.search(text):
        raise ValueError(f"The {what} contains control characters; please retype it.")
    if len(text) > limit:
        raise ValueError(f"The {what} is too long: {len(text):,} characters, at most "
                         f"{limit:,}. Nothing was saved; shorten it and send it again.")
    return text


# --- health, sign-in, sign-out ----------------------------------------------

async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def _login_page(request: web.Request, csrf: str, *, next_path: str, email: str = "",
                error: Optional[str] = None, status: int = 200,
                headers: Optional[Dict[str, str]] = None) -> web.Response:
    response = render(request, "login.html", {"login_csrf": csrf, "next_path": next_path,
                                              "email": email, "error": error},
                      status=status, headers=headers)
    # Strict and only for /login: the double-submit half of the sign-in form.
    set_cookie(response, request, auth.LOGIN_CSRF_COOKIE, csrf, path="/login",
               samesite="Strict")
    return response


def _login_csrf(request: web.Request) -> str:
    token = request.cookies.get(auth.LOGIN_CSRF_COOKIE, "")
    return token if 20 <= len(token) <= auth.TOKEN_MAX_CHARS else auth.new_token()


async def login_get(request: web.Request) -> web.StreamResponse:
    next_path = auth.safe_next(request.query.get("next"))
    token = request.cookies.get(auth.SESSION_COOKIE)
    already = await in_db(request, auth.current_session, token, now(request)) if token else None
    if already:
        raise web.HTTPSeeOther(home(already) if next_path == "/" else next_path)
    return _login_page(request, _login_csrf(request), next_path=next_path)


def _take_attempt(session: Session, limiter: auth.LoginLimiter, email: str, address: str,
                  device_cookie: Optional[str], moment):
    """A slot in the sign-in limits for this attempt (auth.Attempt), or auth.Paused."""
    device = auth.known_device(find_staff(session, email), device_cookie, moment)
    return limiter.take(session, email, address, device, moment)


def _sign_in(session: Session, limiter: auth.LoginLimiter, attempt: auth.Attempt, email: str,
             password: str, hours: float, moment, replacing: Optional[str],
             device_cookie: Optional[str]):
    """(session token, device cookie, where the account starts) if the password
    is right, else None; the attempt is settled in the same transaction."""
    staff = verify_password(session, email, password) if len(password) <= PASSWORD_MAX else None
    if staff is None:
        limiter.failed(session, attempt, moment)
        return None
    limiter.succeeded(session, attempt)
    token, signed = auth.start_session(session, staff, moment, hours, replacing=replacing)
    return token, auth.remember_device(staff, device_cookie, moment), home(signed)


async def login_post(request: web.Request) -> web.StreamResponse:
    try:
        form = await read_form(request)
    except FormError:
        return _bad_form(request)
    cookie_csrf = request.cookies.get(auth.LOGIN_CSRF_COOKIE)
    next_path = auth.safe_next(form.get("next"))
    if not auth.same_token(form.get("csrf"), cookie_csrf):
        return error_page(request, 403, "The sign-in form had expired or did not come from "
                                        "this site, so nothing was done. Reload the sign-in "
                                        "page and try again.", title="Sign-in form expired")
    email = form.get("email", "").strip()[:EMAIL_FIELD_MAX]
    password = form.get("password", "")
    csrf = _login_csrf(request)
    if not email or not password:
        return _login_page(request, csrf, next_path=next_path, email=email, status=400,
                           error="Enter your email and your password.")
    moment = now(request)
    limiter = request.app[LIMITER]
    device_cookie = request.cookies.get(auth.DEVICE_COOKIE)
    # The slot is taken before the password is looked at (see review/auth.py).
    attempt = await in_db(request, _take_attempt, limiter, email, client_address(request),
                          device_cookie, moment)
    if isinstance(attempt, auth.Paused):
        wait = attempt.retry_after
        minutes = max(1, round(wait / 60))
        return _login_page(
            request, csrf, next_path=next_path, email=email, status=429,
            headers={"Retry-After": str(wait)},
            error=(f"Too many failed sign-in attempts. For safety, signing in is paused: try "
                   f"again in about {minutes} minute{'s' if minutes != 1 else ''}. If you "
                   f"have forgotten your password, ask whoever runs the clinic's system to "
                   f"set a new one (aftercare staff password)."))
    result = await in_db(request, _sign_in, limiter, attempt, email, password,
                         request.app[SETTINGS].review_session_hours, moment,
                         request.cookies.get(auth.SESSION_COOKIE), device_cookie)
    if result is None:
        return _login_page(request, csrf, next_path=next_path, email=email, status=401,
                           error=LOGIN_FAILED)
    token, device, start = result
    response = web.HTTPSeeOther(start if next_path == "/" else next_path)
    set_cookie(response, request, auth.SESSION_COOKIE, token,
               max_age=int(request.app[SETTINGS].review_session_hours * 3600))
    # Strict and only for /login: it only ever matters to the sign-in form.
    set_cookie(response, request, auth.DEVICE_COOKIE, device, path="/login",
               max_age=int(auth.DEVICE_LIFETIME.total_seconds()), samesite="Strict")
    clear_cookie(response, request, auth.LOGIN_CSRF_COOKIE, path="/login")
    return response


async def logout_post(request: web.Request) -> web.StreamResponse:
    checked = await staff_form(request)
    if isinstance(checked, web.StreamResponse):
        return checked
    form, staff = checked
    token = request.cookies.get(auth.SESSION_COOKIE, "")
    await in_db(request, auth.end_session, token)
    response = web.HTTPSeeOther("/login")
    clear_cookie(response, request, auth.SESSION_COOKIE)
    return response


# --- escalations ------------------------------------------------------------

async def dashboard(request: web.Request) -> web.Response:
    """The escalation queue; filters and page from the query string (bad values
    give the defaults)."""
    filters = queue.QueueFilters.parse(request.query)
    staff = signed_in(request)
    realert, protocol_error = queue.realert_minutes(request.app[SETTINGS].protocol_path)
    data = await in_db(request, queue.load, filters, staff.email if staff else "", realert,
                       now(request))
    return render(request, "dashboard.html", {
        "queue": data, "f": data.filters, "protocol_error": protocol_error,
        "levels": queue.LEVEL_ORDER, "statuses": queue.STATUS_CHOICES})


def _id(request: web.Request) -> int:
    return int(request.match_info["id"])


def _not_found(request: web.Request, what: str, number: int) -> web.Response:
    return error_page(request, 404, f"There is no {what} {number}. It may never have "
                                    f"existed, or it was deleted (a patient can ask for "
                                    f"their data to be erased).", title=f"No {what} {number}")


async def _escalation_view(request: web.Request, escalation_id: int, *, status: int = 200,
                           error: Optional[str] = None, form_errors: Optional[dict] = None,
                           form_values: Optional[dict] = None) -> web.Response:
    page = await in_db(request, queries.escalation_page, escalation_id, now(request))
    if page is None:
        return _not_found(request, "escalation", escalation_id)
    done = DONE.get(request.query.get("done", "")) if status == 200 else None
    return render(request, "escalation.html", {
        "page": page, "e": page.escalation, "done": done, "error": error,
        "misread": misread_notice(request.query),
        "form_errors": form_errors or {}, "form_values": form_values or {},
        "note_max": NOTE_MAX, "reply_max": REPLY_MAX}, status=status)


async def escalation(request: web.Request) -> web.Response:
    return await _escalation_view(request, _id(request))


def _act(session: Session, action: str, escalation_id: int, actor: str, text: Optional[str],
         moment) -> str:
    """Do action; return the DONE key. StoreError says why it could not be done."""
    if action == "acknowledge":
        changed = store.acknowledge(session, escalation_id, actor, moment)
        return "acknowledged" if changed else "already"
    if action == "note":
        store.add_note(session, escalation_id, actor, text or "", moment)
        return "note"
    if action == "reply":
        store.queue_reply(session, escalation_id, actor, text or "", moment)
        return "reply_unreachable" if store.reply_route(session, escalation_id).warning \
            else "reply"
    if action == "resolve":
        store.resolve(session, escalation_id, actor, text, moment)
        return "resolved"
    store.reopen(session, escalation_id, actor, moment)
    return "reopened"


FORM_TEXT = {"note": ("note", "note", NOTE_MAX), "reply": ("text", "reply", REPLY_MAX),
             "resolve": ("note", "note on what was done", NOTE_MAX)}


async def escalation_action(request: web.Request) -> web.StreamResponse:
    escalation_id = _id(request)
    action = request.match_info["action"]
    checked = await staff_form(request)
    if isinstance(checked, web.StreamResponse):
        return checked
    form, staff = checked
    text = None
    if action in FORM_TEXT:
        field, what, limit = FORM_TEXT[action]
        try:
            text = _text(form.get(field), what, limit)
        except ValueError as exc:
            return await _escalation_view(
                request, escalation_id, status=400, form_errors={action: str(exc)},
                form_values={action: (form.get(field) or "")[:limit * 2]})
    try:
        done = await in_db(request, _act, action, escalation_id, staff.email, text, now(request))
    except StoreError as exc:
        if str(exc) == f"no escalation {escalation_id}":
            return _not_found(request, "escalation", escalation_id)
        return await _escalation_view(request, escalation_id, status=409,
                                      error=f"Not done: {exc}.")
    raise web.HTTPSeeOther(f"/escalations/{escalation_id}?done={done}")


# --- patients and photos ----------------------------------------------------

def _chart(reports, today: Optional[int]):
    items = [ChartReport(day=r.day, level=r.level, label=symptom_words(r.symptom),
                         title=f"Day {r.day}: {symptom_words(r.symptom)} "
                               f"({r.level or 'nothing to flag'})"
                               + (", check-in answer" if r.checkin_id else ""))
             for r in reports]
    return symptom_chart(items, today)


async def patients(request: web.Request) -> web.Response:
    rows = await in_db(request, queries.patient_rows, now(request))
    return render(request, "patients.html", {"rows": rows})


async def patient(request: web.Request) -> web.Response:
    patient_id = _id(request)
    try:
        protocol, plan_error = current_protocol(request.app[SETTINGS].protocol_path), None
    except ProtocolError:
        protocol, plan_error = None, ("The check-in plan cannot be shown: the clinic's "
                                      "protocol file could not be read (aftercare protocol "
                                      "check says why).")
    page = await in_db(request, queries.patient_page, patient_id, now(request), protocol)
    if page is None:
        return _not_found(request, "patient", patient_id)
    chart = _chart(page.chart_reports, page.patient.day_now)
    return render(request, "patient.html", {"page": page, "p": page.patient, "chart": chart,
                                            "plan_error": plan_error,
                                            "misread": misread_notice(request.query)})


def image_type(content: bytes) -> str:
    """The photo's type from its first bytes; Telegram photos are JPEG otherwise."""
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return "image/jpeg"  # JPEG (FF D8 FF) and anything unrecognised


async def photo(request: web.Request) -> web.Response:
    photo_id = _id(request)
    content = await in_db(request, queries.photo_content, photo_id)
    if content is None:
        return _not_found(request, "photo", photo_id)
    return web.Response(body=content, content_type=image_type(content),
                        headers={"Content-Disposition": f'inline; filename="photo-{photo_id}"'})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/health", health, name="health")
    router.add_get("/login", login_get, name="login")
    router.add_post("/login", login_post, name="login_post")
    router.add_post("/logout", logout_post, name="logout")
    router.add_get("/", dashboard, name="dashboard")
    router.add_get(f"/escalations/{ID}", escalation, name="escalation")
    router.add_post(f"/escalations/{ID}/{{action:{'|'.join(ACTIONS)}}}", escalation_action,
                    name="escalation_action")
    router.add_get("/patients", patients, name="patients")
    router.add_get(f"/patients/{ID}", patient, name="patient")
    router.add_get(f"/photos/{ID}", photo, name="photo")

