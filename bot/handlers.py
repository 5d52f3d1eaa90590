"""Telegram update handlers: commands, messages, photos, buttons.

Every patient message is logged, goes to Rasa with the patient's identity,
and is answered. If the assistant is down the patient is told how to reach
the clinic, the message is kept as unanswered, and the bot's own red-flag net
still sends the safety message. Log lines carry ids, never what was said.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Callable, Optional

import yaml
from sqlalchemy.orm import Session
from telegram import Update
from telegram.error import TelegramError
from telegram.ext import (
    Application, CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler,
    TypeHandler, filters,
)

from aftercare import enrolment
from aftercare.authoring.inbox import set_improve_consent
from aftercare.store import alerts, chats, repository
from aftercare.store.models import Patient, Photo
from bot.checkin_service import CheckinService
from bot.context import BotContext, sender_for_chat
from bot.handoff import handoff_escalation, pass_to_person
from bot.rasa import RasaUnavailable, Reply
from bot.responses import DOMAIN_PATH, BotText, button_payloads
from bot.safety import check_without_assistant
from bot.sending import send, send_text
from bot.staff_handlers import add_staff_handlers
from bot.staff_relay import StaffRelay

logger = logging.getLogger(__name__)

MAX_INCOMING_CHARS = 4096
MAX_PHOTO_BYTES = 20 * 1024 * 1024   # the Bot API's download limit
COMMANDS = ("start", "help", "stop", "resume", "forget", "privacy")
EXTERNAL_PREFIX = "EXTERNAL_"   # intents only the bot triggers (check-ins, enrolment)
_TYPED_INTENT = re.compile(r"/([A-Za-z0-9_]{1,64})(?:@[A-Za-z0-9_]{1,64})?")
PHOTO_CHOICES = {
    True: "utter_telegram_privacy_photos_kept",
    False: "utter_telegram_privacy_photos_deleted",
    None: "utter_telegram_privacy_photos_not_asked",
}
CODE_ERRORS = {
    "malformed": "utter_telegram_code_unknown",
    "unknown": "utter_telegram_code_unknown",
    "used": "utter_telegram_code_used",
    "expired": "utter_telegram_code_expired",
    "revoked": "utter_telegram_code_expired",
    "chat_taken": "utter_telegram_chat_taken",
}


def _ctx(context: ContextTypes.DEFAULT_TYPE) -> BotContext:
    return context.application.bot_data["ctx"]


def _checkins(context: ContextTypes.DEFAULT_TYPE) -> CheckinService:
    return context.application.bot_data["checkins"]


def _staff_relay(context: ContextTypes.DEFAULT_TYPE) -> StaffRelay:
    return context.application.bot_data["staff_relay"]


def _private_chat(update: Update) -> Optional[int]:
    chat = update.effective_chat
    return chat.id if chat is not None and chat.type == chat.PRIVATE else None


async def _reply(context: ContextTypes.DEFAULT_TYPE, chat_id: int, text: BotText) -> None:
    await send_text(_ctx(context), context.bot, chat_id, text)


async def _patient(ctx: BotContext, chat_id: int) -> Optional[Patient]:
    sender_id = sender_for_chat(chat_id)
    return await ctx.db(lambda s: repository.find_patient_by_sender(s, sender_id))


def _day(ctx: BotContext, patient: Patient) -> Optional[int]:
    return repository.patient_day(patient, ctx.now())


# --- the assistant ---------------------------------------------------------

async def converse(context: ContextTypes.DEFAULT_TYPE, chat_id: int, text: str,
                   kind: str = "text") -> None:
    """Log a patient's words, get the assistant's answer and send it."""
    ctx = _ctx(context)
    sender_id = sender_for_chat(chat_id)
    text = text[:MAX_INCOMING_CHARS]
    async with ctx.chat_lock(chat_id):
        def log_and_find_handoff(session) -> tuple[int, Optional[int]]:
            # One trip to the database on every message: log it, and see whether
            # a person is handling this chat.
            message = chats.log_message(session, sender_id=sender_id, direction="in",
                                        text=text, kind=kind)
            return message.id, handoff_escalation(session, sender_id)

        message_id, handoff = await ctx.db(log_and_find_handoff)
        if not ctx.flood.allow(chat_id):
            await _hold(context, chat_id, message_id, text)
            return
        if handoff is not None:
            await pass_to_person(context, chat_id, message_id, text, handoff)
            return
        try:
            replies = await ctx.rasa.send(sender_id, text, metadata={"channel": "telegram"})
        except RasaUnavailable as exc:
            logger.error("assistant unavailable for message %s: %s", message_id, exc)
            await _answer_without_assistant(context, chat_id, message_id, text)
            return
        await ctx.db(lambda s: chats.set_message_status(s, message_id, "answered"))
        await send(ctx, context.bot, chat_id, [(r.text, r.buttons) for r in replies])
    _staff_relay(context).wake()  # the turn may have written an escalation


async def _answer_without_assistant(context: ContextTypes.DEFAULT_TYPE, chat_id: int,
                                    message_id: int, text: str) -> None:
    ctx = _ctx(context)
    await ctx.db(lambda s: chats.set_message_status(s, message_id, "unanswered"))
    safety = await check_without_assistant(ctx, sender_for_chat(chat_id), text)
    replies = [safety] if safety else []
    replies.append(ctx.text("utter_telegram_trouble"))
    await send(ctx, context.bot, chat_id, [(r.text, r.buttons) for r in replies], kind="notice")
    _staff_relay(context).wake()


async def _hold(context: ContextTypes.DEFAULT_TYPE, chat_id: int, message_id: int,
                text: str) -> None:
    """Too many messages too fast: keep them for the clinic, still check each
    for red flags, and say so once."""
    ctx = _ctx(context)
    await ctx.db(lambda s: chats.set_message_status(s, message_id, "held"))
    safety = await check_without_assistant(ctx, sender_for_chat(chat_id), text)
    replies = [safety] if safety else []
    if ctx.flood.should_warn(chat_id):
        replies.append(ctx.text("utter_telegram_flood"))
    if replies:
        await send(ctx, context.bot, chat_id, [(r.text, r.buttons) for r in replies],
                   kind="notice")
    _staff_relay(context).wake()


def _as_words(text: str) -> str:
    """Rasa reads "/intent{...}" as an intent (the buttons use that), so a
    leading slash typed by hand is dropped: the rest is read as words."""
    stripped = text.lstrip()
    return stripped.lstrip("/") if stripped.startswith("/") else text


def patient_intents(path: Path = DOMAIN_PATH) -> frozenset[str]:
    """The domain's intents a patient may type as "/intent", as its button would
    send it (not the EXTERNAL_ ones, which only the bot triggers)."""
    with path.open(encoding="utf-8") as handle:
        intents = yaml.safe_load(handle).get("intents") or []
    names = (next(iter(i)) if isinstance(i, dict) else str(i) for i in intents)
    return frozenset(n for n in names if not n.startswith(EXTERNAL_PREFIX))


def _typed(context: ContextTypes.DEFAULT_TYPE, text: str) -> str:
    """What a patient's typed text sends to the assistant: "/report_redness"
    alone (any case, an @bot suffix allowed) is one of the domain's patient
    intents and goes as that button's payload; any other slash text (entities,
    EXTERNAL_ intents, unknown words) goes as words."""
    match = _TYPED_INTENT.fullmatch(text.strip())
    if match and match.group(1).lower() in context.application.bot_data["patient_intents"]:
        return f"/{match.group(1).lower()}"
    return _as_words(text)


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    chat_id = _private_chat(update)
    message = update.effective_message
    if chat_id is None or message is None or not message.text:
        return
    await converse(context, chat_id, _typed(context, message.text))


# --- commands --------------------------------------------------------------

async def on_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    chat_id = _private_chat(update)
    if chat_id is None:
        return
    ctx = _ctx(context)
    if not context.args:
        await _reply(context, chat_id, ctx.text("utter_telegram_no_code"))
        return
    code = context.args[0]
    sender_id = sender_for_chat(chat_id)
    now = ctx.now()

    def redeem(session) -> tuple[Optional[str], Optional[int], Optional[int]]:
        try:
            patient = enrolment.redeem_code(session, code, sender_id, now)
        except enrolment.EnrolmentError as exc:
            return exc.reason, None, None
        chats.mark_reachable(session, patient)
        return None, patient.id, _day(ctx, patient)

    error, patient_id, day = await ctx.db(redeem)
    if error is not None:
        logger.info("enrolment refused for a chat: %s", error)
        await _reply(context, chat_id, ctx.text(CODE_ERRORS[error]))
        return
    logger.info("patient %s enrolled on Telegram", patient_id)
    await _reply(context, chat_id, ctx.text("utter_telegram_consent"))
    await _trigger(context, chat_id, "EXTERNAL_enrolled", {"day": day})
    await _checkins(context).schedule_patient(patient_id)


async def _trigger(context: ContextTypes.DEFAULT_TYPE, chat_id: int, intent: str,
                   entities: dict) -> None:
    ctx = _ctx(context)
    try:
        replies: list[Reply] = await ctx.rasa.trigger(sender_for_chat(chat_id), intent, entities)
    except RasaUnavailable as exc:
        logger.error("assistant unavailable for %s: %s", intent, exc)
        return
    await send(ctx, context.bot, chat_id, [(r.text, r.buttons) for r in replies])


async def on_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if (chat_id := _private_chat(update)) is not None:
        await _reply(context, chat_id, _ctx(context).text("utter_telegram_help"))


async def _change_checkins(update: Update, context: ContextTypes.DEFAULT_TYPE,
                           change: Callable[[Session, Patient], object], done: str,
                           event: str) -> Optional[int]:
    """Apply change to the chat's patient and confirm; their id, or None (not enrolled)."""
    chat_id = _private_chat(update)
    if chat_id is None:
        return None
    ctx = _ctx(context)
    sender_id = sender_for_chat(chat_id)

    def apply(session: Session) -> Optional[int]:
        patient = repository.find_patient_by_sender(session, sender_id)
        if patient is None:
            return None
        change(session, patient)
        return patient.id

    patient_id = await ctx.db(apply)
    if patient_id is None:
        await _reply(context, chat_id, ctx.text("utter_telegram_not_enrolled"))
        return None
    logger.info("patient %s %s", patient_id, event)
    await _reply(context, chat_id, ctx.text(done))
    return patient_id


async def on_stop(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    now = _ctx(context).now()
    await _change_checkins(update, context,
                           lambda session, patient: chats.pause_checkins(session, patient, now),
                           "utter_telegram_stop_done", "paused check-ins")


async def on_resume(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    def resume(session: Session, patient: Patient) -> None:
        chats.resume_checkins(session, patient)
        chats.mark_reachable(session, patient)

    patient_id = await _change_checkins(update, context, resume, "utter_telegram_resume_done",
                                        "resumed check-ins")
    if patient_id is not None:
        await _checkins(context).schedule_patient(patient_id)


async def on_forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if (chat_id := _private_chat(update)) is not None:
        await _reply(context, chat_id, _ctx(context).text("utter_telegram_forget_confirm"))


async def on_privacy(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """What is kept, the photo choice and the choice about improving the
    assistant, with buttons to change the latter."""
    if (chat_id := _private_chat(update)) is None:
        return
    ctx = _ctx(context)
    patient = await _patient(ctx, chat_id)
    if patient is None:
        await _reply(context, chat_id, ctx.text("utter_telegram_not_enrolled"))
        return
    await _reply(context, chat_id, _privacy_view(ctx, patient))


def _privacy_view(ctx: BotContext, patient: Patient) -> BotText:
    photos = ctx.text(PHOTO_CHOICES[patient.photo_consent]).text
    improve = ctx.text("utter_telegram_improve_status_yes" if patient.improve_consent is True
                       else "utter_telegram_improve_status_no").text
    return ctx.text("utter_telegram_privacy", photos=photos, improve=improve)


async def _improve_consent(context: ContextTypes.DEFAULT_TYPE, chat_id: int,
                           agreed: bool) -> None:
    """Store the patient's yes or no to their messages improving the assistant
    (a no takes their items out of the authors' inbox) and confirm it."""
    ctx = _ctx(context)
    sender_id = sender_for_chat(chat_id)

    def decide(session: Session) -> Optional[tuple[int, int]]:
        patient = repository.find_patient_by_sender(session, sender_id)
        if patient is None:
            return None
        return patient.id, set_improve_consent(session, patient.id, agreed)

    outcome = await ctx.db(decide)
    if outcome is None:
        await _reply(context, chat_id, ctx.text("utter_telegram_not_enrolled"))
        return
    patient_id, removed = outcome
    logger.info("patient %s %s to their messages improving the assistant "
                "(%d inbox items removed)", patient_id, "agreed" if agreed else "did not agree",
                removed)
    await _reply(context, chat_id, ctx.text("utter_telegram_improve_agreed" if agreed
                                            else "utter_telegram_improve_declined"))


async def _forget(context: ContextTypes.DEFAULT_TYPE, chat_id: int) -> None:
    ctx = _ctx(context)
    sender_id = sender_for_chat(chat_id)

    def erase(session) -> tuple[Optional[int], list[tuple[int, int]]]:
        posts = alerts.posts_about_sender(session, sender_id)
        patient = repository.find_patient_by_sender(session, sender_id)
        if patient is None:
            chats.erase_chat(session, sender_id)
            return None, posts
        former_id = patient.id
        chats.erase_patient(session, patient, requested_via="telegram")
        return former_id, posts

    async with ctx.chat_lock(chat_id):
        former_id, posts = await ctx.db(erase)
        if former_id is not None:
            await _checkins(context).unschedule_patient(former_id)
            logger.info("patient %s erased at their request", former_id)
        await _staff_relay(context).delete_posts(posts)
    # Sent without logging: there is nothing left to attach it to.
    text = ctx.text("utter_telegram_forget_done")
    await context.bot.send_message(chat_id, text.text)


async def on_unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A command the bot has no handler for: "/report_redness" and the like
    (a patient intent, as its button sends it) go to the assistant; anything
    else, staff commands from a patient included, gets the ordinary answer."""
    if (chat_id := _private_chat(update)) is None:
        return
    message = update.effective_message
    text = message.text if message is not None and message.text else ""
    typed = _typed(context, text)
    if typed.startswith("/"):
        await converse(context, chat_id, typed)
        return
    await _reply(context, chat_id, _ctx(context).text("utter_telegram_unknown_command"))


# --- reachability -------------------------------------------------------------

async def on_patient_update(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Before every other handler: a message or button press from a patient
    marked unreachable (they had blocked the bot) shows they can be reached
    again, so their future check-ins are scheduled. A failure here is logged
    and the update is still handled."""
    chat_id = _private_chat(update)
    if chat_id is None or (update.effective_message is None and update.callback_query is None):
        return
    sender_id = sender_for_chat(chat_id)
    try:
        patient_id = await _ctx(context).db(
            lambda s: chats.unreachable_patient_id(s, sender_id))
        if patient_id is not None:
            await _checkins(context).reachable_again(patient_id)
    except Exception as exc:  # the next message tries again
        logger.error("could not mark a chat reachable again: %s", type(exc).__name__)


# --- photos and other media ------------------------------------------------

async def on_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    chat_id = _private_chat(update)
    message = update.effective_message
    if chat_id is None or message is None or not message.photo:
        return
    ctx = _ctx(context)
    patient = await _patient(ctx, chat_id)
    caption = (message.caption or "")[:MAX_INCOMING_CHARS]
    largest = message.photo[-1]
    if patient is None:
        await _reply(context, chat_id, ctx.text("utter_telegram_photo_not_enrolled"))
    elif largest.file_size and largest.file_size > MAX_PHOTO_BYTES:
        await _reply(context, chat_id, ctx.text("utter_telegram_photo_too_large"))
    elif patient.photo_consent is None:
        await ctx.db(lambda s: chats.add_photo(
            s, s.merge(patient), file_id=largest.file_id, caption=caption or None,
            content=None, status="awaiting_consent"))
        await _reply(context, chat_id, ctx.text("utter_telegram_photo_consent"))
    elif patient.photo_consent:
        await _keep_photo(context, chat_id, patient, largest.file_id, caption)
    else:
        await _reply(context, chat_id, ctx.text("utter_telegram_photo_discarded"))
    # A caption is the patient's words: it goes to the assistant like any message.
    if caption.strip():
        await converse(context, chat_id, _typed(context, caption))


async def _download(context: ContextTypes.DEFAULT_TYPE, file_id: str) -> Optional[bytes]:
    try:
        telegram_file = await context.bot.get_file(file_id)
        if telegram_file.file_size and telegram_file.file_size > MAX_PHOTO_BYTES:
            return None
        return bytes(await telegram_file.download_as_bytearray())
    except TelegramError as exc:
        logger.warning("could not download a photo: %s", type(exc).__name__)
        return None


async def _keep_photo(context: ContextTypes.DEFAULT_TYPE, chat_id: int, patient: Patient,
                      file_id: str, caption: str) -> None:
    ctx = _ctx(context)
    content = await _download(context, file_id)
    if content is None:
        await _reply(context, chat_id, ctx.text("utter_telegram_photo_too_large"))
        return
    photo_id = await ctx.db(lambda s: chats.add_photo(
        s, s.merge(patient), file_id=file_id, caption=caption or None, content=content,
        status="kept").id)
    await _staff_relay(context).forward_patient_photo(sender_for_chat(chat_id), photo_id)
    await ctx.db(lambda s: chats.log_message(s, sender_id=sender_for_chat(chat_id),
                                             direction="in", kind="photo",
                                             text=caption, status="answered"))
    await _reply(context, chat_id, ctx.text("utter_telegram_photo_kept"))


async def _photo_consent(context: ContextTypes.DEFAULT_TYPE, chat_id: int, keep: bool) -> None:
    ctx = _ctx(context)
    patient = await _patient(ctx, chat_id)
    if patient is None:
        await _reply(context, chat_id, ctx.text("utter_telegram_photo_not_enrolled"))
        return

    def decide(session) -> list[tuple[int, str, Optional[str]]]:
        current = session.merge(patient)
        current.photo_consent = keep
        pending = chats.photos_awaiting_consent(session, current.id)
        if not keep:
            chats.discard_photos_awaiting_consent(session, current.id)
            return []
        return [(p.id, p.telegram_file_id, p.caption) for p in pending]

    pending = await ctx.db(decide)
    if not keep:
        await _reply(context, chat_id, ctx.text("utter_telegram_photo_discarded"))
        return
    kept = []
    for photo_id, file_id, _caption in pending:
        content = await _download(context, file_id)

        def store(session, photo_id=photo_id, content=content) -> bool:
            photo = session.get(Photo, photo_id)
            if photo is None:
                return False
            if content is None:
                session.delete(photo)
                return False
            chats.keep_photo(session, photo, content)
            return True
        if await ctx.db(store):
            kept.append(photo_id)
    await _reply(context, chat_id, ctx.text("utter_telegram_photo_kept"))
    for photo_id in kept:
        await _staff_relay(context).forward_patient_photo(sender_for_chat(chat_id), photo_id)


async def on_other_media(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if (chat_id := _private_chat(update)) is not None:
        await _reply(context, chat_id, _ctx(context).text("utter_telegram_text_only"))


# --- buttons ---------------------------------------------------------------

async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    chat_id = _private_chat(update)
    if query is None or chat_id is None:
        return
    ctx = _ctx(context)
    data = query.data or ""
    allowed = context.application.bot_data["button_payloads"]
    if data not in allowed:
        # Tampered with, or from a response that no longer exists.
        logger.info("refused callback data from a chat (%d bytes)", len(data.encode()))
        await query.answer(ctx.text("utter_telegram_button_expired").text[:200],
                           show_alert=False)
        return
    await query.answer()
    try:
        await query.edit_message_reply_markup(reply_markup=None)  # one press per question
    except TelegramError:
        pass
    if data == "bot:forget_yes":
        await _forget(context, chat_id)
    elif data == "bot:forget_no":
        await _reply(context, chat_id, ctx.text("utter_telegram_forget_cancelled"))
    elif data in ("bot:photo_keep", "bot:photo_discard"):
        await _photo_consent(context, chat_id, keep=data == "bot:photo_keep")
    elif data in ("bot:improve_yes", "bot:improve_no"):
        await _improve_consent(context, chat_id, agreed=data == "bot:improve_yes")
    elif data.startswith("/"):
        await converse(context, chat_id, data)


# --- errors ----------------------------------------------------------------

async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the kind of failure (never the message) and tell the patient how to
    reach the clinic, so nothing fails silently."""
    error = context.error
    logger.error("error while handling an update: %s", type(error).__name__,
                 exc_info=(type(error), error, error.__traceback__) if error else None)
    if isinstance(update, Update) and (chat_id := _private_chat(update)) is not None:
        try:
            text = _ctx(context).text("utter_telegram_error")
            await context.bot.send_message(chat_id, text.text)
        except Exception:  # the chat or Telegram itself may be the problem
            logger.error("could not tell chat about the error")


def add_handlers(application: Application) -> None:
    application.bot_data["button_payloads"] = button_payloads()
    application.bot_data["patient_intents"] = patient_intents()
    application.add_handler(TypeHandler(Update, on_patient_update), group=-1)
    add_staff_handlers(application, application.bot_data["ctx"].settings.telegram_staff_chat_id)
    private = filters.ChatType.PRIVATE
    application.add_handler(CommandHandler("start", on_start, filters=private))
    application.add_handler(CommandHandler("help", on_help, filters=private))
    application.add_handler(CommandHandler("stop", on_stop, filters=private))
    application.add_handler(CommandHandler("resume", on_resume, filters=private))
    application.add_handler(CommandHandler("forget", on_forget, filters=private))
    application.add_handler(CommandHandler("privacy", on_privacy, filters=private))
    application.add_handler(MessageHandler(private & filters.COMMAND, on_unknown_command))
    application.add_handler(MessageHandler(private & filters.TEXT & ~filters.COMMAND, on_text))
    application.add_handler(MessageHandler(private & filters.PHOTO, on_photo))
    application.add_handler(MessageHandler(
        private & (filters.Sticker.ALL | filters.VOICE | filters.VIDEO_NOTE | filters.VIDEO
                   | filters.AUDIO | filters.Document.ALL | filters.LOCATION
                   | filters.CONTACT | filters.ANIMATION), on_other_media))
    application.add_handler(CallbackQueryHandler(on_button))
    application.add_error_handler(on_error)
