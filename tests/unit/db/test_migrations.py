"""Migrations run from empty on every backend, and the models and the migration head agree."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from callcenter.db.migrate import current_revision, head_revision, upgrade
from callcenter.db.models import metadata
from callcenter.db.session import create_engine


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
