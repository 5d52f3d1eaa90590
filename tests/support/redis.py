"""A real Redis server for tests and benchmarks, on loopback, in a temporary
directory, stopped afterwards.

    with RedisServer.start() as server:
        url = server.url            # redis://127.0.0.1:<port>/0
        server.kill()               # Redis dies (SIGKILL), as in an outage
        server.restart()            # back on the same port

It runs Debian's `redis-server` (the `redis-server` package; scripts/setup.sh
installs it) on 127.0.0.1 and a free port, without persistence (no RDB
snapshots, no append-only file), as whoever runs the tests: Redis does not
mind root. With `password` it requires one, so the tests can check that the
product passes a password from the URL. The server is told to die with the
process that started it, so an interrupted test run leaves nothing behind.

If it cannot start, RedisUnavailable says why, with its log; the test fixture
turns that into a failure, never a skip.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional
from urllib.parse import quote

from aftercare.services import die_with_parent

from .processes import free_port, log_tail, wait_ready

START_TIMEOUT = 20.0


class RedisUnavailable(RuntimeError):
    """redis-server could not be found or started; the message says what to do."""


def find_binary() -> str:
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else None)
    if found is None:
        raise RedisUnavailable(
            "redis-server is not installed. Install Debian's package: "
            "apt-get install -y redis-server (scripts/setup.sh does it as root)")
    return found



def _without_faketime() -> dict[str, str]:
    """The environment without libfaketime (`make pytest-future`): it clashes
    with redis-server's allocator, which then cannot start. Redis' own clock
    is only ever compared with itself (bot/budget.py), so real time is right."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("FAKETIME")}
    kept = [lib for lib in env.pop("LD_PRELOAD", "").split() if "faketime" not in lib]
    if kept:
        env["LD_PRELOAD"] = " ".join(kept)
    return env


def _ping(port: int, password: Optional[str]) -> bool:
    """One PING over a raw socket (RESP), so the harness needs no client library."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
            if password:
                secret = password.encode()
                connection.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(secret), secret))
                if not connection.recv(64).startswith(b"+OK"):
                    return False
            connection.sendall(b"*1\r\n$4\r\nPING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One running redis-server; see the module docstring."""

    def __init__(self, root: Path, binary: str, password: Optional[str]) -> None:
        self.root = root
        self.binary = binary
        self.password = password
        self.log_path = root / "redis.log"
        self.port = 0
        self.process: Optional[subprocess.Popen] = None

    @classmethod
    def start(cls, password: Optional[str] = None) -> "RedisServer":
        server = cls(Path(tempfile.mkdtemp(prefix="aftercare-redis-")), find_binary(), password)
        try:
            server._launch()
        except BaseException:
            server.stop()
            raise
        return server

    def __enter__(self) -> "RedisServer":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def url(self) -> str:
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def _launch(self, port: Optional[int] = None, attempts: int = 3) -> None:
        for _ in range(attempts):
            self.port = port or free_port()
            command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                       "--dir", str(self.root), "--save", "", "--appendonly", "no",
                       "--daemonize", "no", "--protected-mode", "yes",
                       "--logfile", str(self.log_path)]
            if self.password:
                command += ["--requirepass", self.password]
            self.process = subprocess.Popen(
                command, cwd=self.root, env=_without_faketime(), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=die_with_parent if sys.platform == "linux" else None)
            if self._wait_ready():
                return
            if port is not None or "Address already in use" not in self.log_tail():
                break
        raise RedisUnavailable(f"redis-server did not start on 127.0.0.1:{self.port}; "
                               f"its log ({self.log_path}) ends:\n{self.log_tail()}")

    def _wait_ready(self) -> bool:
        if wait_ready(self.process, lambda: _ping(self.port, self.password), START_TIMEOUT,
                      interval=0.05):
            return True
        self.kill()
        return False

    def log_tail(self, lines: int = 20) -> str:
        return log_tail(self.log_path, lines)

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """Redis dies at once (SIGKILL): everything in it is gone, as in a crash."""
        if self.is_running():
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        """Start it again on the same port (empty: nothing was persisted)."""
        self.kill()
        self._launch(port=self.port)

    def stop(self) -> None:
        """Stop the server and delete its folder."""
        if self.is_running():
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)
