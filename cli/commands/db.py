"""`aftercare db`: check the database, migrate it, copy it into PostgreSQL.

    aftercare db check                      # reachable? which schema revision?
    aftercare db migrate                    # bring the schema up to date
    aftercare db copy --to postgresql://USER@HOST/DB [--from URL]

The database is AFTERCARE_DATABASE_URL. Other commands and the bot migrate by
themselves; `db migrate` is for doing it ahead of a deployment. `db copy`
moves a clinic from its SQLite file to PostgreSQL (aftercare/store/copy.py):
the target is migrated first and must be empty; the row counts of every
table are printed and checked. A password can stay out of the command line:
leave it out of the URL and set PGPASSWORD (or use ~/.pgpass).
"""
from __future__ import annotations

import argparse
from typing import List, Optional

from alembic.script import ScriptDirectory
from alembic.util import CommandError as AlembicError
from sqlalchemy.exc import SQLAlchemyError

from aftercare.settings import get_settings
from aftercare.store import db
from aftercare.store.copy import CopyError, TableCount, copy_database, revision
from cli.main import CommandError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "db", help="check, migrate or copy the database (SQLite or PostgreSQL)",
        description="The database in AFTERCARE_DATABASE_URL: check it, migrate it, or copy "
                    "it into a new PostgreSQL database.")
    actions = parser.add_subparsers(dest="db_command", metavar="ACTION", required=True)

    check = actions.add_parser(
        "check", help="connect and say which schema revision the database is at",
        description="Connect to the database and print what it is and its schema revision.")
    check.set_defaults(handler=_check)

    migrate = actions.add_parser(
        "migrate", help="bring the schema up to date",
        description="Migrate the database to the newest schema. Safe to run while another "
                    "process migrates: it waits, then finds nothing left to do.")
    migrate.set_defaults(handler=_migrate)

    copy = actions.add_parser(
        "copy", help="copy the database into a new PostgreSQL database",
        description="Copy every table (patients, conversations, check-ins, staff, inbox; "
                    "Rasa's events and the scheduled check-ins if present) into an empty "
                    "PostgreSQL database, keeping ids, then print and check the row counts. "
                    "Stop the bot, the review page and Rasa first. The target is migrated "
                    "first and must hold no rows; nothing is written if anything fails.")
    copy.add_argument("--to", required=True, metavar="URL",
                      help="the PostgreSQL database to copy into (postgresql://USER:PASSWORD@"
                           "HOST:5432/DATABASE; without a password, PGPASSWORD is used)")
    copy.add_argument("--from", dest="source", metavar="URL",
                      help="the database to copy from (default: AFTERCARE_DATABASE_URL)")
    copy.set_defaults(handler=_copy)


def _head() -> str:
    return ScriptDirectory.from_config(db.alembic_config("sqlite://")).get_current_head()


def _migrate_or_fail(url: str, setting: str) -> None:
    try:
        db.migrate(url, setting=setting)
    except (SQLAlchemyError, AlembicError) as exc:
        raise CommandError(f"migrating {db.shown_url(url)} failed: {db.one_line(exc)}") from None


def _check(args: argparse.Namespace) -> int:
    url = get_settings().database_url
    engine = db.make_engine(url)
    try:
        with db.connect(engine, url) as connection:
            server = connection.dialect.name
            version = connection.dialect.server_version_info or ()
            current = revision(connection)
    finally:
        engine.dispose()
    head = _head()
    kind = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(server, server)
    print(f"database: {db.shown_url(url)} ({kind} {'.'.join(map(str, version))})")
    if current is None:
        print(f"schema: empty; run `aftercare db migrate` (or any command) for {head}")
    elif current == head:
        print(f"schema: {current}, the newest")
    else:
        print(f"schema: {current}; the newest is {head}: run `aftercare db migrate`")
    return 0


def _migrate(args: argparse.Namespace) -> int:
    url = get_settings().database_url
    _migrate_or_fail(url, db.SETTING)
    print(f"schema: {_head()}, the newest ({db.shown_url(url)})")
    return 0


def _copy(args: argparse.Namespace) -> int:
    source: Optional[str] = args.source
    source_setting = "--from" if source else db.SETTING
    source = source or get_settings().database_url
    if db.parse_url(args.to, "--to").get_backend_name() != "postgresql":
        raise CommandError("--to must be a PostgreSQL database (postgresql://...)")
    _migrate_or_fail(source, source_setting)
    _migrate_or_fail(args.to, "--to")
    print(f"copying {db.shown_url(source)} into {db.shown_url(args.to)} ...")
    try:
        counts = copy_database(source, args.to, source_setting=source_setting,
                               target_setting="--to")
    except CopyError as exc:
        raise CommandError(str(exc)) from None
    except SQLAlchemyError as exc:
        raise CommandError(f"the copy failed, nothing was written: {db.one_line(exc)}") from None
    print_counts(counts)
    return 0


def print_counts(counts: List[TableCount]) -> None:
    width = max(len(c.table) for c in counts)
    print(f"{'table':<{width}}  {'source':>9}  {'copied':>9}")
    for count in counts:
        print(f"{count.table:<{width}}  {count.source:>9,}  {count.target:>9,}")
    total = sum(c.target for c in counts)
    print(f"copied {total:,} rows in {len(counts)} tables; every count matches.")
