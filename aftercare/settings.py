"""Configuration from one place: environment variables (or a git-ignored .env)."""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

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
    # Beyond one machine (README "Running beyond one machine"): Rasa servers
    # run elsewhere (RASA_URLS), or how many `aftercare run` starts (from
    # rasa_url's port upwards, each with its own action server); the interface
    # Rasa listens on and the token its API then requires; Redis for Rasa's
    # lock store and the shared Telegram budget; how many bot processes share
    # the bot's token (a process's share of the budget while Redis is down).
    rasa_urls: tuple[str, ...] = ()
    rasa_servers: int = 1
    rasa_host: str = "127.0.0.1"
    rasa_token: str | None = None
    redis_url: str | None = None
    bot_processes: int = 1
    # False: this bot process only sends (check-ins, staff relay) and takes no
    # updates from Telegram; another process polls, or all use the webhook.
    telegram_receive_updates: bool = True


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


MAX_RASA_SERVERS = 16


def _count(value: str, name: str, maximum: int) -> int:
    if not value.strip().isdigit() or not 1 <= int(value) <= maximum:
        raise SettingsError(f"{name} must be a whole number from 1 to {maximum}, got {value!r}")
    return int(value)


def _http_urls(value: str, name: str) -> tuple[str, ...]:
    """Comma-separated http(s)://host:port addresses, without a trailing slash."""
    urls = []
    for part in value.split(","):
        part = part.strip().rstrip("/")
        if not part:
            continue
        parsed = urlsplit(part)
        try:
            port = parsed.port
        except ValueError:
            port = None
        if parsed.scheme not in ("http", "https") or not parsed.hostname or port is None:
            raise SettingsError(f"{name} must be Rasa addresses separated by commas, each "
                                f"http://HOST:PORT (such as http://10.0.0.5:5005), got {part!r}")
        urls.append(part)
    if len(urls) != len(set(urls)):
        raise SettingsError(f"{name} names a Rasa server twice")
    if len(urls) > MAX_RASA_SERVERS:
        raise SettingsError(f"{name} names more than {MAX_RASA_SERVERS} Rasa servers")
    return tuple(urls)


def _redis_url(value: str | None, name: str) -> str | None:
    """A redis:// or rediss:// URL; never echoed back, it may hold a password."""
    if not value or not value.strip():
        return None
    parsed = urlsplit(value.strip())
    try:
        parsed.port
    except ValueError:
        parsed = parsed._replace(netloc="")
    if parsed.scheme not in ("redis", "rediss") or not parsed.hostname:
        raise SettingsError(f"{name} must be a redis:// or rediss:// URL such as "
                            f"redis://127.0.0.1:6379/0 (with a password: "
                            f"redis://:PASSWORD@HOST:6379/0)")
    return value.strip()


def redis_address(url: str) -> str:
    """host:port of a Redis URL, for logs and messages (never the password)."""
    parsed = urlsplit(url)
    try:
        port = parsed.port or 6379
    except ValueError:
        port = 6379
    return f"{parsed.hostname}:{port}"


def with_port(url: str, port: int) -> str:
    """url with another port number (the path kept)."""
    parsed = urlsplit(url)
    host = parsed.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return urlunsplit(parsed._replace(netloc=f"{host}:{port}"))


def rasa_server_urls(settings: Settings) -> tuple[str, ...]:
    """Every Rasa server the bot sends to: RASA_URLS, else the
    AFTERCARE_RASA_SERVERS servers `aftercare run` starts from RASA_URL's port up."""
    if settings.rasa_urls:
        return settings.rasa_urls
    base = settings.rasa_url.rstrip("/")
    first = urlsplit(base).port or 5005
    return tuple(base if i == 0 else with_port(base, first + i)
                 for i in range(settings.rasa_servers))


def action_server_urls(settings: Settings) -> tuple[str, ...]:
    """The action server of each Rasa server `aftercare run` starts (one each,
    in pairs), from ACTION_SERVER_URL's port upwards."""
    base = settings.action_server_url
    first = urlsplit(base).port or 5055
    return tuple(base if i == 0 else with_port(base, first + i)
                 for i in range(settings.rasa_servers))


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
        rasa_urls=_http_urls(env("RASA_URLS", ""), "RASA_URLS"),
        rasa_servers=_rasa_servers(env),
        rasa_host=env("AFTERCARE_RASA_HOST", "127.0.0.1").strip() or "127.0.0.1",
        rasa_token=_token(env("AFTERCARE_RASA_TOKEN"), "AFTERCARE_RASA_TOKEN"),
        redis_url=_redis_url(env("AFTERCARE_REDIS_URL"), "AFTERCARE_REDIS_URL"),
        bot_processes=_count(env("AFTERCARE_BOT_PROCESSES", "1"), "AFTERCARE_BOT_PROCESSES", 64),
        telegram_receive_updates=_yes_no(env("TELEGRAM_RECEIVE_UPDATES", "yes"),
                                         "TELEGRAM_RECEIVE_UPDATES"),
    )


def _rasa_servers(env) -> int:
    count = _count(env("AFTERCARE_RASA_SERVERS", "1"), "AFTERCARE_RASA_SERVERS",
                   MAX_RASA_SERVERS)
    if count > 1 and (env("RASA_URLS") or "").strip():
        raise SettingsError("set RASA_URLS (Rasa servers run elsewhere) or "
                            "AFTERCARE_RASA_SERVERS (how many `aftercare run` starts), not both")
    return count


def _yes_no(value: str, name: str) -> bool:
    answer = value.strip().lower()
    if answer in ("1", "yes", "true", "on"):
        return True
    if answer in ("0", "no", "false", "off"):
        return False
    raise SettingsError(f"{name} must be yes or no, got {value!r}")


def one_rasa_without_redis(settings: Settings) -> tuple[Settings, str | None]:
    """Without Redis only the first Rasa server is used: each server would keep
    its conversation locks in its own memory, which cannot keep one
    conversation in order across servers. Returns the settings to use and,
    when that changed anything, what to tell the person starting it."""
    urls = rasa_server_urls(settings)
    if len(urls) <= 1 or settings.redis_url:
        return settings, None
    named = "RASA_URLS" if settings.rasa_urls else "AFTERCARE_RASA_SERVERS"
    message = (f"{named} gives {len(urls)} Rasa servers but AFTERCARE_REDIS_URL is not set: "
               f"without Redis each Rasa server keeps its conversation locks in its own memory, "
               f"which cannot keep a conversation's messages in order across servers, so only "
               f"one is used ({urls[0]})")
    return replace(settings, rasa_url=urls[0], rasa_urls=(), rasa_servers=1), message
