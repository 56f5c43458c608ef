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


def _sql(url: str, statements: list[str]) -> list[tuple[object, ...]]:
    """Runs ``statements`` in one transaction; the rows of the last one when it is a SELECT."""
    from sqlalchemy import text

    async def run() -> list[tuple[object, ...]]:
        engine = create_engine(url)
        try:
            async with engine.begin() as connection:
                for sql in statements:
                    result = await connection.execute(text(sql))
                return [tuple(row) for row in result.all()] if result.returns_rows else []
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

    from callcenter.db.migrate import alembic_config

    command.upgrade(alembic_config(db_url), "0006")

    _sql(db_url, [
        "INSERT INTO users (username, password_hash, role, language, active, failed_logins, created_at, updated_at) "
        "VALUES ('agent07', 'x', 'agent', 'zh-CN', true, 3, '2026-01-01', '2026-01-01')",
        "INSERT INTO audit_log (action, actor_id, actor_label, details, at) "
        "SELECT 'auth.login', id, 'agent07', '{}', '2026-01-01' FROM users",
    ])
    upgrade(db_url)
    actors = _sql(db_url, ["SELECT u.username FROM audit_log a JOIN users u ON u.id = a.actor_id"])
    assert actors == [("agent07",)]


def test_sealing_migration_seals_existing_personal_data_and_keeps_every_reference(db_url: str) -> None:
    """0013 seals what earlier versions stored in plain text; SQLite's table copies keep contacts and calls."""
    from alembic import command
    from sqlalchemy import select

    from callcenter.db.keyring import Keyring
    from callcenter.db.migrate import alembic_config
    from callcenter.db.session import Database
    from callcenter.elders.models import Contact, Elder
    from callcenter.elders.services import search_elders
    from callcenter.orders.models import WorkOrder
    from callcenter.volunteers.models import Volunteer

    command.upgrade(alembic_config(db_url), "0012")
    now = "'2026-01-01'"

    _sql(db_url, [
        "INSERT INTO elders (id, full_name, id_number, latitude, longitude, conditions, medications, allergies, "
        f"language, extra, created_at, updated_at) VALUES (7, '测试老人', '11010119400101001X', 34.035, 113.852, "
        f"'[\"高血压\"]', '[\"硝苯地平\"]', '[]', 'zh-CN', '{{}}', {now}, {now})",
        "INSERT INTO elders (id, full_name, conditions, medications, allergies, language, extra, created_at, "
        f"updated_at) VALUES (8, '无证老人', '[]', '[]', '[]', 'zh-CN', '{{}}', {now}, {now})",
        "INSERT INTO contacts (elder_id, role, name, phone, priority, created_at) "
        f"VALUES (7, 'relative', '测试家属', '13800000000', 1, {now})",
        "INSERT INTO work_orders (number, kind, status, priority, title, elder_id, latitude, longitude, "
        f"version, legal_hold, created_at, updated_at) VALUES ('WO-1', 'emergency', 'open', 1, 't', 7, 34.5, 113.5, "
        f"1, false, {now}, {now})",
        "INSERT INTO volunteers (id, full_name, phone, id_number, skills, trainings, certificates, review_status, "
        f"created_at, updated_at) VALUES (3, '志愿者', '13900000000', '110101199001010012', '[]', '[]', '[]', "
        f"'pending', {now}, {now})",
    ])
    keyring = Keyring.ephemeral()
    upgrade(db_url, keyring=keyring)

    raw = _sql(db_url, ["SELECT id_number, conditions, latitude FROM elders WHERE id = 7"])[0]
    assert all(str(value).startswith("cc1:") for value in raw)
    assert "11010119400101001X" not in str(raw) and "高血压" not in str(raw)

    async def read() -> tuple[object, ...]:
        db = Database(db_url, keyring)
        try:
            async with db.transaction(read_only=True) as session:
                elder = await session.get(Elder, 7)
                assert elder is not None
                contacts = (await session.scalars(select(Contact).where(Contact.elder_id == 7))).all()
                order = await session.scalar(select(WorkOrder))
                volunteer = await session.get(Volunteer, 3)
                found, _total = await search_elders(session, q="11010119400101001x", phone=None, community=None,
                                                   limit=10, offset=0)
                assert order is not None and volunteer is not None
                return (elder.id_number, elder.conditions, elder.medications, elder.allergies, elder.latitude,
                        len(contacts), order.latitude, volunteer.id_number, [e.id for e in found])
        finally:
            await db.dispose()

    assert asyncio.run(read()) == ("11010119400101001X", ["高血压"], ["硝苯地平"], [], 34.035, 1, 34.5,
                                   "110101199001010012", [7])

    config = alembic_config(db_url)
    config.attributes["keyring"] = keyring
    command.downgrade(config, "0012")
    assert _sql(db_url, ["SELECT id_number FROM elders WHERE id = 7"]) == [("11010119400101001X",)]


def test_the_second_factors_secrets_are_sealed_and_still_open(db_url: str) -> None:
    """0020 seals the TOTP secrets stored in plain text before it; the account and its audit trail stay whole."""
    from alembic import command

    from callcenter.db.keyring import Keyring
    from callcenter.db.migrate import alembic_config
    from callcenter.db.session import Database
    from callcenter.users.models import User

    command.upgrade(alembic_config(db_url), "0019")
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    _sql(db_url, [
        "INSERT INTO users (id, username, password_hash, role, language, active, totp_secret, created_at, "
        f"updated_at) VALUES (5, 'auditor05', 'x', 'auditor', 'zh-CN', true, '{secret}', '2026-01-01', "
        "'2026-01-01')",
        "INSERT INTO users (id, username, password_hash, role, language, active, created_at, updated_at) "
        "VALUES (6, 'agent06', 'x', 'agent', 'zh-CN', true, '2026-01-01', '2026-01-01')",
        "INSERT INTO audit_log (action, actor_id, actor_label, details, at) "
        "VALUES ('auth.login', 5, 'auditor05', '{}', '2026-01-01')",
    ])
    keyring = Keyring.ephemeral()
    upgrade(db_url, keyring=keyring)
    [(stored,)] = _sql(db_url, ["SELECT totp_secret FROM users WHERE id = 5"])
    assert str(stored).startswith("cc1:") and secret not in str(stored)
    assert _sql(db_url, ["SELECT totp_secret FROM users WHERE id = 6"]) == [(None,)]
    assert _sql(db_url, ["SELECT actor_id FROM audit_log"]) == [(5,)]

    async def read() -> str | None:
        db = Database(db_url, keyring)
        try:
            async with db.transaction(read_only=True) as session:
                user = await session.get(User, 5)
                assert user is not None
                return user.totp_secret
        finally:
            await db.dispose()

    assert asyncio.run(read()) == secret
    config = alembic_config(db_url)
    config.attributes["keyring"] = keyring
    command.downgrade(config, "0019")
    assert _sql(db_url, ["SELECT totp_secret FROM users WHERE id = 5"]) == [(secret,)]
