"""What the test harnesses share about the servers they start: ports and logs."""
from __future__ import annotations

import random
import socket
from pathlib import Path


# Below Linux's ephemeral range (32768-60999), which the kernel also hands to
# outgoing connections: a port picked there can be taken by some client's
# connection before the server we start binds it.
PORT_RANGE = (20000, 32000)
_random = random.SystemRandom()   # never the seeded global generator of a test


def free_port() -> int:
    """A loopback port nobody listens on now (so parallel runs do not collide)."""
    for _ in range(200):
        port = _random.randint(*PORT_RANGE)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port between {PORT_RANGE[0]} and {PORT_RANGE[1]}")


def log_tail(path: Path, lines: int = 20) -> str:
    """The last lines of a server's log, for an error message."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])
