"""A real PostgreSQL server for tests and benchmarks, on loopback, in a
temporary directory, stopped afterwards.

    with PostgresServer.start() as server:
        url = server.create_database(template=server.migrated_template())
        ...                         # a SQLAlchemy URL to a fresh database

It runs Debian's own binaries (the `postgresql` package: initdb, postgres in
/usr/lib/postgresql/<version>/bin, or on PATH). PostgreSQL refuses to run as
root, so under root (CI) initdb and the server run as the unprivileged
`postgres` user the package creates (else `nobody`), with the data directory
owned by that user; as a normal user they run as that user. The server
listens on 127.0.0.1 on a free port with password authentication over TCP and
its socket in the temporary directory; it is told to die with the process
that started it, so an interrupted test run leaves nothing behind.

Durability is switched off (fsync, synchronous_commit, full_page_writes): a
clean stop or restart still keeps everything, which is all the tests need,
and it makes creating a database per test cheap.

If the server cannot start, PostgresUnavailable says why, with its log; the
test fixture turns that into a failure, never a skip.
"""
from __future__ import annotations

import glob
import itertools
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import Optional
from urllib.parse import quote

from aftercare.services import die_with_parent

from .processes import free_port, log_tail, wait_ready

SUPERUSER = "postgres"
START_TIMEOUT = 60.0
# Fast shutdown (roll back open transactions, disconnect clients, stop cleanly).
FAST_SHUTDOWN = signal.SIGINT
TEMPLATE_NAME = "aftercare_migrated"
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
    "logging_collector": "off",
    "log_min_messages": "warning",
}


class PostgresUnavailable(RuntimeError):
    """PostgreSQL could not be found or started; the message says what to do."""


def find_binaries() -> Path:
    """The folder with initdb and postgres: on PATH, else Debian's newest version."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("postgres"):
        return Path(os.path.realpath(on_path)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                      key=lambda p: [int(x) for x in re.findall(r"\d+", p)], reverse=True)
    if versions:
        return Path(versions[0]).parent
    raise PostgresUnavailable(
        "PostgreSQL is not installed (no initdb/postgres on PATH or in "
        "/usr/lib/postgresql/*/bin). Install Debian's package: apt-get install -y postgresql "
        "(scripts/setup.sh does it as root)")


def _server_user() -> Optional[pwd.struct_passwd]:
    """Who runs the server: None (this user) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresUnavailable("running as root and there is no unprivileged 'postgres' or "
                              "'nobody' user to run PostgreSQL as")



class PostgresServer:
    """One running PostgreSQL server; see the module docstring."""

    def __init__(self, root: Path, binaries: Path, user: Optional[pwd.struct_passwd]) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.log_path = root / "postgres.log"
        self.binaries = binaries
        self._user = user
        self.password = secrets.token_hex(16)
        self.port = 0
        self.process: Optional[subprocess.Popen] = None
        self._names = itertools.count(1)
        self._template: Optional[str] = None

    # --- lifecycle ---------------------------------------------------------

    @classmethod
    def start(cls, root: Optional[Path] = None) -> "PostgresServer":
        """initdb in a new temporary folder (or root) and start the server."""
        binaries = find_binaries()
        user = _server_user()
        root = Path(root or tempfile.mkdtemp(prefix="aftercare-postgres-"))
        server = cls(root, binaries, user)
        try:
            server._initdb()
            server._launch()
        except BaseException:
            server.stop()
            raise
        return server

    def __enter__(self) -> "PostgresServer":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _run_as_owner(self) -> dict:
        if self._user is None:
            return {}
        return {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}

    def _chown(self, path: Path) -> None:
        if self._user is not None:
            os.chown(path, self._user.pw_uid, self._user.pw_gid)

    def _initdb(self) -> None:
        self._chown(self.root)
        os.chmod(self.root, 0o700)
        password_file = self.root / "superuser-password"
        password_file.write_text(self.password + "\n")
        self._chown(password_file)
        command = [str(self.binaries / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER,
                   "--pwfile", str(password_file), "--auth-local=trust",
                   "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync"]
        done = subprocess.run(command, cwd=self.root, capture_output=True, text=True,
                              **self._run_as_owner())
        password_file.unlink()
        if done.returncode != 0:
            raise PostgresUnavailable(f"initdb failed ({done.returncode}): "
                                      f"{(done.stderr or done.stdout).strip()[-2000:]}")

    def _launch(self, port: Optional[int] = None, attempts: int = 3) -> None:
        """Start postgres, on `port` or a free one, and wait until it takes connections."""
        for attempt in range(attempts):
            self.port = port or free_port()
            command = [str(self.binaries / "postgres"), "-D", str(self.data_dir),
                       "-p", str(self.port), "-k", str(self.root)]
            for name, value in SERVER_SETTINGS.items():
                command += ["-c", f"{name}={value}"]
            log = open(self.log_path, "ab")
            self._chown(self.log_path)
            try:
                self.process = subprocess.Popen(
                    command, cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True,
                    preexec_fn=partial(die_with_parent, FAST_SHUTDOWN) if sys.platform == "linux" else None,
                    **self._run_as_owner())
            finally:
                log.close()
            if self._wait_ready():
                return
            if port is not None or "could not bind" not in self.log_tail():
                break  # a port taken in between is worth another try; nothing else is
        raise PostgresUnavailable(f"PostgreSQL did not start on 127.0.0.1:{self.port}; "
                                  f"its log ({self.log_path}) ends:\n{self.log_tail()}")

    def _wait_ready(self) -> bool:
        if wait_ready(self.process, self._answers, START_TIMEOUT):
            return True
        self._halt()
        return False

    def _answers(self) -> bool:
        try:
            self.connect().close()
            return True
        except Exception:   # psycopg2.OperationalError while it starts up
            return False

    def log_tail(self, lines: int = 20) -> str:
        return log_tail(self.log_path, lines)

    def _halt(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(FAST_SHUTDOWN)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def restart(self) -> None:
        """Stop the server (fast shutdown: every connection is cut) and start it
        again on the same port, as an administrator restarting it would."""
        self._halt()
        self._launch(port=self.port)

    def stop(self) -> None:
        """Stop the server and delete its folder."""
        self._halt()
        shutil.rmtree(self.root, ignore_errors=True)

    # --- databases ---------------------------------------------------------

    def url(self, database: str = "postgres", password: Optional[str] = None) -> str:
        """A SQLAlchemy URL for `database` as the superuser (password: another one)."""
        secret = quote(self.password if password is None else password, safe="")
        return f"postgresql://{SUPERUSER}:{secret}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres"):
        """A psycopg2 connection in autocommit mode (CREATE DATABASE needs it)."""
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user=SUPERUSER,
                                      password=self.password, dbname=database,
                                      connect_timeout=5)
        connection.autocommit = True
        return connection

    def _admin(self, sql: str) -> None:
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
        finally:
            connection.close()

    def create_database(self, template: Optional[str] = None, name: Optional[str] = None) -> str:
        """A new database, empty or a copy of `template`; its URL."""
        name = name or f"test_{os.getpid()}_{next(self._names)}"
        source = f' TEMPLATE "{template}"' if template else ' TEMPLATE template0'
        self._admin(f'CREATE DATABASE "{name}"{source}')
        return self.url(name)

    def drop_database(self, url_or_name: str) -> None:
        """Drop it, cutting any connection still open to it."""
        name = url_or_name.rsplit("/", 1)[-1]
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def migrated_template(self) -> str:
        """The name of a database migrated to the newest schema, made once per
        server, to copy fresh databases from (much faster than migrating each)."""
        if self._template is None:
            from aftercare.store import db

            url = self.create_database(name=TEMPLATE_NAME)
            db.migrate(url)
            self._template = TEMPLATE_NAME
        return self._template
