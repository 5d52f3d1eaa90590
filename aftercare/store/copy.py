"""Copy the product's database into a new PostgreSQL database (`aftercare db copy`).

Every table of the patient store is copied in dependency order (parents
before the rows that refer to them), then Rasa's conversations (`events`)
and the scheduled check-ins (`checkin_jobs`) when the source has them. Ids
are kept, and each PostgreSQL id sequence is moved past the highest id the
source ever gave (SQLite's AUTOINCREMENT counter included), so an erased
patient's id is never handed out again. Everything is written in one
transaction: if anything fails, the target stays empty. The target must be
migrated to the same schema and hold no rows at all; afterwards the rows of
every table are counted on both sides.

Nothing else may write to the source while it is copied: stop the bot, the
review page and the Rasa and action servers first.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional

from alembic.migration import MigrationContext
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from sqlalchemy import (
    Column, Float, Integer, MetaData, String, Table, Text, func, insert, inspect, select, text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from aftercare.store import db
from aftercare.store.models import Base

BATCH_ROWS = 500
# APScheduler's job store table (bot/checkin_service.py JOB_TABLE).
JOB_TABLE = "checkin_jobs"
RASA_EVENTS_TABLE = "events"

_others = MetaData()
# Rasa 3.6's SQLTrackerStore.SQLEvent, column for column.
RASA_EVENTS = Table(
    RASA_EVENTS_TABLE, _others,
    Column("id", Integer, primary_key=True),
    Column("sender_id", String(255), nullable=False, index=True),
    Column("type_name", String(255), nullable=False),
    Column("timestamp", Float),
    Column("intent_name", String(255)),
    Column("action_name", String(255)),
    Column("data", Text),
)
# The job store's own definition (it only builds the Table here, no connection).
CHECKIN_JOBS = SQLAlchemyJobStore(engine=object(), tablename=JOB_TABLE,
                                  metadata=_others).jobs_t


class CopyError(RuntimeError):
    """The copy cannot be made or did not hold; nothing was written (one line)."""


@dataclass(frozen=True)
class TableCount:
    table: str
    source: int
    target: int


def tables_in(connection: Connection) -> List[Table]:
    """The tables to copy from this database, parents first."""
    present = set(inspect(connection).get_table_names())
    return list(Base.metadata.sorted_tables) + [
        table for table in (RASA_EVENTS, CHECKIN_JOBS) if table.name in present]


def _count(connection: Connection, table: Table) -> int:
    return connection.execute(select(func.count()).select_from(table)).scalar_one()


def revision(connection: Connection) -> Optional[str]:
    """The schema revision the database is at (None: not migrated)."""
    return MigrationContext.configure(connection).get_current_revision()


def _refuse_rows(target: Connection) -> None:
    present = set(inspect(target).get_table_names())
    for table in list(Base.metadata.sorted_tables) + [RASA_EVENTS, CHECKIN_JOBS]:
        if table.name in present:
            rows = _count(target, table)
            if rows:
                raise CopyError(f"the target database is not empty ({table.name} has {rows} "
                                f"row(s)): copy only into a new database")


def _high_water(source: Connection, table: Table) -> int:
    """The highest id the source has ever given in table (not only those left)."""
    highest = source.execute(select(func.max(table.c.id))).scalar() or 0
    if source.dialect.name == "sqlite":
        if inspect(source).has_table("sqlite_sequence"):
            counter = source.execute(text("SELECT seq FROM sqlite_sequence WHERE name = :t"),
                                     {"t": table.name}).scalar()
            highest = max(highest, counter or 0)
    elif source.dialect.name == "postgresql":
        sequence = source.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"),
                                  {"t": table.name}).scalar()
        if sequence:
            last, called = source.execute(
                text(f"SELECT last_value, is_called FROM {sequence}")).one()
            highest = max(highest, last if called else last - 1)
    return int(highest)


def _move_sequences(source: Connection, target: Connection, tables: List[Table]) -> None:
    for table in tables:
        if "id" not in table.c or not isinstance(table.c.id.type, Integer) \
                or list(table.primary_key.columns) != [table.c.id]:
            continue
        sequence = target.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"),
                                  {"t": table.name}).scalar()
        if sequence:
            target.execute(text("SELECT setval(:s, :next, false)"),
                           {"s": sequence, "next": _high_water(source, table) + 1})


def _copy_rows(source: Connection, target: Connection, table: Table) -> None:
    query = select(table).order_by(*table.primary_key.columns)
    result = source.execution_options(stream_results=True).execute(query)
    for rows in result.partitions(BATCH_ROWS):
        target.execute(insert(table), [dict(row._mapping) for row in rows])


def copy_database(source_url: str, target_url: str, *,
                  source_setting: str = db.SETTING, target_setting: str = "--to",
                  progress: Optional[Callable[[str], None]] = None) -> List[TableCount]:
    """Copy every row from source_url into target_url (PostgreSQL, migrated and
    empty); the row counts of each table, checked equal. CopyError otherwise;
    DatabaseURLError, naming the setting, for a database that cannot be used."""
    if db.parse_url(target_url, target_setting).get_backend_name() != "postgresql":
        raise CopyError(f"{target_setting} must be a PostgreSQL database (postgresql://...)")
    if db.shown_url(source_url) == db.shown_url(target_url):
        raise CopyError("the source and the target are the same database")
    source_engine = db.make_engine(source_url, setting=source_setting)
    target_engine = db.make_engine(target_url, setting=target_setting)
    try:
        with db.connect(source_engine, source_url, source_setting) as source:
            tables = tables_in(source)
            with db.connect(target_engine, target_url, target_setting) as target:
                if revision(target) != revision(source):
                    raise CopyError(f"the schemas differ (source {revision(source)}, target "
                                    f"{revision(target)}): migrate both first")
                target.rollback()
                with target.begin():
                    _refuse_rows(target)
                    for table in tables:
                        if progress:
                            progress(table.name)
                        table.create(target, checkfirst=True)
                        try:
                            _copy_rows(source, target, table)
                        except SQLAlchemyError as exc:
                            raise CopyError(f"copying {table.name} failed, nothing was "
                                            f"written: {db.one_line(exc)}") from None
                    _move_sequences(source, target, tables)
            with db.connect(target_engine, target_url, target_setting) as target:
                counts = [TableCount(table.name, _count(source, table), _count(target, table))
                          for table in tables]
    finally:
        source_engine.dispose()
        target_engine.dispose()
    wrong = [c.table for c in counts if c.source != c.target]
    if wrong:
        raise CopyError(f"the row counts differ after copying: {', '.join(wrong)}")
    return counts
