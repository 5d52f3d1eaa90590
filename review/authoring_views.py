"""The content authors' pages (/authoring, author role) and a nurse's "the
assistant misread this" on a conversation (nurse role). review/app.py checks
the roles before any of these run.

POSTs are read and CSRF-checked as in views.py, and answer with a redirect
back to the page (303), so a reload never repeats them. A refused label
(unknown intent, brackets in the text, an item exported or removed
meanwhile) is shown on the page with the reason, and nothing has changed.
"""
from __future__ import annotations

from typing import Optional
from urllib.parse import quote, urlencode

from aiohttp import web
from sqlalchemy.orm import Session

from aftercare.answer_words import DOMAIN_PATH
from aftercare.store.models import INBOX_REASONS, InboxItem
from review import auth
from review.app import CLINIC_TZ, SETTINGS, error_page, in_db, now, render
from review.authoring import (
    STATUS_CHOICES, InboxQuery, back_query, domain_intents, intent_meaning, load_inbox,
    load_item, load_quality, reason_words, source_words,
)
from review.views import ID, staff_form

VIA = "review"
LABEL_TEXT_FIELD_MAX = 2_000   # the inbox refuses more than 500; this only bounds the form
BACK_MAX = 1_000
DONE = {
    "labelled": "Label saved",
    "not_useful": "Set aside as not useful: it will not be exported.",
}


def _context(request: web.Request) -> dict:
    settings = request.app[SETTINGS]
    return {"threshold": settings.inbox_confidence_threshold,
            "reason_words": lambda reason: reason_words(
                reason, settings.inbox_confidence_threshold),
            "meaning": lambda intent: intent_meaning(intent, DOMAIN_PATH)}


# --- the inbox ----------------------------------------------------------------

async def inbox_page(request: web.Request) -> web.Response:
    intents = domain_intents(DOMAIN_PATH)
    query = InboxQuery.parse(request.query, intents)
    view = await in_db(request, load_inbox, query, request.app[CLINIC_TZ])
    return render(request, "authoring.html", {
        **_context(request), "view": view, "q": view.query, "intents": intents,
        "reasons": INBOX_REASONS, "statuses": STATUS_CHOICES})


def _back(value: Optional[str]) -> str:
    """The list address an item page returns to: only ever the inbox."""
    value = (value or "")[:BACK_MAX]
    return value if value == "/authoring" or value.startswith("/authoring?") else "/authoring"


async def _item_view(request: web.Request, item_id: int, back: str, *, status: int = 200,
                     error: Optional[str] = None, done: Optional[str] = None,
                     form: Optional[dict] = None) -> web.Response:
    intents = domain_intents(DOMAIN_PATH)
    view = await in_db(request, load_item, item_id, intents, DOMAIN_PATH,
                       back_query(back, intents), request.app[CLINIC_TZ])
    if view is None:
        return _gone(request, item_id, back)
    return render(request, "authoring_item.html", {
        **_context(request), "item": view, "r": view.row, "back": back, "error": error,
        "done": done, "form": form or {}, "intents_known": bool(intents)}, status=status)


def _gone(request: web.Request, item_id: int, back: str) -> web.Response:
    return render(request, "authoring_gone.html", {"item_id": item_id, "back": back},
                  status=404)


async def item_page(request: web.Request) -> web.Response:
    done = DONE.get(request.query.get("done", ""))
    return await _item_view(request, int(request.match_info["id"]),
                            _back(request.query.get("back")), done=done)


def _act(session: Session, action: str, item_id: int, staff_id: int, intent: str,
         text: Optional[str], intents: list, moment) -> Optional[str]:
    """Label or set aside; None when the item is not there. InboxError: refused."""
    from aftercare.authoring.inbox import label, mark_not_useful

    if session.get(InboxItem, item_id) is None:
        return None
    if action == "not-useful":
        mark_not_useful(session, item_id, now=moment, via=VIA, staff_id=staff_id)
        return "not_useful"
    label(session, item_id, intent, intents=intents, now=moment, via=VIA, text=text,
          staff_id=staff_id)
    return "labelled"


async def item_action(request: web.Request) -> web.StreamResponse:
    item_id = int(request.match_info["id"])
    action = request.match_info["action"]
    checked = await staff_form(request)
    if isinstance(checked, web.StreamResponse):
        return checked
    form, staff = checked
    back = _back(form.get("back"))
    intent = (form.get("intent") or "").strip()
    raw_text = (form.get("text") or "")[:LABEL_TEXT_FIELD_MAX * 2]
    kept = {"intent": intent, "text": raw_text}
    if action == "label" and not intent:
        return await _item_view(request, item_id, back, status=400, form=kept,
                                error="Choose the intent the patient meant first. Nothing "
                                      "was changed.")
    text = " ".join(raw_text.split()) or None
    original = (form.get("original") or "")
    if text is not None and text == " ".join(original.split()):
        text = None   # the text as shown: nothing was shortened
    intents = domain_intents(DOMAIN_PATH)
    from aftercare.authoring.inbox import InboxError

    try:
        done = await in_db(request, _act, action, item_id, staff.staff_id, intent, text,
                           intents, now(request))
    except InboxError as exc:
        return await _item_view(request, item_id, back, status=409 if "exported" in str(exc)
                                else 400, form=kept,
                                error=f"Not saved: {exc}. Nothing was changed.")
    if done is None:
        return _gone(request, item_id, back)
    raise web.HTTPSeeOther(f"/authoring/items/{item_id}?"
                           + urlencode({"done": done, "back": back}))


# --- the quality history --------------------------------------------------------

async def quality_page(request: web.Request) -> web.Response:
    directory = request.app[SETTINGS].quality_dir
    view = await in_db(request, lambda _session: load_quality(directory,
                                                              request.query.get("source")))
    return render(request, "authoring_quality.html", {
        **_context(request), "view": view, "source_words": source_words})


# --- a nurse's flag on a conversation -------------------------------------------

def _return_to(value: Optional[str]) -> str:
    """The conversation page the flag came from (an escalation or a patient)."""
    target = auth.safe_next(value, default="/")
    path = target.split("?", 1)[0].split("#", 1)[0]
    parts = path.strip("/").split("/")
    if len(parts) == 2 and parts[0] in ("escalations", "patients") and parts[1].isdigit():
        return path
    return "/"


async def misread(request: web.Request) -> web.StreamResponse:
    checked = await staff_form(request)
    if isinstance(checked, web.StreamResponse):
        return checked
    form, staff = checked
    back = _return_to(form.get("back"))
    source, number = form.get("source"), (form.get("id") or "").strip()
    if source not in ("log", "rasa") or not number.isascii() or not number.isdigit() \
            or len(number) > 18:
        return error_page(request, 400, "That message could not be found from the form. "
                                        "Nothing was changed. Go back, reload the page and "
                                        "try again.")
    key = "message_id" if source == "log" else "event_id"
    from aftercare.authoring.inbox import InboxError, flag_misread

    try:
        flagged = await in_db(request, lambda session: flag_misread(
            session, staff_id=staff.staff_id, now=now(request), **{key: int(number)}))
    except InboxError as exc:
        return render(request, "authoring_misread_refused.html",
                      {"message": str(exc), "back": back}, status=409)
    outcome = "new" if flagged.created else "added"
    raise web.HTTPSeeOther(f"{back}?misread={outcome}&m={quote(source)}-{number}#message-"
                           f"{quote(source)}-{number}")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/authoring", inbox_page, name="authoring")
    router.add_get("/authoring/quality", quality_page, name="authoring_quality")
    router.add_get(f"/authoring/items/{ID}", item_page, name="authoring_item")
    router.add_post(f"/authoring/items/{ID}/{{action:label|not-useful}}", item_action,
                    name="authoring_item_action")
    router.add_post("/conversation/misread", misread, name="conversation_misread")
