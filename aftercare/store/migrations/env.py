"""Alembic environment for the patient store.

The URL is the one set on the Alembic config (db.migrate sets it), else
AFTERCARE_DATABASE_URL via aftercare.settings. db.migrate also passes the
connection it holds the migration lock on (config.attributes["connection"]);
without one (the `alembic` command) this opens its own.

SQLite rebuilds a table to change it (batch mode); PostgreSQL alters it in
place: the migrations choose by dialect (their _rebuild()).
"""
from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from aftercare.settings import get_settings
from aftercare.store.db import make_engine
from aftercare.store.models import Base, UTCDateTime

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or get_settings().database_url


def _render_item(type_: str, obj, autogen_context):
    """Autogenerate writes UTCDateTime columns as plain sa.DateTime()."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        render_item=_render_item,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch migrations copy and drop tables; with foreign keys on, dropping
        # patients would cascade-delete every treatment. The pragma only takes
        # effect outside a transaction, hence the commit straight after.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=sqlite,
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
    if sqlite:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
