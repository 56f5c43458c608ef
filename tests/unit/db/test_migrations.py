"""Migrations run from empty on every backend, and the models and the migration head agree."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from callcenter.db.migrate import current_revision, head_revision, upgrade
from callcenter.db.session import create_engine
from callcenter.plugins import metadata as plugin_metadata

metadata = plugin_metadata()


def _diff(url: str) -> list[object]:
    async def run() -> list[object]:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}),
                                                  metadata)
                )
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _tables(url: str) -> set[str]:
    async def run() -> set[str]:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_upgrade_from_empty_reaches_head_with_every_table(db_url: str) -> None:
    assert asyncio.run(current_revision(db_url)) is None
    upgrade(db_url)
    assert asyncio.run(current_revision(db_url)) == head_revision()
    assert set(metadata.tables) <= _tables(db_url)


def test_models_and_migration_head_agree(migrated_db_url: str) -> None:
    assert _diff(migrated_db_url) == []


def test_upgrade_is_idempotent_and_downgrade_to_base_empties(migrated_db_url: str) -> None:
    upgrade(migrated_db_url)
    from alembic import command

    from callcenter.db.migrate import alembic_config

    command.downgrade(alembic_config(migrated_db_url), "base")
    assert not (set(metadata.tables) & _tables(migrated_db_url))


def test_dropping_the_log_in_lock_columns_keeps_every_reference_to_the_user(db_url: str) -> None:
    """0007 drops two columns of ``users``; a table copy there would set every audit entry's actor to NULL."""
    from alembic import command
    from sqlalchemy import text

    from callcenter.db.migrate import alembic_config

    command.upgrade(alembic_config(db_url), "0006")

    async def run(statements: list[str]) -> list[tuple[object, ...]]:
        """Runs ``statements`` in one transaction; the rows of the last one when it is a SELECT."""
        engine = create_engine(db_url)
        try:
            async with engine.begin() as connection:
                for sql in statements:
                    result = await connection.execute(text(sql))
                return [tuple(row) for row in result.all()] if result.returns_rows else []
        finally:
            await engine.dispose()

    asyncio.run(run([
        "INSERT INTO users (username, password_hash, role, language, active, failed_logins, created_at, updated_at) "
        "VALUES ('agent07', 'x', 'agent', 'zh-CN', true, 3, '2026-01-01', '2026-01-01')",
        "INSERT INTO audit_log (action, actor_id, actor_label, details, at) "
        "SELECT 'auth.login', id, 'agent07', '{}', '2026-01-01' FROM users",
    ]))
    upgrade(db_url)
    actors = asyncio.run(run(["SELECT u.username FROM audit_log a JOIN users u ON u.id = a.actor_id"]))
    assert actors == [("agent07",)]
