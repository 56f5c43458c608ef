"""Alembic environment: runs migrations over the platform's async engine (aiosqlite / asyncpg)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from callcenter.config import Settings, normalise_database_url
from callcenter.db.session import create_engine
from callcenter.plugins import metadata as plugin_metadata

metadata = plugin_metadata()

config = context.config


def _database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    return normalise_database_url(url) if url else Settings.from_env().database_url


def _sqlite_foreign_keys(connection: Connection, on: bool) -> None:
    """SQLite cannot alter most columns in place, so batch mode copies a table and drops the old one; with foreign
    keys enforced, that drop deletes or nulls every row referring to it (contacts, calls' elders, audit actors).
    Off for the migration, then checked: the pragma is a no-op inside a transaction, hence the raw connection."""
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    finally:
        cursor.close()


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite" and not connection.in_transaction()
    if sqlite:
        _sqlite_foreign_keys(connection, on=False)
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things in place: batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"the migration broke {len(broken)} foreign key reference(s), e.g. {broken[0]}")
    if sqlite:
        connection.commit()
        _sqlite_foreign_keys(connection, on=True)


async def _run_online() -> None:
    engine = create_engine(_database_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_database_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    existing = config.attributes.get("connection")
    if existing is not None:
        _run(existing)
    else:
        asyncio.run(_run_online())
