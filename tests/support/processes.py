"""What the test harnesses share about the servers they start: ports and logs."""
from __future__ import annotations

import socket
from pathlib import Path


def free_port() -> int:
    """A loopback port nobody listens on now (so parallel runs do not collide)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def log_tail(path: Path, lines: int = 20) -> str:
    """The last lines of a server's log, for an error message."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])
