"""Logging for the review process: request lines and errors, never patient data.

aiohttp's own access log is never used: its format has the full path with the
query string (and can be set to log headers, so cookies). app.access_log
writes our own line instead.
"""
from __future__ import annotations

import logging
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(log_file: Path, level: int = logging.INFO) -> logging.Handler:
    """Send log lines to log_file (and return the handler, so a test can detach it)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("aiohttp").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").disabled = True
    return handler
