"""Start and stop the Rasa server, the action server and the staff review page
as child processes.

Used by `aftercare run`, the end-to-end tests and the benchmarks, so they all
start the product the same way. Output goes to log files under var/log/
(AFTERCARE_LOG_DIR). A service that died can be started again the same way
(Service.respawn); the bot's supervisor does that (bot/supervisor.py).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Optional

from aftercare.settings import (
    PROJECT_ROOT, Settings, action_server_urls, rasa_server_urls,
)

VENV_BIN = Path(sys.executable).parent
MODEL_DIR = PROJECT_ROOT / "models"
MODEL_NAME = "aftercare"
PR_SET_PDEATHSIG = 1


class ServiceError(RuntimeError):
    """A service did not start or stopped unexpectedly."""


@dataclass
class Service:
    name: str
    process: subprocess.Popen
    health_url: str
    log_path: Path
    # How it was started, so it can be started again the same way.
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    # Run once it answers its health check, before it counts as ready (warm-up).
    after_start: Optional[Callable[[], None]] = None

    def respawn(self) -> None:
        """Start the service again with the same command, environment and log
        (appended to). Call it from the main thread: the child is told to stop
        when the thread that started it ends (see die_with_parent)."""
        self.stop(timeout=5)
        self.process = _popen(self.args, self.env, self.log_path)

    def is_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.health_url, timeout=1) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return False

    def stop(self, timeout: float = 15) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def model_path() -> Path:
    path = MODEL_DIR / f"{MODEL_NAME}.tar.gz"
    if not path.is_file():
        raise ServiceError(f"no trained model at {path}: run `aftercare train` (or make model)")
    return path


def service_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["ACTION_SERVER_URL"] = settings.action_server_url
    env["AFTERCARE_ACTION_SERVER_TOKEN"] = settings.action_server_token or ""  # endpoints.yml
    env["AFTERCARE_DATABASE_URL"] = settings.database_url
    env["RASA_TRACKER_URL"] = tracker_store_url(settings)
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    env["RASA_TELEMETRY_ENABLED"] = "false"
    return env


def tracker_store_url(settings: Settings) -> str:
    """Rasa keeps conversations in the patient store's database (its `events`
    table), SQLite or PostgreSQL: endpoints.yml gives Rasa's SQL tracker store
    this whole URL, which it uses as it is."""
    return settings.database_url


def _port(url: str) -> str:
    return url.rsplit(":", 1)[1].split("/")[0]


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """In the child, before exec: ask Linux to send sig when the parent dies,
    so a killed `aftercare run` leaves no Rasa server holding its port."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, sig)


def _popen(args: list[str], env: dict, log_path: Path) -> subprocess.Popen:
    with open(log_path, "ab") as log:  # the child keeps its own copy of the file
        return subprocess.Popen(args, cwd=PROJECT_ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=die_with_parent if sys.platform == "linux" else None)


def _spawn(name: str, args: list[str], env: dict, health_url: str, log_dir: Path) -> Service:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    return Service(name=name, process=_popen(args, env, log_path), health_url=health_url,
                   log_path=log_path, args=list(args), env=dict(env))


def start_action_server(settings: Settings, log_dir: Path,
                        name: str = "action-server") -> Service:
    """rasa-sdk's action server through actions/server.py: on
    settings.action_server_host (loopback by default), and with a token
    required when one is set (it refuses to listen beyond loopback without)."""
    port = _port(settings.action_server_url)
    host = settings.action_server_host
    env = {**service_env(settings), "AFTERCARE_WARM_UP": "1",
           "SANIC_HOST": host, "AFTERCARE_ACTION_SERVER_HOST": host}
    health_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in health_host:
        health_host = f"[{health_host}]"
    return _spawn(name,
                  [sys.executable, "-m", "actions.server", "--host", host, "--port", port],
                  env, f"http://{health_host}:{port}/health", log_dir)


def start_rasa_server(settings: Settings, log_dir: Path, model: Path | None = None,
                      endpoints: Path = PROJECT_ROOT / "endpoints.yml",
                      name: str = "rasa-server") -> Service:
    """`rasa run` through aftercare/rasa_server.py on settings.rasa_host
    (loopback by default; beyond it only with AFTERCARE_RASA_TOKEN), with the
    lock store and token of the scaling settings (scale_env)."""
    port = _port(settings.rasa_url)
    host = settings.rasa_host
    health_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in health_host:
        health_host = f"[{health_host}]"
    service = _spawn(name,
                     [sys.executable, "-m", "aftercare.rasa_server", "run",
                      "--model", str(model or model_path()),
                      "--enable-api", "--port", port, "--interface", host,
                      "--endpoints", str(endpoints), "--credentials", "credentials.yml"],
                     {**service_env(settings), **scale_env(settings)},
                     f"http://{health_host}:{port}/status{token_query(settings)}", log_dir)
    service.after_start = lambda: warm_up_rasa(settings)
    return service


def scale_env(settings: Settings) -> dict[str, str]:
    """What a Rasa server needs of the settings for running beside others:
    the Redis URL of its lock store (endpoints.yml; empty: in memory) and the
    token its API requires (empty: none, loopback only)."""
    return {"AFTERCARE_REDIS_URL": settings.redis_url or "",
            "AFTERCARE_RASA_TOKEN": settings.rasa_token or ""}


def token_query(settings: Settings) -> str:
    """`?token=...` for a request to Rasa when its API requires one."""
    if not settings.rasa_token:
        return ""
    return "?" + urllib.parse.urlencode({"token": settings.rasa_token})


def assistant_pairs(settings: Settings) -> list[tuple[str, Settings]]:
    """(name suffix, settings) for each Rasa server `aftercare run` starts with
    its own action server: AFTERCARE_RASA_SERVERS of them, the first on
    RASA_URL and ACTION_SERVER_URL, the others on the ports after those."""
    pairs = []
    for index, (rasa, actions) in enumerate(zip(rasa_server_urls(settings),
                                                action_server_urls(settings))):
        suffix = "" if index == 0 else f"-{index + 1}"
        pairs.append((suffix, replace(settings, rasa_url=rasa, action_server_url=actions,
                                      rasa_urls=())))
    return pairs


def review_url(settings: Settings) -> str:
    """Where staff open the review page (a wildcard bind is reached on loopback)."""
    host = settings.review_host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.review_port}/"


def start_review_server(settings: Settings, log_dir: Path) -> Service:
    """The staff review page (`python -m review`); it writes review.log itself."""
    env = {**service_env(settings),
           "AFTERCARE_REVIEW_HOST": settings.review_host,
           "AFTERCARE_REVIEW_PORT": str(settings.review_port),
           "AFTERCARE_REVIEW_SESSION_HOURS": str(settings.review_session_hours),
           "AFTERCARE_REVIEW_SECURE_COOKIE": "1" if settings.review_secure_cookie else "",
           "AFTERCARE_LOG_DIR": str(log_dir),
           "AFTERCARE_PROTOCOL": str(settings.protocol_path)}
    return _spawn("review", [sys.executable, "-m", "review"], env,
                  f"{review_url(settings)}health", log_dir)


def wait_until_healthy(services: list[Service], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    pending = list(services)
    while pending:
        for service in list(pending):
            if service.process.poll() is not None:
                raise ServiceError(f"{service.name} exited with status "
                                   f"{service.process.returncode}; see {service.log_path}")
            if service.is_healthy():
                pending.remove(service)
        if pending and time.monotonic() > deadline:
            names = ", ".join(s.name for s in pending)
            logs = ", ".join(sorted({str(s.log_path.parent) for s in pending}))
            raise ServiceError(f"{names} not ready after {timeout:.0f} s; see {logs}")
        time.sleep(0.2)


def warm_up_rasa(settings: Settings) -> None:
    """Parse one message so Rasa's first patient does not wait for lazy loading."""
    request = urllib.request.Request(
        f"{settings.rasa_url}/model/parse{token_query(settings)}", data=b'{"text": "hello"}',
        headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()


@contextmanager
def running_services(settings: Settings, log_dir: Path | None = None, timeout: float = 180,
                     include_rasa: bool = True,
                     include_review: bool = True) -> Iterator[list[Service]]:
    """The action server, the Rasa server (unless include_rasa is False) and the
    staff review page (unless include_review is False), healthy, stopped on exit.
    With AFTERCARE_RASA_SERVERS=N, N Rasa servers, each with its own action
    server (assistant_pairs)."""
    log_dir = log_dir or settings.log_dir
    pairs = assistant_pairs(settings) if include_rasa else [("", settings)]
    services = [start_action_server(settings, log_dir)]
    try:
        for suffix, pair in pairs[1:]:
            services.append(start_action_server(pair, log_dir, name=f"action-server{suffix}"))
        if include_rasa:
            for suffix, pair in pairs:
                services.append(start_rasa_server(pair, log_dir, name=f"rasa-server{suffix}"))
        if include_review:
            services.append(start_review_server(settings, log_dir))
        wait_until_healthy(services, timeout)
        if include_rasa:
            for _, pair in pairs:
                warm_up_rasa(pair)
        yield services
    finally:
        for service in reversed(services):
            service.stop()
