"""`python -m bot`: run the Telegram bot alone (Rasa and the action server
must already be running; `aftercare run` starts all three)."""
from __future__ import annotations

import sys

from bot.logs import configure_logging, without_tensorflow


def main() -> int:
    without_tensorflow()
    from aftercare.settings import SettingsError, get_settings
    from bot.app import ConfigurationError, build_application, run

    try:
        settings = get_settings()
        configure_logging(settings.log_dir / "bot.log")
        run(build_application(settings), settings)
    except (ConfigurationError, SettingsError) as exc:
        print(f"bot: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
