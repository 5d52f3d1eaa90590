"""Build and run the Telegram application.

    application = build_application(settings)
    run(application, settings)     # long polling, or a webhook if configured

post_init starts the check-in service and the staff relay once the bot is
connected; post_stop stops them before the application shuts down, so Ctrl-C
ends cleanly. With the child services in bot_data["services"] (`aftercare
run`), a supervisor restarts any of them that dies while the bot stays up
(bot/supervisor.py). Updates come through SkippingBot (bot/polling.py), so
one update the library cannot parse does not hold up the others.

Beyond one machine (README "Running beyond one machine"): with several Rasa
servers the Rasa client keeps each conversation on one of them (bot/rasa.py);
with AFTERCARE_REDIS_URL the Telegram sending budget is shared by every bot
process (bot/budget.py), and losing Redis sends every conversation to one
Rasa server until it is back (bot/redis_link.py); one bot process at a time
schedules and sends check-ins (bot/leader.py), and one at a time long-polls
Telegram while the others stand by to take over (bot/poller.py); with
TELEGRAM_RECEIVE_UPDATES=no a process takes no updates and only sends.
"""
from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import asynccontextmanager
from typing import AsyncIterator, Optional

from telegram import BotCommand, Update
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder
from telegram.request import HTTPXRequest

from aftercare.settings import Settings, one_rasa_without_redis, rasa_server_urls
from aftercare.store import db
from bot.budget import SendBudget, SharedRateLimiter
from bot.checkin_service import CheckinService
from bot.context import BotContext, Clock, utc_now
from bot.handlers import add_handlers
from bot.leader import POLLING, lock_for
from bot.logs import protect_telegram_logs
from bot.poller import Poller
from bot.polling import SkippingBot
from bot.update_journal import UpdateJournal
from bot.rasa import RasaClient
from bot.redis_link import RedisLink
from bot.staff_relay import StaffRelay
from bot.supervisor import Backoff, ServiceNotices, Supervisor, pair_of
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
    settings, one_rasa = one_rasa_without_redis(settings)
    if one_rasa:
        logger.warning("%s", one_rasa)
    db.migrate(settings.database_url)
    protect_telegram_logs()
    redis = RedisLink(settings.redis_url) if settings.redis_url else None
    rate_limiter = (SharedRateLimiter(SendBudget(redis, bot_processes=settings.bot_processes))
                    if redis is not None else
                    AIORateLimiter(overall_max_rate=1, overall_time_period=1 / MESSAGES_PER_SECOND,
                                   max_retries=3))
    bot = SkippingBot(
        token=settings.telegram_token, base_url=settings.telegram_base_url,
        base_file_url=settings.telegram_base_file_url,
        request=HTTPXRequest(connection_pool_size=CONNECTION_POOL_SIZE),
        get_updates_request=HTTPXRequest(connection_pool_size=1),
        rate_limiter=rate_limiter, journal=UpdateJournal(settings.database_url))
    application = (
        ApplicationBuilder()
        .bot(bot)
        .concurrent_updates(ChatOrderedUpdateProcessor(concurrent_updates,
                                                       on_handled=bot.finished))
        .post_init(_post_init)
        .post_stop(_post_stop)
        .post_shutdown(_post_shutdown)
        .build()
    )
    rasa = RasaClient(rasa_server_urls(settings), token=settings.rasa_token)
    if redis is not None:
        redis.on_change(rasa.set_spread)
    ctx = BotContext(settings=settings, rasa=rasa, clock=clock)
    application.bot_data["ctx"] = ctx
    application.bot_data["redis"] = redis
    application.bot_data["checkin_rate"] = checkin_rate
    application.bot_data["restart_backoff"] = restart_backoff
    add_handlers(application)
    return application


async def _post_init(application: Application) -> None:
    ctx: BotContext = application.bot_data["ctx"]
    redis: Optional[RedisLink] = application.bot_data.get("redis")
    if redis is not None:
        await redis.start()
    # Load the safety net now, not on the first message that needs it.
    await asyncio.to_thread(lambda: ctx.net)
    try:
        await application.bot.set_my_commands(COMMANDS)
    except Exception as exc:  # a nicety; the bot works without the menu
        logger.warning("could not set the command menu: %s", type(exc).__name__)
    service = CheckinService(ctx, application.bot, rate_per_second=application.bot_data[
        "checkin_rate"], lock=lock_for(ctx.settings.database_url))
    application.bot_data["checkins"] = service
    await service.start()
    relay = StaffRelay(ctx, application.bot)
    relay.leading = lambda: service.leading
    application.bot_data["staff_relay"] = relay
    await relay.start()
    tasks = [asyncio.create_task(_watch_files(ctx), name="file-watch")]
    services = application.bot_data.get("services")
    if services:
        notices = ServiceNotices(ctx.rasa, relay, lambda: ctx.protocol.clinic.phone,
                                 pair_urls=_pair_urls(services, ctx.rasa.urls))
        supervisor = Supervisor(services, notices,
                                backoff=application.bot_data["restart_backoff"])
        application.bot_data["supervisor"] = supervisor
        tasks.append(asyncio.create_task(supervisor.run(), name="service-supervisor"))
    application.bot_data["background_tasks"] = tasks
    logger.info("bot @%s ready", application.bot.username)


def _pair_urls(services: list, urls: list[str]) -> dict[str, str]:
    """Pair suffix ("", "-2", ...) -> the URL of that pair's Rasa server: the
    n-th pair `aftercare run` starts is on the n-th URL (services.assistant_pairs)."""
    if len(urls) <= 1:
        return {}
    pairs = {}
    for service in services:
        suffix = pair_of(service.name)
        if suffix is not None and service.name.startswith("rasa-server"):
            index = int(suffix[1:] or 1) - 1
            if index < len(urls):
                pairs[suffix] = urls[index]
    return pairs


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
    redis: Optional[RedisLink] = application.bot_data.get("redis")
    if redis is not None:
        await redis.stop()


@asynccontextmanager
async def running(application: Application, *, poll_timeout: int = 10,
                  webhook: Optional[dict] = None) -> AsyncIterator[Application]:
    """The start and stop sequence of run_polling/run_webhook, inside an event
    loop the caller owns: run() for long polling and send-only, the tests and
    the benchmarks. Long polling goes through the polling lock (bot/poller.py)."""
    await application.initialize()
    settings = application.bot_data["ctx"].settings
    receive = settings.telegram_receive_updates
    try:
        await _post_init(application)
        if not receive:
            pass
        elif webhook is not None:
            await application.updater.start_webhook(**webhook)
        else:
            poller = Poller(application.updater, lock_for(settings.database_url, POLLING),
                            poll_timeout=poll_timeout)
            application.bot_data["poller"] = poller
            await poller.start()
        await application.start()
        try:
            yield application
        finally:
            if "poller" in application.bot_data:
                await application.bot_data.pop("poller").stop()
            if application.updater.running:
                await application.updater.stop()
            await application.stop()
            await _post_stop(application)
    finally:
        await application.shutdown()
        await _post_shutdown(application)


def run(application: Application, settings: Settings) -> None:
    """Serve until Ctrl-C or SIGTERM: long polling (by one bot process at a
    time, bot/poller.py), or a webhook when TELEGRAM_WEBHOOK_URL is set
    (Telegram's secret_token header checked), or no updates at all with
    TELEGRAM_RECEIVE_UPDATES=no."""
    if not settings.telegram_receive_updates:
        logger.info("TELEGRAM_RECEIVE_UPDATES=no: this process takes no updates from Telegram")
        asyncio.run(_serve(application))
    elif settings.telegram_webhook_url:
        if not settings.telegram_webhook_secret:
            raise ConfigurationError("webhook mode needs TELEGRAM_WEBHOOK_SECRET (Telegram sends "
                                     "it with every update; others are refused)")
        application.run_webhook(
            listen=settings.telegram_webhook_listen, port=settings.telegram_webhook_port,
            url_path="telegram", webhook_url=settings.telegram_webhook_url,
            secret_token=settings.telegram_webhook_secret,
            allowed_updates=Update.ALL_TYPES)
    else:
        asyncio.run(_serve(application))


async def _serve(application: Application) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with running(application):
        await stop.wait()
