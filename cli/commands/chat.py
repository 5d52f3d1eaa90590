"""`aftercare chat` and `aftercare run`: talk to the assistant in the terminal
(or, with TELEGRAM_TOKEN, run the Telegram bot); `run` also serves the staff
review page."""
from __future__ import annotations

import argparse
import logging
import sys
from datetime import timedelta

from aftercare.protocol import ProtocolError, load_protocol
from aftercare.rasa_client import RasaClient, RasaUnavailable
from aftercare.services import ServiceError, review_url, running_services
from aftercare.settings import Settings, get_settings, one_rasa_without_redis
from aftercare.store import db, repository
from cli.main import CommandError

DEMO_SENDER = "demo-patient"
DEMO_NAME = "Demo Patient"
MAX_MESSAGE_CHARS = 4096


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser(
        "run", help="start the Rasa and action servers and the staff review page, and "
                    "chat as the demo patient (with TELEGRAM_TOKEN: run the Telegram bot)")
    run.add_argument("--demo-hours", type=float, default=None,
                     help="hours since the demo patient's treatment "
                          "(default: AFTERCARE_DEMO_HOURS or 3)")
    run.set_defaults(handler=_run)

    chat = subparsers.add_parser("chat", help="chat in the terminal with a running assistant")
    chat.add_argument("--sender", default=DEMO_SENDER,
                      help="conversation id (a patient's linked sender id)")
    chat.set_defaults(handler=_chat)


def ensure_demo_patient(hours_ago: float) -> None:
    """(Re)create the demo patient, treated `hours_ago` hours before now."""
    settings = get_settings()
    protocol = load_protocol(settings.protocol_path)
    db.migrate(settings.database_url)
    from datetime import datetime, timezone
    treated_at = datetime.now(timezone.utc) - timedelta(hours=hours_ago)
    with db.session_scope(settings.database_url) as session:
        existing = repository.find_patient_by_sender(session, DEMO_SENDER)
        if existing is not None:
            repository.remove_patient(session, existing.id)
            session.flush()
        repository.add_patient(session, name=DEMO_NAME, treated_at=treated_at,
                               timezone=protocol.clinic.timezone, sender_id=DEMO_SENDER)


def _run(args: argparse.Namespace) -> int:
    settings = get_settings()
    try:
        load_protocol(settings.protocol_path)
    except ProtocolError as exc:
        raise CommandError(f"the clinic protocol has errors:\n{exc}") from None
    if settings.telegram_token:
        return _run_telegram(settings)
    settings = servers_to_start(settings)
    hours = args.demo_hours if args.demo_hours is not None else settings.demo_hours_since_treatment
    if hours < 0:
        raise CommandError("--demo-hours must be 0 or more")
    ensure_demo_patient(hours)
    print("Starting the action server, the Rasa server and the staff review page "
          f"(logs in {settings.log_dir}) ...")
    try:
        with running_services(settings):
            print_review_hint(settings)
            print(f"Ready. You are the demo patient, treated {hours:g} hours ago. "
                  "Type a message; Ctrl-D or /quit to leave.")
            return chat_loop(RasaClient(settings.rasa_url, token=settings.rasa_token),
                             DEMO_SENDER)
    except ServiceError as exc:
        raise CommandError(str(exc)) from None


def servers_to_start(settings: Settings) -> Settings:
    """`aftercare run` starts AFTERCARE_RASA_SERVERS Rasa servers, each with its
    own action server; several only with Redis for their locks (else one, and
    it says why)."""
    if settings.rasa_urls:
        raise CommandError("RASA_URLS names Rasa servers run elsewhere, for `python -m bot`; "
                           "`aftercare run` starts its own: set AFTERCARE_RASA_SERVERS=N instead")
    settings, one_rasa = one_rasa_without_redis(settings)
    if one_rasa:
        print(f"Note: {one_rasa}.")
        logging.getLogger("aftercare.run").warning("%s", one_rasa)
    elif settings.rasa_servers > 1:
        print(f"Starting {settings.rasa_servers} Rasa servers, each with its own action "
              f"server; conversation locks in Redis.")
    return settings


def _run_telegram(settings: Settings) -> int:
    """Rasa, the action server, the review page and the Telegram bot together;
    Ctrl-C stops them all. If one of the servers dies the bot stays up and
    restarts it (bot/supervisor.py)."""
    from bot.logs import configure_logging, without_tensorflow

    without_tensorflow()
    from bot.app import ConfigurationError, build_application, run

    configure_logging(settings.log_dir / "bot.log")
    settings = servers_to_start(settings)   # after the log is set up: its note goes there too
    print("TELEGRAM_TOKEN is set: starting the action server, the Rasa server, the staff "
          f"review page and the Telegram bot (logs in {settings.log_dir}) ...")
    if settings.telegram_staff_chat_id is None:
        print("Warning: TELEGRAM_STAFF_CHAT_ID is not set, so no staff group is alerted about "
              "red flags (they are still on the review page). Add the bot to the clinic's "
              "staff group: it answers with the id to set. See docs/staff.md.")
    # Once here, so the bot and the review page do not both create a fresh schema.
    db.migrate(settings.database_url)
    try:
        with running_services(settings) as services:
            print_review_hint(settings)
            application = build_application(settings)
            application.bot_data["services"] = services
            run(application, settings)
    except (ServiceError, ConfigurationError) as exc:
        raise CommandError(str(exc)) from None
    print("Stopped.")
    return 0


def print_review_hint(settings: Settings) -> None:
    print(f"Staff review page: {review_url(settings)} (sign in with a staff account; "
          "create one with: aftercare staff add EMAIL)")


def _chat(args: argparse.Namespace) -> int:
    settings = get_settings()
    return chat_loop(RasaClient(settings.rasa_url, token=settings.rasa_token), args.sender)


def chat_loop(client: RasaClient, sender_id: str) -> int:
    """Chat as a patient. Buttons are shown numbered; typing a number presses one."""
    protocol = load_protocol(get_settings().protocol_path)
    buttons: list[tuple[str, str]] = []
    while True:
        try:
            text = input("you> ")
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        text = text.strip()
        if text in ("/quit", "/exit"):
            return 0
        if not text:
            print("assistant> (type a message, or /quit to leave)")
            continue
        if text.isdigit() and 1 <= int(text) <= len(buttons):
            text = buttons[int(text) - 1][1]        # the button's payload, as Telegram sends it
        text = text[:MAX_MESSAGE_CHARS]
        try:
            replies = client.exchange(sender_id, text)
        except RasaUnavailable:
            print(f"assistant> Sorry, I'm having trouble right now. If you need help, "
                  f"call the clinic on {protocol.clinic.phone}.", file=sys.stdout)
            continue
        if not replies:
            print("assistant> (no reply)")
        buttons = [button for reply in replies for button in reply.buttons]
        number = 0
        for reply in replies:
            if reply.text:
                print(f"assistant> {reply.text}")
            for title, _ in reply.buttons:
                number += 1
                print(f"    [{number}] {title}")
        if buttons:
            print("    (type a number to choose, or write your answer)")
