"""`python -m review`: serve the staff review page on AFTERCARE_REVIEW_HOST:PORT.

`aftercare run` starts it as a child process; it can also run on its own
next to a bot started some other way. Log: AFTERCARE_LOG_DIR/review.log.
"""
from __future__ import annotations

import logging
import sys

from aiohttp import web


def main() -> int:
    from aftercare.settings import SettingsError, get_settings
    from aftercare.store import db
    from review.app import build_app
    from review.logs import configure_logging

    try:
        settings = get_settings()
    except SettingsError as exc:
        print(f"review: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_dir / "review.log")
    logger = logging.getLogger("review")
    try:
        db.migrate(settings.database_url)
    except SettingsError as exc:   # the database URL is wrong or the database is down
        logger.error("%s", exc)    # never the password: the URL is shown masked
        print(f"review: {exc}", file=sys.stderr)
        return 2
    app = build_app(settings)
    host, port = settings.review_host, settings.review_port
    logger.info("review page starting on %s:%s", host, port)
    try:
        web.run_app(app, host=host, port=port, access_log=None, print=None,
                    handle_signals=True)
    except OSError as exc:
        message = (f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
                   "set AFTERCARE_REVIEW_PORT to a free port")
        logger.error("%s", message)
        print(f"review: {message}", file=sys.stderr)
        return 1
    logger.info("review page stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
