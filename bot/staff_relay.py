"""The staff relay: everything the bot tells the clinic's staff group, and what
staff decisions mean for the patient.

One task works through the outbox tables (aftercare.store.alerts) every few
seconds, and at once when woken (a patient message was answered, a staff
member pressed a button):

1. escalations not yet posted → an alert with the level, patient, day,
   message, reason, recent photos and Acknowledge / Resolve / Reply buttons;
2. emergency and urgent alerts nobody acknowledged → a reminder every
   `escalation.realert_minutes` of the protocol; routine ones and requests for
   a person only while the clinic is open;
3. acknowledged escalations → the patient is told a person has taken over
   (hand-off: the assistant stays quiet for them, bot/handoff.py);
4. replies queued by staff (from the group or the review page) → sent to the
   patient, marked as from the clinic;
5. resolved escalations → the closure is posted, and a handed-off patient is
   told the assistant is back;
6. notices about the assistant itself (degraded while a server restarts, and
   back), queued by the supervisor in memory and kept until posted.

Because the work comes from the database, an escalation written by the
action server, by the bot's own net or on the review page is never missed,
even if the bot was down when it was written. Log lines carry ids only.

With several bot processes, only the one that sends the check-ins works
through the outbox tables (`leading`), so nothing is posted twice; every
process posts its own notices (6).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Callable, Optional
from zoneinfo import ZoneInfo

from telegram import Bot, InputFile, Message
from telegram.error import BadRequest, Forbidden, TelegramError

from aftercare.store import alerts, escalations
from aftercare.store.models import Escalation, Photo
from bot import staff_messages as posts
from bot.context import BotContext, chat_for_sender
from aftercare.opening_hours import is_open
from bot.outgoing import split_text
from bot.sending import send

logger = logging.getLogger(__name__)

POLL_SECONDS = 2.0
# Telegram refuses photo uploads over 10 MB: bigger ones go as a document.
PHOTO_UPLOAD_LIMIT = 10 * 1024 * 1024
MISCONFIGURED_LOG_EVERY = 300.0
MAX_PENDING_NOTICES = 50


class StaffRelay:
    def __init__(self, ctx: BotContext, bot: Bot, poll_seconds: float = POLL_SECONDS) -> None:
        self.ctx = ctx
        self.bot = bot
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._task: Optional[asyncio.Task] = None
        self._lock = asyncio.Lock()
        self._stopping = False
        self._last_chat_error = -MISCONFIGURED_LOG_EVERY
        self._notices: deque[str] = deque(maxlen=MAX_PENDING_NOTICES)
        # Whether this process works through the outbox (the check-in leader).
        self.leading: Callable[[], bool] = lambda: True

    @property
    def staff_chat(self) -> Optional[int]:
        return self.ctx.settings.telegram_staff_chat_id

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.ctx.protocol.clinic.timezone)

    # --- lifecycle --------------------------------------------------------

    async def start(self) -> None:
        if self.staff_chat is None:
            logger.warning("TELEGRAM_STAFF_CHAT_ID is not set: escalations are recorded and "
                           "shown on the review page, but no staff group is alerted")
        self._task = asyncio.create_task(self._run(), name="staff-relay")

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Let the pass under way finish (a post sent is then also marked sent),
        then stop."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=grace_seconds)
        except asyncio.TimeoutError:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._task = None

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            await self.run_once()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
            except asyncio.TimeoutError:
                pass

    async def run_once(self) -> None:
        """One pass over every step; a failing step is logged and retried next pass."""
        async with self._lock:
            outbox = (self._post_alerts, self._post_reminders, self._notify_handoffs,
                      self._send_replies, self._post_closures) if self.leading() else ()
            for step in (*outbox, self._post_notices):
                try:
                    await step()
                except Exception as exc:  # keep relaying: the next pass retries
                    logger.error("staff relay step %s failed: %s", step.__name__,
                                 type(exc).__name__, exc_info=exc)

    # --- posting in the staff group ----------------------------------------

    def _chat_unusable(self, exc: TelegramError) -> None:
        """The staff group refused us (wrong id, bot removed): say so loudly, not every pass."""
        now = time.monotonic()
        if now - self._last_chat_error >= MISCONFIGURED_LOG_EVERY:
            self._last_chat_error = now
            logger.error("cannot post in the staff group %s (%s): check TELEGRAM_STAFF_CHAT_ID "
                         "and that the bot is a member", self.staff_chat, type(exc).__name__)

    async def _post(self, escalation_id: int, kind: str, text: str, *,
                    reply_to: Optional[int] = None, markup=None) -> Optional[Message]:
        """Post text in the staff group and remember the message (so replies to it
        reach the right patient); None if the group refused it."""
        try:
            message = await self.bot.send_message(
                self.staff_chat, text, reply_markup=markup, reply_to_message_id=reply_to,
                allow_sending_without_reply=True)
        except (Forbidden, BadRequest) as exc:
            self._chat_unusable(exc)
            return None
        now = self.ctx.now()
        await self.ctx.db(lambda s: alerts.record_post(
            s, escalation_id, message.chat_id, message.message_id, kind, now))
        return message

    async def _alert_message_id(self, escalation_id: int) -> Optional[int]:
        post = await self.ctx.db(lambda s: alerts.alert_post(s, escalation_id))
        return post.message_id if post is not None and post.chat_id == self.staff_chat else None

    async def _view(self, escalation_id: int) -> posts.AlertView:
        return await self.ctx.db(
            lambda s: posts.AlertView.of(escalations.get_escalation(s, escalation_id)))

    async def refresh_alert(self, escalation_id: int) -> None:
        """Show the escalation's current status and buttons on its alert."""
        if self.staff_chat is None:
            return
        message_id = await self._alert_message_id(escalation_id)
        if message_id is None:
            return
        view = await self._view(escalation_id)
        try:
            await self.bot.edit_message_text(posts.alert_text(view, self.zone), self.staff_chat,
                                             message_id, reply_markup=posts.buttons(view))
        except BadRequest as exc:  # "message is not modified", or deleted by a person
            logger.info("alert of escalation %s not edited: %s", escalation_id,
                        type(exc).__name__)

    async def _post_alerts(self) -> None:
        if self.staff_chat is None:
            return
        now = self.ctx.now()

        def pending(session) -> list[tuple[posts.AlertView, list[int]]]:
            found = []
            for escalation in alerts.not_yet_alerted(session):
                photos = (alerts.recent_photos(session, escalation.patient_id,
                                               alerts.photo_window(escalation.created_at))
                          if escalation.patient_id else [])
                found.append((posts.AlertView.of(escalation), [p.id for p in photos]))
            return found

        for view, photo_ids in await self.ctx.db(pending):
            message = await self._post(view.id, "alert", posts.alert_text(view, self.zone),
                                       markup=posts.buttons(view))
            if message is None:
                return
            for photo_id in reversed(photo_ids):  # oldest first
                await self.post_photo(view, photo_id, reply_to=message.message_id)
            await self.ctx.db(lambda s, i=view.id: alerts.mark_alerted(s, i, now))
            logger.info("escalation %s (%s) alerted to the staff group", view.id, view.level)

    async def post_photo(self, view: posts.AlertView, photo_id: int,
                         reply_to: Optional[int] = None) -> None:
        """A photo the patient agreed to keep, in the staff group under the alert.
        Sent by Telegram file id (no upload); from the stored copy if that fails."""
        photo: Optional[Photo] = await self.ctx.db(lambda s: s.get(Photo, photo_id))
        if photo is None or self.staff_chat is None:
            return
        if reply_to is None:
            reply_to = await self._alert_message_id(view.id)
        caption = f"📷 Photo from {view.who} (escalation #{view.id})"
        kwargs = dict(caption=caption, reply_to_message_id=reply_to,
                      allow_sending_without_reply=True)
        try:
            try:
                message = await self.bot.send_photo(self.staff_chat, photo.telegram_file_id,
                                                    **kwargs)
            except BadRequest:
                if not photo.content:
                    raise
                upload = InputFile(photo.content, filename=f"photo-{photo.id}.jpg")
                if len(photo.content) > PHOTO_UPLOAD_LIMIT:
                    message = await self.bot.send_document(self.staff_chat, upload, **kwargs)
                else:
                    message = await self.bot.send_photo(self.staff_chat, upload, **kwargs)
        except (Forbidden, BadRequest) as exc:
            logger.warning("photo %s not posted to the staff group: %s", photo_id,
                           type(exc).__name__)
            return
        now = self.ctx.now()
        await self.ctx.db(lambda s: alerts.record_post(
            s, view.id, message.chat_id, message.message_id, "photo", now))

    async def _post_reminders(self) -> None:
        if self.staff_chat is None:
            return
        now = self.ctx.now()
        protocol = self.ctx.protocol
        minutes_for = protocol.escalation.realert_minutes
        clinic_open = is_open(protocol, now)

        def due(session) -> list[tuple[posts.AlertView, int, int]]:
            found = []
            for escalation in alerts.unacknowledged(session):
                minutes = minutes_for.get(escalation.level)
                if minutes is None:
                    continue
                if escalation.level in ("routine", "human") and not clinic_open:
                    continue
                if (now - escalation.last_alert_at).total_seconds() < minutes * 60:
                    continue
                count = sum(1 for e in escalation.events if e.kind == "reminded") + 1
                waited = int((now - escalation.alerted_at).total_seconds() // 60)
                found.append((posts.AlertView.of(escalation), count, waited))
            return found

        for view, count, waited in await self.ctx.db(due):
            reply_to = await self._alert_message_id(view.id)
            message = await self._post(view.id, "reminder",
                                       posts.alert_text(view, self.zone, count, waited),
                                       reply_to=reply_to, markup=posts.buttons(view))
            if message is None:
                return
            await self.ctx.db(lambda s, i=view.id: alerts.mark_reminded(s, i, now))
            logger.info("reminder %s for escalation %s (%s)", count, view.id, view.level)

    def queue_notice(self, text: str) -> None:
        """A notice for the staff group about the assistant itself. Posted on the
        next pass; if posting fails it stays queued and is tried again."""
        self._notices.append(text)
        self.wake()

    async def _post_notices(self) -> None:
        if self.staff_chat is None:
            self._notices.clear()
            return
        while self._notices:
            try:
                await self.bot.send_message(self.staff_chat, self._notices[0])
            except (Forbidden, BadRequest) as exc:
                self._chat_unusable(exc)
                return
            self._notices.popleft()

    # --- what staff decisions mean for the patient --------------------------

    async def _tell_patient(self, sender_id: Optional[str], response: str,
                            **values: object) -> None:
        chat_id = chat_for_sender(sender_id or "")
        if chat_id is None:
            return
        text = self.ctx.text(response, **values)
        await send(self.ctx, self.bot, chat_id, [(text.text, text.buttons)], kind="notice")

    async def _notify_handoffs(self) -> None:
        now = self.ctx.now()

        def pending(session) -> list[tuple[posts.AlertView, bool]]:
            found = []
            for escalation in alerts.awaiting_handoff_notice(session):
                # The patient hears it once, however many escalations a person holds.
                told = any(other.id != escalation.id and other.status == "acknowledged"
                           and other.handoff_notified_at is not None
                           for other in _same_chat(session, escalation))
                found.append((posts.AlertView.of(escalation), told))
            return found

        for view, told in await self.ctx.db(pending):
            if not told:
                await self._tell_patient(view.sender_id, "utter_telegram_handoff_started")
            await self.ctx.db(lambda s, i=view.id: alerts.mark_handoff_notified(s, i, now))
            await self.refresh_alert(view.id)
            logger.info("escalation %s: patient handed to a person", view.id)

    async def _send_replies(self) -> None:
        replies = await self.ctx.db(lambda s: [
            (r.id, r.text, posts.AlertView.of(escalations.get_escalation(s, r.escalation_id)))
            for r in escalations.pending_replies(s)])
        for reply_id, text, view in replies:
            outcome, parts = await self._deliver_reply(view, text)
            if outcome is None:
                continue  # network trouble: stays pending, tried again next pass
            now = self.ctx.now()
            status, detail = ("sent", None) if outcome == "sent" else ("failed", outcome)
            await self.ctx.db(lambda s, i=reply_id: alerts.finish_reply(s, i, status, now,
                                                                        detail))
            logger.info("reply %s of escalation %s: %s", reply_id, view.id, status)
            if self.staff_chat is not None:
                await self._post_notice(view.id, posts.reply_sent(view, parts)
                                        if status == "sent" else posts.reply_failed(view, outcome))

    async def _post_notice(self, escalation_id: int, text: str) -> None:
        """A line under the escalation's alert (not recorded as a post: replying to
        it means nothing)."""
        reply_to = await self._alert_message_id(escalation_id)
        try:
            await self.bot.send_message(self.staff_chat, text, reply_to_message_id=reply_to,
                                        allow_sending_without_reply=True)
        except (Forbidden, BadRequest) as exc:
            self._chat_unusable(exc)

    async def _deliver_reply(self, view: posts.AlertView,
                             text: str) -> tuple[Optional[str], int]:
        """("sent" | why it failed | None to retry later, number of messages)."""
        chat_id = chat_for_sender(view.sender_id or "")
        if chat_id is None:
            return "the patient is not on Telegram", 0
        full = self.ctx.text("utter_telegram_clinic_reply", reply=text).text
        parts = len(split_text(full))
        try:
            delivered = await send(self.ctx, self.bot, chat_id, [(full, ())], kind="clinic")
        except BadRequest as exc:
            return f"Telegram refused it ({type(exc).__name__})", parts
        except TelegramError as exc:
            logger.warning("reply for escalation %s not sent yet: %s", view.id,
                           type(exc).__name__)
            return None, parts
        return ("sent" if delivered else "the patient has blocked the bot"), parts

    async def _post_closures(self) -> None:
        now = self.ctx.now()

        def pending(session) -> list[tuple[posts.AlertView, bool, bool]]:
            found = []
            for escalation in alerts.awaiting_closure(session):
                still_held = any(other.status == "acknowledged"
                                 for other in _same_chat(session, escalation))
                hand_back = escalation.handoff_notified_at is not None and not still_held
                found.append((posts.AlertView.of(escalation), hand_back,
                              escalation.alerted_at is not None))
            return found

        for view, hand_back, alerted in await self.ctx.db(pending):
            if hand_back:
                await self._tell_patient(view.sender_id, "utter_telegram_handed_back")
            if alerted and self.staff_chat is not None:
                await self.refresh_alert(view.id)
                await self._post_notice(view.id, posts.closure_text(view, self.zone, hand_back))
            await self.ctx.db(lambda s, i=view.id: alerts.mark_closure_posted(s, i, now))
            logger.info("escalation %s closed%s", view.id,
                        "; patient handed back to the assistant" if hand_back else "")

    # --- called from the handlers ------------------------------------------

    async def delete_posts(self, posts: list[tuple[int, int]]) -> None:
        """Remove an erased patient's alerts from the staff group. Telegram lets a
        bot delete its group messages for 48 hours; older ones stay and are
        counted in the log, for the clinic to remove by hand."""
        kept = 0
        for chat_id, message_id in posts:
            try:
                await self.bot.delete_message(chat_id, message_id)
            except TelegramError:
                kept += 1
        if posts:
            logger.info("erasure: %d staff-group post(s) deleted, %d could not be",
                        len(posts) - kept, kept)

    async def forward_patient_message(self, escalation_id: int, text: str) -> None:
        """A handed-off patient's message, in the staff group under the alert."""
        if self.staff_chat is None:
            return
        view = await self._view(escalation_id)
        await self._post(escalation_id, "patient", posts.patient_message(view, text),
                         reply_to=await self._alert_message_id(escalation_id))

    async def forward_patient_photo(self, sender_id: str, photo_id: int) -> None:
        """A photo kept while the patient has an escalation the staff group has seen."""
        if self.staff_chat is None:
            return

        def latest(session) -> Optional[posts.AlertView]:
            query = [e for e in alerts.unresolved_for_sender(session, sender_id) if e.alerted_at]
            return posts.AlertView.of(query[-1]) if query else None

        view = await self.ctx.db(latest)
        if view is not None:
            await self.post_photo(view, photo_id)


def _same_chat(session, escalation: Escalation) -> list[Escalation]:
    if not escalation.sender_id:
        return []
    return alerts.unresolved_for_sender(session, escalation.sender_id)
