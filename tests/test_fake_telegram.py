"""The fake Telegram Bot API server, driven by the real python-telegram-bot over HTTP."""
from __future__ import annotations

import asyncio
import datetime as dtm
import hashlib
import threading
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.request import HTTPXRequest

from support.fake_telegram import FakeTelegramServer

TOKEN = "123456:TEST-TOKEN"
CHAT = 4242


@pytest.fixture
def tg() -> Iterator[FakeTelegramServer]:
    with FakeTelegramServer(token=TOKEN) as server:
        yield server


def make_bot(server: FakeTelegramServer, token: str = TOKEN) -> Bot:
    # A standalone Bot has a connection pool of 1 by default; a few more keeps bursts cheap.
    return Bot(token, base_url=server.base_url, base_file_url=server.base_file_url,
               request=HTTPXRequest(connection_pool_size=8))


def seconds(value: int | dtm.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


@pytest.mark.asyncio
async def test_get_me_and_wrong_token(tg: FakeTelegramServer) -> None:
    async with make_bot(tg) as bot:
        assert bot.username == "aftercare_test_bot"
        assert (await bot.get_me()).is_bot
    with pytest.raises(InvalidToken):
        async with make_bot(tg, token="999:WRONG"):
            pass
    assert tg.tokens_seen == {TOKEN, "999:WRONG"}


@pytest.mark.asyncio
async def test_send_message_with_inline_keyboard_is_recorded(tg: FakeTelegramServer) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="yes"),
                                      InlineKeyboardButton("No", callback_data="no")]])
    async with make_bot(tg) as bot:
        message = await bot.send_message(CHAT, "Any redness?", reply_markup=keyboard,
                                         parse_mode="HTML")
    assert message.text == "Any redness?" and message.chat.id == CHAT
    assert message.reply_markup == keyboard
    (sent,) = tg.sent_messages(CHAT)
    assert sent.message_id == message.message_id and sent.parse_mode == "HTML"
    buttons = sent.reply_markup["inline_keyboard"][0]
    assert [(b["text"], b["callback_data"]) for b in buttons] == [("Yes", "yes"), ("No", "no")]
    assert tg.calls_to("sendMessage")[0].params["chat_id"] == CHAT


@pytest_asyncio.fixture
async def polling_app(tg: FakeTelegramServer) -> AsyncIterator[Application]:
    """A real Application polling the fake server; handlers reply so tests can wait on it."""

    async def on_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.message.reply_text(
            f"welcome {context.args}",
            reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("OK", callback_data="ok")]]))

    async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.message.reply_text(f"echo: {update.message.text}")

    async def on_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        data = await (await update.message.photo[-1].get_file()).download_as_bytearray()
        await update.message.reply_text(hashlib.sha256(bytes(data)).hexdigest())

    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        await query.answer("noted")
        await query.edit_message_reply_markup(None)
        await context.bot.send_message(query.message.chat.id, f"pressed {query.data}")

    app = (ApplicationBuilder().token(TOKEN).base_url(tg.base_url)
           .base_file_url(tg.base_file_url).build())
    app.add_handler(CommandHandler("start", on_start))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, on_text))
    app.add_handler(MessageHandler(filters.PHOTO, on_photo))
    app.add_handler(CallbackQueryHandler(on_button))
    async with app:
        await app.start()
        # A push wakes the long poll at once, so latency does not depend on timeout; a short
        # timeout only bounds how long an abandoned poll lingers.
        await app.updater.start_polling(poll_interval=0, timeout=2)
        try:
            yield app
        finally:
            await app.updater.stop()
            await app.stop()


@pytest.mark.asyncio
async def test_polling_text_command_and_callback(tg: FakeTelegramServer,
                                                 polling_app: Application) -> None:
    tg.push_message(CHAT, "hello there")
    (echo,) = await tg.await_messages(CHAT, 1)
    assert echo.text == "echo: hello there"

    tg.push_command(CHAT, "/start clinic42")
    welcome = (await tg.await_messages(CHAT, 2))[1]
    assert welcome.text == "welcome ['clinic42']"
    assert welcome.reply_markup == {"inline_keyboard": [[{"text": "OK", "callback_data": "ok"}]]}

    tg.push_callback(CHAT, "ok", welcome.message_id)
    pressed = (await tg.await_messages(CHAT, 3))[2]
    assert pressed.text == "pressed ok"
    answer = tg.calls_to("answerCallbackQuery")[0].params
    assert answer["text"] == "noted"
    edit = tg.calls_to("editMessageReplyMarkup")[0].params
    assert (edit["chat_id"], edit["message_id"]) == (CHAT, welcome.message_id)
    assert "reply_markup" not in tg.message(CHAT, welcome.message_id)
    assert tg.duplicates() == {}


@pytest.mark.asyncio
async def test_polling_photo_download_returns_the_same_bytes(tg: FakeTelegramServer,
                                                             polling_app: Application) -> None:
    content = bytes(range(256)) * 40
    tg.push_photo(CHAT, content, caption="day 2")
    (reply,) = await tg.await_messages(CHAT, 1)
    assert reply.text == hashlib.sha256(content).hexdigest()
    assert tg.calls_to("getFile")


@pytest.mark.asyncio
async def test_get_file_and_download_directly(tg: FakeTelegramServer) -> None:
    file_id = tg.add_file(b"\x89PNG fake", file_path="photos/p1.png")
    async with make_bot(tg) as bot:
        file = await bot.get_file(file_id)
        assert file.file_path == f"{tg.base_file_url}{TOKEN}/photos/p1.png"
        assert bytes(await file.download_as_bytearray()) == b"\x89PNG fake"
        with pytest.raises(BadRequest, match="(?i)invalid file_id"):
            await bot.get_file("nope")


@pytest.mark.asyncio
async def test_long_poll_waits_and_wakes_on_push(tg: FakeTelegramServer) -> None:
    async with make_bot(tg) as bot:
        start = time.monotonic()
        assert await bot.get_updates(timeout=0.3) == ()
        assert 0.25 < time.monotonic() - start < 2

        threading.Timer(0.2, tg.push_message, args=(CHAT, "late")).start()
        start = time.monotonic()
        (update,) = await bot.get_updates(timeout=5)
        assert update.message.text == "late" and time.monotonic() - start < 2
        # Not confirmed yet: returned again; confirming with offset forgets it.
        (again,) = await bot.get_updates(timeout=0)
        assert again.update_id == update.update_id
        second = tg.push_message(CHAT, "next")
        assert [u.update_id for u in await bot.get_updates(offset=update.update_id + 1)] == [second]
        assert second > update.update_id


@pytest.mark.asyncio
async def test_a_second_poller_cuts_off_the_first_with_a_conflict(
        tg: FakeTelegramServer) -> None:
    async with make_bot(tg) as first, make_bot(tg) as second:
        waiting = asyncio.create_task(first.get_updates(timeout=5))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        cut_off = asyncio.create_task(second.get_updates(timeout=0.3))
        with pytest.raises(Conflict, match="terminated by other getUpdates"):
            await waiting
        assert time.monotonic() - started < 2
        assert await cut_off == () and tg.polling_conflicts == 1

        # A poller that went away (stopped, or died) is no conflict.
        gone = asyncio.create_task(first.get_updates(timeout=5))
        await asyncio.sleep(0.3)
        gone.cancel()
        await first.shutdown()      # its connection closes
        await asyncio.sleep(0.3)
        assert await second.get_updates(timeout=0.1) == ()
        assert tg.polling_conflicts == 1


@pytest.mark.asyncio
async def test_pushed_updates_have_telegram_shapes(tg: FakeTelegramServer) -> None:
    tg.push_sticker(CHAT)
    tg.push_voice(CHAT, b"OggS voice")
    tg.push_video_note(CHAT)
    tg.push_photo(CHAT, b"jpeg", caption="cheek")
    tg.push_edited_message(CHAT, 5, "edited text")
    tg.push_message(-100123, "hi group", chat_type="supergroup", user_id=77, username="pat77")
    tg.push_update({"channel_post": {"message_id": 1, "date": 0, "text": "news",
                                     "chat": {"id": -1009, "type": "channel", "title": "C"}}})
    async with make_bot(tg) as bot:
        updates = await bot.get_updates()
        assert [u.update_id for u in updates] == sorted(u.update_id for u in updates)
        sticker, voice, note, photo, edited, group, channel = updates
        assert sticker.message.sticker.emoji and voice.message.voice.duration == 3
        assert note.message.video_note.length == 240
        assert photo.message.caption == "cheek" and len(photo.message.photo) == 2
        assert edited.edited_message.text == "edited text" and edited.edited_message.message_id == 5
        assert group.message.chat.type == "supergroup" and group.message.from_user.id == 77
        assert channel.channel_post.text == "news"
        # allowed_updates is remembered and other update types are dropped, like Telegram.
        tg.push_update({"channel_post": channel.to_dict()["channel_post"]})
        tg.push_message(CHAT, "kept")
        (kept,) = await bot.get_updates(offset=channel.update_id + 1, allowed_updates=["message"])
        assert kept.message.text == "kept"


@pytest.mark.asyncio
async def test_injected_faults_raise_ptb_errors(tg: FakeTelegramServer) -> None:
    async with make_bot(tg) as bot:
        tg.fail_next("sendMessage", "retry_after", retry_after=3)
        with pytest.raises(RetryAfter) as info:
            await bot.send_message(CHAT, "hi")
        assert seconds(info.value.retry_after) == 3

        tg.fail_next("sendMessage", "forbidden")
        with pytest.raises(Forbidden, match="(?i)blocked by the user"):
            await bot.send_message(CHAT, "hi")

        tg.fail_next("sendMessage", "drop")
        with pytest.raises(NetworkError):  # TimedOut is a NetworkError too
            await bot.send_message(CHAT, "hi")

        tg.fail_next("sendMessage", "server_error", status=502)
        with pytest.raises(NetworkError):
            await bot.send_message(CHAT, "hi")

        tg.fail_next("sendMessage", "forbidden", chat_id=7)
        await bot.send_message(CHAT, "other chat unaffected")
        with pytest.raises(Forbidden):
            await bot.send_message(7, "hi")

        tg.block_chat(8)
        for _ in range(2):
            with pytest.raises(Forbidden):
                await bot.send_message(8, "hi")
        tg.unblock_chat(8)
        await bot.send_message(8, "back")
    assert [(m.chat_id, m.text) for m in tg.sent_messages()] == [
        (CHAT, "other chat unaffected"), (8, "back")]
    assert len(tg.calls_to("sendMessage")) == 9


@pytest.mark.asyncio
async def test_telegram_validation_errors(tg: FakeTelegramServer) -> None:
    async with make_bot(tg) as bot:
        with pytest.raises(BadRequest, match="(?i)message is too long"):
            await bot.send_message(CHAT, "x" * 4097)
        await bot.send_message(CHAT, "x" * 4096)
        with pytest.raises(BadRequest, match="(?i)message text is empty"):
            await bot.send_message(CHAT, "   ")
        too_long = InlineKeyboardMarkup([[InlineKeyboardButton("b", callback_data="d" * 65)]])
        with pytest.raises(BadRequest, match="(?i)BUTTON_DATA_INVALID"):
            await bot.send_message(CHAT, "pick", reply_markup=too_long)
        with pytest.raises(EndPointNotFound):
            await bot.do_api_request("noSuchMethod")
    assert tg.delivered_count == 1


@pytest.mark.asyncio
async def test_rate_limits(tg: FakeTelegramServer) -> None:
    tg.enforce_rate_limits(global_per_second=30, per_chat_per_second=1)
    async with make_bot(tg) as bot:
        limited = 0
        for chat in range(1000, 1040):
            try:
                await bot.send_message(chat, "reminder")
            except RetryAfter as exc:
                assert seconds(exc.retry_after) == 1
                limited += 1
        assert 0 < limited <= 10 and tg.rate_limit_hits == limited
        assert tg.delivered_count == 40 - limited
        assert set(tg.delivered_per_chat().values()) == {1}

        tg.enforce_rate_limits(global_per_second=30, per_chat_per_second=1)  # fresh windows
        await bot.send_message(CHAT, "first")
        with pytest.raises(RetryAfter):
            await bot.send_message(CHAT, "second")
        await bot.send_message(CHAT + 1, "another chat is fine")


@pytest.mark.asyncio
async def test_webhook_commands_and_misc_methods(tg: FakeTelegramServer) -> None:
    async with make_bot(tg) as bot:
        await bot.set_webhook("https://example.test/hook", secret_token="s3cret")
        assert tg.webhook["url"] == "https://example.test/hook"
        assert tg.webhook["secret_token"] == "s3cret"
        assert (await bot.get_webhook_info()).url == "https://example.test/hook"
        tg.push_message(CHAT, "queued")
        assert await bot.delete_webhook(drop_pending_updates=True)
        assert tg.pending_updates == [] and (await bot.get_webhook_info()).url == ""

        await bot.set_my_commands([("start", "Begin"), ("help", "Help")])
        assert [c.command for c in await bot.get_my_commands()] == ["start", "help"]
        assert await bot.send_chat_action(CHAT, "typing")
        sent = await bot.send_message(CHAT, "v1")
        edited = await bot.edit_message_text("v2", CHAT, sent.message_id)
        assert edited.text == "v2" and tg.message(CHAT, sent.message_id)["text"] == "v2"
        with pytest.raises(BadRequest, match="(?i)not modified"):
            await bot.edit_message_text("v2", CHAT, sent.message_id)
        photo = await bot.send_photo(CHAT, b"\xff\xd8 jpeg bytes", caption="your plan")
        assert photo.caption == "your plan" and photo.photo[-1].file_size == 13
        assert await bot.log_out() and await bot.close()
    assert [m.text for m in tg.sent_messages(CHAT)] == ["v1", "your plan"]


def test_sync_wait_reports_what_was_sent(tg: FakeTelegramServer) -> None:
    async def send() -> None:
        async with make_bot(tg) as bot:
            await bot.send_message(CHAT, "only one")

    asyncio.run(send())
    assert [m.text for m in tg.wait_for_messages(CHAT, 1, timeout=1)] == ["only one"]
    with pytest.raises(AssertionError, match="(?i)only one"):
        tg.wait_for_messages(CHAT, 2, timeout=0.2)
    assert tg.wait_for_call("sendMessage", timeout=1).params["text"] == "only one"
