"""Logging for the bot process: ids and events only.

httpx logs every request URL at INFO, and Telegram's URLs carry the bot token,
so it is kept at WARNING; the bot's own log lines never include what a
patient wrote.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional


def configure_logging(log_file: Optional[Path] = None, level: int = logging.INFO) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
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
