"""Build and run the Telegram application.

    application = build_application(settings)
    run(application, settings)     # long polling, or a webhook if configured

post_init starts the check-in service and the staff relay once the bot is
connected; post_stop stops them before the application shuts down, so Ctrl-C
ends cleanly. With the child services in bot_data["services"] (`aftercare
run`), a supervisor restarts any of them that dies while the bot stays up
(bot/supervisor.py). Updates come through SkippingBot (bot/polling.py), so
one update the library cannot parse does not hold up the others.
"""
from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator, Optional

from telegram import BotCommand, Update
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder
from telegram.request import HTTPXRequest

from aftercare.settings import Settings
from aftercare.store import db
from bot.checkin_service import CheckinService
from bot.context import BotContext, Clock, utc_now
from bot.handlers import add_handlers
from bot.logs import protect_telegram_logs
from bot.polling import SkippingBot
from bot.rasa import RasaClient
from bot.staff_relay import StaffRelay
from bot.supervisor import Backoff, ServiceNotices, Supervisor
from bot.update_order import ChatOrderedUpdateProcessor

logger = logging.getLogger(__name__)

# Overall pace Telegram allows a bot, spread evenly (no bursts to be refused).
MESSAGES_PER_SECOND = 30
# How often the bot looks for edits of the protocol and the red-flag signs.
FILE_CHECK_SECONDS = 2.0
# Connections for API calls, and the one for long polling (ApplicationBuilder's defaults).
CONNECTION_POOL_SIZE = 256
COMMANDS = [
    BotCommand("help", "What I can do and how to reach the clinic"),
    BotCommand("stop", "Pause check-in messages"),
    BotCommand("resume", "Start check-in messages again"),
    BotCommand("privacy", "What is kept, and your choices"),
    BotCommand("forget", "Delete your data and our conversation"),
]


class ConfigurationError(RuntimeError):
    """The bot cannot start with this configuration; the message says why."""


def build_application(settings: Settings, *, clock: Clock = utc_now,
                      checkin_rate: float = 28, concurrent_updates: int = 64,
                      restart_backoff: Backoff = Backoff()) -> Application:
    if not settings.telegram_token:
        raise ConfigurationError("TELEGRAM_TOKEN is not set")
    db.migrate(settings.database_url)
    protect_telegram_logs()
    bot = SkippingBot(
        token=settings.telegram_token, base_url=settings.telegram_base_url,
        base_file_url=settings.telegram_base_file_url,
        request=HTTPXRequest(connection_pool_size=CONNECTION_POOL_SIZE),
        get_updates_request=HTTPXRequest(connection_pool_size=1),
        rate_limiter=AIORateLimiter(overall_max_rate=1,
                                    overall_time_period=1 / MESSAGES_PER_SECOND,
                                    max_retries=3))
    application = (
        ApplicationBuilder()
        .bot(bot)
        .concurrent_updates(ChatOrderedUpdateProcessor(concurrent_updates))
        .post_init(_post_init)
        .post_stop(_post_stop)
        .post_shutdown(_post_shutdown)
        .build()
    )
    ctx = BotContext(settings=settings, rasa=RasaClient(settings.rasa_url), clock=clock)
    application.bot_data["ctx"] = ctx
    application.bot_data["checkin_rate"] = checkin_rate
    application.bot_data["restart_backoff"] = restart_backoff
    add_handlers(application)
    return application


async def _post_init(application: Application) -> None:
    ctx: BotContext = application.bot_data["ctx"]
    # Load the safety net now, not on the first message that needs it.
    await asyncio.to_thread(lambda: ctx.net)
    try:
        await application.bot.set_my_commands(COMMANDS)
    except Exception as exc:  # a nicety; the bot works without the menu
        logger.warning("could not set the command menu: %s", type(exc).__name__)
    service = CheckinService(ctx, application.bot, rate_per_second=application.bot_data[
        "checkin_rate"])
    application.bot_data["checkins"] = service
    await service.start()
    relay = StaffRelay(ctx, application.bot)
    application.bot_data["staff_relay"] = relay
    await relay.start()
    tasks = [asyncio.create_task(_watch_files(ctx), name="file-watch")]
    services = application.bot_data.get("services")
    if services:
        notices = ServiceNotices(ctx.rasa, relay, lambda: ctx.protocol.clinic.phone)
        supervisor = Supervisor(services, notices,
                                backoff=application.bot_data["restart_backoff"])
        application.bot_data["supervisor"] = supervisor
        tasks.append(asyncio.create_task(supervisor.run(), name="service-supervisor"))
    application.bot_data["background_tasks"] = tasks
    logger.info("bot @%s ready", application.bot.username)


async def _watch_files(ctx: BotContext) -> None:
    """Notice edits of the protocol and the red-flag signs soon, so the new net
    is usually built before the next message that needs it."""
    while True:
        await asyncio.sleep(FILE_CHECK_SECONDS)
        try:
            await asyncio.to_thread(ctx.nets.refresh)   # may re-read the protocol
        except Exception as exc:  # a file being replaced; looked at again next time
            logger.warning("could not check the safety files: %s", type(exc).__name__)


async def _post_stop(application: Application) -> None:
    for task in application.bot_data.pop("background_tasks", []):
        task.cancel()
    relay: Optional[StaffRelay] = application.bot_data.get("staff_relay")
    if relay is not None:
        await relay.stop()
    service: Optional[CheckinService] = application.bot_data.get("checkins")
    if service is not None:
        await service.stop()


async def _post_shutdown(application: Application) -> None:
    await application.bot_data["ctx"].rasa.close()


@asynccontextmanager
async def running(application: Application, *, poll_timeout: int = 10,
                  webhook: Optional[dict] = None) -> AsyncIterator[Application]:
    """The same start and stop sequence as run_polling/run_webhook, inside an
    event loop the caller owns (tests and benchmarks)."""
    await application.initialize()
    try:
        await _post_init(application)
        if webhook is not None:
            await application.updater.start_webhook(**webhook)
        else:
            await application.updater.start_polling(poll_interval=0, timeout=poll_timeout,
                                                    allowed_updates=Update.ALL_TYPES)
        await application.start()
        try:
            yield application
        finally:
            await application.updater.stop()
            await application.stop()
            await _post_stop(application)
    finally:
        await application.shutdown()
        await _post_shutdown(application)


def run(application: Application, settings: Settings) -> None:
    """Serve until Ctrl-C or SIGTERM: long polling, or a webhook when
    TELEGRAM_WEBHOOK_URL is set (Telegram's secret_token header checked)."""
    if settings.telegram_webhook_url:
        if not settings.telegram_webhook_secret:
            raise ConfigurationError("webhook mode needs TELEGRAM_WEBHOOK_SECRET (Telegram sends "
                                     "it with every update; others are refused)")
        application.run_webhook(
            listen=settings.telegram_webhook_listen, port=settings.telegram_webhook_port,
            url_path="telegram", webhook_url=settings.telegram_webhook_url,
            secret_token=settings.telegram_webhook_secret,
            allowed_updates=Update.ALL_TYPES)
    else:
        application.run_polling(allowed_updates=Update.ALL_TYPES)
