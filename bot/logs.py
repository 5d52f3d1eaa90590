"""Logging for the bot process: ids and events only.

httpx logs every request URL at INFO, and Telegram's URLs carry the bot token,
so it is kept at WARNING; the bot's own log lines never include what a
patient wrote. python-telegram-bot logs Telegram's data itself: an update it
cannot parse at CRITICAL ("Received data was ..."), and every request, answer
and update at DEBUG. WithoutPayloads rewrites such records to the update ids
and kinds before any handler sees them.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

# python-telegram-bot's loggers that log received data (telegram/_bot.py,
# telegram/ext/_updater.py, telegram/ext/_utils/webhookhandler.py).
TELEGRAM_LOGGERS = ("telegram", "telegram.Bot", "telegram.ext", "telegram.ext.Updater",
                    "telegram.ext.Application", "telegram.ext.ExtBot")


def _is_data(value: Any) -> bool:
    from telegram import TelegramObject

    return isinstance(value, (dict, TelegramObject))


def _payloads(args: Any) -> list[Any]:
    """The record's arguments that are Telegram data: JSON (an update, a batch,
    a request's parameters) or a parsed object such as an Update."""
    if isinstance(args, dict):   # logging unpacks a lone mapping argument
        return [args]
    return [value for value in args or () if _is_data(value) or (
        isinstance(value, (list, tuple)) and any(_is_data(v) for v in value))]


def _summary(payload: Any) -> tuple[list[str], list[str]]:
    from bot.polling import update_id_of, update_kinds

    items = list(payload)[:20] if isinstance(payload, (list, tuple)) else [payload]
    ids, kinds = [], []
    for item in items:
        if isinstance(item, dict):
            ids.append(str(update_id_of(item)))
            kinds.append(update_kinds(item))
        else:
            ids.append(str(getattr(item, "update_id", None)))
            kinds.append(type(item).__name__)
    return ids, kinds


class WithoutPayloads(logging.Filter):
    """Telegram library records that carry received data keep only the update
    ids, their kinds and the error's type (its text may quote the data)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("telegram"):
            return True
        payloads = _payloads(record.args)
        if not payloads and "Received data" not in str(record.msg):
            return True
        ids, kinds = [], []
        for payload in payloads:
            more_ids, more_kinds = _summary(payload)
            ids += more_ids
            kinds += more_kinds
        error = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else None
        record.msg = "Telegram data withheld from the log: update ids %s, kinds %s%s"
        record.args = (", ".join(ids) or "?", ", ".join(kinds) or "?",
                       f", error {error}" if error else "")
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


def protect_telegram_logs() -> None:
    """Install WithoutPayloads on the library's loggers (once)."""
    for name in TELEGRAM_LOGGERS:
        target = logging.getLogger(name)
        if not any(isinstance(f, WithoutPayloads) for f in target.filters):
            target.addFilter(WithoutPayloads())


def configure_logging(log_file: Optional[Path] = None, level: int = logging.INFO) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    for handler in handlers:   # also records of library loggers not listed above
        handler.addFilter(WithoutPayloads())
    protect_telegram_logs()
    logging.basicConfig(level=level, handlers=handlers,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpcore", "apscheduler.executors", "apscheduler.scheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def without_tensorflow() -> None:
    """spaCy's thinc imports TensorFlow whenever it is installed (Rasa needs it);
    the bot only uses spaCy's rule matchers. Blocking the import saves seconds
    of start-up and hundreds of MB. Call before anything imports spaCy."""
    import sys

    if "tensorflow" not in sys.modules:
        sys.modules["tensorflow"] = None  # type: ignore[assignment]  # import now fails fast
