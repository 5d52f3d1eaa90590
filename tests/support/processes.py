"""What the test harnesses share about the servers they start: ports and logs."""
from __future__ import annotations

import random
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable


# Below Linux's ephemeral range (32768-60999), which the kernel also hands to
# outgoing connections: a port picked there can be taken by some client's
# connection before the server we start binds it.
PORT_RANGE = (20000, 32000)
_random = random.SystemRandom()   # never the seeded global generator of a test


def free_port() -> int:
    """A loopback port nobody listens on now (so parallel runs do not collide)."""
    for _ in range(200):
        port = _random.randint(*PORT_RANGE)
        if port_is_free(port):
            return port
    raise RuntimeError(f"no free port between {PORT_RANGE[0]} and {PORT_RANGE[1]}")


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def consecutive_free_ports(count: int, avoid: tuple[int, ...] = ()) -> int:
    """The first of `count` free ports in a row (running_services puts the
    second Rasa server on the port after the first), none of them in `avoid`
    (ports picked for something else)."""
    for _ in range(200):
        first = free_port()
        run = range(first, first + count)
        if not set(run) & set(avoid) and all(port_is_free(port) for port in run[1:]):
            return first
    raise RuntimeError("no run of free ports")


def wait_ready(process: subprocess.Popen, answers: Callable[[], bool], timeout: float,
               interval: float = 0.1) -> bool:
    """True once `answers()` does; False if the process exits first or the
    time runs out (the caller stops it then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if answers():
            return True
        time.sleep(interval)
    return False


def log_tail(path: Path, lines: int = 20) -> str:
    """The last lines of a server's log, for an error message."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])
