"""Configuration from one place: environment variables (or a git-ignored .env)."""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _load_dotenv(path: Path) -> None:
    """Read KEY=VALUE lines from .env without overriding the real environment."""
    if not path.is_file():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        os.environ.setdefault(key.strip(), value.strip().strip('"').strip("'"))


@dataclass(frozen=True)
class Settings:
    database_url: str
    protocol_path: Path
    rasa_url: str
    action_server_url: str
    spacy_model_path: Path
    red_flag_patterns_path: Path
    entity_patterns_path: Path
    demo_hours_since_treatment: float
    telegram_token: str | None
    telegram_base_url: str
    telegram_bot_username: str | None = None  # for t.me links; else asked with getMe
    log_dir: Path = PROJECT_ROOT / "var" / "log"
    telegram_base_file_url: str = "https://api.telegram.org/file/bot"
    # Webhook mode (instead of long polling) when a public URL is set.
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: str | None = None
    telegram_webhook_listen: str = "127.0.0.1"
    telegram_webhook_port: int = 8443
    # The clinic's staff group: escalation alerts go there (None: not configured).
    telegram_staff_chat_id: int | None = None
    # The staff review page: bound to localhost unless told otherwise.
    review_host: str = "127.0.0.1"
    review_port: int = 8080
    review_session_hours: float = 8.0
    review_secure_cookie: bool = False  # set when served over HTTPS (behind a proxy)
    # Proxies (addresses or CIDR networks) whose X-Forwarded-For the review page
    # believes; empty: the header is ignored and the peer is the client.
    review_trusted_proxies: tuple[str, ...] = ()
    # The action server: loopback unless told otherwise, and beyond loopback
    # only with a token, which Rasa then sends with every call (endpoints.yml).
    action_server_host: str = "127.0.0.1"
    action_server_token: str | None = None
    # One quality report per trained model (`aftercare evaluate --record`).
    quality_dir: Path = PROJECT_ROOT / "results" / "quality"
    # The authoring inbox (aftercare/authoring/): a message the assistant
    # answered with less confidence than this is kept for the content authors;
    # the phrases that say it misunderstood; where `inbox export` writes.
    inbox_confidence_threshold: float = 0.5
    inbox_misunderstood_path: Path = PROJECT_ROOT / "data" / "authoring" / "misunderstood.yml"
    inbox_export_dir: Path = PROJECT_ROOT / "data" / "nlu" / "conversations"


class SettingsError(ValueError):
    """A configuration value is wrong; the message names the variable."""


def _port(value: str, name: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise SettingsError(f"{name} must be a port number (1-65535), got {value!r}")
    return int(value)


def _chat_id(value: str | None, name: str) -> int | None:
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise SettingsError(f"{name} must be a Telegram chat id (a whole number such as "
                            f"-1001234567890), got {value!r}") from None


def _positive(value: str, name: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number > 0:
        raise SettingsError(f"{name} must be a positive number, got {value!r}")
    return number


def _fraction(value: str, name: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 < number <= 1:
        raise SettingsError(f"{name} must be a number above 0 and at most 1 (such as 0.5), "
                            f"got {value!r}")
    return number


def _networks(value: str, name: str) -> tuple[str, ...]:
    """Comma-separated addresses or CIDR networks, normalised ("10.0.0.0/8")."""
    networks = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            networks.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise SettingsError(f"{name} must be IP addresses or networks separated by commas "
                                f"(such as 127.0.0.1,10.0.0.0/8), got {part!r}") from None
    return tuple(networks)


ACTION_TOKEN_MIN = 20


def _token(value: str | None, name: str) -> str | None:
    if not value:
        return None
    if len(value) < ACTION_TOKEN_MIN or any(ch.isspace() or not ch.isprintable() for ch in value):
        raise SettingsError(f"{name} must be at least {ACTION_TOKEN_MIN} characters without "
                            f"spaces (for example the output of `openssl rand -hex 32`)")
    return value


def get_settings() -> Settings:
    _load_dotenv(PROJECT_ROOT / ".env")
    env = os.environ.get
    var_dir = PROJECT_ROOT / "var"
    return Settings(
        database_url=env("AFTERCARE_DATABASE_URL", f"sqlite:///{var_dir / 'aftercare.db'}"),
        protocol_path=Path(env("AFTERCARE_PROTOCOL", PROJECT_ROOT / "clinic" / "protocol.yml")),
        rasa_url=env("RASA_URL", "http://127.0.0.1:5005"),
        action_server_url=env("ACTION_SERVER_URL", "http://127.0.0.1:5055/webhook"),
        spacy_model_path=Path(env("AFTERCARE_SPACY_MODEL", PROJECT_ROOT / "build" / "spacy-aftercare")),
        red_flag_patterns_path=PROJECT_ROOT / "data" / "safety" / "red_flags.yml",
        entity_patterns_path=PROJECT_ROOT / "data" / "spacy" / "entities.yml",
        demo_hours_since_treatment=float(env("AFTERCARE_DEMO_HOURS", "3")),
        telegram_token=env("TELEGRAM_TOKEN") or None,
        telegram_base_url=env("TELEGRAM_BASE_URL", "https://api.telegram.org/bot"),
        telegram_bot_username=env("TELEGRAM_BOT_USERNAME") or None,
        log_dir=Path(env("AFTERCARE_LOG_DIR", var_dir / "log")),
        telegram_base_file_url=env("TELEGRAM_BASE_FILE_URL", "https://api.telegram.org/file/bot"),
        telegram_webhook_url=env("TELEGRAM_WEBHOOK_URL") or None,
        telegram_webhook_secret=env("TELEGRAM_WEBHOOK_SECRET") or None,
        telegram_webhook_listen=env("TELEGRAM_WEBHOOK_LISTEN", "127.0.0.1"),
        telegram_webhook_port=_port(env("TELEGRAM_WEBHOOK_PORT", "8443"), "TELEGRAM_WEBHOOK_PORT"),
        telegram_staff_chat_id=_chat_id(env("TELEGRAM_STAFF_CHAT_ID"), "TELEGRAM_STAFF_CHAT_ID"),
        review_host=env("AFTERCARE_REVIEW_HOST", "127.0.0.1"),
        review_port=_port(env("AFTERCARE_REVIEW_PORT", "8080"), "AFTERCARE_REVIEW_PORT"),
        review_session_hours=_positive(env("AFTERCARE_REVIEW_SESSION_HOURS", "8"),
                                       "AFTERCARE_REVIEW_SESSION_HOURS"),
        review_secure_cookie=env("AFTERCARE_REVIEW_SECURE_COOKIE", "") in ("1", "true", "yes"),
        review_trusted_proxies=_networks(env("AFTERCARE_REVIEW_TRUSTED_PROXIES", ""),
                                         "AFTERCARE_REVIEW_TRUSTED_PROXIES"),
        action_server_host=env("AFTERCARE_ACTION_SERVER_HOST", "127.0.0.1").strip() or "127.0.0.1",
        action_server_token=_token(env("AFTERCARE_ACTION_SERVER_TOKEN"),
                                   "AFTERCARE_ACTION_SERVER_TOKEN"),
        quality_dir=Path(env("AFTERCARE_QUALITY_DIR", PROJECT_ROOT / "results" / "quality")),
        inbox_confidence_threshold=_fraction(env("AFTERCARE_INBOX_CONFIDENCE", "0.5"),
                                             "AFTERCARE_INBOX_CONFIDENCE"),
        inbox_export_dir=Path(env("AFTERCARE_INBOX_EXPORT_DIR",
                                  PROJECT_ROOT / "data" / "nlu" / "conversations")),
    )
