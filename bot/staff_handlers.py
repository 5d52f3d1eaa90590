"""Staff in Telegram: the alert buttons, replies to the bot's posts, and staff
commands, in the clinic's staff group (or a private chat with the bot for
accounts on the staff list).

Only members of the staff group, or Telegram users linked to an enabled staff
account (`aftercare staff add EMAIL --telegram-user-id N`), may act. Anyone
else gets nothing: a button press is answered with silence, a command from a
patient's chat gets the ordinary "unknown command" answer, and nothing about
any escalation is shown.
"""
from __future__ import annotations

import logging
import time
from typing import Optional

from sqlalchemy import select
from telegram import ForceReply, Update, User
from telegram.error import BadRequest, Forbidden
from telegram.ext import (
    Application, CallbackQueryHandler, ChatMemberHandler, CommandHandler, ContextTypes,
    MessageHandler, filters,
)

from aftercare.store import alerts, escalations
from aftercare.store.models import ACTOR_MAX, Staff
from aftercare.store.repository import StoreError
from bot import staff_messages as posts
from bot.context import BotContext
from bot.staff_relay import StaffRelay

logger = logging.getLogger(__name__)

MEMBER_STATUSES = ("creator", "administrator", "member")
MEMBERSHIP_CACHE_SECONDS = 60.0
STAFF_COMMANDS = ("open", "ack", "resolve", "reply", "note", "reopen")
STAFF_HELP = (
    "Staff commands:\n"
    "/open: the open escalations, most urgent first\n"
    "/ack N: acknowledge escalation N (the assistant goes quiet for that patient)\n"
    "/reply N text: send text to the patient of escalation N, from the clinic\n"
    "/note N text: add a note to escalation N's timeline\n"
    "/resolve N [note]: resolve it; the patient is handed back to the assistant\n"
    "/reopen N: reopen a resolved escalation\n"
    "Or use the buttons under each alert, and reply to an alert to answer the patient."
)


def _ctx(context: ContextTypes.DEFAULT_TYPE) -> BotContext:
    return context.application.bot_data["ctx"]


def _relay(context: ContextTypes.DEFAULT_TYPE) -> StaffRelay:
    return context.application.bot_data["staff_relay"]


class StaffDirectory:
    """Who may act for the clinic in Telegram. Group membership is asked of
    Telegram and remembered for a minute, or until the group says someone
    joined or left; a disabled account is refused even if it is still in the
    group."""

    def __init__(self) -> None:
        self._members: dict[int, tuple[bool, float]] = {}

    def forget(self, user_id: int) -> None:
        self._members.pop(user_id, None)

    async def actor(self, context: ContextTypes.DEFAULT_TYPE, user: Optional[User]) -> Optional[str]:
        """The name recorded on the timeline for this user, or None if not staff."""
        if user is None or user.is_bot:
            return None
        ctx = _ctx(context)

        def account(session) -> Optional[tuple[str, bool]]:
            staff = session.execute(select(Staff).where(
                Staff.telegram_user_id == user.id)).scalar_one_or_none()
            return (staff.email, staff.disabled_at is not None) if staff else None

        found = await ctx.db(account)
        if found is not None:
            email, disabled = found
            return None if disabled else email
        if await self._in_staff_group(context, user.id):
            return f"telegram:{user.id} {user.full_name}"[:ACTOR_MAX]
        return None

    async def _in_staff_group(self, context: ContextTypes.DEFAULT_TYPE, user_id: int) -> bool:
        staff_chat = _ctx(context).settings.telegram_staff_chat_id
        if staff_chat is None:
            return False
        cached = self._members.get(user_id)
        if cached is not None and time.monotonic() - cached[1] < MEMBERSHIP_CACHE_SECONDS:
            return cached[0]
        try:
            member = await context.bot.get_chat_member(staff_chat, user_id)
            is_member = member.status in MEMBER_STATUSES or bool(getattr(member, "is_member",
                                                                         False))
        except (BadRequest, Forbidden):
            is_member = False
        self._members[user_id] = (is_member, time.monotonic())
        return is_member


def _directory(context: ContextTypes.DEFAULT_TYPE) -> StaffDirectory:
    return context.application.bot_data["staff_directory"]


async def _act(context: ContextTypes.DEFAULT_TYPE, work) -> str:
    """Run a store change; its outcome as a short text for staff (errors included)."""
    try:
        return await _ctx(context).db(work)
    except StoreError as exc:
        return f"Not done: {exc}."


async def _acknowledge(context, escalation_id: int, actor: str) -> str:
    now = _ctx(context).now()

    def work(session) -> str:
        if escalations.acknowledge(session, escalation_id, actor, now):
            return (f"Escalation #{escalation_id} acknowledged. The patient is told a person "
                    "is looking after them; the assistant stays quiet until it is resolved.")
        return f"Escalation #{escalation_id} was acknowledged already."
    return await _act(context, work)


async def _resolve(context, escalation_id: int, actor: str, note: Optional[str]) -> str:
    now = _ctx(context).now()

    def work(session) -> str:
        escalations.resolve(session, escalation_id, actor, note, now)
        return f"Escalation #{escalation_id} resolved."
    return await _act(context, work)


def _sending(escalation_id: int) -> str:
    return f"Sending your reply to the patient of escalation #{escalation_id}…"


async def _queue_reply(context, escalation_id: int, actor: str, text: str) -> str:
    """Queue it for the relay; the answer for staff says if it was refused (the
    patient is not on Telegram: call them) or may not arrive (they blocked the bot)."""
    now = _ctx(context).now()

    def work(session) -> str:
        escalations.queue_reply(session, escalation_id, actor, text, now)
        warning = escalations.reply_route(session, escalation_id).warning
        return _sending(escalation_id) + (f"\nBut {warning}." if warning else "")
    return await _act(context, work)


# --- buttons under alerts --------------------------------------------------

async def on_staff_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    if query is None:
        return
    actor = await _directory(context).actor(context, query.from_user)
    if actor is None:
        logger.info("refused a staff button from a user who is not staff")
        await query.answer()
        return
    parsed = posts.parse_callback(query.data or "")
    if parsed is None:
        logger.info("refused malformed staff button data (%d bytes)",
                    len((query.data or "").encode()))
        await query.answer("That button is not valid.")
        return
    action, escalation_id = parsed
    alert = False
    if action == "ack":
        outcome = await _acknowledge(context, escalation_id, actor)
    elif action == "res":
        outcome = await _resolve(context, escalation_id, actor, None)
    else:
        outcome, alert = await _prompt_reply(context, escalation_id)
    await query.answer(outcome[:200], show_alert=alert)
    _relay(context).wake()


async def _prompt_reply(context: ContextTypes.DEFAULT_TYPE,
                        escalation_id: int) -> tuple[str, bool]:
    """Ask for the reply text, unless no reply can reach the patient; (the answer
    to the button, whether it must be shown as an alert staff have to close)."""
    ctx = _ctx(context)
    try:
        view, route = await ctx.db(lambda s: (
            posts.AlertView.of(escalations.get_escalation(s, escalation_id)),
            escalations.reply_route(s, escalation_id)))
    except StoreError as exc:
        return f"Not done: {exc}.", False
    if view.status == "resolved":
        return f"Escalation #{escalation_id} is resolved; /reopen {escalation_id} first.", False
    if not route.deliverable:
        return (f"No reply possible for #{escalation_id}: the patient is not on Telegram. "
                f"{route.call_advice}."), True
    message = await context.bot.send_message(
        ctx.settings.telegram_staff_chat_id, posts.reply_prompt(view),
        reply_markup=ForceReply(input_field_placeholder="Your reply to the patient"))
    now = ctx.now()
    await ctx.db(lambda s: alerts.record_post(s, escalation_id, message.chat_id,
                                              message.message_id, "reply_prompt", now))
    if route.warning:
        return f"Write your reply as an answer to my message. But {route.warning}.", True
    return "Write your reply as an answer to my message.", False


# --- replies to the bot's posts in the staff group -------------------------

async def on_staff_reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Text replying to an alert, a reply prompt or a forwarded patient message
    goes to that patient."""
    message = update.effective_message
    if message is None or message.reply_to_message is None or not message.text:
        return
    ctx = _ctx(context)
    escalation_id = await ctx.db(lambda s: alerts.escalation_for_post(
        s, message.chat_id, message.reply_to_message.message_id))
    if escalation_id is None:
        return  # a reply to something else: ordinary conversation among staff
    actor = await _directory(context).actor(context, message.from_user)
    if actor is None:
        logger.info("ignored a reply in the staff group from a user who is not staff")
        return
    outcome = await _queue_reply(context, escalation_id, actor, message.text)
    if outcome != _sending(escalation_id):   # refused, or it may not arrive: say so
        await message.reply_text(outcome)
    _relay(context).wake()


# --- commands --------------------------------------------------------------

def _escalation_id(args: list[str]) -> Optional[int]:
    if not args or not args[0].lstrip("#").isdigit() or len(args[0]) > 12:
        return None
    return int(args[0].lstrip("#"))


async def on_staff_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is None or not message.text:
        return
    actor = await _directory(context).actor(context, update.effective_user)
    if actor is None:
        if update.effective_chat is not None and update.effective_chat.type == "private":
            # A patient typing a staff command: the ordinary answer, nothing more.
            text = _ctx(context).text("utter_telegram_unknown_command")
            await message.reply_text(text.text)
        logger.info("refused a staff command from a user who is not staff")
        return
    command = message.text.split()[0].lstrip("/").split("@")[0].lower()
    args = context.args or []
    await message.reply_text(await _run_command(context, command, args, actor))
    _relay(context).wake()


async def _run_command(context: ContextTypes.DEFAULT_TYPE, command: str, args: list[str],
                       actor: str) -> str:
    if command == "open":
        return await _open_list(context)
    escalation_id = _escalation_id(args)
    rest = " ".join(args[1:]).strip()
    usage = {"ack": "/ack N", "resolve": "/resolve N [note]", "reply": "/reply N text",
             "note": "/note N text", "reopen": "/reopen N"}[command]
    if escalation_id is None or (command in ("reply", "note") and not rest):
        return f"Usage: {usage}"
    now = _ctx(context).now()
    if command == "ack":
        return await _acknowledge(context, escalation_id, actor)
    if command == "resolve":
        return await _resolve(context, escalation_id, actor, rest or None)
    if command == "reply":
        return await _queue_reply(context, escalation_id, actor, rest)
    if command == "note":
        def note(session) -> str:
            escalations.add_note(session, escalation_id, actor, rest, now)
            return f"Note added to escalation #{escalation_id}."
        return await _act(context, note)

    def reopen(session) -> str:
        escalations.reopen(session, escalation_id, actor, now)
        return f"Escalation #{escalation_id} reopened; the assistant is quiet for the patient."
    return await _act(context, reopen)


async def _open_list(context: ContextTypes.DEFAULT_TYPE) -> str:
    ctx = _ctx(context)
    now = ctx.now()

    def work(session) -> list[str]:
        lines = []
        for escalation in escalations.open_escalations(session)[:30]:
            view = posts.AlertView.of(escalation)
            age = int((now - escalation.created_at).total_seconds() // 60)
            day = f"day {view.day}" if view.day is not None else "day ?"
            lines.append(f"#{view.id} {view.level.upper()} · {view.status} · {day} · "
                         f"{view.who} · {age} min ago")
        return lines

    lines = await ctx.db(work)
    return "Open escalations:\n" + "\n".join(lines) if lines else "No open escalations."


async def on_staff_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is None:
        return
    if await _directory(context).actor(context, update.effective_user) is None:
        return
    await message.reply_text(STAFF_HELP)


async def on_bot_added(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Setting up the staff group: when the bot is added to a group, it says the
    group's id there, which is what TELEGRAM_STAFF_CHAT_ID needs."""
    change = update.my_chat_member
    if change is None or change.chat.type not in ("group", "supergroup"):
        return
    if change.new_chat_member.status not in ("member", "administrator"):
        return
    staff_chat = _ctx(context).settings.telegram_staff_chat_id
    if change.chat.id == staff_chat:
        text = "This is the clinic's staff group: escalation alerts will be posted here."
    else:
        text = (f"This group's id is {change.chat.id}. To receive the aftercare escalation "
                f"alerts here, set TELEGRAM_STAFF_CHAT_ID={change.chat.id} and restart the bot.")
    logger.info("bot added to group %s%s", change.chat.id,
                " (the staff group)" if change.chat.id == staff_chat else "")
    await context.bot.send_message(change.chat.id, text)


async def on_membership_change(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Someone joined or left the staff group (a service message, or a member
    update when the bot is an admin): ask Telegram afresh next time they act,
    so a removed member loses access at once rather than within the minute."""
    users: list[User] = []
    if update.chat_member is not None:
        users.append(update.chat_member.new_chat_member.user)
    if update.message is not None:
        users.extend(update.message.new_chat_members or ())
        if update.message.left_chat_member is not None:
            users.append(update.message.left_chat_member)
    directory = _directory(context)
    for user in users:
        directory.forget(user.id)


def add_staff_handlers(application: Application, staff_chat: Optional[int]) -> None:
    """Registered before the patient handlers, so staff commands in a private
    chat are not taken for unknown patient commands."""
    application.bot_data["staff_directory"] = StaffDirectory()
    where = filters.ChatType.PRIVATE
    if staff_chat is not None:
        group = filters.Chat(chat_id=staff_chat)
        where = where | group
        application.add_handler(CommandHandler(["help", "start"], on_staff_help, filters=group))
        application.add_handler(MessageHandler(
            group & filters.TEXT & ~filters.COMMAND & filters.REPLY, on_staff_reply))
        application.add_handler(MessageHandler(
            group & (filters.StatusUpdate.NEW_CHAT_MEMBERS
                     | filters.StatusUpdate.LEFT_CHAT_MEMBER), on_membership_change))
        application.add_handler(ChatMemberHandler(
            on_membership_change, ChatMemberHandler.CHAT_MEMBER, chat_id=staff_chat))
    application.add_handler(CommandHandler(list(STAFF_COMMANDS), on_staff_command, filters=where))
    application.add_handler(CallbackQueryHandler(on_staff_button,
                                                 pattern=f"^{posts.CALLBACK_PREFIX}:"))
    application.add_handler(ChatMemberHandler(on_bot_added, ChatMemberHandler.MY_CHAT_MEMBER))
